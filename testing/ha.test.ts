import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { STANDBY_LEASE_POLL_MS } from '../control/failover/engine.ts';
import { LIVENESS_SWEEP_MS } from '../core/instance-liveness.ts';
import { insertCompany } from './companies.ts';
import type { SlackCall } from './fake-slack.ts';
import {
  HA_API_HEADERS,
  HA_BULK_RATE_BATCH,
  HA_LEASE_SECONDS,
  startHaStack,
  type HaStack,
  type PostableAlert,
} from './ha-stack.ts';
import { waitUntil } from './receiver-harness.ts';

/**
 * The HA fault test (issue 21): the pair under an alert storm and a bulk job; kill -9 one Control Room
 * instance (the one holding both the failover lease and the bulk job), then one Prometheus replica, then one
 * Alertmanager. Afterwards: every alert group paged once, every lane rated once, no counter reset in
 * either Prometheus replica, the freeze on for its trigger, and the survivor holding the lease.
 * Every wait is for an event (a row, a call, a state), bounded; the whole file stays well under 3 minutes.
 */
const LANES = 30_000;
/**
 * Where the job is held while A is killed: the chunk half-way through. Rating is fast enough (tens of
 * thousands of lanes a second) to finish 30,000 lanes before the storm's first page on one machine and not
 * on another, so the kill does not race the job: see holdJobAtChunk.
 */
const HELD_CHUNK = LANES / HA_BULK_RATE_BATCH / 2;
const WAVES = { beforeInstanceKill: 30, afterInstanceKill: 15, afterAlertmanagerKill: 15 } as const;
const STORM_ALERT = 'HaFaultDrill';

let ha: HaStack;
const figures: Record<string, number | string> = {};
/** The bulk job's half-way chunk, held until A is killed (holdJobAtChunk). */
let heldChunk: HeldChunk | undefined;

before(async () => {
  const started = Date.now();
  ha = await startHaStack();
  figures.stackStartMs = Date.now() - started;
});
after(async () => {
  await heldChunk?.release().catch(() => undefined); // a test that failed before the kill
  const started = Date.now();
  await ha?.stop();
  figures.stackStopMs = Date.now() - started;
  console.log(`HA fault test figures: ${JSON.stringify(figures)}`);
});

const soon = (minutes: number) => new Date(Date.now() + minutes * 60_000).toISOString();
const startsAt = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000).toISOString();

/** A wave of storm alerts, one group each (Alertmanager groups by `feature`, among others). */
function wave(first: number, count: number): PostableAlert[] {
  return Array.from({ length: count }, (_, i) => ({
    labels: { alertname: STORM_ALERT, severity: 'P2', feature: `storm-${String(first + i).padStart(3, '0')}` },
    annotations: { summary: `fault drill alert ${first + i}` },
    startsAt,
    endsAt: soon(15),
  }));
}

/** A P1 SLO page: it pages and freezes releases. */
const FREEZE_TRIGGER: PostableAlert = {
  labels: { alertname: 'SLOBurnRate1h', severity: 'P1', slo: 'availability', window: '1h/5m' },
  annotations: { summary: 'availability: error budget burning 20x (fault drill)' },
  startsAt,
  endsAt: soon(15),
};

const stormGroups = WAVES.beforeInstanceKill + WAVES.afterInstanceKill + WAVES.afterAlertmanagerKill;

/** The page id a root message shows in its context block: "… · page 42". */
function pageIdOf(call: SlackCall): string | null {
  const blocks = (call.args.blocks ?? []) as Array<{ type: string; elements?: Array<{ text?: string }> }>;
  const context = blocks.find((b) => b.type === 'context')?.elements?.[0]?.text ?? '';
  return /· page (\d+)$/.exec(context)?.[1] ?? null;
}

const postedStormPages = async () =>
  (
    await ha.db.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM controlroom.slack_pages WHERE group_key LIKE '%${STORM_ALERT}%' AND ts IS NOT NULL`
    )
  ).rows[0]!.n;

const lease = async () =>
  (
    await ha.db.pool.query<{ holder: string | null; epoch: number; live: boolean }>(
      `SELECT lease_holder AS holder, epoch::float8 AS epoch, coalesce(lease_expires_at > now(), false) AS live
         FROM controlroom.failover_control WHERE scope = 'live'`
    )
  ).rows[0];

const bulkJob = async (jobId: string) =>
  (
    await ha.db.pool.query<{ status: string; lanes_rated: number; lanes_failed: number; lanes_total: number }>(
      `SELECT status, lanes_rated, lanes_failed, lanes_total FROM controlroom.bulk_jobs WHERE id = $1`,
      [jobId]
    )
  ).rows[0]!;

/** Which queue worker holds the bulk job now (`controlroom-<instance>-<n>`), if any. */
const bulkJobLocker = async () =>
  (
    await ha.db.pool.query<{ locked_by: string }>(
      `SELECT locked_by FROM graphile_worker.jobs WHERE task_identifier LIKE 'bulk%' AND locked_by IS NOT NULL`
    )
  ).rows[0]?.locked_by ?? null;

interface HeldChunk {
  /** A worker's statement is waiting on the held chunk (Postgres says this session blocks it). */
  waitedOn(): Promise<boolean>;
  release(): Promise<void>;
}

/**
 * Holds a job's rating at one chunk until released: an uncommitted bulk_lane_results row for that chunk, so
 * the worker's statement writing it (INSERT … ON CONFLICT (job_id, chunk) DO NOTHING) waits for this
 * transaction to decide. Released by rolling back, which leaves no trace: the worker's own row goes in, or,
 * if the worker was killed meanwhile, its transaction is aborted and the chunk is rated again by whoever
 * resumes the job. Taken right after the job is accepted, long before a worker gets half-way through it.
 */
async function holdJobAtChunk(jobId: string, chunk: number): Promise<HeldChunk> {
  const client = await ha.db.pool.connect();
  let pid: number;
  try {
    pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    await client.query('BEGIN');
    await client.query(
      `INSERT INTO controlroom.bulk_lane_results (job_id, chunk, active_model, lanes_rated, lanes_failed, results_text)
       VALUES ($1, $2, 'held by ha.test.ts', 0, 0, '')`,
      [jobId, chunk]
    );
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    client.release();
    throw err;
  }
  let released = false;
  return {
    async waitedOn() {
      const { rows } = await ha.db.pool.query<{ blocked: boolean }>(
        `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))) AS blocked`,
        [pid]
      );
      return rows[0]!.blocked;
    },
    async release() {
      if (released) return;
      released = true;
      try {
        await client.query('ROLLBACK');
      } finally {
        client.release();
      }
    },
  };
}

test(
  'kill -9 an instance, a Prometheus and an Alertmanager under a storm and a bulk job: nothing doubled or lost',
  { timeout: 170_000 },
  async () => {
    const t0 = Date.now();
    const [promA, promB] = ha.prometheus as [HaStack['prometheus'][0], HaStack['prometheus'][0]];
    const [am0, am1] = ha.alertmanagers as [HaStack['alertmanagers'][0], HaStack['alertmanagers'][0]];

    // Both instances start (one after the other: two cold starts at once are slow on a loaded machine); the
    // lease holder (call it a) also gets the bulk job: the other (b) is paused (SIGSTOP) while the job is
    // submitted to a directly, so only a's workers can lock it; then b resumes.
    for (const instance of ha.instances) await ha.startInstance(instance);
    figures.instancesStartMs = Date.now() - t0;
    const first = await waitUntil(
      async () => {
        const l = await lease();
        return l?.holder && l.live ? l : null;
      },
      30_000,
      'an instance to take the failover lease'
    );
    const a = ha.instances.find((i) => i.id === first.holder)!;
    const b = ha.instances.find((i) => i.id !== first.holder)!;
    const companyId = await insertCompany(ha.db.pool, 'HA Freight', 'enterprise');
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    const cities = ['"Chicago, IL"', '"Atlanta, GA"', '"Dallas, TX"', '"Denver, CO"', '"Seattle, WA"', '"Miami, FL"'];
    const csv = [
      'origin,destination,equipment,pickup_date',
      ...Array.from({ length: LANES }, (_, i) => `${cities[i % 6]},${cities[(i + 1) % 6]},van,${tomorrow}`),
    ].join('\n');
    b.child!.child.kill('SIGSTOP');
    let jobId: string;
    try {
      const submitted = await fetch(`${a.url}/api/bulk-rating/jobs?company_id=${companyId}`, {
        method: 'POST',
        headers: { ...HA_API_HEADERS, 'content-type': 'text/csv', 'idempotency-key': 'ha-fault-drill-job' },
        body: csv,
      });
      assert.equal(submitted.status, 202, await submitted.clone().text());
      jobId = ((await submitted.json()) as { job: { id: string } }).job.id;
      heldChunk = await holdJobAtChunk(jobId, HELD_CHUNK);
      await waitUntil(
        async () => (await bulkJobLocker())?.startsWith(`controlroom-${a.id}-`),
        30_000,
        `${a.id} to run the bulk job`
      );
    } finally {
      b.child!.child.kill('SIGCONT');
    }

    // The storm's first wave and the freeze trigger go to both Alertmanagers, which deliver through the
    // load balancer to both instances.
    await ha.sendAlerts([...wave(0, WAVES.beforeInstanceKill), FREEZE_TRIGGER]);

    // kill -9 A once its worker waits, inside its batch's transaction, on the held chunk (the job mid-way)
    // and the storm is being paged; then let the chunk go, so A's cut-off transaction is what remains.
    let atKill: Awaited<ReturnType<typeof bulkJob>>;
    try {
      atKill = await waitUntil(
        async () => {
          const job = await bulkJob(jobId);
          return (await heldChunk!.waitedOn()) && (await postedStormPages()) >= 1 ? job : null;
        },
        60_000,
        'the job and the storm to be under way'
      );
      await ha.killInstance(a);
    } finally {
      await heldChunk!.release();
    }
    const killedAt = Date.now();
    assert.ok(atKill.lanes_rated < LANES, `the job finished before A could be killed (${atKill.lanes_rated})`);
    figures.lanesRatedAtKill = atKill.lanes_rated;
    figures.stormPagesAtKill = await postedStormPages();

    // B takes the lease over (A's session is gone, so B's liveness sweep expires A's lease), and resumes the
    // job A held.
    const takeover = await waitUntil(
      async () => {
        const l = await lease();
        return l?.holder === b.id && l.live ? l : null;
      },
      30_000,
      `${b.id} to take the lease over`
    );
    figures.leaseTakeoverMs = Date.now() - killedAt;
    assert.ok(takeover.epoch > first.epoch, 'a takeover raises the fencing epoch');
    // Not at the end of A's lease: the survivor's liveness sweep expires it once A's session is gone, and
    // B's next try (every STANDBY_LEASE_POLL_MS) takes it. 3 s of slack for a loaded machine.
    const takeoverBound = LIVENESS_SWEEP_MS + STANDBY_LEASE_POLL_MS + 3_000;
    assert.ok(takeoverBound < HA_LEASE_SECONDS * 1000, 'the bound tells a handover from an expiry');
    assert.ok(
      Number(figures.leaseTakeoverMs) <= takeoverBound,
      `takeover took ${figures.leaseTakeoverMs} ms (bound ${takeoverBound} ms, lease ${HA_LEASE_SECONDS} s)`
    );
    await waitUntil(
      async () =>
        (await bulkJobLocker())?.startsWith(`controlroom-${b.id}-`) || (await bulkJob(jobId)).status === 'succeeded',
      30_000,
      `${b.id} to resume the bulk job`
    );
    figures.jobResumedMs = Date.now() - killedAt;

    await ha.sendAlerts(wave(WAVES.beforeInstanceKill, WAVES.afterInstanceKill));
    // kill -9 one Prometheus replica, then one Alertmanager; the last wave reaches the survivor only.
    await promA.kill();
    await am0.kill();
    await ha.sendAlerts(wave(WAVES.beforeInstanceKill + WAVES.afterInstanceKill, WAVES.afterAlertmanagerKill));
    assert.ok(am1.running && promB.running);

    // Settled: every storm group paged, the freeze published, the job done.
    await waitUntil(async () => (await postedStormPages()) === stormGroups, 90_000, `${stormGroups} storm pages`);
    const job = await waitUntil(
      async () => {
        const j = await bulkJob(jobId);
        return j.status === 'succeeded' ? j : null;
      },
      90_000,
      'the bulk job to succeed'
    );
    await waitUntil(
      async () =>
        (await ha.db.pool.query(`SELECT frozen FROM controlroom.freeze_state WHERE id = 1`)).rows[0]?.frozen === true,
      30_000,
      'the freeze to be published'
    );
    figures.settledAfterKillMs = Date.now() - killedAt;
    figures.beforeCountersMs = Date.now() - t0;

    // Every lane rated once: each lane rated, none pending, and the job's counter (moved in each batch's
    // transaction) equal to the lanes: a batch rated twice would push it past them.
    const lanes = await ha.db.pool.query(
      `SELECT count(*) FILTER (WHERE status = 'rated')::int AS rated, count(*) FILTER (WHERE status = 'pending')::int AS pending,
              count(DISTINCT seq)::int AS distinct_lanes FROM controlroom.bulk_lanes WHERE job_id = $1`,
      [jobId]
    );
    assert.deepEqual(lanes.rows[0], { rated: LANES, pending: 0, distinct_lanes: LANES });
    assert.deepEqual([job.lanes_rated, job.lanes_failed, job.lanes_total], [LANES, 0, LANES]);

    // Every group paged once: one page row per group, and one root Slack message per page.
    const pages = await ha.db.pool.query<{ id: string; group_key: string }>(
      `SELECT id::text, group_key FROM controlroom.slack_pages WHERE group_key LIKE '%${STORM_ALERT}%' OR group_key LIKE '%SLOBurnRate1h%'`
    );
    assert.equal(pages.rows.length, stormGroups + 1, 'one page per storm group and one for the P1');
    const roots = new Map<string, number>();
    for (const call of ha.slack.calls)
      if (call.method === 'chat.postMessage' && call.status === 200 && !call.args.thread_ts) {
        const id = pageIdOf(call);
        if (id) roots.set(id, (roots.get(id) ?? 0) + 1);
      }
    const doubled = pages.rows
      .filter((p) => (roots.get(p.id) ?? 0) !== 1)
      .map((p) => `${p.group_key}: ${roots.get(p.id) ?? 0}`);
    // On failure, what tells a pager defect (one generation posted twice) from a page that started over
    // (a new generation): each root call's time after the kill, ts, channel and metadata, and the calls around.
    const rootCalls = ha.slack.calls
      .filter((c) => c.method === 'chat.postMessage' && c.status === 200 && !c.args.thread_ts)
      .filter((c) => pages.rows.some((p) => (roots.get(p.id) ?? 0) !== 1 && pageIdOf(c) === p.id))
      .map((c) => ({ afterKillMs: c.at - killedAt, ts: c.ts, channel: c.args.channel, metadata: c.args.metadata }));
    const lookups = ha.slack.calls
      .filter((c) => c.method.startsWith('conversations.'))
      .map((c) => ({ method: c.method, afterKillMs: c.at - killedAt, status: c.status, refused: c.refused }));
    assert.deepEqual(
      doubled,
      [],
      `groups not paged exactly once; roots: ${JSON.stringify(rootCalls)}; lookups: ${JSON.stringify(lookups)}`
    );
    // Each alert state change stored once, although both Alertmanagers may have delivered it.
    const events = await ha.db.pool.query<{ n: number; distinct_alerts: number }>(
      `SELECT count(*)::int AS n, count(DISTINCT fingerprint)::int AS distinct_alerts FROM controlroom.alert_events
        WHERE alertname = $1 AND status = 'firing'`,
      [STORM_ALERT]
    );
    assert.deepEqual(events.rows[0], { n: stormGroups, distinct_alerts: stormGroups });

    // The freeze: on, for the one P1 trigger, as the API (through the load balancer) says too.
    const triggers = await ha.db.pool.query(`SELECT alertname, firing FROM controlroom.freeze_triggers`);
    assert.deepEqual(triggers.rows, [{ alertname: 'SLOBurnRate1h', firing: true }]);
    const freeze = (await (await fetch(`${ha.lb.url}/api/freeze`, { headers: HA_API_HEADERS })).json()) as {
      frozen: boolean;
      triggers: unknown[];
    };
    assert.equal(freeze.frozen, true);
    assert.equal(freeze.triggers.length, 1);

    // The survivor holds the lease.
    const held = await lease();
    assert.equal(held?.holder, b.id);
    assert.equal(held?.live, true);

    // Counters: the killed replica starts again on its data (as its supervisor would), then both replicas
    // are asked whether any Control Room counter ever went down during the run.
    await promA.start();
    const restartedAt = Date.now() / 1000;
    figures.prometheusRestartMs = Date.now() - t0 - Number(figures.beforeCountersMs);
    const end = Date.now() / 1000;
    const window = `${Math.ceil(end - t0 / 1000) + 5}s`;
    for (const replica of [promA, promB]) {
      await waitUntil(
        async () =>
          (
            await ha.query(
              replica,
              `timestamp(up{job="controlroom", instance="127.0.0.1:${b.port}"} == 1) > ${restartedAt}`
            )
          ).length > 0,
        30_000,
        `${replica.name} to scrape the survivor`
      );
      // Counters by the type the survivor declares in its exposition (prom-client's
      // nodejs_active_handles_total is a gauge), then the raw samples of every counter series (a range
      // vector), checked one by one.
      const exposition = await (await fetch(`${b.url}/metrics`)).text();
      const counterNames = [...exposition.matchAll(/^# TYPE (\S+) counter$/gm)].map((m) => m[1]!);
      assert.ok(counterNames.includes('controlroom_pricing_lanes_rated_total'), 'the survivor exports its counters');
      const counters = await ha.query(replica, `{job="controlroom", __name__=~"${counterNames.join('|')}"}[${window}]`);
      assert.ok(counters.length > 20, `${replica.name} has only ${counters.length} counter series`);
      const wentDown = counters.flatMap((series) => {
        const values = (series.values ?? []).map(([, v]) => Number(v));
        const drop = values.findIndex((v, i) => i > 0 && v < values[i - 1]!);
        return drop > 0 ? [`${JSON.stringify(series.metric)}: ${values[drop - 1]} -> ${values[drop]}`] : [];
      });
      assert.deepEqual(wentDown, [], `${replica.name}: counters that went down`);
      // The business totals both instances export, with the instance aggregated away (README "Production
      // (HA)"): the lanes rated, counted once. The exporter moves past the rated-id gap A's cut-off batch left
      // after EXPORTER_GAP_GRACE_SECONDS (5 s here), so the total is awaited, then must be exact.
      const rated = await waitUntil(
        async () => {
          const [total] = await ha.query(replica, 'sum(max without(instance) (controlroom_pricing_lanes_rated_total))');
          return total && Number(total.value![1]) >= LANES ? Number(total.value![1]) : null;
        },
        30_000,
        `${replica.name} to count every lane rated`
      );
      assert.equal(rated, LANES, `${replica.name}: lanes rated, counted once across the instances`);
    }
    figures.totalMs = Date.now() - t0;
  }
);
