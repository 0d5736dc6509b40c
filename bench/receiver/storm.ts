import { createHash } from 'node:crypto';
import http from 'node:http';
import { amPayload } from '../../testing/receiver-harness.ts';
import { timed } from '../stats.ts';
import { mulberry32 } from '../../core/random.ts';

/**
 * A 1000-alert storm as Alertmanager delivers it: 200 alert groups of 5 alerts each. Alertmanager sends
 * the whole group every time it changes, so each group arrives as three growing notifications (2, 4,
 * then 5 alerts), and some notifications are delivered twice (a retry after a timeout). The waves
 * overlap, so notifications of one group arrive concurrently and out of order. 30 of the groups are
 * usage alerts (UsageAbove80Percent / UsageAbove90Percent) of real companies: 5 exporter replicas each
 * raise the same (company, feature, threshold), seen by two Prometheus replicas (two groups).
 * Shared by alerting/receiver/storm.test.ts and bench/receiver/run.ts; deterministic for a seed.
 */
export type Severity = 'P1' | 'P2' | 'P3';

export interface StormGroup {
  groupKey: string;
  severity: Severity;
  alertname: string;
  fingerprints: string[];
  usage?: { companyId: string; feature: string; threshold: number };
}

export interface StormDelivery {
  groupKey: string;
  /** Alerts in this notification. */
  alerts: number;
  body: ReturnType<typeof amPayload>;
}

export interface Storm {
  groups: StormGroup[];
  deliveries: StormDelivery[];
  /** Unique (group, fingerprint) pairs: 1000. */
  totalAlerts: number;
  /** The (company, feature, threshold) triples the usage alerts stand for. */
  overageKeys: string[];
}

export const STORM_GROUPS = 200;
export const STORM_ALERTS_PER_GROUP = 5;
const SERVICE_ALERTS = [
  'HighErrorRate',
  'LatencySLOBurn',
  'QueueBacklog',
  'PodCrashLooping',
  'DiskFillingUp',
  'ReplicationLag',
  'CertificateExpiring',
];
const SEVERITIES: Severity[] = ['P1', 'P2', 'P3'];

export const overageKey = (companyId: string, feature: string, threshold: number | string) =>
  `${companyId}/${feature}/${threshold}`;

const fingerprint = (labels: Record<string, string>) =>
  createHash('sha256')
    .update(JSON.stringify(Object.entries(labels).sort()))
    .digest('hex')
    .slice(0, 16);

const groupKeyOf = (labels: Record<string, string>) =>
  `{}:{${Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .join(', ')}}`;

/** Needs at least 6 company ids (each with a 'pro' entitlement for the overage tasks to be meaningful). */
export function buildStorm(companyIds: readonly string[], options: { seed?: number; startsAt?: string } = {}): Storm {
  if (companyIds.length < 6) throw new Error('buildStorm needs at least 6 companies');
  const random = mulberry32(options.seed ?? 42);
  const startsAt = options.startsAt ?? new Date(Math.floor(Date.now() / 60_000) * 60_000 - 5 * 60_000).toISOString();
  const groups: StormGroup[] = [];
  const alertsOf = new Map<string, { groupLabels: Record<string, string>; alerts: Parameters<typeof amPayload>[1] }>();

  const addGroup = (
    groupLabels: Record<string, string>,
    severity: Severity,
    perAlert: (i: number) => Record<string, string>,
    usage?: StormGroup['usage']
  ) => {
    const groupKey = groupKeyOf(groupLabels);
    const alerts = Array.from({ length: STORM_ALERTS_PER_GROUP }, (_, i) => {
      const labels: Record<string, string> = { ...groupLabels, severity, ...perAlert(i) };
      const { alertname = '', severity: _severity, ...rest } = labels;
      return {
        alertname,
        severity,
        labels: rest,
        summary: `${alertname} on ${Object.values(perAlert(i)).join('/')}`,
        startsAt,
        fingerprint: fingerprint(labels),
      };
    });
    alertsOf.set(groupKey, { groupLabels, alerts });
    groups.push({
      groupKey,
      severity,
      alertname: groupLabels.alertname!,
      fingerprints: alerts.map((a) => a.fingerprint),
      ...(usage ? { usage } : {}),
    });
  };

  // 30 usage groups: 6 companies x 2 features x 2 Prometheus replicas at 80%, 3 companies x rates x 2 at 90%.
  const overage = new Set<string>();
  const usage = (alertname: string, threshold: number, companyId: string, feature: string, prometheus: string) => {
    overage.add(overageKey(companyId, feature, threshold));
    addGroup(
      { alertname, company_id: companyId, feature, prometheus },
      'P3',
      (i) => ({ instance: `controlroom-${i}:8471`, threshold: String(threshold) }),
      {
        companyId,
        feature,
        threshold,
      }
    );
  };
  for (const companyId of companyIds.slice(0, 6)) {
    for (const feature of ['rates', 'api_access'])
      for (const prometheus of ['prom-a', 'prom-b']) usage('UsageAbove80Percent', 80, companyId, feature, prometheus);
  }
  for (const companyId of companyIds.slice(0, 3))
    for (const prometheus of ['prom-a', 'prom-b']) usage('UsageAbove90Percent', 90, companyId, 'rates', prometheus);

  // 170 service groups, severities rotating P1/P2/P3.
  for (let g = 0; groups.length < STORM_GROUPS; g++) {
    const alertname = SERVICE_ALERTS[g % SERVICE_ALERTS.length]!;
    addGroup({ alertname, service: `svc-${String(g).padStart(3, '0')}` }, SEVERITIES[g % 3]!, (i) => ({
      instance: `10.0.${g % 250}.${i + 1}:9100`,
      pod: `svc-${g}-${i}`,
    }));
  }

  // Three growing notifications per group, plus redeliveries; waves overlap and are shuffled.
  const scheduled: Array<{ order: number; delivery: StormDelivery }> = [];
  groups.forEach((group, g) => {
    const { groupLabels, alerts } = alertsOf.get(group.groupKey)!;
    const waves = [2, 4, 5];
    const sends: number[] = [0, 1, 2];
    if (g % 4 === 0) sends.push(2); // last notification delivered twice
    if (g % 5 === 0) sends.push(0); // first notification delivered twice
    for (const wave of sends) {
      const subset = alerts.slice(0, waves[wave]);
      scheduled.push({
        order: wave + random() * 1.6,
        delivery: {
          groupKey: group.groupKey,
          alerts: subset.length,
          body: amPayload(group.groupKey, subset, { groupLabels }),
        },
      });
    }
  });
  scheduled.sort((a, b) => a.order - b.order);
  return {
    groups,
    deliveries: scheduled.map((s) => s.delivery),
    totalAlerts: groups.length * STORM_ALERTS_PER_GROUP,
    overageKeys: [...overage].sort(),
  };
}

export interface DeliveryResult {
  status: number;
  body: unknown;
  ms: number;
  /** When the POST was sent (epoch ms): the storm's span is measured from the first send, not from the sender's start. */
  sentAt: number;
  groupKey: string;
  /** The receiver's own Server-Timing phases (name to milliseconds), when it sent them. */
  serverTiming: Record<string, number>;
}

/** `read;dur=0.10, store;dur=2.31` to { read: 0.1, store: 2.31 }. */
export function parseServerTiming(header: string | null): Record<string, number> {
  const phases: Record<string, number> = {};
  for (const entry of (header ?? '').split(',')) {
    const [name, ...params] = entry.trim().split(';');
    const dur = params.find((p) => p.trim().startsWith('dur='));
    if (name && dur) phases[name] = Number(dur.trim().slice(4));
  }
  return phases;
}

/**
 * POSTs every delivery to `url`, `concurrency` in flight on as many keep-alive connections, as
 * Alertmanager's per-group senders would; returns each POST's answer and its time to the answer. node:http
 * rather than fetch: on a 2-core machine fetch's own work (web streams) took most of a core at the storm's
 * rate, and that CPU is taken from the receiver being measured.
 */
export async function deliverStorm(
  url: string,
  deliveries: readonly StormDelivery[],
  concurrency: number,
  token: string
): Promise<DeliveryResult[]> {
  const results: DeliveryResult[] = new Array(deliveries.length);
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const post = (body: string) =>
    new Promise<{ status: number; text: string; serverTiming: string | null }>((resolve, reject) => {
      const req = http.request(
        url,
        {
          method: 'POST',
          agent,
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            authorization: `Bearer ${token}`,
            'user-agent': 'Alertmanager/0.25.0',
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              text: Buffer.concat(chunks).toString('utf8'),
              serverTiming: (res.headers['server-timing'] as string | undefined) ?? null,
            })
          );
          res.on('error', reject);
        }
      );
      req.on('error', reject);
      req.end(body);
    });
  let next = 0;
  const sender = async () => {
    for (let i = next++; i < deliveries.length; i = next++) {
      const delivery = deliveries[i]!;
      const body = JSON.stringify(delivery.body);
      const sentAt = Date.now();
      const { ms, result } = await timed(async () => {
        const { status, text, serverTiming } = await post(body);
        let parsed: unknown = text;
        try {
          parsed = text ? JSON.parse(text) : null;
        } catch {
          // keep the text
        }
        return { status, body: parsed, serverTiming: parseServerTiming(serverTiming) };
      });
      results[i] = { ...result, ms, sentAt, groupKey: delivery.groupKey };
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, deliveries.length) }, sender));
  } finally {
    agent.destroy();
  }
  return results;
}
