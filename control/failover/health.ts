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
    return {
      ok,
      latencyMs: Math.round(performance.now() - started),
      statusCode: res.status,
      error: ok ? null : `HTTP ${res.status}`,
    };
  } catch (error) {
    return {
      ok: false,
      latencyMs: Math.round(performance.now() - started),
      statusCode: null,
      error: describeFetchError(error, timeoutMs),
    };
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
  if (value && typeof value === 'object' && 'lag_seconds' in value)
    value = (value as { lag_seconds: unknown }).lag_seconds;
  const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
  return Number.isFinite(n) && n >= 0 ? n : null;
}

export async function readLag(url: string, timeoutMs: number): Promise<LagResult> {
  try {
    const res = await fetch(url, {
      signal: AbortSignal.timeout(timeoutMs),
      redirect: 'manual',
      headers: { 'user-agent': 'controlroom-failover/1' },
    });
    const body = await res.text();
    if (res.status < 200 || res.status >= 300) return { lagSeconds: null, error: `HTTP ${res.status}` };
    const lag = parseLag(body);
    return lag === null
      ? { lagSeconds: null, error: `unreadable lag: ${body.slice(0, 80)}` }
      : { lagSeconds: lag, error: null };
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

/**
 * Bucket bounds (seconds, `le` inclusive) of tms_region_check_duration_seconds, the round trip of each health
 * check: the read latency from a region, which the plan bounds at p95 < 150 ms (hence the 0.15 bound).
 */
export const CHECK_LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5] as const;

/**
 * The round trip a check measured, or null when it measured none: a refused or reset connection fails
 * in a millisecond and says nothing about read latency, whereas an answer (any status) or a timeout does.
 */
export function observedLatencySeconds(probe: ProbeResult, timeoutMs: number): number | null {
  if (probe.statusCode !== null) return probe.latencyMs / 1000;
  if (probe.error?.startsWith('timed out')) return Math.max(probe.latencyMs, timeoutMs) / 1000;
  return null;
}

export interface QueueDepthResult {
  depth: number | null;
  error: string | null;
}

/**
 * Parses a region's queue depth: `{"queued": n, "running": m}` (summed), `{"depth": n}`,
 * `{"queue_depth": n}`, or a plain number. Anything else is unreadable (null): an unreadable queue is
 * never taken for a drained one.
 */
export function parseQueueDepth(body: string): number | null {
  let value: unknown;
  try {
    value = JSON.parse(body.trim());
  } catch {
    return null;
  }
  const whole = (v: unknown) => (typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : null);
  if (typeof value === 'number') return whole(value);
  if (!value || typeof value !== 'object') return null;
  const o = value as Record<string, unknown>;
  if ('queued' in o || 'running' in o) {
    const queued = whole(o.queued ?? 0);
    const running = whole(o.running ?? 0);
    return queued === null || running === null ? null : queued + running;
  }
  if ('depth' in o) return whole(o.depth);
  if ('queue_depth' in o) return whole(o.queue_depth);
  return null;
}

export async function readQueueDepth(url: string, timeoutMs: number): Promise<QueueDepthResult> {
  try {
    const res = await fetch(url, {
      signal: AbortSignal.timeout(timeoutMs),
      redirect: 'manual',
      headers: { 'user-agent': 'controlroom-failover/1', accept: 'application/json' },
    });
    const body = await res.text();
    if (res.status < 200 || res.status >= 300) return { depth: null, error: `HTTP ${res.status}` };
    const depth = parseQueueDepth(body);
    return depth === null
      ? { depth: null, error: `unreadable queue depth: ${body.slice(0, 80)}` }
      : { depth, error: null };
  } catch (error) {
    return { depth: null, error: describeFetchError(error, timeoutMs) };
  }
}

export interface CallResult {
  ok: boolean;
  error: string | null;
}

/**
 * POSTs a pause or resume to a region. The Idempotency-Key is the same for every retry of one call (the
 * cutover and the action), so a TMS that honours it acts once even when an answer was lost and the call
 * repeated; pausing or resuming twice is harmless anyway.
 */
export async function postJobControl(
  url: string,
  idempotencyKey: string,
  body: Record<string, unknown>,
  timeoutMs: number
): Promise<CallResult> {
  try {
    const res = await fetch(url, {
      method: 'POST',
      signal: AbortSignal.timeout(timeoutMs),
      redirect: 'manual',
      headers: {
        'user-agent': 'controlroom-failover/1',
        'content-type': 'application/json',
        'idempotency-key': idempotencyKey,
      },
      body: JSON.stringify(body),
    });
    await res.body?.cancel().catch(() => undefined);
    return res.status >= 200 && res.status < 300
      ? { ok: true, error: null }
      : { ok: false, error: `HTTP ${res.status}` };
  } catch (error) {
    return { ok: false, error: describeFetchError(error, timeoutMs) };
  }
}
