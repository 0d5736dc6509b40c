import type { Pool, PoolClient } from '../../core/db.ts';
import { withTransaction } from '../../core/db.ts';
import { enqueueJobs, queueNameFor } from '../../core/jobs.ts';
import { ALERT_GROUP_TASK } from '../tasks.ts';
import type { AlertSource, NotificationPayload } from './payloads.ts';

export interface InboxResult {
  notificationId: number;
  newEvents: number;
  duplicates: number;
  /** Where the time went, in milliseconds (the webhook reports it in a Server-Timing header). */
  timings: StoreTimings;
}

/**
 * wait: for the transaction to start (a connection, and in the inbox the batch before); store: the
 * inserts; queue: the jobs; commit: COMMIT (the WAL flush). store, queue and commit are the whole batch's.
 */
export interface StoreTimings {
  wait: number;
  store: number;
  queue: number;
  commit: number;
}

export interface IncomingNotification {
  source: AlertSource;
  payload: NotificationPayload;
}

const endsAtOf = (endsAt: string | undefined) => (endsAt && !endsAt.startsWith('0001-') ? endsAt : null);
const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Stores notifications and their alert state changes, and queues each group's processing, in ONE
 * transaction: once it commits every webhook in it can be answered and nothing can be lost; if it fails,
 * none of it happened. A state change seen before (same group, fingerprint, startsAt and status), in an
 * earlier transaction or earlier in this one, is stored as delivered but acts no more: it counts as a
 * duplicate of the notification it came in. Results are in the order of `notifications`.
 *
 * The state changes are inserted sorted by their unique key, so two transactions inserting overlapping
 * changes (two instances, or two batches) wait for each other in one order and never deadlock.
 */
export async function storeNotifications(
  pool: Pool,
  notifications: readonly IncomingNotification[]
): Promise<InboxResult[]> {
  const started = performance.now();
  let storeStarted = started;
  let queueStarted = started;
  let commitStarted = started;
  const results = await withTransaction(pool, 'READ COMMITTED', async (client) => {
    storeStarted = performance.now();
    const stored = await insertNotifications(client, notifications);
    queueStarted = performance.now();
    // One pending job per group: a burst of notifications for the group is handled in one pass.
    // The named queue runs a group's jobs one at a time: a notification arriving while the group is
    // being processed queues a second job that waits, instead of racing the first to post a root.
    const groups = new Map<string, { source: AlertSource; groupKey: string }>();
    stored.forEach((s, i) => {
      const { source, payload } = notifications[i]!;
      if (s.newEvents > 0) groups.set(`${source}:${payload.groupKey}`, { source, groupKey: payload.groupKey });
    });
    if (groups.size > 0) {
      await enqueueJobs(
        client,
        ALERT_GROUP_TASK,
        [...groups].map(([identity, payload]) => ({
          payload,
          jobKey: `${ALERT_GROUP_TASK}:${identity}`,
          queueName: queueNameFor(ALERT_GROUP_TASK, identity),
        }))
      );
    }
    commitStarted = performance.now();
    return stored;
  });
  const timings: StoreTimings = {
    // BEGIN goes out as soon as a connection is handed over: its round trip counts as waiting.
    wait: storeStarted - started,
    store: queueStarted - storeStarted,
    queue: commitStarted - queueStarted,
    commit: performance.now() - commitStarted,
  };
  return results.map((r) => ({ ...r, timings }));
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
 * The notifications and their state changes in one statement. Notification ids are drawn first (one
 * materialised row per notification, numbered by its position), so each state change is tied to its
 * notification by position and the answer comes back per notification, in order.
 */
async function insertNotifications(
  client: PoolClient,
  notifications: readonly IncomingNotification[]
): Promise<Array<Omit<InboxResult, 'timings'>>> {
  const alerts = notifications.flatMap(({ source, payload }, index) =>
    payload.alerts.map((alert) => ({ position: index + 1, source, groupKey: payload.groupKey, alert }))
  );
  // The unique key's order (startsAt as an instant, so two spellings of one time sort together).
  alerts.sort(
    (a, b) =>
      compare(a.source, b.source) ||
      compare(a.groupKey, b.groupKey) ||
      compare(a.alert.fingerprint, b.alert.fingerprint) ||
      Date.parse(a.alert.startsAt) - Date.parse(b.alert.startsAt) ||
      compare(a.alert.status, b.alert.status)
  );
  // Named: each connection parses and plans the statement once, not for every batch.
  const { rows } = await client.query<{ id: string; new_events: number }>({
    name: 'controlroom.store_notifications',
    text: `WITH notification AS MATERIALIZED (
       SELECT nextval('controlroom.alert_notifications_id_seq') AS id, n.*
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[]) WITH ORDINALITY
              AS n(source, group_key, status, receiver, payload, position)
     ), stored AS (
       INSERT INTO controlroom.alert_notifications (id, source, group_key, status, receiver, payload)
       SELECT id, source, group_key, status, receiver, payload FROM notification
     ), inserted AS (
       INSERT INTO controlroom.alert_events
         (notification_id, source, group_key, fingerprint, status, starts_at, ends_at, alertname, severity,
          labels, annotations, generator_url)
       SELECT n.id, n.source, n.group_key, a.fingerprint, a.status, a.starts_at, a.ends_at,
              a.labels->>'alertname', a.labels->>'severity', a.labels, a.annotations, a.generator_url
         FROM unnest($6::int[], $7::text[], $8::text[], $9::timestamptz[], $10::timestamptz[], $11::jsonb[],
                     $12::jsonb[], $13::text[]) WITH ORDINALITY
              AS a(notification, fingerprint, status, starts_at, ends_at, labels, annotations, generator_url, ord)
         JOIN notification n ON n.position = a.notification
        ORDER BY a.ord
       ON CONFLICT (source, group_key, fingerprint, starts_at, status) DO NOTHING
       RETURNING notification_id
     )
     SELECT n.id, (SELECT count(*) FROM inserted i WHERE i.notification_id = n.id)::int AS new_events
       FROM notification n
      ORDER BY n.position`,
    values: [
      notifications.map((n) => n.source),
      notifications.map((n) => n.payload.groupKey),
      notifications.map((n) => n.payload.status),
      notifications.map((n) => n.payload.receiver),
      notifications.map((n) => JSON.stringify(n.payload)),
      alerts.map((a) => a.position),
      alerts.map((a) => a.alert.fingerprint),
      alerts.map((a) => a.alert.status),
      alerts.map((a) => a.alert.startsAt),
      alerts.map((a) => endsAtOf(a.alert.endsAt)),
      alerts.map((a) => JSON.stringify(a.alert.labels)),
      alerts.map((a) => JSON.stringify(a.alert.annotations)),
      alerts.map((a) => a.alert.generatorURL ?? null),
    ],
  });
  return rows.map((row, i) => ({
    notificationId: Number(row.id),
    newEvents: row.new_events,
    duplicates: notifications[i]!.payload.alerts.length - row.new_events,
  }));
}

interface Waiting extends IncomingNotification {
  queuedAt: number;
  resolve: (result: InboxResult) => void;
  reject: (error: unknown) => void;
}

/** A batch's state changes at most: one notification may carry 10,000 (payloads.ts); one batch holds at least one. */
export const MAX_BATCH_ALERTS = 10_000;

/**
 * Group commit for the webhook. A notification arriving while no batch is being stored is stored at
 * once, alone; those arriving meanwhile wait and go together in the next transaction (one round trip per
 * statement, one WAL flush and one worker wake-up for all of them). Under a storm the batches grow with
 * the load; when calm each notification costs what it did alone.
 *
 * The guarantee is the single store's: a webhook is answered 200 only after the transaction holding its
 * notification committed. If a batch fails, each of its notifications is stored again on its own, so one
 * notification's failure (or a deadlock with another instance) is answered to its sender only.
 * `maxConcurrentBatches` bounds the connections the inbox holds (the HTTP pool serves other routes too).
 */
export class NotificationInbox {
  private waiting: Waiting[] = [];
  private batchesInFlight = 0;

  constructor(
    private readonly pool: Pool,
    private readonly maxConcurrentBatches = 1,
    /** Told when a batch failed and its notifications are being stored one by one. */
    private readonly onBatchFailed?: (error: unknown, size: number) => void
  ) {}

  store(source: AlertSource, payload: NotificationPayload): Promise<InboxResult> {
    return new Promise<InboxResult>((resolve, reject) => {
      this.waiting.push({ source, payload, queuedAt: performance.now(), resolve, reject });
      this.startBatches();
    });
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
      this.batchesInFlight++;
      void this.storeBatch(batch).finally(() => {
        this.batchesInFlight--;
        this.startBatches();
      });
    }
  }

  private async storeBatch(batch: Waiting[]): Promise<void> {
    const batchStarted = performance.now();
    const settle = (entry: Waiting, result: InboxResult) =>
      entry.resolve({
        ...result,
        timings: { ...result.timings, wait: result.timings.wait + (batchStarted - entry.queuedAt) },
      });
    try {
      const results = await storeNotifications(this.pool, batch);
      batch.forEach((entry, i) => settle(entry, results[i]!));
    } catch (error) {
      this.onBatchFailed?.(error, batch.length);
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
}
