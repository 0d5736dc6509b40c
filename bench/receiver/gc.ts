import { constants, PerformanceObserver, performance, type PerformanceEntry } from 'node:perf_hooks';
import { percentile } from '../stats.ts';
import type { DeliveryResult } from './storm.ts';

/**
 * V8's garbage-collection pauses on the calling thread's heap (the receiver's event loop, where the
 * benchmark's main thread runs the service), and which of the storm's POSTs were in flight across one.
 *
 * Every JavaScript object the webhook path allocates lives in that heap; while V8 collects it the event
 * loop runs nothing: no request is read, no batch result handled, no answer written. A pause that falls
 * while a batch is at Postgres holds that batch's answers and every POST waiting behind it. On this
 * machine a storm saw three or four young-generation collections of 7-13 ms each, and the POSTs in flight
 * across one of them were often the storm's slowest (all of the slowest 1% in 5 of 11 runs, none in 3):
 * this makes that visible in each run instead of inferred.
 *
 * Node reports each pause as a `gc` performance entry (perf_hooks): start and duration on this thread's
 * clock, and its kind (minor: the young generation, a scavenge; major: mark-compact; incremental:
 * a marking step; weakcb: weak callbacks). Other threads' heaps (the sender's) are not seen.
 */
export interface GcPause {
  /** Wall-clock start, epoch milliseconds (comparable with the sender's `sentAt`). */
  startedAt: number;
  ms: number;
  kind: 'minor' | 'major' | 'incremental' | 'weakcb' | 'other';
}

const KIND_NAMES = new Map<number, GcPause['kind']>([
  [constants.NODE_PERFORMANCE_GC_MINOR, 'minor'],
  [constants.NODE_PERFORMANCE_GC_MAJOR, 'major'],
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL, 'incremental'],
  [constants.NODE_PERFORMANCE_GC_WEAKCB, 'weakcb'],
]);

/**
 * Records this thread's GC pauses that start between `start()` and `stop()`. Node delivers a pause's entry
 * on a later turn of the event loop, so `pauses()` waits for one before it reads them (and stops observing).
 */
export function recordGcPauses(): { start: () => void; stop: () => void; pauses: () => Promise<GcPause[]> } {
  const entries: PerformanceEntry[] = [];
  const observer = new PerformanceObserver((list) => entries.push(...list.getEntries()));
  observer.observe({ entryTypes: ['gc'] });
  let from = Number.POSITIVE_INFINITY;
  let until = Number.POSITIVE_INFINITY;
  return {
    start: () => {
      from = performance.now();
    },
    stop: () => {
      until = performance.now();
    },
    pauses: async () => {
      await new Promise((resolve) => setImmediate(resolve));
      entries.push(...observer.takeRecords());
      observer.disconnect();
      return entries
        .filter((entry) => entry.startTime >= from && entry.startTime <= until)
        .sort((a, b) => a.startTime - b.startTime)
        .map((entry) => ({
          startedAt: performance.timeOrigin + entry.startTime,
          ms: entry.duration,
          kind: KIND_NAMES.get((entry as { detail?: { kind?: number } }).detail?.kind ?? -1) ?? 'other',
        }));
    },
  };
}

export interface GcImpact {
  pauses: number;
  /** Pauses of the young generation (scavenges); the rest are major or incremental steps. */
  minor_pauses: number;
  max_pause_ms: number;
  total_pause_ms: number;
  /** POSTs whose time from sent to answered overlapped a pause, and their ack times. */
  posts_across_a_pause: number;
  across_ack_p50_ms: number;
  across_ack_p99_ms: number;
  /** The other POSTs. */
  others_ack_p50_ms: number;
  others_ack_p99_ms: number;
  /** How many of the storm's slowest 1% (the POSTs at or above its p99) were in flight across a pause. */
  slowest_1pct_across_a_pause: number;
  slowest_1pct: number;
}

/** Which POSTs were in flight across a pause. `sentAt` has the sender's millisecond resolution. */
export function gcImpact(results: readonly DeliveryResult[], pauses: readonly GcPause[]): GcImpact {
  const hit: number[] = [];
  const others: number[] = [];
  const slowestAcross: boolean[] = [];
  const p99 = percentile(
    results.map((r) => r.ms),
    99
  );
  for (const r of results) {
    const across = pauses.some((p) => p.startedAt < r.sentAt + r.ms && p.startedAt + p.ms > r.sentAt);
    (across ? hit : others).push(r.ms);
    if (r.ms >= p99) slowestAcross.push(across);
  }
  return {
    pauses: pauses.length,
    minor_pauses: pauses.filter((p) => p.kind === 'minor').length,
    max_pause_ms: pauses.length ? Math.max(...pauses.map((p) => p.ms)) : 0,
    total_pause_ms: pauses.reduce((n, p) => n + p.ms, 0),
    posts_across_a_pause: hit.length,
    across_ack_p50_ms: percentile(hit, 50),
    across_ack_p99_ms: percentile(hit, 99),
    others_ack_p50_ms: percentile(others, 50),
    others_ack_p99_ms: percentile(others, 99),
    slowest_1pct_across_a_pause: slowestAcross.filter(Boolean).length,
    slowest_1pct: slowestAcross.length,
  };
}
