import { useState } from 'react';
import { errorMessage } from '../../api/client';
import { reasonProblem } from './reason';

/** Sends an action with the trimmed reason; resolves with the success message to show. */
type Perform<Pending> = (action: Pending, reason: string) => Promise<string>;

/**
 * The state every audited control on the app's pages shares: a required reason, the action waiting in
 * its confirmation dialog, and the outcome shown afterwards. `ask` opens the dialog for an action (or
 * shows why it cannot be asked: a string); `confirm` sends it, shows the server's refusal as it is, and
 * always closes the dialog, so a failed action is never left half-confirmed on screen. `sendNow` sends an
 * action that has no dialog, with the same reason check and outcome.
 */
export function useConfirmedAction<Pending>() {
  const [reason, setReason] = useState('');
  const [pending, setPending] = useState<Pending | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const problemWithReason = reasonProblem(reason);
  /** Why the reason would be refused (checked before asking), or null. */
  const reasonError = problemWithReason && `${problemWithReason} (it goes into the audit log)`;

  const ask = (next: Pending | string) => {
    setMessage(null);
    if (typeof next === 'string') {
      setError(next);
      return;
    }
    setError(null);
    setPending(next);
  };

  const send = async (action: Pending, perform: Perform<Pending>, onDone: () => void): Promise<void> => {
    setBusy(true);
    setError(null);
    try {
      setMessage(await perform(action, reason.trim()));
      setReason('');
      onDone();
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setBusy(false);
      setPending(null);
    }
  };

  /**
   * Sends the confirmed action: `perform` gets it with the trimmed reason and returns the success message.
   * On success the reason is cleared and `onDone` runs (the page reloads what changed).
   */
  const confirm = async (perform: Perform<Pending>, onDone: () => void): Promise<void> => {
    if (!pending) {
      return;
    }
    await send(pending, perform, onDone);
  };

  /**
   * Sends an action that needs no dialog (the button itself says what it does, e.g. the runbook's pin-back),
   * once the reason would be accepted; otherwise shows why not and sends nothing.
   */
  const sendNow = async (action: Pending, perform: Perform<Pending>, onDone: () => void): Promise<void> => {
    setMessage(null);
    if (reasonError) {
      setError(reasonError);
      return;
    }
    await send(action, perform, onDone);
  };

  return {
    reason,
    setReason,
    reasonError,
    pending,
    ask,
    confirm,
    sendNow,
    dismiss: () => setPending(null),
    error,
    clearError: () => setError(null),
    message,
    clearMessage: () => setMessage(null),
    busy,
  };
}
