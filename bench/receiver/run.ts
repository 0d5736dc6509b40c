import fs from 'node:fs/promises';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { ALERT_GROUP_TASK } from '../../alerting/tasks.ts';
import { AM_TOKEN, startReceiverHarness, waitUntil } from '../../testing/receiver-harness.ts';
import { PAGE_REFRESH_TASK, STORM_REFRESH_TASK } from '../../alerting/slack/pager.ts';
import { projectRoot, sharedConfigShape } from '../../core/config.ts';
import { FakeSlack } from '../../testing/fake-slack.ts';
import { createTestDatabase, startTestCluster } from '../../testing/postgres.ts';
import { NotificationInbox, storeNotification, storeNotifications } from '../../alerting/receiver/inbox.ts';
import { createPool } from '../../core/db.ts';
import { alertmanagerPayload } from '../../alerting/receiver/payloads.ts';
import { fmtMs, percentile } from '../stats.ts';
import { startFloorServer } from './floor.ts';
import { startNaiveReceiver } from './naive.ts';
import os from 'node:os';
import { processTreeCpuMs, threadCpuMs } from './cpu.ts';
import { deliverStormFromThread, sendStormFromThread } from './sender.ts';
import { buildStorm, type DeliveryResult } from './storm.ts';
import { gcImpact, recordGcPauses } from './gc.ts';

/** The jobs that page: the run has settled when none of them is queued (other tasks, like the release freeze's timer, recur). */
const PAGING_TASKS = [ALERT_GROUP_TASK, STORM_REFRESH_TASK, PAGE_REFRESH_TASK];

/**
 * bench/receiver: webhook acknowledgement latency (POST to 200) for a 1000-alert storm (200 groups x 5,
 * 690 notifications, 2530 alerts delivered), `IN_FLIGHT` POSTs at a time, for
 *   ours:  persist + enqueue (concurrent notifications share one statement: group commit), answer;
 *          Slack is paged afterwards by the worker;
 *   naive: post each alert to Slack (same client, same per-channel pacing), then answer.
 * Both page a local fake Slack. The POSTs are sent from a thread of their own (bench/receiver/sender.ts), as
 * Alertmanager sends from its own process. BENCH_SLACK_INTERVAL_MS is the per-channel spacing of both (default 100,
 * i.e. Slack's ~1 msg/s per channel compressed 10x so the naive run fits in the time budget): the naive
 * latencies grow linearly with it, ours do not. BENCH_SLACK_INTERVAL_MS=1100 is production pacing (slow).
 * BENCH_IN_FLIGHT (default 20) sets the concurrent POSTs; BENCH_PG_POOL_MAX overrides our HTTP pool (default 4),
 * BENCH_INBOX_BATCHES the inbox's concurrent transactions (ALERT_INBOX_BATCHES, default 1).
 * BENCH_NAIVE=0 skips the naive run (about two minutes at the default spacing) while tuning ours.
 * Ours runs as deployed: the job queue (alert groups, the Slack pager) where JOB_QUEUE_THREAD's default puts
 * it (the HTTP event loop). Then, in the same run, the same storm with the other shape (the queue on a worker
 * thread of its own, cli/job-thread.ts), to show what that thread buys on this machine at its current load
 * (mind the order: on a shared machine the second run was often the faster, whichever shape it was);
 * BENCH_OTHER_SHAPE=0 skips it, BENCH_OTHER_SHAPE=first runs it first.
 * The first storm in a process is slower than the next, whichever shape it runs (JIT, plans, caches: the
 * earlier passes' "second run wins"), and a deployed receiver is a long-running process: so a warm-up storm
 * (the deployed shape, on a database of its own, its figures printed and not counted) runs first.
 * BENCH_WARMUP=0 skips it, to see the cold figures; BENCH_WARMUP=n runs n warm-up storms (each printed), to
 * see where the figures settle.
 *
 * The machine's floor (bench/receiver/floor.ts): the same storm from the same sender to a bare node:http
 * server that answers at once, so the part of the ack time that is the machine's, not the receiver's, is
 * printed beside the target. BENCH_JOB_CONCURRENCY overrides the queue's JOB_CONCURRENCY.
 *
 * Targets (issue 20): ack p99 <= 30 ms with 20 in flight, and >= 1,000 notifications/s stored and queued
 * (all POSTs answered). The breakdown comes from the receiver's Server-Timing header: read and parse the
 * body, wait (for the batch it joins, and a connection), store (the batch's one statement: the inserts, the
 * jobs and the commit); respond is the rest of the caller's wait (HTTP, the event loop). Then the
 * receiver's garbage-collection pauses during the storm, and how the POSTs in flight across one fared
 * against the rest (bench/receiver/gc.ts): on this machine the storm's slowest answers were mostly those.
 */
const INTERVAL_MS = Number(process.env.BENCH_SLACK_INTERVAL_MS ?? '100');
const IN_FLIGHT = Number(process.env.BENCH_IN_FLIGHT ?? '20');
const RUN_NAIVE = process.env.BENCH_NAIVE !== '0';
const COMPARE_OTHER_SHAPE = process.env.BENCH_OTHER_SHAPE !== '0';
const WARMUP_STORMS = Number(process.env.BENCH_WARMUP ?? '1');
/** Where the service runs its job queue unless told otherwise (JOB_QUEUE_THREAD's default). */
const DEPLOYED_QUEUE_THREAD = sharedConfigShape.JOB_QUEUE_THREAD.parse(undefined);
const shapeName = (queueThread: boolean) =>
  queueThread ? 'job queue on its own thread' : 'job queue on the HTTP event loop';
const TARGET_ACK_P99_MS = 30;
/** Fresh connections per side in the first-batch comparison. */
const FIRST_BATCH_TRIES = 5;
const TARGET_NOTIFICATIONS_PER_S = 1_000;
const PHASES = ['read', 'parse', 'wait', 'store', 'respond'] as const;
/** Ours normally acts on the whole storm in well under 10 s at 100 ms spacing. */
const ACTED_ON_TIMEOUT_MS = Math.max(45_000, INTERVAL_MS * 450);
const CHANNELS = { P1: '#p1-bench-pages', P2: '#p2-bench-alerts', P3: '#p3-bench-tickets' };
const log = (msg: string) => console.log(msg);
/**
 * The young-generation bound this process runs with: the receiver's GC pauses follow it, and the service is
 * launched with one (cli/launch-flags.test.ts), so the benchmark says whether it measured the same.
 */
const semiSpaceFlag = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)]
  .filter((arg) => arg.startsWith('--max-semi-space-size='))
  .at(-1);

/** Per phase: p50, p99 and the mean share of the caller's wait. */
const breakdown = (results: DeliveryResult[]) => {
  const total = results.reduce((n, r) => n + r.ms, 0);
  const perPhase = PHASES.map((phase) => {
    const samples = results.map((r) =>
      phase === 'respond'
        ? r.ms - Object.values(r.serverTiming).reduce((n, ms) => n + ms, 0)
        : (r.serverTiming[phase] ?? 0)
    );
    return [
      phase,
      {
        p50_ms: percentile(samples, 50),
        p99_ms: percentile(samples, 99),
        share: samples.reduce((n, ms) => n + ms, 0) / total,
      },
    ] as const;
  });
  return Object.fromEntries(perPhase) as Record<
    (typeof PHASES)[number],
    { p50_ms: number; p99_ms: number; share: number }
  >;
};

/** From the first POST sent to the last answer received. */
const stormSpanMs = (results: DeliveryResult[]) =>
  Math.max(...results.map((r) => r.sentAt + r.ms)) - Math.min(...results.map((r) => r.sentAt));

const summary = (results: DeliveryResult[]) => {
  const ms = results.map((r) => r.ms);
  return {
    posts: results.length,
    non_200: results.filter((r) => r.status !== 200).length,
    ack_p50_ms: percentile(ms, 50),
    ack_p90_ms: percentile(ms, 90),
    ack_p99_ms: percentile(ms, 99),
    ack_max_ms: Math.max(...ms),
  };
};

/**
 * One storm against the full service (startServices, as `controlroom start` runs it), with the job queue
 * on its own thread (JOB_QUEUE_THREAD=true) or on the HTTP event loop, on a fresh database each.
 */
async function runOurs(queueThread: boolean) {
  const h = await startReceiverHarness({
    SLACK_CHANNEL_INTERVAL_MS: String(INTERVAL_MS),
    SLACK_CHANNEL_P1: CHANNELS.P1,
    SLACK_CHANNEL_P2: CHANNELS.P2,
    SLACK_CHANNEL_P3: CHANNELS.P3,
    ...(process.env.BENCH_PG_POOL_MAX ? { PG_POOL_MAX: process.env.BENCH_PG_POOL_MAX } : {}),
    ...(process.env.BENCH_INBOX_BATCHES ? { ALERT_INBOX_BATCHES: process.env.BENCH_INBOX_BATCHES } : {}),
    ...(process.env.BENCH_JOB_CONCURRENCY ? { JOB_CONCURRENCY: process.env.BENCH_JOB_CONCURRENCY } : {}),
  });
  const { rows } = await h.db.pool.query<{ id: string }>(
    `INSERT INTO companies (name) SELECT 'Bench Tenant ' || i FROM generate_series(1, 6) i RETURNING id`
  );
  await h.db.pool.query(`INSERT INTO org_entitlements (company_id, plan_id) SELECT unnest($1::uuid[]), 'pro'`, [
    rows.map((r) => r.id),
  ]);
  const storm = buildStorm(rows.map((r) => r.id));
  const delivered = storm.deliveries.reduce((n, d) => n + d.alerts, 0);
  log(
    `bench/receiver: ${storm.totalAlerts} alerts in ${storm.groups.length} groups, ${storm.deliveries.length} notifications ` +
      `(${delivered} alerts delivered), ${IN_FLIGHT} in flight, Slack spacing ${INTERVAL_MS} ms per channel, ` +
      `${shapeName(queueThread)}${queueThread === DEPLOYED_QUEUE_THREAD ? ' (as deployed)' : ''}, young generation ` +
      (semiSpaceFlag
        ? `${semiSpaceFlag} (as launched)`
        : "at V8's default (not as launched: run npm run bench:receiver)")
  );

  // How busy the HTTP process's event loop was while the storm came in (the fake Slack, which answers the
  // pager, runs on it too in both shapes): utilisation, and how late a timer fired (the wait a request
  // that has arrived spends before the loop reads it).
  // Measured from the sender's first POST (its own warm-up, bench/receiver/sender.ts, is not the storm).
  // The CPU of the storm, from the first POST to the last answer: this process (all its threads, the
  // sender's taken out), the sender thread, and Postgres (the cluster's processes).
  const loopDelay = monitorEventLoopDelay({ resolution: 5 });
  let loopBefore = performance.eventLoopUtilization();
  let processCpuBefore = process.cpuUsage();
  let processCpu = process.cpuUsage(processCpuBefore);
  let postgresCpuBefore = 0;
  let mainThreadCpuBefore = 0;
  let mainThreadCpuMs = Number.NaN;
  let postgresCpuMs = Number.NaN;
  // The receiver's garbage-collection pauses during the storm (this thread's heap: bench/receiver/gc.ts).
  const gcRecorder = recordGcPauses();
  const { results: ours, senderCpuMs } = await sendStormFromThread(
    `${h.base}/webhooks/alertmanager`,
    storm.deliveries,
    IN_FLIGHT,
    AM_TOKEN,
    {
      onReady: () => {
        loopDelay.enable();
        loopBefore = performance.eventLoopUtilization();
        processCpuBefore = process.cpuUsage();
        mainThreadCpuBefore = threadCpuMs();
        postgresCpuBefore = processTreeCpuMs(cluster.handle.pid);
        gcRecorder.start();
      },
      onDone: () => {
        processCpu = process.cpuUsage(processCpuBefore);
        // These callbacks run on the event loop's thread: its own CPU time.
        mainThreadCpuMs = threadCpuMs() - mainThreadCpuBefore;
        postgresCpuMs = processTreeCpuMs(cluster.handle.pid) - postgresCpuBefore;
        gcRecorder.stop();
      },
    }
  );
  const gcPauses = await gcRecorder.pauses();
  const cpuPerNotification = {
    receiver_ms: ((processCpu.user + processCpu.system) / 1000 - senderCpuMs) / storm.deliveries.length,
    // Of which the event loop's thread; the rest is V8's own threads (garbage collection, compilation) and libuv's.
    receiver_main_thread_ms: mainThreadCpuMs / storm.deliveries.length,
    postgres_ms: postgresCpuMs / storm.deliveries.length,
    sender_ms: senderCpuMs / storm.deliveries.length,
  };
  // The storm's clock starts at its first POST (acted on, last Slack call and digests are timed from it).
  const started = Math.min(...ours.map((r) => r.sentAt));
  // From the first POST sent to the last answer (the sender thread's own start-up is not the receiver's time).
  const allAnsweredMs = stormSpanMs(ours);
  loopDelay.disable();
  const httpLoop = {
    utilisation: performance.eventLoopUtilization(loopBefore).utilization,
    delay_p50_ms: loopDelay.percentile(50) / 1e6,
    delay_p99_ms: loopDelay.percentile(99) / 1e6,
  };
  // Every alert acted on: all 1000 state changes processed (paged, folded into a storm, overage checked).
  let unprocessed = 0;
  const actedOn = await waitUntil(
    async () => {
      const {
        rows: [s],
      } = await h.db.pool.query<{ n: string; pending: string }>(
        `SELECT count(*) AS n, count(*) FILTER (WHERE processed_at IS NULL) AS pending FROM controlroom.alert_events`
      );
      unprocessed = storm.totalAlerts - Number(s!.n) + Number(s!.pending);
      return unprocessed === 0;
    },
    ACTED_ON_TIMEOUT_MS,
    'every alert to be acted on'
  ).then(
    () => true,
    () => false
  );
  const actedOnMs = actedOn ? Date.now() - started : Number.NaN;
  if (!actedOn)
    log(
      `  ours: ${unprocessed} alert state changes still not acted on after ${ACTED_ON_TIMEOUT_MS / 1000} s (no alert_group job left for them?)`
    );
  await waitUntil(
    async () => {
      const {
        rows: [s],
      } = await h.db.pool.query<{ jobs: string }>(
        `SELECT count(*) AS jobs FROM graphile_worker.jobs WHERE task_identifier = ANY($1::text[]) AND attempts < max_attempts`,
        [PAGING_TASKS]
      );
      return Number(s!.jobs) === 0 && Date.now() - (h.slack.calls.at(-1)?.at ?? 0) > 2_500;
    },
    60_000,
    'Slack to go quiet'
  ).catch((error: Error) => log(`  ours: ${error.message}`));
  const lastSlackMs = (h.slack.calls.at(-1)?.at ?? started) - started;
  const oursSlackCalls = h.slack.calls.length;
  const roots = h.slack.ok('chat.postMessage').filter((c) => !c.args.thread_ts).length;
  // How long each channel's storm digest took to appear after the storm opened (it queues behind page work).
  const { rows: storms } = await h.db.pool.query<{ channel: string; opened_ms: string }>(
    `SELECT channel, (extract(epoch FROM opened_at) * 1000)::bigint AS opened_ms FROM controlroom.slack_storms`
  );
  const digestDelays = storms.map((s) => {
    const digest = h.slack
      .ok('chat.postMessage')
      .find((c) => c.args.channel === s.channel && /Alert storm/.test(String(c.args.text)));
    return digest ? digest.at - Number(s.opened_ms) : Number.NaN;
  });
  // The same webhook without load: one POST at a time, new groups (they fold into the open storms).
  const unloaded = await deliverStormFromThread(
    `${h.base}/webhooks/alertmanager`,
    buildStorm(
      rows.map((r) => r.id),
      { seed: 7 }
    )
      .deliveries.slice(0, 50)
      .map((d) => ({ ...d, body: { ...d.body, groupKey: `unloaded:${d.groupKey}` } })),
    1,
    AM_TOKEN
  );
  await h.stop();
  return {
    ours,
    httpLoop,
    cpuPerNotification,
    gc: gcImpact(ours, gcPauses),
    started,
    allAnsweredMs,
    actedOn,
    actedOnMs,
    unprocessed,
    lastSlackMs,
    oursSlackCalls,
    roots,
    digestDelays,
    unloaded,
    storm,
    delivered,
  };
}

const cluster = await startTestCluster();
process.env.CONTROLROOM_TEST_PG_ADMIN_URL = cluster.adminUrl;
try {
  // --- ours: as deployed, then with the job queue in the other shape ---------------------------------
  // BENCH_OTHER_SHAPE=first runs the other shape first: alternate the order to tell a shape from its turn.
  const otherFirst = process.env.BENCH_OTHER_SHAPE === 'first';
  const warmups: Array<Awaited<ReturnType<typeof runOurs>>> = [];
  for (let i = 0; i < WARMUP_STORMS; i++) warmups.push(await runOurs(DEPLOYED_QUEUE_THREAD));
  const otherBefore = otherFirst ? await runOurs(!DEPLOYED_QUEUE_THREAD) : null;
  const deployed = await runOurs(DEPLOYED_QUEUE_THREAD);
  const other = otherBefore ?? (COMPARE_OTHER_SHAPE ? await runOurs(!DEPLOYED_QUEUE_THREAD) : null);
  const {
    ours,
    httpLoop,
    cpuPerNotification,
    gc,
    allAnsweredMs,
    actedOn,
    actedOnMs,
    unprocessed,
    lastSlackMs,
    oursSlackCalls,
    roots,
    digestDelays,
    unloaded,
    storm,
    delivered,
  } = deployed;

  // --- the store path alone, same run: one transaction per notification vs group commit ---------------
  // No HTTP, no worker: the same 690 notifications, IN_FLIGHT at a time, into a fresh database each, with
  // the service's pool size. Shows what group commit itself buys on this machine, whatever its load.
  // The storm's notifications as validated, once for the store-path and first-batch comparisons.
  const stormPayloads = storm.deliveries.map((d) => alertmanagerPayload.parse(d.body));
  const storePath = async (mode: 'one transaction each' | 'group commit') => {
    const db = await createTestDatabase({ poolMax: Number(process.env.BENCH_PG_POOL_MAX ?? '4') });
    try {
      const inbox = new NotificationInbox(db.pool, Number(process.env.BENCH_INBOX_BATCHES ?? '1'));
      const ms: number[] = [];
      let next = 0;
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: IN_FLIGHT }, async () => {
          for (let i = next++; i < stormPayloads.length; i = next++) {
            const t = performance.now();
            if (mode === 'group commit') await inbox.store('alertmanager', stormPayloads[i]!);
            else await storeNotification(db.pool, 'alertmanager', stormPayloads[i]!);
            ms.push(performance.now() - t);
          }
        })
      );
      const total = performance.now() - t0;
      return { p50_ms: percentile(ms, 50), p99_ms: percentile(ms, 99), per_s: (stormPayloads.length / total) * 1000 };
    } finally {
      await db.drop();
    }
  };
  const storeAlone = await storePath('one transaction each');
  const storeBatched = await storePath('group commit');

  // --- a storm's first batch after a quiet spell, same run: a new session vs the inbox's kept, warm one --
  // A pool closes a connection idle for 10 s (pg-pool's default), so without the inbox's own kept and
  // warmed connections (NotificationInbox.warm) the first batch of an incident opens a session and runs
  // its first statement cold. Each try: a fresh pool of one connection, then one batch of 10 notifications.
  const firstBatch = async (warmed: boolean) => {
    const db = await createTestDatabase({ poolMax: 1 });
    const ms: number[] = [];
    try {
      for (let i = 0; i < FIRST_BATCH_TRIES; i++) {
        const pool = createPool(db.url, { max: 1, statementTimeoutMs: 30_000, applicationName: 'bench-first-batch' });
        try {
          if (warmed) await new NotificationInbox(pool, 1).warm();
          const batch = stormPayloads
            .slice(i * 10, i * 10 + 10)
            .map((payload) => ({ source: 'alertmanager' as const, payload }));
          const t = performance.now();
          await storeNotifications(pool, batch);
          ms.push(performance.now() - t);
        } finally {
          await pool.end();
        }
      }
    } finally {
      await db.drop();
    }
    return { p50_ms: percentile(ms, 50), max_ms: Math.max(...ms) };
  };
  const firstBatchCold = await firstBatch(false);
  const firstBatchWarm = await firstBatch(true);

  // --- the machine's floor: the same storm, answered at once by a bare node:http server -----------------
  const floorServer = await startFloorServer();
  const floorResults = await deliverStormFromThread(floorServer.url, storm.deliveries, IN_FLIGHT, AM_TOKEN);
  await floorServer.close();
  const floor = {
    ...summary(floorResults),
    notifications_per_s: (floorResults.length / stormSpanMs(floorResults)) * 1000,
  };

  // --- naive baseline ---------------------------------------------------------------------------
  let baseline: DeliveryResult[] = [];
  let naiveTotalMs = Number.NaN;
  let naiveSlackCalls = Number.NaN;
  if (RUN_NAIVE) {
    const slack = await FakeSlack.start();
    const naive = await startNaiveReceiver({
      token: AM_TOKEN,
      slackApiUrl: slack.apiUrl,
      intervalMs: INTERVAL_MS,
      channels: CHANNELS,
    });
    baseline = await deliverStormFromThread(naive.url, storm.deliveries, IN_FLIGHT, AM_TOKEN);
    naiveTotalMs = stormSpanMs(baseline);
    naiveSlackCalls = slack.calls.length;
    await naive.close();
    await slack.close();
  }

  // The storm's POSTs in the order sent: the results file lists them so, and the opening is the first IN_FLIGHT.
  const bySending = [...ours].sort((a, b) => a.sentAt - b.sentAt);
  const figures = {
    storm: {
      alerts: storm.totalAlerts,
      groups: storm.groups.length,
      notifications: storm.deliveries.length,
      alerts_delivered: delivered,
    },
    in_flight: IN_FLIGHT,
    slack_interval_ms: INTERVAL_MS,
    node: process.version,
    young_generation_flag: semiSpaceFlag ?? null,
    targets: { ack_p99_ms: TARGET_ACK_P99_MS, notifications_per_s: TARGET_NOTIFICATIONS_PER_S },
    // The process's first storms, not counted (see BENCH_WARMUP).
    warmups: warmups.map((w) => ({
      ...summary(w.ours),
      notifications_per_s: (w.storm.deliveries.length / w.allAnsweredMs) * 1000,
    })),
    ours: {
      ...summary(ours),
      notifications_per_s: (storm.deliveries.length / allAnsweredMs) * 1000,
      breakdown: breakdown(ours),
      all_answered_ms: allAnsweredMs,
      http_event_loop: httpLoop,
      cpu_per_notification: cpuPerNotification,
      // The receiver's GC pauses during the storm and the POSTs in flight across one (bench/receiver/gc.ts).
      gc,
      all_acted_on_ms: actedOnMs,
      not_acted_on: unprocessed,
      last_slack_call_ms: lastSlackMs,
      slack_calls: oursSlackCalls,
      slack_roots: roots,
      storm_digest_delay_ms: digestDelays,
      unloaded_ack_p50_ms: percentile(
        unloaded.map((r) => r.ms),
        50
      ),
      unloaded_ack_p99_ms: percentile(
        unloaded.map((r) => r.ms),
        99
      ),
      // Every POST, in the order sent (ms from the storm's first POST): to see whether the slowest answers
      // come together (one pause) or apart.
      posts: bySending.map((r) => ({ sent_ms: r.sentAt - deployed.started, ms: r.ms, phases: r.serverTiming })),
    },
    job_queue_thread: DEPLOYED_QUEUE_THREAD,
    other_shape: other
      ? {
          ...summary(other.ours),
          notifications_per_s: (other.storm.deliveries.length / other.allAnsweredMs) * 1000,
          breakdown: breakdown(other.ours),
          all_answered_ms: other.allAnsweredMs,
          http_event_loop: other.httpLoop,
          gc: other.gc,
          all_acted_on_ms: other.actedOnMs,
          not_acted_on: other.unprocessed,
          slack_calls: other.oursSlackCalls,
        }
      : null,
    store_path: { one_transaction_each: storeAlone, group_commit: storeBatched },
    first_batch_after_quiet: { new_session: firstBatchCold, kept_warm_session: firstBatchWarm },
    machine_floor: floor,
    naive: {
      ...summary(baseline),
      notifications_per_s: (storm.deliveries.length / naiveTotalMs) * 1000,
      all_answered_ms: naiveTotalMs,
      all_acted_on_ms: naiveTotalMs,
      slack_calls: naiveSlackCalls,
    },
  };
  const ratio = {
    p50: figures.naive.ack_p50_ms / figures.ours.ack_p50_ms,
    p99: figures.naive.ack_p99_ms / figures.ours.ack_p99_ms,
  };

  log('');
  log('                              ours (store + queue)   naive (Slack, then 200)   naive / ours');
  log(
    `webhook ack p50               ${fmtMs(figures.ours.ack_p50_ms).padEnd(22)} ${fmtMs(figures.naive.ack_p50_ms).padEnd(25)} ${ratio.p50.toFixed(0)}x`
  );
  log(
    `webhook ack p99               ${fmtMs(figures.ours.ack_p99_ms).padEnd(22)} ${fmtMs(figures.naive.ack_p99_ms).padEnd(25)} ${ratio.p99.toFixed(0)}x`
  );
  log(`webhook ack max               ${fmtMs(figures.ours.ack_max_ms).padEnd(22)} ${fmtMs(figures.naive.ack_max_ms)}`);
  log(`all ${storm.deliveries.length} POSTs answered      ${fmtMs(allAnsweredMs).padEnd(22)} ${fmtMs(naiveTotalMs)}`);
  log(
    `every alert acted on          ${(actedOn ? fmtMs(actedOnMs) : `${unprocessed} never`).padEnd(22)} ${fmtMs(naiveTotalMs)}`
  );
  log(`Slack calls                   ${String(oursSlackCalls).padEnd(22)} ${naiveSlackCalls}`);
  log(
    `notifications/s               ${figures.ours.notifications_per_s.toFixed(0).padEnd(22)} ${figures.naive.notifications_per_s.toFixed(0).padEnd(25)} ${(figures.ours.notifications_per_s / figures.naive.notifications_per_s).toFixed(0)}x`
  );
  log(`non-200 answers               ${String(figures.ours.non_200).padEnd(22)} ${figures.naive.non_200}`);
  const met = (ok: boolean) => (ok ? 'MET' : 'NOT MET');
  log('');
  log(
    `target: ack p99 <= ${TARGET_ACK_P99_MS} ms with ${IN_FLIGHT} in flight: ${fmtMs(figures.ours.ack_p99_ms)}, ` +
      `${met(figures.ours.ack_p99_ms <= TARGET_ACK_P99_MS)} (naive ${fmtMs(figures.naive.ack_p99_ms)})`
  );
  log(
    `target: >= ${TARGET_NOTIFICATIONS_PER_S} notifications/s stored and queued: ${figures.ours.notifications_per_s.toFixed(0)}/s, ` +
      `${met(figures.ours.notifications_per_s >= TARGET_NOTIFICATIONS_PER_S)} (naive ${figures.naive.notifications_per_s.toFixed(0)}/s)`
  );
  log(
    `store path alone (no HTTP, no worker), ${IN_FLIGHT} in flight: one transaction per notification p50 ${fmtMs(storeAlone.p50_ms)}, ` +
      `p99 ${fmtMs(storeAlone.p99_ms)}, ${storeAlone.per_s.toFixed(0)}/s; group commit p50 ${fmtMs(storeBatched.p50_ms)}, ` +
      `p99 ${fmtMs(storeBatched.p99_ms)}, ${storeBatched.per_s.toFixed(0)}/s (${(storeBatched.per_s / storeAlone.per_s).toFixed(1)}x)`
  );
  log(
    `a storm's first batch (10 notifications) after a quiet spell, ${FIRST_BATCH_TRIES} tries: on a new session ` +
      `(connect, first statement) p50 ${fmtMs(firstBatchCold.p50_ms)}, max ${fmtMs(firstBatchCold.max_ms)}; on the inbox's ` +
      `kept, warmed session p50 ${fmtMs(firstBatchWarm.p50_ms)}, max ${fmtMs(firstBatchWarm.max_ms)} ` +
      `(${(firstBatchCold.p50_ms / firstBatchWarm.p50_ms).toFixed(1)}x)`
  );
  log(
    `machine floor (same storm and sender, a bare node:http server answering at once, no work): ack p50 ` +
      `${fmtMs(floor.ack_p50_ms)}, p99 ${fmtMs(floor.ack_p99_ms)}, ${floor.notifications_per_s.toFixed(0)} notifications/s`
  );
  log('where the ack time goes (ours, per POST):   p50        p99        share of the total wait');
  for (const [phase, b] of Object.entries(figures.ours.breakdown))
    log(
      `  ${phase.padEnd(40)} ${fmtMs(b.p50_ms).padEnd(10)} ${fmtMs(b.p99_ms).padEnd(10)} ${(b.share * 100).toFixed(0)}%`
    );
  // Where the slowest answers are: the storm's first IN_FLIGHT POSTs arrive together on new connections
  // (IN_FLIGHT of 690 is 2.9%, more than the 1% a p99 leaves out), or anywhere after.
  const opening = bySending.slice(0, IN_FLIGHT).map((r) => r.ms);
  const afterOpening = bySending.slice(IN_FLIGHT).map((r) => r.ms);
  log(
    `where the slowest answers are: the storm's opening (its first ${IN_FLIGHT} POSTs, together, on new connections) ` +
      `ack p50 ${fmtMs(percentile(opening, 50))}, max ${fmtMs(Math.max(...opening))}; the ${afterOpening.length} after it ` +
      `p99 ${fmtMs(percentile(afterOpening, 99))}, ${((afterOpening.filter((ms) => ms <= TARGET_ACK_P99_MS).length / afterOpening.length) * 100).toFixed(1)}% ` +
      `within ${TARGET_ACK_P99_MS} ms (the target is the whole storm's p99)`
  );
  log(
    `garbage collection on the receiver's event loop during the storm: ${gc.pauses} pauses (${gc.minor_pauses} of the ` +
      `young generation), longest ${fmtMs(gc.max_pause_ms)}, ${fmtMs(gc.total_pause_ms)} in all; the ${gc.posts_across_a_pause} ` +
      `POSTs in flight across one: ack p50 ${fmtMs(gc.across_ack_p50_ms)}, p99 ${fmtMs(gc.across_ack_p99_ms)}; the ` +
      `${ours.length - gc.posts_across_a_pause} others: p50 ${fmtMs(gc.others_ack_p50_ms)}, p99 ${fmtMs(gc.others_ack_p99_ms)}; ` +
      `of the ${gc.slowest_1pct} slowest (at or above the p99), ${gc.slowest_1pct_across_a_pause} were in flight across a pause`
  );
  const loopLine = (l: typeof httpLoop) =>
    `busy ${(l.utilisation * 100).toFixed(0)}% of the storm, timer delay p50 ${fmtMs(l.delay_p50_ms)}, p99 ${fmtMs(l.delay_p99_ms)}`;
  log(`HTTP event loop during the storm (${shapeName(DEPLOYED_QUEUE_THREAD)}): ${loopLine(httpLoop)}`);
  // What the storm's CPU allows at most: every core busy, nothing else running.
  const cpuTotal = cpuPerNotification.receiver_ms + cpuPerNotification.postgres_ms + cpuPerNotification.sender_ms;
  log(
    `CPU per notification during the storm: receiver process ${fmtMs(cpuPerNotification.receiver_ms)} (its event ` +
      `loop's thread ${fmtMs(cpuPerNotification.receiver_main_thread_ms)}, V8's and libuv's threads the rest), Postgres ` +
      `${fmtMs(cpuPerNotification.postgres_ms)}, the sender (Alertmanager's stand-in) ${fmtMs(cpuPerNotification.sender_ms)}: ` +
      `${os.availableParallelism()} cores allow at most ${((os.availableParallelism() * 1000) / cpuTotal).toFixed(0)}/s at that cost`
  );
  const otherShape = figures.other_shape;
  if (otherShape)
    log(
      `same run, ${shapeName(!DEPLOYED_QUEUE_THREAD)}: ack p50 ${fmtMs(otherShape.ack_p50_ms)}, ` +
        `p99 ${fmtMs(otherShape.ack_p99_ms)}, ${otherShape.notifications_per_s.toFixed(0)} notifications/s, respond p50 ` +
        `${fmtMs(otherShape.breakdown.respond.p50_ms)}; HTTP event loop ${loopLine(otherShape.http_event_loop)}`
    );
  figures.warmups.forEach((w, i) =>
    log(
      `warm-up storm ${i + 1} of ${warmups.length} (${shapeName(DEPLOYED_QUEUE_THREAD)}; not counted above): ack p50 ` +
        `${fmtMs(w.ack_p50_ms)}, p99 ${fmtMs(w.ack_p99_ms)}, ${w.notifications_per_s.toFixed(0)} notifications/s`
    )
  );
  log(
    `ours without load (1 in flight): ack p50 ${fmtMs(figures.ours.unloaded_ack_p50_ms)}, p99 ${fmtMs(figures.ours.unloaded_ack_p99_ms)}`
  );
  log(`ours: storm digest posted ${digestDelays.map((d) => fmtMs(d)).join(', ')} after each channel's storm opened`);
  log(
    `(ours: last Slack call ${fmtMs(lastSlackMs)} after the first POST, ${roots} root messages incl. storm digests; ` +
      `Slack spacing ${INTERVAL_MS} ms per channel for both, naive latencies scale with it)`
  );

  const outDir = path.join(projectRoot, 'bench', 'results');
  await fs.mkdir(outDir, { recursive: true });
  const file = path.join(outDir, `receiver-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  await fs.writeFile(file, JSON.stringify({ ...figures, ratio }, null, 2));
  log(`figures written to ${path.relative(projectRoot, file)}`);
  if (figures.ours.non_200 > 0 || !actedOn || (other && (other.ours.some((r) => r.status !== 200) || !other.actedOn)))
    process.exitCode = 1;
} finally {
  await cluster.handle.stop();
}
