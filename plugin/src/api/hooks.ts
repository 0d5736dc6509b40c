import { config } from '@grafana/runtime';
import { useCallback, useEffect, useRef, useState } from 'react';

export type Role = 'Viewer' | 'Editor' | 'Admin';
const RANK: Record<Role, number> = { Viewer: 1, Editor: 2, Admin: 3 };

/**
 * The signed-in user's role in this org, as Grafana's boot data has it. It only decides what the page
 * offers; the plugin routes' reqRole and Control Room itself enforce it.
 */
export function currentRole(): Role {
  const user = config.bootData?.user;
  if (user?.isGrafanaAdmin) {
    return 'Admin';
  }
  return user?.orgRole === 'Admin' || user?.orgRole === 'Editor' ? user.orgRole : 'Viewer';
}

export const hasRole = (needed: Role) => RANK[currentRole()] >= RANK[needed];

export interface Polled<T> {
  data: T | undefined;
  error: Error | undefined;
  loading: boolean;
  reload: () => Promise<void>;
}

/**
 * Loads `load()` now and every `intervalMs` while the page is open (0 = once). A slow answer never
 * overwrites a newer one, and a failed poll keeps the last good data next to the error.
 */
export function usePolled<T>(load: (() => Promise<T>) | null, intervalMs: number, deps: unknown[]): Polled<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<Error>();
  const [loading, setLoading] = useState(load !== null);
  const generation = useRef(0);

  // eslint-disable-next-line react-hooks/exhaustive-deps
  const loader = useCallback(load ?? (async () => undefined as T), deps);

  const reload = useCallback(async () => {
    if (!load) {
      return;
    }
    const mine = ++generation.current;
    try {
      const next = await loader();
      if (mine === generation.current) {
        setData(next);
        setError(undefined);
      }
    } catch (e) {
      if (mine === generation.current) {
        setError(e instanceof Error ? e : new Error(String(e)));
      }
    } finally {
      if (mine === generation.current) {
        setLoading(false);
      }
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [loader]);

  useEffect(() => {
    setData(undefined);
    setError(undefined);
    setLoading(load !== null);
    void reload();
    if (!intervalMs || !load) {
      return () => {
        generation.current++;
      };
    }
    const timer = setInterval(() => void reload(), intervalMs);
    return () => {
      clearInterval(timer);
      generation.current++;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [reload, intervalMs]);

  return { data, error, loading, reload };
}
