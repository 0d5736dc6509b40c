import { withClient, type Pool, type PoolClient } from '../../core/db.ts';
import { queueNameFor } from '../../core/jobs.ts';
import { ALERT_GROUP_TASK } from '../tasks.ts';
import type { IngestPriority } from '../../core/ingest-priority.ts';
import type { AlertSource, NotificationPayload } from './payloads.ts';

export interface InboxResult {
  notificationId: number;
  newEvents: number;
  duplicates: number;
  /** Where the time went, in milliseconds (the webhook reports it in a Server-Timing header). */
  timings: StoreTimings;
}

/**
 * wait: for a connection (and in the inbox, for the batch before); store: the one statement that inserts,
 * queues the jobs and commits (the WAL flush), the whole batch's.
 */
export interface StoreTimings {
  wait: number;
  store: number;
}

export interface IncomingNotification {
  source: AlertSource;
  payload: NotificationPayload;
  /**
   * The body as received, when it is the JSON text `payload` was validated from: stored as the
   * notification's payload as sent, instead of serialising `payload` again on the HTTP event loop.
   */
  raw?: string;
}

/** The SQLSTATE controlroom.alert_jobs_queued raises when add_jobs skipped a keyed job (migration 1700000000038). */
const JOB_LOCKED_MID_ADD = 'CRJ01';
/** Tries of the statement when that happens (a worker must lock the group's job in a microsecond window). */
const STATEMENT_TRIES = 5;

/**
 * Stores notifications and their alert state changes, and queues each group's processing, in ONE
 * autocommit statement: one round trip, and atomic like any single statement. Once it returns every
 * webhook in it can be answered and nothing can be lost; if it fails, none of it happened. A state change
 * seen before (same group, fingerprint, startsAt and status), in an earlier statement or earlier in this
 * one, is stored as delivered but acts no more: it counts as a duplicate of the notification it came in.
 * Results are in the order of `notifications`.
 *
 * The state changes are inserted sorted by their unique key and the jobs added sorted by job key, so two
 * statements inserting overlapping changes (two instances, or two batches) wait for each other in one
 * order and normally never deadlock; add_jobs' own first steps (tasks and queues) do not promise an order,
 * so a caller storing several groups must survive a deadlock error (NotificationInbox does).
 */
export async function storeNotifications(
  pool: Pool,
  notifications: readonly IncomingNotification[]
): Promise<InboxResult[]> {
  const started = performance.now();
  return withClient(pool, async (client, markBroken) => {
    const connected = performance.now();
    for (let attempt = 1; ; attempt++) {
      try {
        const stored = await storeAndQueue(client, notifications);
        const timings: StoreTimings = { wait: connected - started, store: performance.now() - connected };
        return stored.map((r) => ({ ...r, timings }));
      } catch (error) {
        // The statement rolled back whole: running it again stores nothing twice.
        if ((error as { code?: string }).code !== JOB_LOCKED_MID_ADD || attempt >= STATEMENT_TRIES) {
          // Without a SQLSTATE the connection itself failed (a timeout, Postgres gone): not reused.
          if (!(error as { code?: string }).code) markBroken(error as Error);
          throw error;
        }
      }
    }
  });
}

/** One notification on its own (tests and tools; the webhook goes through NotificationInbox). */
export async function storeNotification(
  pool: Pool,
  source: AlertSource,
  payload: NotificationPayload
): Promise<InboxResult> {
  const [result] = await storeNotifications(pool, [{ source, payload }]);
  return result!;
}

/**
 * The notifications, their state changes and their groups' jobs in one statement. Notification ids are
 * drawn first (one materialised row per notification, numbered by its position), so each state change is
 * tied to its notification and the answer comes back per notification, in order.
 *
 * The payloads go to Postgres as ONE JSON array (the bodies as received, joined), and the state changes
 * are read from them there: the HTTP event loop neither serialises labels and annotations per alert nor
 * escapes a megabyte of payloads into array literals (that escaping was most of the statement's cost in
 * JavaScript). The fields read are the ones validation checked (payloads.ts), with its defaults
 * (annotations {}; an endsAt of 0001-01-01, or none, is no end).
 *
 * One pending alert_group job per group with a new state change: a burst of notifications for the group
 * is handled in one pass. The group's named queue runs its jobs one at a time: a notification arriving
 * while the group is being processed queues a second job that waits, instead of racing the first to post
 * a root. The jobs are core/jobs.ts enqueueJobs' (replace mode, 25 attempts, run now), added by
 * graphile_worker.add_jobs inside the statement; its SELECT is referenced by the final one, or Postgres
 * would not run it.
 */
async function storeAndQueue(
  client: PoolClient,
  notifications: readonly IncomingNotification[]
): Promise<Array<Omit<InboxResult, 'timings'>>> {
  // Every group of the batch, as a job spec; the statement keeps those with a new state change.
  const groups = new Map<string, { source: AlertSource; groupKey: string }>();
  for (const { source, payload } of notifications)
    groups.set(`${source}:${payload.groupKey}`, { source, groupKey: payload.groupKey });
  const jobs = [...groups].map(([identity, group]) => ({
    ...group,
    jobKey: `${ALERT_GROUP_TASK}:${identity}`,
    queueName: queueNameFor(ALERT_GROUP_TASK, identity),
    payload: JSON.stringify(group satisfies GraphileWorker.Tasks[typeof ALERT_GROUP_TASK]),
  }));
  // Named: each connection parses and plans the statement once, not for every batch.
  const { rows } = await client.query<{ id: string; new_events: number }>({
    name: 'controlroom.store_and_queue_notifications',
    // The leading comment names the statement where pg_stat_activity truncates its text (1 kB by default).
    // ROWS FROM zips the arrays and the payloads' elements by position. The state changes are inserted in
    // the order of their unique key (byte order, startsAt as an instant; an earlier notification first),
    // so two statements inserting overlapping changes wait for each other in one order.
    text: `/* controlroom inbox: store notifications, graphile_worker.add_jobs for their groups */
     WITH notification AS MATERIALIZED (
       SELECT nextval('controlroom.alert_notifications_id_seq') AS id, n.*
         FROM ROWS FROM (unnest($1::text[]), unnest($2::text[]), unnest($3::text[]), unnest($4::text[]),
                         jsonb_array_elements($5::jsonb)) WITH ORDINALITY
              AS n(source, group_key, status, receiver, payload, position)
        ORDER BY n.position
     ), stored AS (
       INSERT INTO controlroom.alert_notifications (id, source, group_key, status, receiver, payload)
       SELECT id, source, group_key, status, receiver, payload FROM notification
     ), alert AS (
       SELECT n.id AS notification_id, n.position, n.source, n.group_key, a->>'fingerprint' AS fingerprint,
              a->>'status' AS status, (a->>'startsAt')::timestamptz AS starts_at,
              CASE WHEN coalesce(a->>'endsAt', '') = '' OR a->>'endsAt' LIKE '0001-%' THEN NULL
                   ELSE (a->>'endsAt')::timestamptz END AS ends_at,
              a->'labels' AS labels, coalesce(a->'annotations', '{}'::jsonb) AS annotations,
              a->>'generatorURL' AS generator_url
         FROM notification n CROSS JOIN LATERAL jsonb_array_elements(n.payload->'alerts') AS a
     ), inserted AS (
       INSERT INTO controlroom.alert_events
         (notification_id, source, group_key, fingerprint, status, starts_at, ends_at, alertname, severity,
          labels, annotations, generator_url)
       SELECT notification_id, source, group_key, fingerprint, status, starts_at, ends_at,
              labels->>'alertname', labels->>'severity', labels, annotations, generator_url
         FROM alert
        ORDER BY source COLLATE "C", group_key COLLATE "C", fingerprint COLLATE "C", starts_at,
                 status COLLATE "C", position
       ON CONFLICT (source, group_key, fingerprint, starts_at, status) DO NOTHING
       RETURNING notification_id, source, group_key
     ), job AS (
       SELECT j.job_key, j.queue_name, j.payload
         FROM unnest($6::text[], $7::text[], $8::text[], $9::text[], $10::json[])
              AS j(source, group_key, job_key, queue_name, payload)
        WHERE EXISTS (SELECT 1 FROM inserted i WHERE i.source = j.source AND i.group_key = j.group_key)
     ), queued AS (
       -- Not called at all (no wake-up) when the batch has nothing new.
       SELECT count(*) AS n FROM graphile_worker.add_jobs(ARRAY(
         SELECT ROW($11::text, j.payload, j.queue_name, NULL::timestamptz, 25, j.job_key, NULL::int, NULL::text[])::graphile_worker.job_spec
           FROM job j ORDER BY j.job_key COLLATE "C"))
        WHERE EXISTS (SELECT 1 FROM job)
     ), checked AS (
       SELECT controlroom.alert_jobs_queued((SELECT count(*) FROM job), (SELECT n FROM queued)) AS n
     )
     SELECT n.id, (SELECT count(*) FROM inserted i WHERE i.notification_id = n.id)::int AS new_events,
            (SELECT c.n FROM checked c) AS queued
       FROM notification n
      ORDER BY n.position`,
    values: [
      notifications.map((n) => n.source),
      notifications.map((n) => n.payload.groupKey),
      notifications.map((n) => n.payload.status),
      notifications.map((n) => n.payload.receiver),
      // Each element is a JSON document (a body that parsed, or a payload serialised), so this is one.
      `[${notifications.map((n) => n.raw ?? JSON.stringify(n.payload)).join(',')}]`,
      jobs.map((j) => j.source),
      jobs.map((j) => j.groupKey),
      jobs.map((j) => j.jobKey),
      jobs.map((j) => j.queueName),
      jobs.map((j) => j.payload),
      ALERT_GROUP_TASK,
    ],
  });
  return rows.map((row, i) => ({
    notificationId: Number(row.id),
    newEvents: row.new_events,
    duplicates: notifications[i]!.payload.alerts.length - row.new_events,
  }));
}

/** The warm-up's batch: as many notifications as a storm's batch holds here (bench/receiver: 10 to 20). */
const WARM_UP_NOTIFICATIONS = 20;
/** Alerts per warm-up notification (Alertmanager resends a group's whole set: a storm's hold 2 to 5). */
const WARM_UP_ALERTS = 5;
/**
 * Runs of the warm-up statement. Postgres plans a prepared statement afresh (a custom plan) on each of its
 * first five executions, and only from the sixth may run a cached generic plan (plancache.c,
 * choose_custom_plan: `num_custom_plans < 5`); the same holds for each statement inside add_jobs' PL/pgSQL.
 */
const WARM_UP_RUNS = 6;

/**
 * What the warm-up stores, and rolls back: a storm-sized batch of firing alerts, of groups no sender uses
 * (`:` never starts Alertmanager's or Grafana's group keys, which start with `{`).
 */
export const WARM_UP_GROUP_PREFIX = ':controlroom-warm-up';
const WARM_UP_BATCH: IncomingNotification[] = Array.from({ length: WARM_UP_NOTIFICATIONS }, (_, n) => ({
  source: 'alertmanager',
  payload: {
    version: '4',
    receiver: 'controlroom-warm-up',
    status: 'firing',
    groupKey: `${WARM_UP_GROUP_PREFIX}:${n}`,
    groupLabels: {},
    commonLabels: {},
    commonAnnotations: {},
    externalURL: '',
    truncatedAlerts: 0,
    alerts: Array.from({ length: WARM_UP_ALERTS }, (_, a) => ({
      status: 'firing' as const,
      labels: { alertname: 'ControlRoomWarmUp', severity: 'P3', instance: `warm-up-${a}` },
      annotations: { summary: 'Control Room warms its webhook inbox connection' },
      startsAt: '2000-01-01T00:00:00Z',
      fingerprint: `controlroom-warm-up-${n}-${a}`,
    })),
  },
}));

/**
 * Runs the inbox's statement on `client` as a storm's batch would, WARM_UP_RUNS times, each in a
 * transaction rolled back, so the connection's first real batches find the statement parsed and past its
 * custom-plan executions, Postgres's caches loaded (the tables' and indexes' catalog entries, add_jobs' and
 * alert_jobs_queued's compiled PL/pgSQL) and the backend's memory grown to a batch's size. Measured here
 * (20-notification batches of the benchmark's storm, Postgres backend CPU from /proc): after one small
 * warm-up statement the first real batch took 9-10 ms and the second 5-6 ms; after this warm-up, 5 and 3
 * ms, as later batches do. A new session's first statement took 26-34 ms. Nothing of it stays: no row, no
 * job, no wake-up (NOTIFY is sent at commit only); notification and job ids are used up (WARM_UP_RUNS x
 * WARM_UP_NOTIFICATIONS of each, per connection), as by any failed batch.
 */
async function warmConnection(client: PoolClient): Promise<void> {
  for (let run = 0; run < WARM_UP_RUNS; run++) {
    await client.query('BEGIN');
    try {
      await storeAndQueue(client, WARM_UP_BATCH);
    } finally {
      await client.query('ROLLBACK');
    }
  }
}

interface Waiting extends IncomingNotification {
  queuedAt: number;
  resolve: (result: InboxResult) => void;
  reject: (error: unknown) => void;
}

/** A batch's state changes at most: one notification may carry 10,000 (payloads.ts); one batch holds at least one. */
export const MAX_BATCH_ALERTS = 10_000;

/**
 * Group commit for the webhook. A notification arriving while fewer than `maxConcurrentBatches` batches
 * are being stored starts a batch two turns of the event loop later (scheduleStart), so the notifications
 * whose requests had already arrived go in it too; those arriving while it is stored wait and go together
 * in the next batch (one statement, one round trip, one WAL flush and one worker wake-up for all of them),
 * which starts as soon as the statement before returns, before that one's webhooks are answered. Under a
 * storm the batches grow with the load; when calm each notification costs what it did alone (two idle
 * turns of the loop are microseconds).
 *
 * The guarantee is the single store's: a webhook is answered 200 only after the statement holding its
 * notification and its group's job committed. If a batch fails, each of its notifications is stored again
 * on its own, so one notification's failure (or a deadlock with another instance) is answered to its
 * sender only. `maxConcurrentBatches` bounds the connections the inbox holds (the HTTP pool serves other
 * routes too); each is held for one statement only.
 */
export class NotificationInbox {
  private waiting: Waiting[] = [];
  private batchesInFlight = 0;
  private startScheduled = false;

  constructor(
    private readonly pool: Pool,
    private readonly maxConcurrentBatches = 1,
    /** Told when a batch failed and its notifications are being stored one by one. */
    private readonly onBatchFailed?: (error: unknown, size: number) => void,
    /** Told when a notification must wait for a batch (a backlog: background work steps aside). */
    private readonly priority?: IngestPriority
  ) {}

  /**
   * Opens the inbox's `maxConcurrentBatches` connections and warms each (warmConnection), so the first
   * webhook of an incident is stored as fast as the rest: run at start-up, on a pool that keeps its idle
   * connections (the alerting feature's own). A connection that fails the warm-up is discarded, and the
   * error thrown; the inbox then still works, on cold connections.
   */
  async warm(): Promise<void> {
    const clients = await Promise.allSettled(
      Array.from({ length: this.maxConcurrentBatches }, () => this.pool.connect())
    );
    const warmed = await Promise.allSettled(
      clients.map(async (checkout) => {
        if (checkout.status === 'rejected') throw checkout.reason;
        const client = checkout.value;
        try {
          await warmConnection(client);
          client.release();
        } catch (error) {
          client.release(error as Error);
          throw error;
        }
      })
    );
    const failed = warmed.find((w) => w.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** `raw`: the body `payload` was validated from, stored as sent (IncomingNotification). */
  store(source: AlertSource, payload: NotificationPayload, raw?: string): Promise<InboxResult> {
    return new Promise<InboxResult>((resolve, reject) => {
      this.waiting.push({ source, payload, raw, queuedAt: performance.now(), resolve, reject });
      // Two waiting, or a batch of several below: notifications arrive faster than they are stored. (One
      // waiting is not a backlog: a sender that posts as soon as it is answered can be a tick early.)
      if (this.waiting.length > 1) this.priority?.backlogSeen();
      this.scheduleStart();
    });
  }

  /**
   * Starts a batch two turns of the event loop from now, unless one is due or none may start (then the
   * batch in flight starts the next when it is done). A storm after a quiet spell opens with Alertmanager's
   * concurrent POSTs on new connections, whose requests the server reads over a few turns. Started at once,
   * the first notification was stored alone and the rest waited for its commit: in bench/receiver that
   * opening made the storm's p99. Two turns later, the first batch held 2 to 20 of the opening's 20
   * (most often 7 to 13).
   */
  private scheduleStart(): void {
    if (this.startScheduled || this.batchesInFlight >= this.maxConcurrentBatches) return;
    this.startScheduled = true;
    setImmediate(() =>
      setImmediate(() => {
        this.startScheduled = false;
        this.startBatches();
      })
    );
  }

  private startBatches(): void {
    while (this.batchesInFlight < this.maxConcurrentBatches && this.waiting.length > 0) {
      let alerts = 0;
      let size = 0;
      while (size < this.waiting.length) {
        alerts += this.waiting[size]!.payload.alerts.length;
        if (size > 0 && alerts > MAX_BATCH_ALERTS) break;
        size++;
      }
      const batch = this.waiting.splice(0, size);
      if (batch.length > 1) this.priority?.backlogSeen();
      this.batchesInFlight++;
      void this.storeBatch(batch);
    }
  }

  /** A batch's statement is done (or its notifications all stored again one by one): the next may start. */
  private batchDone(): void {
    this.batchesInFlight--;
    this.startBatches();
  }

  private async storeBatch(batch: Waiting[]): Promise<void> {
    const batchStarted = performance.now();
    const settle = (entry: Waiting, result: InboxResult) =>
      entry.resolve({
        ...result,
        timings: { ...result.timings, wait: result.timings.wait + (batchStarted - entry.queuedAt) },
      });
    let results: InboxResult[];
    try {
      results = await storeNotifications(this.pool, batch);
    } catch (error) {
      try {
        await this.storeOneByOne(batch, error, settle);
      } finally {
        this.batchDone();
      }
      return;
    }
    // The next batch goes to Postgres before this one's webhooks are answered, so Postgres stores it while
    // the event loop writes the answers. (Resolving them queues their handlers, each writing its answer,
    // ahead of anything queued after: the other way round the next statement waited for every answer.)
    // This one's connection is back in the pool already (withClient).
    this.batchDone();
    batch.forEach((entry, i) => settle(entry, results[i]!));
  }

  /**
   * A failed batch's notifications, stored again each on its own, so each sender hears its own outcome.
   * The batch's slot is held meanwhile: the next batch waits, as the inbox's connections are its slots.
   */
  private async storeOneByOne(
    batch: Waiting[],
    error: unknown,
    settle: (entry: Waiting, result: InboxResult) => void
  ): Promise<void> {
    try {
      this.onBatchFailed?.(error, batch.length);
    } catch {
      // A failing observer (the log line) must not leave the batch's webhooks unanswered.
    }
    if (batch.length === 1) {
      batch[0]!.reject(error);
      return;
    }
    for (const entry of batch) {
      await storeNotifications(this.pool, [entry]).then(
        ([result]) => settle(entry, result!),
        (alone: unknown) => entry.reject(alone)
      );
    }
  }
}
