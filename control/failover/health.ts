/** Health probes of a region and the hysteresis that turns check results into healthy / unhealthy. */

export interface ProbeResult {
  ok: boolean;
  latencyMs: number;
  statusCode: number | null;
  error: string | null;
}

export interface LagResult {
  lagSeconds: number | null;
  error: string | null;
}

function describeFetchError(error: unknown, timeoutMs: number): string {
  const e = error as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return `timed out after ${timeoutMs} ms`;
  const cause = e?.cause;
  if (cause?.code) return `${cause.code}${cause.message ? `: ${cause.message}` : ''}`;
  if (cause?.message) return `${e?.message ?? 'request failed'}: ${cause.message}`;
  return e?.message ?? String(error);
}

/** GET the health URL; a 2xx within the timeout is a pass. */
export async function probeHealth(url: string, timeoutMs: number): Promise<ProbeResult> {
  const started = performance.now();
  try {
    const res = await fetch(url, {
      signal: AbortSignal.timeout(timeoutMs),
      redirect: 'manual',
      headers: { 'user-agent': 'controlroom-failover/1', accept: 'application/json, text/plain, */*' },
    });
    await res.body?.cancel().catch(() => undefined);
    const ok = res.status >= 200 && res.status < 300;
    return { ok, latencyMs: Math.round(performance.now() - started), statusCode: res.status, error: ok ? null : `HTTP ${res.status}` };
  } catch (error) {
    return { ok: false, latencyMs: Math.round(performance.now() - started), statusCode: null, error: describeFetchError(error, timeoutMs) };
  }
}

/** Parses a replication lag body: JSON `{ "lag_seconds": n }`, a JSON number, or a plain number. */
export function parseLag(body: string): number | null {
  const text = body.trim();
  if (text === '') return null;
  let value: unknown = text;
  try {
    value = JSON.parse(text);
  } catch {
    // a plain number that is not JSON, e.g. "1.5\n" is JSON anyway; anything else fails below
  }
  if (value && typeof value === 'object' && 'lag_seconds' in value) value = (value as { lag_seconds: unknown }).lag_seconds;
  const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
  return Number.isFinite(n) && n >= 0 ? n : null;
}

export async function readLag(url: string, timeoutMs: number): Promise<LagResult> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'manual', headers: { 'user-agent': 'controlroom-failover/1' } });
    const body = await res.text();
    if (res.status < 200 || res.status >= 300) return { lagSeconds: null, error: `HTTP ${res.status}` };
    const lag = parseLag(body);
    return lag === null ? { lagSeconds: null, error: `unreadable lag: ${body.slice(0, 80)}` } : { lagSeconds: lag, error: null };
  } catch (error) {
    return { lagSeconds: null, error: describeFetchError(error, timeoutMs) };
  }
}

export interface HealthState {
  healthy: boolean;
  consecutive_failures: number;
  consecutive_successes: number;
  /** Null until the first check: the first result decides (no history to hold on to). */
  last_check_at: Date | null;
}

export interface HealthThresholds {
  unhealthyAfter: number;
  healthyAfter: number;
}

/**
 * One check result applied to a region: it turns unhealthy after `unhealthyAfter` failures in a row and
 * healthy again after `healthyAfter` successes in a row; in between it keeps its state. A region never
 * checked before takes the first result.
 */
export function nextHealth(prev: HealthState, ok: boolean, t: HealthThresholds): HealthState & { changed: boolean } {
  const failures = ok ? 0 : prev.consecutive_failures + 1;
  const successes = ok ? prev.consecutive_successes + 1 : 0;
  let healthy = prev.healthy;
  if (prev.last_check_at === null) healthy = ok;
  else if (prev.healthy && failures >= t.unhealthyAfter) healthy = false;
  else if (!prev.healthy && successes >= t.healthyAfter) healthy = true;
  return {
    healthy,
    consecutive_failures: failures,
    consecutive_successes: successes,
    last_check_at: new Date(),
    changed: healthy !== prev.healthy || prev.last_check_at === null,
  };
}
