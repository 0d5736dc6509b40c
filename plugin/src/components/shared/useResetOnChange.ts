import { useState } from 'react';

/**
 * Calls `reset` while rendering whenever `key` differs from the key seen last time (React's "adjusting some
 * state when a prop changes", https://react.dev/learn/you-might-not-need-an-effect), so a control can
 * re-derive its selections from fresh data and keep the rest of its state.
 *
 * Why not `key={…}` on the component: a remount also throws away the outcome of the action that caused the
 * change. A rollback's "Rolled back: v1 is the active model again" vanished as the reloaded overview (or a
 * poll that landed while the POST was in flight) brought the new active model, and was never shown at all
 * when the poll came back first.
 */
export function useResetOnChange(key: string, reset: () => void): void {
  const [seen, setSeen] = useState(key);
  if (seen !== key) {
    setSeen(key);
    reset();
  }
}
