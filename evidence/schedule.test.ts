import assert from 'node:assert/strict';
import { EvidenceList } from '@controlroom/contract';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { Registry } from 'prom-client';
import { buildApp } from '../cli/app.ts';
import { createAccessControl } from '../core/access.ts';
import { projectRoot } from '../core/config.ts';
import { loadConfig } from '../cli/config.ts';
import { enqueueJob, startJobQueue, type JobQueue } from '../core/jobs.ts';
import { createLogger } from '../core/logger.ts';
import { createExporterMetrics } from '../exporter/metrics.ts';
import { testSettings } from '../testing/exporter.ts';
import { parseMetrics } from '../testing/prom-text.ts';
import { createTestDatabase, type TestDatabase } from '../testing/postgres.ts';
import { startPrometheusStack, type PrometheusStack } from '../testing/prometheus-stack.ts';
import { EvidenceCollector } from '../exporter/collectors/evidence.ts';
import { evidenceApiRouter } from './routes.ts';
import {
  bundleDirName,
  EVIDENCE_WEEKLY_TASK,
  evidenceTasks,
  nextSlot,
  parseSchedule,
  previousSlot,
  pruneEvidence,
  runScheduledEvidence,
  scheduledEvidenceSettings,
  scheduleEvidence,
  type ScheduledEvidenceSettings,
} from './schedule.ts';
import { verifyEvidence } from './verify.ts';

const KEY = 'weekly-evidence-signing-key-0123456789abcdef';
const SECRET = 'controlroom-api-secret-0123456789';
const silent = createLogger('silent');
const monday = parseSchedule('Mon 02:00')!;

test('the schedule: a weekday and a UTC time; the previous and next slot around any instant', () => {
  assert.deepEqual(monday, { weekday: 1, hour: 2, minute: 0, text: 'Mon 02:00' });
  assert.equal(parseSchedule('off'), null);
  assert.equal(parseSchedule('friday 23:30')!.weekday, 5);
  assert.throws(
    () => parseSchedule('Mon 2am'),
    /EVIDENCE_SCHEDULE "Mon 2am": a weekday and a UTC time such as "Mon 02:00", or "off"/
  );
  // 2026-12-01 is a Tuesday.
  assert.equal(previousSlot(monday, new Date('2026-12-01T10:00:00Z')).toISOString(), '2026-11-30T02:00:00.000Z');
  assert.equal(previousSlot(monday, new Date('2026-11-30T02:00:00Z')).toISOString(), '2026-11-30T02:00:00.000Z');
  assert.equal(previousSlot(monday, new Date('2026-11-30T01:59:59Z')).toISOString(), '2026-11-23T02:00:00.000Z');
  assert.equal(nextSlot(monday, new Date('2026-11-30T02:00:00Z')).toISOString(), '2026-12-07T02:00:00.000Z');
  assert.equal(nextSlot(monday, new Date('2026-12-06T23:00:00Z')).toISOString(), '2026-12-07T02:00:00.000Z');
  assert.equal(bundleDirName(new Date('2026-11-30T02:00:00Z')), 'evidence-2026-11-30T020000Z');
  assert.throws(() => loadConfig({ EVIDENCE_SCHEDULE: 'weekly' }), /EVIDENCE_SCHEDULE: a weekday and a UTC time/);
  assert.equal(scheduledEvidenceSettings(loadConfig({}), 'x'), null, 'no EVIDENCE_DIR: not scheduled');
  assert.equal(scheduledEvidenceSettings(loadConfig({ EVIDENCE_DIR: '/tmp/x', EVIDENCE_SCHEDULE: 'off' }), 'x'), null);
  assert.deepEqual(scheduledEvidenceSettings(loadConfig({ EVIDENCE_DIR: '/tmp/x' }), 'x')!.dashboards.length, 7);
});

describe('weekly evidence bundles', () => {
  let db: TestDatabase;
  let prom: PrometheusStack;
  let dir: string;
  let settings: ScheduledEvidenceSettings;
  let queue: JobQueue | null = null;
  const registry = new Registry();
  const metrics = createExporterMetrics(registry);
  let collector: EvidenceCollector;
  const scrape = async (now?: Date) => {
    await collector.refresh(now);
    return parseMetrics(await registry.metrics());
  };

  before(async () => {
    [db, prom] = await Promise.all([createTestDatabase(), startPrometheusStack({ scrapeTargets: [], ruleFiles: [] })]);
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'controlroom-weekly-evidence-'));
    settings = {
      dir,
      schedule: monday,
      retentionDays: 400,
      dashboards: ['controlroom-regions'],
      dashboardsDir: path.join(projectRoot, 'dashboards'),
      prometheusUrl: prom.prometheusUrl,
      signingKey: KEY,
    };
    collector = new EvidenceCollector({
      pool: db.pool,
      metrics,
      settings: { ...testSettings, EVIDENCE_DIR: dir, EVIDENCE_SCHEDULE: 'Mon 02:00' },
    });
  });
  after(async () => {
    await queue?.stop();
    await Promise.all([db.drop(), prom.stop(), fs.rm(dir, { recursive: true, force: true })]);
  });

  test("the queue job writes last week's bundle, verifies it, records it, and queues the next week", async () => {
    const slot = previousSlot(monday, new Date());
    // As at service start: the schedule is recorded and the next slot queued; the test then asks for last week's now.
    assert.equal((await scheduleEvidence(db.pool, settings)).toISOString(), nextSlot(monday, new Date()).toISOString());
    queue = await startJobQueue({
      pool: db.pool,
      taskList: evidenceTasks(db.pool, settings, silent),
      concurrency: 1,
      instanceId: 'evidence-test',
      logger: silent,
    });
    await enqueueJob(db.pool, EVIDENCE_WEEKLY_TASK, { slot: slot.toISOString() }, { jobKey: EVIDENCE_WEEKLY_TASK });
    const deadline = Date.now() + 60_000;
    let row: Record<string, any> | undefined;
    while (Date.now() < deadline) {
      row = (
        await db.pool.query(`SELECT * FROM controlroom.evidence_bundles WHERE slot = $1 AND status <> 'running'`, [
          slot,
        ])
      ).rows[0];
      if (row) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(row, 'the bundle row');
    assert.equal(row.status, 'verified', row.error);
    assert.equal(row.dir, path.join(dir, bundleDirName(slot)));
    assert.deepEqual(
      [row.period_from.toISOString(), row.period_to.toISOString()],
      [new Date(slot.getTime() - 7 * 86_400_000).toISOString(), slot.toISOString()]
    );
    assert.ok(row.files >= 10);
    assert.equal((await verifyEvidence(row.dir, KEY)).ok, true, 'the bundle on disk verifies');
    const next = (
      await db.pool.query(
        `SELECT j.run_at, j.payload FROM graphile_worker._private_jobs j JOIN graphile_worker._private_tasks t ON t.id = j.task_id WHERE t.identifier = $1`,
        [EVIDENCE_WEEKLY_TASK]
      )
    ).rows;
    assert.deepEqual(
      next.map((j) => j.payload.slot),
      [nextSlot(monday, new Date()).toISOString()]
    );
    assert.equal(next[0].run_at.toISOString(), nextSlot(monday, new Date()).toISOString());
    const audited = (await db.pool.query(`SELECT action, payload FROM audit_log WHERE action LIKE 'evidence.%'`)).rows;
    assert.deepEqual(
      audited.map((a) => a.action),
      ['evidence.bundle_verified']
    );

    // Run again for the same slot (a repeated job): nothing is written twice.
    const again = await runScheduledEvidence(db.pool, settings, slot, silent);
    assert.deepEqual([again.status, again.attempts], ['verified', 1]);

    const m = await scrape();
    assert.equal(m.get('controlroom_evidence_overdue_seconds'), 0);
    assert.equal(m.get('controlroom_evidence_last_run_failed'), 0);
    assert.equal(m.get('controlroom_evidence_bundles{status="verified"}'), 1);
    assert.ok(m.get('controlroom_evidence_last_success_timestamp_seconds')! > Date.now() / 1000 - 120);
  });

  test('GET /api/evidence lists the bundles for a Viewer', async () => {
    const access = createAccessControl(
      loadConfig({ CONTROLROOM_AUTH: 'shared-secret', CONTROLROOM_API_SECRET: SECRET })
    );
    const app = buildApp({
      pool: db.pool,
      registry: new Registry(),
      logger: silent,
      access,
      api: [evidenceApiRouter(db.pool, { dir, schedule: 'Mon 02:00', retentionDays: 400 })],
    });
    const server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    try {
      const address = server.address();
      const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
      const headers = (role: string) => ({
        'x-controlroom-secret': SECRET,
        'x-grafana-context': JSON.stringify({
          UserID: 1,
          OrgID: 1,
          Login: 'auditor',
          OrgRole: role,
          IsGrafanaAdmin: false,
        }),
      });
      const res = await fetch(`${base}/api/evidence`, { headers: headers('Viewer') });
      assert.equal(res.status, 200);
      const body = EvidenceList.parse(await res.json());
      assert.deepEqual(
        [body.schedule.enabled, body.schedule.schedule, body.schedule.retentionDays],
        [true, 'Mon 02:00', 400]
      );
      assert.match(body.schedule.s3Upload, /not available/);
      assert.deepEqual(
        body.bundles.map((b) => b.status),
        ['verified']
      );
      assert.equal((await fetch(`${base}/api/evidence`)).status, 401);
      const bad = await fetch(`${base}/api/evidence?limit=0`, { headers: headers('Viewer') });
      assert.deepEqual(
        [bad.status, ((await bad.json()) as { error: string }).error],
        [400, 'invalid request: limit: a whole number from 1 to 1000']
      );
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  test('a failed week is recorded, audited and raises the failed metric; the next week is due', async () => {
    const slot = new Date(previousSlot(monday, new Date()).getTime() - 7 * 86_400_000);
    const broken = { ...settings, prometheusUrl: 'http://127.0.0.1:9' };
    await assert.rejects(
      runScheduledEvidence(db.pool, broken, slot, silent),
      /Prometheus at http:\/\/127\.0\.0\.1:9 is unreachable/
    );
    const row = (
      await db.pool.query(`SELECT status, error, attempts FROM controlroom.evidence_bundles WHERE slot = $1`, [slot])
    ).rows[0];
    assert.deepEqual([row.status, row.attempts], ['failed', 1]);
    const m = await scrape();
    assert.equal(m.get('controlroom_evidence_last_run_failed'), 1);
    // A retry that works replaces the half-written directory and verifies.
    const retried = await runScheduledEvidence(db.pool, settings, slot, silent);
    assert.deepEqual([retried.status, retried.attempts], ['verified', 2]);
    const failed = (await db.pool.query(`SELECT payload FROM audit_log WHERE action = 'evidence.bundle_failed'`)).rows;
    assert.equal(failed.length, 1);
  });

  test('a missed week: overdue grows from the slot; at start the missed slot is caught up', async () => {
    // The schedule was switched on three weeks ago; pretend it is the Monday after next, with no bundle for it.
    await scheduleEvidence(db.pool, settings);
    await db.pool.query(`UPDATE controlroom.evidence_schedule SET enabled_since = now() - interval '21 days'`);
    const later = new Date(nextSlot(monday, new Date()).getTime() + 3 * 3_600_000);
    const m = await scrape(later);
    assert.equal(m.get('controlroom_evidence_overdue_seconds'), 3 * 3600);
    const queued = await scheduleEvidence(db.pool, settings, later);
    assert.equal(queued.toISOString(), nextSlot(monday, new Date()).toISOString(), 'the missed slot is queued at once');
    // A schedule switched on after the slot does not count it as missed.
    await db.pool.query(`UPDATE controlroom.evidence_schedule SET enabled_since = $1`, [
      new Date(later.getTime() - 60_000),
    ]);
    assert.equal((await scrape(later)).get('controlroom_evidence_overdue_seconds'), 0);
    assert.equal(
      (await scheduleEvidence(db.pool, settings, later)).toISOString(),
      new Date(nextSlot(monday, new Date()).getTime() + 7 * 86_400_000).toISOString()
    );
  });

  test('bundles past the retention are deleted, and the pruning is audited', async () => {
    const old = new Date('2024-06-03T02:00:00Z');
    const oldDir = path.join(dir, bundleDirName(old));
    await fs.mkdir(oldDir, { recursive: true });
    await fs.writeFile(path.join(oldDir, 'manifest.json'), '{}');
    await db.pool.query(
      `INSERT INTO controlroom.evidence_bundles (slot, period_from, period_to, dir, status, files, manifest_sha256, finished_at)
       VALUES ($1, $2, $1, $3, 'verified', 1, 'x', now())`,
      [old, new Date(old.getTime() - 7 * 86_400_000), oldDir]
    );
    const pruned = await pruneEvidence(db.pool, 400, silent);
    assert.deepEqual(
      pruned.map((b) => [b.slot.toISOString(), b.status]),
      [[old.toISOString(), 'pruned']]
    );
    await assert.rejects(fs.stat(oldDir), /ENOENT/);
    const recent = (
      await db.pool.query(`SELECT count(*)::int AS n FROM controlroom.evidence_bundles WHERE status = 'verified'`)
    ).rows[0].n;
    assert.equal(recent, 2, 'recent bundles stay');
    const audited = (
      await db.pool.query(`SELECT actor, payload FROM audit_log WHERE action = 'evidence.bundle_pruned'`)
    ).rows;
    assert.deepEqual(
      audited.map((a) => [a.actor, a.payload.dir, a.payload.retention_days]),
      [['controlroom:evidence', oldDir, 400]]
    );
    assert.deepEqual(await pruneEvidence(db.pool, 400, silent), [], 'pruning twice does nothing');
  });
});
