import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { gcImpact, recordGcPauses, type GcPause } from './gc.ts';
import type { DeliveryResult } from './storm.ts';

const post = (sentAt: number, ms: number): DeliveryResult =>
  ({ sentAt, ms, status: 200, body: null, serverTiming: {}, groupKey: 'g' }) as DeliveryResult;
const pause = (startedAt: number, ms: number): GcPause => ({ startedAt, ms, kind: 'minor' });

describe('bench/receiver: which POSTs were in flight across a GC pause', () => {
  test('a POST counts when its time from sent to answered overlaps a pause, and not when it only borders one', () => {
    const results = [
      post(1_000, 30), // 1000-1030 holds the pause at 1010-1020
      post(1_015, 10), // 1015-1025 starts inside it
      post(1_020, 5), // starts as it ends: not across
      post(990, 10), // ends as it starts: not across
      post(1_100, 8),
    ];
    const impact = gcImpact(results, [pause(1_010, 10)]);
    assert.equal(impact.pauses, 1);
    assert.equal(impact.minor_pauses, 1);
    assert.equal(impact.max_pause_ms, 10);
    assert.equal(impact.posts_across_a_pause, 2);
    assert.equal(impact.across_ack_p50_ms, 10);
    assert.equal(impact.across_ack_p99_ms, 30);
    assert.equal(impact.others_ack_p99_ms, 10);
    // The storm's p99 is its slowest POST here (5 samples), and it was in flight across the pause.
    assert.deepEqual([impact.slowest_1pct, impact.slowest_1pct_across_a_pause], [1, 1]);
  });

  test('without pauses nothing is across one, and the figures say so', () => {
    const impact = gcImpact([post(0, 12), post(5, 20)], []);
    assert.deepEqual(
      [impact.pauses, impact.max_pause_ms, impact.total_pause_ms, impact.posts_across_a_pause],
      [0, 0, 0, 0]
    );
    assert.ok(Number.isNaN(impact.across_ack_p50_ms));
    assert.equal(impact.others_ack_p99_ms, 20);
    assert.equal(impact.slowest_1pct_across_a_pause, 0);
  });

  test("the recorder sees this thread's young-generation collections, on the wall clock, only while recording", async () => {
    const recorder = recordGcPauses();
    const before = Date.now();
    recorder.start();
    // Short-lived garbage until V8 has had to collect its young generation (a few MB per collection).
    let kept: unknown[] = [];
    for (let i = 0; i < 2_000_000; i++) {
      kept.push({ i, text: `garbage ${i}` });
      if (kept.length > 1_000) kept = [];
    }
    recorder.stop();
    const after = Date.now();
    // Collections after the window are not counted.
    for (let i = 0; i < 1_000_000; i++) kept.push({ i });
    kept = [];
    const pauses = await recorder.pauses();
    const minor = pauses.filter((p) => p.kind === 'minor');
    assert.ok(minor.length > 0, `expected a young-generation collection, got ${JSON.stringify(pauses)}`);
    for (const p of pauses) {
      assert.ok(p.startedAt >= before - 1 && p.startedAt <= after + 1, `pause at ${p.startedAt} outside the window`);
      assert.ok(p.ms >= 0);
    }
  });
});
