import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Registry } from 'prom-client';
import { loadConfig } from '../../cli/config.ts';
import { createExporterMetrics } from '../metrics.ts';
import { parseMetrics } from '../../testing/prom-text.ts';
import { createTestDatabase, type TestDatabase } from '../../testing/postgres.ts';
import { RegionsCollector } from './regions.ts';

// A scope of its own: no failover engine drives it, so the cutover is exactly what the test writes.
const SCOPE = 'collector-test';
let db: TestDatabase;
before(async () => {
  db = await createTestDatabase();
});
after(async () => db.drop());

test('tms_region_cutover_in_progress is 1 exactly while the control row holds a cutover (the failover-window SLO counts only then)', async () => {
  const registry = new Registry();
  const collector = new RegionsCollector(
    { pool: db.pool, metrics: createExporterMetrics(registry), settings: loadConfig({}) },
    SCOPE
  );
  const read = async () => {
    await collector.refresh();
    return parseMetrics(await registry.metrics());
  };
  assert.equal((await read()).has('tms_region_cutover_in_progress'), false, 'no control row yet: absent, not 0');
  await db.pool.query(`INSERT INTO controlroom.failover_control (scope) VALUES ($1)`, [SCOPE]);
  assert.equal((await read()).get('tms_region_cutover_in_progress'), 0);
  await db.pool.query(`UPDATE controlroom.failover_control SET cutover = $2::jsonb WHERE scope = $1`, [
    SCOPE,
    JSON.stringify({ event_id: '1', phase: 'shifting' }),
  ]);
  const during = await read();
  assert.deepEqual([during.get('tms_region_cutover_in_progress'), during.get('tms_region_write_frozen')], [1, 0]);
  await db.pool.query(`UPDATE controlroom.failover_control SET cutover = NULL WHERE scope = $1`, [SCOPE]);
  assert.equal((await read()).get('tms_region_cutover_in_progress'), 0);
});
