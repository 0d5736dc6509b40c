import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { projectRoot } from '../core/config.ts';
import { startLiveStack, type LiveStack } from '../testing/live-stack.ts';
import type { TestDatabase } from '../testing/postgres.ts';
import type { PrometheusStack } from '../testing/prometheus-stack.ts';
import { runEvidenceExport, runEvidenceVerify } from './cli.ts';
import { chooseStep, exportEvidence, substituteVariables, type ExportResult } from './export.ts';
import { sha256, sign } from './manifest.ts';
import { verifyEvidence } from './verify.ts';

const KEY = 'test-evidence-signing-key-0123456789abcdef';
const DASHBOARDS = ['controlroom-self', 'controlroom-regions'];
const dashboardsDir = path.join(projectRoot, 'dashboards');

interface Frame {
  refId: string;
  fields: Array<{ name: string; type: string; values: unknown[]; labels?: Record<string, string> }>;
}
interface SnapshotPanel {
  id: number;
  type: string;
  datasource: unknown;
  targets: Array<{ refId: string; expr?: string; datasource: unknown }>;
  snapshotData?: Frame[];
  panels?: SnapshotPanel[];
}

const readJsonl = async (file: string) =>
  (await fs.readFile(file, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

async function copyBundle(src: string, name: string): Promise<string> {
  const dir = path.join(path.dirname(src), name);
  await fs.cp(src, dir, { recursive: true });
  return dir;
}

test('substituteVariables and chooseStep', () => {
  assert.equal(chooseStep(new Date(0), new Date(15_000)), 1);
  assert.equal(chooseStep(new Date(0), new Date(30 * 86_400_000)), 2592);
  assert.equal(
    substituteVariables(
      'rate(x{slo=~"$slo"}[$__rate_interval]) / ${slo:regex} [$__range] $__interval [[slo]]',
      { slo: 'availability' },
      15,
      3600
    ),
    'rate(x{slo=~"availability"}[60s]) / availability [3600s] 15s availability'
  );
  assert.equal(substituteVariables('{a=~"$v"}', { v: ['x.y', 'z'] }, 1, 10), '{a=~"(x\\.y|z)"}');
  assert.equal(substituteVariables('rate(x[$__rate_interval])', {}, 60, 86_400), 'rate(x[240s])');
});

describe('evidence export and verify over live demo data', () => {
  let live: LiveStack;
  let db: TestDatabase;
  let stack: PrometheusStack;
  let tmp: string;
  let bundle: string;
  let result: ExportResult;
  let from: Date;
  let to: Date;
  const inside: Record<string, string[]> = {};
  const outside: Record<string, string[]> = {};

  async function insertRows(at: Date, marker: string, into: Record<string, string[]>) {
    const add = (table: string, id: string) => (into[table] ??= []).push(id);
    const a = await db.pool.query<{ id: string }>(
      `INSERT INTO audit_log (actor, action, target, payload, ts) VALUES ('test:auditor', 'release_freeze.manual_freeze', $1, '{}', $2) RETURNING id`,
      [marker, at]
    );
    add('audit_log', a.rows[0]!.id);
    const h = await db.pool.query<{ id: string }>(
      `INSERT INTO controlroom.freeze_history (frozen, cause, reason, at) VALUES (true, 'manual', $1, $2) RETURNING id`,
      [marker, at]
    );
    add('freeze_history', h.rows[0]!.id);
    const f = await db.pool.query<{ id: string }>(
      `INSERT INTO controlroom.freeze_actions (kind, reason, actor, created_at) VALUES ('freeze', $1, 'test:auditor', $2) RETURNING id`,
      [marker, at]
    );
    add('freeze_actions', f.rows[0]!.id);
    const e = await db.pool.query<{ id: string }>(
      `INSERT INTO controlroom.failover_events (scope, kind, from_region, to_region, actor, reason, epoch, started_at, finished_at, outcome)
       VALUES ('drill', 'drill', 'eu', 'us', 'test:auditor', $1, 1, $2, $2::timestamptz + interval '5 seconds', 'completed') RETURNING id`,
      [marker, at]
    );
    add('failover_events', e.rows[0]!.id);
    const d = await db.pool.query<{ id: string }>(
      `INSERT INTO controlroom.failover_drills (scope, event_id, actor, started_at, finished_at, outcome, rto_seconds, rpo_seconds, writes_acknowledged, writes_lost, details)
       VALUES ('drill', $1, 'test:auditor', $2, $2::timestamptz + interval '5 seconds', 'passed', 4.2, 0, 100, 0, $3) RETURNING id`,
      [e.rows[0]!.id, at, JSON.stringify({ marker })]
    );
    add('failover_drills', d.rows[0]!.id);
  }

  /** An incident (with the alert change that opened it) paged at `paged`, due `dueHours` later. */
  async function insertIncident(
    group: string,
    paged: Date,
    dueHours: number,
    acknowledged: Date | null,
    resolved: Date | null
  ): Promise<string> {
    const n = await db.pool.query<{ id: string }>(
      `INSERT INTO controlroom.alert_notifications (source, group_key, status, payload) VALUES ('alertmanager', $1, 'firing', '{}') RETURNING id`,
      [group]
    );
    const e = await db.pool.query<{ id: string }>(
      `INSERT INTO controlroom.alert_events (notification_id, source, group_key, fingerprint, status, starts_at, alertname, severity, labels, received_at)
       VALUES ($1, 'alertmanager', $2, $2, 'firing', $3, 'EvidenceTest', 'P1', '{}', $3) RETURNING id`,
      [n.rows[0]!.id, group, paged]
    );
    const due = new Date(paged.getTime() + dueHours * 3_600_000);
    const i = await db.pool.query<{ id: string }>(
      `INSERT INTO controlroom.incidents (source, group_key, severity, alertnames, opened_by_event, paged_at, ack_due_at, resolve_due_at, sla_time_zone,
                                         acknowledged_at, acknowledged_by, acknowledged_via, resolved_at, resolved_via)
       VALUES ('alertmanager', $1, 'P1', '{EvidenceTest}', $2, $3, $4, $4, 'UTC', $5, CASE WHEN $5::timestamptz IS NULL THEN NULL ELSE '@ana' END,
               CASE WHEN $5::timestamptz IS NULL THEN NULL ELSE 'slack_button' END, $6, CASE WHEN $6::timestamptz IS NULL THEN NULL ELSE 'alert_resolved' END)
       RETURNING id`,
      [group, e.rows[0]!.id, paged, due, acknowledged, resolved]
    );
    return i.rows[0]!.id;
  }
  const incidentIds: Record<string, string> = {};

  before(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'controlroom-evidence-'));
    live = await startLiveStack({
      tenants: 8,
      backfillDays: 1,
      requestsPerSecond: 30,
      slowRefreshMs: 2000,
      clock: () => new Date(),
    });
    ({ db, stack } = live);
    from = new Date(Math.floor(Date.now() / 1000) * 1000);
    await insertRows(from, 'at-from', inside); // the start is inclusive
    await insertRows(new Date(from.getTime() + 2_000), 'inside', inside);
    await insertRows(new Date(from.getTime() - 3_600_000), 'before', outside);
    await new Promise((r) => setTimeout(r, 15_000));
    to = new Date(Math.floor(Date.now() / 1000) * 1000);
    await insertRows(to, 'at-to', outside); // the end is exclusive
    await insertRows(new Date(to.getTime() + 3_600_000), 'after', outside);

    const hoursBefore = (h: number) => new Date(from.getTime() - h * 3_600_000);
    // Paged 6 h before the period, acknowledged after 5 h, still open: both stages breached by the period's end.
    incidentIds.late = await insertIncident('ev:late', hoursBefore(6), 4, hoursBefore(1), null);
    // Paged inside the period, acknowledged and resolved after it ends: shown as open at the period's end, not breached.
    incidentIds.inside = await insertIncident(
      'ev:inside',
      new Date(from.getTime() + 1_000),
      4,
      new Date(to.getTime() + 60_000),
      new Date(to.getTime() + 120_000)
    );
    // Resolved before the period, and paged after it: not in the bundle.
    incidentIds.before = await insertIncident('ev:before', hoursBefore(3), 4, hoursBefore(2.5), hoursBefore(2));
    incidentIds.after = await insertIncident('ev:after', new Date(to.getTime() + 1_000), 4, null, null);

    bundle = path.join(tmp, 'bundle');
    result = await exportEvidence({
      pool: db.pool,
      prometheusUrl: stack.prometheusUrl,
      dashboardsDir,
      dashboards: DASHBOARDS,
      from,
      to,
      outDir: bundle,
      signingKey: KEY,
    });
  });

  after(async () => {
    await live?.stop();
    if (tmp) await fs.rm(tmp, { recursive: true, force: true });
  });

  test('snapshots are POST /api/snapshots bodies with the query results embedded', async () => {
    assert.equal(result.stepSeconds, 1);
    for (const uid of DASHBOARDS) {
      const body = JSON.parse(await fs.readFile(path.join(bundle, 'snapshots', `${uid}.json`), 'utf8')) as {
        name: string;
        expires: number;
        dashboard: { uid: string; time: { from: string; to: string }; panels: SnapshotPanel[] };
      };
      assert.equal(body.expires, 0);
      assert.match(body.name, /audit evidence/);
      assert.equal(body.dashboard.uid, uid);
      assert.deepEqual(body.dashboard.time, { from: from.toISOString(), to: to.toISOString() });
      const panels = body.dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]).filter((p) => p.type !== 'row');
      assert.ok(panels.length > 0);
      let withData = 0;
      for (const panel of panels) {
        assert.deepEqual(panel.datasource, { type: 'datasource', uid: 'grafana' }, `${uid} #${panel.id} datasource`);
        assert.ok(Array.isArray(panel.snapshotData), `${uid} #${panel.id} has snapshotData`);
        for (const t of panel.targets) {
          assert.equal(t.expr, undefined, 'queries are not kept in the snapshot');
          assert.deepEqual(t.datasource, { type: 'datasource', uid: 'grafana' });
        }
        for (const frame of panel.snapshotData!) {
          const [time, value] = frame.fields;
          assert.equal(time!.name, 'Time');
          assert.equal(time!.type, 'time');
          assert.equal(value!.type, 'number');
          assert.equal(time!.values.length, value!.values.length);
          assert.ok(
            panel.targets.some((t) => t.refId === frame.refId),
            'frame refId names a target'
          );
          for (const t of time!.values)
            assert.ok(
              (t as number) >= from.getTime() - 1 && (t as number) <= to.getTime() + 1,
              'points within the period'
            );
        }
        if (panel.snapshotData!.some((f) => f.fields[1]!.values.some((v) => typeof v === 'number'))) withData++;
      }
      // ~15 s of scraping: most panels already have points (slow recording rules may still be empty).
      assert.ok(
        withData >= Math.ceil(panels.length / 2),
        `${uid}: ${withData}/${panels.length} panels with data; empty: ${result.emptyTargets.join(', ')}`
      );
    }
    const queries = JSON.parse(await fs.readFile(path.join(bundle, 'snapshots', 'queries.json'), 'utf8')) as {
      dashboards: Record<string, Array<{ expr: string; executed: string }>>;
    };
    for (const uid of DASHBOARDS) {
      assert.ok(queries.dashboards[uid]!.length > 0);
      for (const q of queries.dashboards[uid]!) assert.doesNotMatch(q.executed, /\$/, 'every variable substituted');
    }
  });

  test('records hold the rows of the period and none outside it', async () => {
    const files: Record<string, string> = {
      audit_log: 'records/audit_log.jsonl',
      freeze_history: 'records/freeze_history.jsonl',
      freeze_actions: 'records/freeze_actions.jsonl',
      failover_events: 'records/failover_events.jsonl',
      failover_drills: 'records/failover_drills.jsonl',
    };
    const column: Record<string, string> = {
      audit_log: 'ts',
      freeze_history: 'at',
      freeze_actions: 'created_at',
      failover_events: 'started_at',
      failover_drills: 'started_at',
    };
    for (const [table, file] of Object.entries(files)) {
      const rows = await readJsonl(path.join(bundle, file));
      const ids = new Set(rows.map((r) => String(r.id)));
      for (const id of inside[table]!) assert.ok(ids.has(id), `${table} row ${id} inside the period is exported`);
      for (const id of outside[table]!)
        assert.ok(!ids.has(id), `${table} row ${id} outside the period is not exported`);
      for (const r of rows) {
        const at = new Date(String(r[column[table]!])).getTime();
        assert.ok(
          at >= from.getTime() && at < to.getTime(),
          `${table} row ${String(r.id)} at ${String(r[column[table]!])}`
        );
      }
    }
    const drills = await readJsonl(path.join(bundle, files.failover_drills!));
    assert.equal(drills.find((d) => String(d.id) === inside.failover_drills![0])?.rto_seconds, 4.2);
  });

  test("the period's incidents, as they stood at the period's end", async () => {
    const rows = await readJsonl(path.join(bundle, 'records/incidents.jsonl'));
    assert.deepEqual(
      rows.map((r) => r.id),
      [incidentIds.late, incidentIds.inside]
    );
    const [late, inside] = rows as [Record<string, unknown>, Record<string, unknown>];
    assert.deepEqual(
      [
        late.group_key,
        late.severity,
        late.acknowledged_by,
        late.acknowledged_via,
        late.resolved_at,
        late.state_at_period_end,
        late.breaches,
      ],
      ['ev:late', 'P1', '@ana', 'slack_button', null, 'acknowledged', ['acknowledge', 'resolve']]
    );
    assert.equal(Date.parse(String(late.acknowledge_by)) - Date.parse(String(late.paged_at)), 4 * 3_600_000);
    assert.deepEqual(
      [inside.acknowledged_at, inside.resolved_at, inside.state_at_period_end, inside.breaches],
      [null, null, 'open', []]
    );
    assert.equal(result.records['controlroom.incidents'], 2);
  });

  test('the evidence matrix maps each criterion to files of the bundle', async () => {
    const matrix = JSON.parse(await fs.readFile(path.join(bundle, 'evidence-matrix.json'), 'utf8')) as {
      criteria: Array<{
        criterion: string;
        files: Array<{ path: string; shows: string }>;
        gaps: string[];
        audit_actions?: { count: number };
      }>;
    };
    assert.deepEqual(
      matrix.criteria.map((c) => c.criterion),
      ['CC1', 'CC2', 'CC3', 'CC4', 'CC5', 'CC7.2', 'CC7.3', 'CC7.4', 'CC8.1', 'A1.2', 'A1.3']
    );
    const manifest = JSON.parse(await fs.readFile(path.join(bundle, 'manifest.json'), 'utf8')) as {
      files: Array<{ path: string }>;
    };
    const inBundle = new Set(manifest.files.map((f) => f.path));
    for (const c of matrix.criteria) {
      assert.ok(c.files.length > 0);
      for (const f of c.files) {
        assert.ok(inBundle.has(f.path), `${c.criterion} names ${f.path}, which is in the bundle`);
        assert.ok(f.shows.length > 10);
      }
    }
    const byId = Object.fromEntries(matrix.criteria.map((c) => [c.criterion, c]));
    assert.ok(byId['CC7.2']!.files.some((f) => f.path === 'snapshots/controlroom-self.json'));
    assert.ok(byId['A1.2']!.files.some((f) => f.path === 'snapshots/controlroom-regions.json'));
    assert.ok(byId['A1.3']!.files.some((f) => f.path === 'records/failover_drills.jsonl'));
    assert.equal(byId['CC8.1']!.audit_actions!.count >= 2, true, 'release_freeze.* entries counted');
    assert.deepEqual(byId['A1.3']!.gaps, []);
    const md = await fs.readFile(path.join(bundle, 'evidence-matrix.md'), 'utf8');
    for (const c of ['CC1', 'CC2', 'CC3', 'CC4', 'CC5', 'CC7.2', 'CC7.3', 'CC7.4', 'CC8.1', 'A1.2', 'A1.3'])
      assert.match(md, new RegExp(`## ${c.replace('.', '\\.')}`));
    // The incidents of the period: CC7.3 (acknowledged in time?) and CC7.4 (resolved in time?), with the late one as a finding.
    const incidentsOf = (id: string) =>
      byId[id] as unknown as { records: Record<string, number>; findings: string[]; files: Array<{ path: string }> };
    assert.ok(incidentsOf('CC7.3').files.some((f) => f.path === 'records/incidents.jsonl'));
    assert.deepEqual(incidentsOf('CC7.3').records, {
      incidents: 2,
      incidents_P1: 2,
      incidents_P2: 0,
      incidents_P3: 0,
      acknowledged: 1,
      acknowledge_breaches: 1,
    });
    assert.deepEqual(incidentsOf('CC7.4').records, {
      incidents: 2,
      resolved: 0,
      open_at_period_end: 2,
      resolve_breaches: 1,
    });
    assert.equal(incidentsOf('CC7.3').findings.length, 1);
    assert.match(
      incidentsOf('CC7.3').findings[0]!,
      new RegExp(`^incident ${incidentIds.late} \\(P1, EvidenceTest, paged .*\\) was acknowledged at .*, due `)
    );
    assert.match(incidentsOf('CC7.4').findings[0]!, /was not resolved by the period's end/);
    assert.match(md, /## CC7\.4: [^\n]+\n[\s\S]*?\*\*Finding:\*\* incident \d+ \(P1/);
    // The organisation and risk controls say plainly what Control Room does not cover.
    const organisational = matrix.criteria.filter((c) => /^CC[1-5]$/.test(c.criterion)) as Array<{
      criterion: string;
      not_covered?: string[];
    }>;
    assert.ok(
      organisational.every((c) => (c.not_covered?.length ?? 0) >= 2),
      'each of CC1-CC5 lists what it does not cover'
    );
    assert.match(md, /## CC1: [^\n]+\n[\s\S]*?\*\*Not covered by Control Room:\*\* integrity and ethical values/);
  });

  test('the manifest lists every file with its size and sha256, signed with the key', async () => {
    const bytes = await fs.readFile(path.join(bundle, 'manifest.json'));
    const manifest = JSON.parse(bytes.toString('utf8')) as {
      files: Array<{ path: string; size: number; sha256: string }>;
      period: { from: string; to: string };
      dashboards: string[];
      generated_at: string;
      tool: { name: string; version: string };
    };
    assert.deepEqual(manifest.period, { from: from.toISOString(), to: to.toISOString(), end: 'exclusive' });
    assert.deepEqual(manifest.dashboards, DASHBOARDS);
    assert.equal(manifest.tool.name, 'controlroom');
    assert.match(manifest.tool.version, /^\d+\.\d+\.\d+/);
    assert.ok(!Number.isNaN(Date.parse(manifest.generated_at)));
    const expected = [
      'evidence-matrix.json',
      'evidence-matrix.md',
      'records/audit_log.jsonl',
      'records/failover_drills.jsonl',
      'records/failover_events.jsonl',
      'records/freeze_actions.jsonl',
      'records/freeze_history.jsonl',
      'records/incidents.jsonl',
      'snapshots/controlroom-regions.json',
      'snapshots/controlroom-self.json',
      'snapshots/queries.json',
    ];
    assert.deepEqual(
      manifest.files.map((f) => f.path),
      expected
    );
    for (const f of manifest.files) {
      const content = await fs.readFile(path.join(bundle, f.path));
      assert.equal(f.size, content.length, f.path);
      assert.equal(f.sha256, sha256(content), f.path);
    }
    assert.equal((await fs.readFile(path.join(bundle, 'manifest.sig'), 'utf8')).trim(), sign(bytes, KEY));
    assert.deepEqual(await verifyEvidence(bundle, KEY), {
      ok: true,
      changed: [],
      added: [],
      removed: [],
      badSignature: false,
      errors: [],
    });
  });

  test('verify detects a changed byte, an added file, a removed file, a tampered manifest and a wrong key', async () => {
    const changed = await copyBundle(bundle, 'changed');
    const record = path.join(changed, 'records', 'audit_log.jsonl');
    const bytes = await fs.readFile(record);
    bytes[10] = bytes[10]! ^ 0x01;
    await fs.writeFile(record, bytes);
    assert.deepEqual(await verifyEvidence(changed, KEY), {
      ok: false,
      changed: ['records/audit_log.jsonl'],
      added: [],
      removed: [],
      badSignature: false,
      errors: [],
    });

    const added = await copyBundle(bundle, 'added');
    await fs.writeFile(path.join(added, 'records', 'extra.jsonl'), '{}\n');
    const addedResult = await verifyEvidence(added, KEY);
    assert.equal(addedResult.ok, false);
    assert.deepEqual(addedResult.added, ['records/extra.jsonl']);
    assert.deepEqual([addedResult.changed, addedResult.removed, addedResult.badSignature], [[], [], false]);

    const removed = await copyBundle(bundle, 'removed');
    await fs.rm(path.join(removed, 'snapshots', 'controlroom-regions.json'));
    const removedResult = await verifyEvidence(removed, KEY);
    assert.equal(removedResult.ok, false);
    assert.deepEqual(removedResult.removed, ['snapshots/controlroom-regions.json']);
    assert.deepEqual([removedResult.changed, removedResult.added, removedResult.badSignature], [[], [], false]);

    // Re-hashing a changed file into the manifest does not help without the key.
    const tampered = await copyBundle(bundle, 'tampered');
    await fs.appendFile(path.join(tampered, 'records', 'failover_drills.jsonl'), '{"id":"999","outcome":"passed"}\n');
    const manifestPath = path.join(tampered, 'manifest.json');
    const manifest = JSON.parse(await fs.readFile(manifestPath, 'utf8')) as {
      files: Array<{ path: string; size: number; sha256: string }>;
    };
    const entry = manifest.files.find((f) => f.path === 'records/failover_drills.jsonl')!;
    const newBytes = await fs.readFile(path.join(tampered, 'records', 'failover_drills.jsonl'));
    entry.size = newBytes.length;
    entry.sha256 = sha256(newBytes);
    await fs.writeFile(manifestPath, JSON.stringify(manifest, null, 2) + '\n');
    const tamperedResult = await verifyEvidence(tampered, KEY);
    assert.equal(tamperedResult.ok, false);
    assert.equal(tamperedResult.badSignature, true);
    assert.deepEqual([tamperedResult.changed, tamperedResult.added, tamperedResult.removed], [[], [], []]);

    const wrongKey = await verifyEvidence(bundle, 'another-key-of-at-least-32-characters!!');
    assert.equal(wrongKey.ok, false);
    assert.equal(wrongKey.badSignature, true);

    const noSig = await copyBundle(bundle, 'nosig');
    await fs.rm(path.join(noSig, 'manifest.sig'));
    assert.equal((await verifyEvidence(noSig, KEY)).badSignature, true);

    // The CLI function lists the differences and returns exit code 1.
    const lines: string[] = [];
    assert.equal(await runEvidenceVerify(changed, { EVIDENCE_SIGNING_KEY: KEY }, (l) => lines.push(l)), 1);
    assert.ok(
      lines.some((l) => l.includes('changed: records/audit_log.jsonl')),
      lines.join('\n')
    );
    assert.equal(await runEvidenceVerify(bundle, { EVIDENCE_SIGNING_KEY: KEY }, () => undefined), 0);
  });

  test('export refuses to run without a signing key, with a short key, or into a non-empty directory', async () => {
    const base = { pool: db.pool, prometheusUrl: stack.prometheusUrl, dashboardsDir, dashboards: DASHBOARDS, from, to };
    await assert.rejects(
      exportEvidence({ ...base, outDir: path.join(tmp, 'nokey'), signingKey: undefined }),
      /EVIDENCE_SIGNING_KEY is not set/
    );
    await assert.rejects(
      exportEvidence({ ...base, outDir: path.join(tmp, 'shortkey'), signingKey: 'short' }),
      /EVIDENCE_SIGNING_KEY is too short/
    );
    await assert.rejects(exportEvidence({ ...base, outDir: bundle, signingKey: KEY }), /not empty/);
    await assert.rejects(
      exportEvidence({ ...base, dashboards: ['nope'], outDir: path.join(tmp, 'nodash'), signingKey: KEY }),
      /no dashboard with uid nope/
    );
    await assert.rejects(
      runEvidenceExport(
        { from: from.toISOString(), to: to.toISOString(), dashboard: DASHBOARDS, out: path.join(tmp, 'cli-nokey') },
        {
          DATABASE_URL: db.url,
          PROMETHEUS_URL: stack.prometheusUrl,
        }
      ),
      /EVIDENCE_SIGNING_KEY is not set/
    );
    // Through the CLI function with the environment the command uses.
    const viaCli = await runEvidenceExport(
      {
        from: from.toISOString(),
        to: to.toISOString(),
        dashboard: ['controlroom-regions'],
        out: path.join(tmp, 'cli'),
      },
      { DATABASE_URL: db.url, PROMETHEUS_URL: stack.prometheusUrl, EVIDENCE_SIGNING_KEY: KEY }
    );
    assert.ok(viaCli.files.includes('snapshots/controlroom-regions.json'));
    assert.equal((await verifyEvidence(path.join(tmp, 'cli'), KEY)).ok, true);
  });

  test('a missing record table is a clear error', async () => {
    await db.pool.query('ALTER TABLE controlroom.failover_drills RENAME TO failover_drills_gone');
    try {
      await assert.rejects(
        exportEvidence({
          pool: db.pool,
          prometheusUrl: stack.prometheusUrl,
          dashboardsDir,
          dashboards: ['controlroom-self'],
          from,
          to,
          outDir: path.join(tmp, 'missing-table'),
          signingKey: KEY,
        }),
        /table controlroom\.failover_drills does not exist: run "controlroom migrate"/
      );
    } finally {
      await db.pool.query('ALTER TABLE controlroom.failover_drills_gone RENAME TO failover_drills');
    }
  });
});
