import type { Pool } from '../../core/db.ts';
import { withTransaction } from '../../core/db.ts';
import { enqueueJob, queueNameFor } from '../../core/jobs.ts';
import { ALERT_GROUP_TASK } from '../tasks.ts';
import type { AlertSource, NotificationPayload } from './payloads.ts';

export interface InboxResult {
  notificationId: number;
  newEvents: number;
  duplicates: number;
}

/**
 * Stores a notification and its alert state changes, and queues the group's processing, in one
 * transaction: once this returns the webhook can be answered and nothing can be lost. A state change
 * seen before (same group, fingerprint, startsAt and status) is stored as delivered but acts no more.
 */
export async function storeNotification(
  pool: Pool,
  source: AlertSource,
  payload: NotificationPayload
): Promise<InboxResult> {
  return withTransaction(pool, 'READ COMMITTED', async (client) => {
    const notification = await client.query<{ id: string }>(
      `INSERT INTO controlroom.alert_notifications (source, group_key, status, receiver, payload)
       VALUES ($1, $2, $3, $4, $5) RETURNING id`,
      [source, payload.groupKey, payload.status, payload.receiver, JSON.stringify(payload)]
    );
    const notificationId = Number(notification.rows[0]!.id);
    const alerts = payload.alerts;
    const inserted = await client.query(
      `INSERT INTO controlroom.alert_events
         (notification_id, source, group_key, fingerprint, status, starts_at, ends_at, alertname, severity,
          labels, annotations, generator_url)
       SELECT $1, $2, $3, a.fingerprint, a.status, a.starts_at, a.ends_at, a.labels->>'alertname', a.labels->>'severity',
              a.labels, a.annotations, a.generator_url
         FROM unnest($4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[], $8::jsonb[], $9::jsonb[], $10::text[])
              AS a(fingerprint, status, starts_at, ends_at, labels, annotations, generator_url)
       ON CONFLICT (source, group_key, fingerprint, starts_at, status) DO NOTHING
       RETURNING id`,
      [
        notificationId,
        source,
        payload.groupKey,
        alerts.map((a) => a.fingerprint),
        alerts.map((a) => a.status),
        alerts.map((a) => a.startsAt),
        alerts.map((a) => (a.endsAt && !a.endsAt.startsWith('0001-') ? a.endsAt : null)),
        alerts.map((a) => JSON.stringify(a.labels)),
        alerts.map((a) => JSON.stringify(a.annotations)),
        alerts.map((a) => a.generatorURL ?? null),
      ]
    );
    const newEvents = inserted.rowCount ?? 0;
    if (newEvents > 0) {
      // One pending job per group: a burst of notifications for the group is handled in one pass.
      // The named queue runs a group's jobs one at a time: a notification arriving while the group is
      // being processed queues a second job that waits, instead of racing the first to post a root.
      await enqueueJob(
        client,
        ALERT_GROUP_TASK,
        { source, groupKey: payload.groupKey },
        {
          jobKey: `${ALERT_GROUP_TASK}:${source}:${payload.groupKey}`,
          queueName: queueNameFor(ALERT_GROUP_TASK, `${source}:${payload.groupKey}`),
        }
      );
    }
    return { notificationId, newEvents, duplicates: alerts.length - newEvents };
  });
}
