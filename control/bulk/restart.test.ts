import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startServices, type RunningServices } from '../../cli/services.ts';
import { loadConfig } from '../../cli/config.ts';
import { createLogger } from '../../core/logger.ts';
import { waitUntil } from '../../testing/receiver-harness.ts';
import { insertCompany } from '../../testing/companies.ts';
import { createTestDatabase, freePort, type TestDatabase } from '../../testing/postgres.ts';
import { spawnControlroom } from '../../testing/processes.ts';

const API_SECRET = 'controlroom-api-secret-0123456789';
const LANES = 20_000;
const env = (db: TestDatabase, port: number) => ({
  PORT: String(port),
  HOST: '127.0.0.1',
  DATABASE_URL: db.url,
  CONTROLROOM_AUTH: 'shared-secret',
  CONTROLROOM_API_SECRET: API_SECRET,
  CONTROLROOM_INSTANCE_ID: 'restart-test',
  BULK_RATE_BATCH: '100',
  JOB_CONCURRENCY: '1',
  LOG_LEVEL: 'silent',
});
const headers = {
  'x-controlroom-secret': API_SECRET,
  'x-grafana-context': JSON.stringify({ Login: 'ops', OrgRole: 'Editor' }),
};

let db: TestDatabase;
let restarted: RunningServices | undefined;
before(async () => {
  db = await createTestDatabase();
});
after(async () => {
  await restarted?.stop();
  await db.drop();
});

test(
  'kill -9 in the middle of a job: the next instance resumes it, no lane lost or rated twice',
  { timeout: 120_000 },
  async () => {
    const companyId = await insertCompany(db.pool, 'Enterprise Freight', 'enterprise');

    const port = await freePort();
    const child = spawnControlroom(['serve', '--no-migrate'], env(db, port));
    try {
      await waitUntil(
        async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null))?.ok,
        30_000,
        'child service'
      );
      const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
      const cities = ['"Chicago, IL"', '"Atlanta, GA"', '"Dallas, TX"', '"Denver, CO"', '"Seattle, WA"', '"Miami, FL"'];
      const body = [
        'origin,destination,equipment,pickup_date',
        ...Array.from({ length: LANES }, (_, i) => `${cities[i % 6]},${cities[(i + 1) % 6]},van,${tomorrow}`),
      ].join('\n');
      const res = await fetch(`http://127.0.0.1:${port}/api/bulk-rating/jobs?company_id=${companyId}`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'text/csv' },
        body,
      });
      assert.equal(res.status, 202);
      const jobId = ((await res.json()) as { job: { id: string } }).job.id;

      const atKill = await waitUntil(
        async () => {
          const r = await db.pool.query(`SELECT lanes_rated FROM controlroom.bulk_jobs WHERE id = $1`, [jobId]);
          return r.rows[0].lanes_rated >= 1_000 ? r.rows[0].lanes_rated : null;
        },
        60_000,
        'first batches'
      );
      await child.kill();
      assert.ok(atKill < LANES, `the job finished before it could be killed (${atKill})`);
      const locked = await db.pool.query(
        `SELECT count(*)::int AS n FROM graphile_worker._private_jobs WHERE locked_by IS NOT NULL`
      );
      assert.equal(locked.rows[0].n, 1, 'the killed worker still holds the job');

      restarted = await startServices(db.url, loadConfig({ ...env(db, 0), PORT: '0' }), createLogger('silent'));
      const job = await waitUntil(
        async () => {
          const r = await db.pool.query(`SELECT * FROM controlroom.bulk_jobs WHERE id = $1`, [jobId]);
          return r.rows[0].status === 'succeeded' ? r.rows[0] : null;
        },
        60_000,
        'job to finish after restart'
      );
      const lanes = await db.pool.query(
        `SELECT count(*) FILTER (WHERE status = 'rated')::int AS rated, count(*) FILTER (WHERE status = 'pending')::int AS pending,
              count(DISTINCT seq)::int AS distinct_lanes FROM controlroom.bulk_lanes WHERE job_id = $1`,
        [jobId]
      );
      assert.deepEqual(lanes.rows[0], { rated: LANES, pending: 0, distinct_lanes: LANES });
      // The counter moves in the same transaction as each batch: rating a lane twice would push it past the lanes.
      assert.deepEqual([job.lanes_rated, job.lanes_failed, job.lanes_total], [LANES, 0, LANES]);
      const task = await db.pool.query(`SELECT status FROM agent_tasks WHERE id = $1`, [job.agent_task_id]);
      assert.equal(task.rows[0].status, 'success');
    } finally {
      await child.kill();
    }
  }
);
