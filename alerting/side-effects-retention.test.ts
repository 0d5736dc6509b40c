import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { loadConfig } from '../cli/config.ts';
import { createLogger } from '../core/logger.ts';
import { once, pruneSideEffects } from '../core/side-effects.ts';
import { createTestDatabase, type TestDatabase } from '../testing/postgres.ts';
import {
  scheduleSideEffectsPrune,
  sideEffectsRetentionTasks,
  SIDE_EFFECTS_PRUNE_TASK,
} from './side-effects-retention.ts';

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase();
});
after(async () => {
  await db?.drop();
});

const DAY = 24 * 60 * 60 * 1000;
const keys = async () =>
  (await db.pool.query<{ key: string }>(`SELECT key FROM controlroom.side_effects ORDER BY key`)).rows.map(
    (r) => r.key
  );
const pendingPrunes = async () =>
  (
    await db.pool.query<{ run_at: Date }>(
      `SELECT run_at FROM graphile_worker.jobs WHERE task_identifier = $1 AND attempts < max_attempts`,
      [SIDE_EFFECTS_PRUNE_TASK]
    )
  ).rows.map((r) => r.run_at.getTime());
const seed = (key: string, daysAgo: number) =>
  db.pool.query(`INSERT INTO controlroom.side_effects (key, done_at) VALUES ($1, now() - make_interval(days => $2))`, [
    key,
    daysAgo,
  ]);

test('records past the retention are deleted in batches; younger ones, and what once() does with them, stay', async () => {
  for (const [key, days] of [
    ['old:1', 40],
    ['old:2', 31],
    ['old:3', 90],
    ['young:1', 29],
  ] as const)
    await seed(key, days);
  let calls = 0;
  await once(db.pool, 'young:2', async () => ({ n: ++calls }));

  // Batches of two: three old rows take two statements, and the count is the rows really deleted.
  assert.equal(await pruneSideEffects(db.pool, 30, 2), 3);
  assert.deepEqual(await keys(), ['young:1', 'young:2']);
  assert.equal(await pruneSideEffects(db.pool, 30, 2), 0, 'nothing left to delete: a second run deletes nothing');
  // A kept record still makes a retry skip the side effect.
  assert.deepEqual(await once(db.pool, 'young:2', async () => ({ n: ++calls })), { n: 1 });
  assert.equal(calls, 1);
});

test('one pending prune a day ahead: a restart keeps its time, each run queues the next', async () => {
  await db.pool.query(`DELETE FROM graphile_worker._private_jobs`);
  const t0 = new Date();
  await scheduleSideEffectsPrune(db.pool, t0);
  // A restart (or the second instance) an hour later neither adds a job nor pushes this one back.
  await scheduleSideEffectsPrune(db.pool, new Date(t0.getTime() + 60 * 60 * 1000));
  assert.deepEqual(await pendingPrunes(), [t0.getTime() + DAY]);

  await seed('old:run', 45);
  const tasks = sideEffectsRetentionTasks(db.pool, 30, createLogger('silent'));
  const before = Date.now();
  await (tasks[SIDE_EFFECTS_PRUNE_TASK] as (payload: unknown, helpers: unknown) => Promise<void>)({}, {});
  assert.ok(!(await keys()).includes('old:run'), 'the run deleted the old record');
  const [next, ...more] = await pendingPrunes();
  assert.equal(more.length, 0, 'still one pending prune');
  assert.ok(next! >= before + DAY && next! <= Date.now() + DAY, 'the next run is a day after this one');
});

test('SIDE_EFFECTS_RETENTION_DAYS: 30 by default, at least 7', () => {
  assert.equal(loadConfig({}).SIDE_EFFECTS_RETENTION_DAYS, 30);
  assert.equal(loadConfig({ SIDE_EFFECTS_RETENTION_DAYS: '7' }).SIDE_EFFECTS_RETENTION_DAYS, 7);
  assert.throws(() => loadConfig({ SIDE_EFFECTS_RETENTION_DAYS: '3' }), /SIDE_EFFECTS_RETENTION_DAYS.*at least 7 days/);
  assert.throws(() => loadConfig({ SIDE_EFFECTS_RETENTION_DAYS: 'month' }), /SIDE_EFFECTS_RETENTION_DAYS/);
});
