import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { createLogger } from '../core/logger.ts';
import { CollectorRunner, type Collector } from './runner.ts';

test('all collectors refresh at start, then the ones sharing an interval each in its own slot of it', async () => {
  const intervalMs = 600;
  const started = performance.now();
  const runs = new Map<string, number[]>();
  let allRanTwice: () => void;
  const done = new Promise<void>((resolve) => (allRanTwice = resolve));
  const collectors: Collector[] = ['a', 'b', 'c'].map((name) => ({
    name,
    intervalMs,
    refresh: async () => {
      runs.set(name, [...(runs.get(name) ?? []), performance.now() - started]);
      if ([...runs.values()].filter((r) => r.length >= 2).length === 3) allRanTwice();
    },
  }));
  const runner = new CollectorRunner(new Registry(), collectors, createLogger('silent'));
  runner.start();
  // A timer set now with the same delay fires after the collectors' first timers (same list, set later).
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual([...runs.keys()].sort(), ['a', 'b', 'c'], 'every collector refreshed at start, none in its slot');
  // The runner's timers do not keep a process alive (unref); this bounded wait does, and fails the test if
  // the second runs never come.
  let guard: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    guard = setTimeout(() => reject(new Error(`not every collector ran twice: ${JSON.stringify([...runs])}`)), 30_000);
  });
  await Promise.race([done, timeout]).finally(() => clearTimeout(guard));
  await runner.stop();
  // Timers never fire early, so these lower bounds hold however loaded the machine is; without the
  // slots, b and c would run again together with a, one interval after the start.
  for (const [i, name] of ['a', 'b', 'c'].entries()) {
    const [first, second] = runs.get(name)!;
    const slot = (intervalMs * i) / 3;
    assert.ok(
      second! >= first! + intervalMs + slot - 2,
      `${name} ran again at ${second} ms, before its slot ${slot} ms`
    );
  }
});
