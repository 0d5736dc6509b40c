import { z } from 'zod';

const labelMap = z.record(z.string(), z.string());
/**
 * JavaScript reads 30 February as 2 March; Postgres refuses it. Such a date is the sender's mistake (a 400
 * naming the field), not a failed insert (a 500).
 */
const calendarDateExists = (s: string) => {
  const date = /^(\d{4})-(\d{2})-(\d{2})/.exec(s);
  if (!date) return true;
  const [year, month, day] = [Number(date[1]), Number(date[2]), Number(date[3])];
  return month >= 1 && month <= 12 && day >= 1 && day <= new Date(Date.UTC(year, month, 0)).getUTCDate();
};
const timestamp = z
  .string()
  .refine((s) => !Number.isNaN(Date.parse(s)) && calendarDateExists(s), 'must be an RFC 3339 timestamp');

const alert = z
  .object({
    status: z.enum(['firing', 'resolved']),
    labels: labelMap.refine(
      (l) => typeof l.alertname === 'string' && l.alertname.length > 0,
      'needs an alertname label'
    ),
    annotations: labelMap.default({}),
    startsAt: timestamp,
    endsAt: timestamp.optional(),
    generatorURL: z.string().optional(),
    fingerprint: z.string().min(1),
  })
  .passthrough();

const common = {
  receiver: z.string(),
  status: z.enum(['firing', 'resolved']),
  groupKey: z.string().min(1),
  groupLabels: labelMap.default({}),
  commonLabels: labelMap.default({}),
  commonAnnotations: labelMap.default({}),
  externalURL: z.string().default(''),
  truncatedAlerts: z.number().int().min(0).default(0),
  alerts: z.array(alert).min(1).max(10_000),
};

/** Alertmanager webhook, payload version 4. */
export const alertmanagerPayload = z.object({ version: z.literal('4'), ...common }).passthrough();

/** Grafana Alerting webhook contact point (payload version "1"; title/state/message are deprecated extras). */
export const grafanaPayload = z
  .object({ version: z.string().default('1'), orgId: z.number().optional(), ...common })
  .passthrough();

export type NotificationPayload = z.infer<typeof alertmanagerPayload> | z.infer<typeof grafanaPayload>;
export type { AlertSource } from '../events.ts';
