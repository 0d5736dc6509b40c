import { config } from '@grafana/runtime';
import { useCallback, useEffect, useRef, useState } from 'react';
import { PLUGIN_ID } from '../constants';

export type Role = 'Viewer' | 'Editor' | 'Admin';
const RANK: Record<Role, number> = { Viewer: 1, Editor: 2, Admin: 3 };

/**
 * The signed-in user's role in this org, as Grafana's boot data has it: the org role alone, as the plugin
 * routes' reqRole checks it (pluginproxy.go hasAccessToRoute), so a Grafana server admin with a Viewer org
 * role is a Viewer here too. It only decides what the page offers; the routes and Control Room enforce it.
 */
export function currentRole(): Role {
  const user = config.bootData?.user;
  return user?.orgRole === 'Admin' || user?.orgRole === 'Editor' ? user.orgRole : 'Viewer';
}

export const hasRole = (needed: Role) => RANK[currentRole()] >= RANK[needed];

/** The app's RBAC actions (plugin.json roles), each with the org role that stands in where Grafana has no plugin roles. */
export const ACTIONS = {
  bulkWrite: { action: `${PLUGIN_ID}.bulk:write`, role: 'Editor' },
  limitsRequest: { action: `${PLUGIN_ID}.limits:request`, role: 'Editor' },
  freezeWrite: { action: `${PLUGIN_ID}.freeze:write`, role: 'Editor' },
  incidentsWrite: { action: `${PLUGIN_ID}.incidents:write`, role: 'Editor' },
  freezeOverride: { action: `${PLUGIN_ID}.freeze:override`, role: 'Admin' },
  failoverWrite: { action: `${PLUGIN_ID}.failover:write`, role: 'Admin' },
  pricingWrite: { action: `${PLUGIN_ID}.pricing:write`, role: 'Admin' },
} as const satisfies Record<string, { action: string; role: Role }>;

/**
 * Whether the page offers an action: by Grafana's RBAC grant when the boot data lists any of the app's
 * actions for the user (the routes' reqAction decides then), else by the org role.
 */
export function canDo(name: keyof typeof ACTIONS): boolean {
  const permissions =
    (config.bootData?.user as { permissions?: Record<string, boolean> } | undefined)?.permissions ?? {};
  const appActions = Object.keys(permissions).filter((action) => action.startsWith(`${PLUGIN_ID}.`));
  const { action, role } = ACTIONS[name];
  return appActions.length > 0 ? permissions[action] === true : hasRole(role);
}

export interface Polled<T> {
  data: T | undefined;
  error: Error | undefined;
  loading: boolean;
  reload: () => Promise<void>;
}

interface Loaded<T> {
  key: string;
  data?: T;
  error?: Error;
}

/**
 * Loads `load()` now and every `intervalMs` while the page is open (0 = once), again whenever `deps`
 * (plain values) change. A slow answer never overwrites a newer one, answers for old deps are dropped,
 * and a failed poll keeps the last good data next to the error.
 */
export function usePolled<T>(load: (() => Promise<T>) | null, intervalMs: number, deps: unknown[]): Polled<T> {
  const key = JSON.stringify(deps);
  const [loaded, setLoaded] = useState<Loaded<T>>({ key: '' });
  const run = useRef<() => Promise<void>>(async () => undefined);

  useEffect(() => {
    if (!load) {
      return;
    }
    let cancelled = false;
    let latest = 0;
    const poll = async () => {
      const mine = ++latest;
      try {
        const data = await load();
        if (!cancelled && mine === latest) {
          setLoaded({ key, data });
        }
      } catch (e) {
        if (!cancelled && mine === latest) {
          const error = e instanceof Error ? e : new Error(String(e));
          setLoaded((prev) => ({ key, data: prev.key === key ? prev.data : undefined, error }));
        }
      }
    };
    run.current = poll;
    void poll();
    const timer = intervalMs > 0 ? setInterval(() => void poll(), intervalMs) : undefined;
    return () => {
      cancelled = true;
      clearInterval(timer);
    };
    // `load` is a new closure each render; `key` stands for what it depends on.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key, intervalMs, load === null]);

  const current: Loaded<T> = loaded.key === key ? loaded : { key };
  const reload = useCallback(() => run.current(), []);
  return {
    data: current.data,
    error: current.error,
    loading: load !== null && current.data === undefined && current.error === undefined,
    reload,
  };
}
