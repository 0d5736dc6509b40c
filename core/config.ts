import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { trustGrafanaHop } from './access.ts';
import { billingConfigShape } from '../billing/config.ts';
import { evidenceConfigShape } from '../evidence/config.ts';

export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const int = (fallback: number) => z.coerce.number().int().positive().default(fallback);
/** Words that mark a value copied from an example rather than generated. */
const PLACEHOLDER = /change-?me|changeme|placeholder|example|replace-?me|your[-_]?secret|^(secret|password|admin)$/i;
const notPlaceholder = (value: string) => !PLACEHOLDER.test(value) && new Set(value).size >= 6;
const PLACEHOLDER_MESSAGE = 'looks like a placeholder (change-me, example, too few distinct characters): generate one, e.g. openssl rand -hex 32';
const secret = z.string().min(16, 'at least 16 characters').refine(notPlaceholder, PLACEHOLDER_MESSAGE);
/** The control API's shared secret: whoever holds it passes the proxy check, so it must be long and generated. */
const apiSecret = z.string().min(32, 'at least 32 characters (openssl rand -hex 32)').refine(notPlaceholder, PLACEHOLDER_MESSAGE);
const basicAuth = z.string().regex(/^[^:]+:.{8,}$/, 'user:password with a password of at least 8 characters');

const schema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(8471),
  HOST: z.string().default('0.0.0.0'),
  DATABASE_URL: z.string().url().optional(),
  CONTROLROOM_DATA_DIR: z.string().default(path.join(projectRoot, '.data')),
  EMBEDDED_PG_PORT: z.coerce.number().int().min(1).max(65535).default(54871),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  PG_POOL_MAX: int(4),
  PG_STATEMENT_TIMEOUT_MS: int(10_000),
  /** Client-side wait for a query's answer; default PG_STATEMENT_TIMEOUT_MS + 5 s (see core/db.ts). */
  PG_QUERY_TIMEOUT_MS: z.coerce.number().int().positive().optional(),
  PG_CONNECT_TIMEOUT_MS: int(10_000),
  EXPORTER_REFRESH_MS: int(5_000),
  EXPORTER_SLOW_REFRESH_MS: int(60_000),
  EXPORTER_USAGE_CAP: int(500),
  EXPORTER_GAP_GRACE_SECONDS: int(600),
  EXPORTER_SETTLE_SECONDS: int(300),
  EXPORTER_BATCH_IDS: int(1_000_000),

  ALERTMANAGER_WEBHOOK_TOKEN: secret.optional(),
  ALERTMANAGER_WEBHOOK_BASIC_AUTH: basicAuth.optional(),
  GRAFANA_WEBHOOK_TOKEN: secret.optional(),
  GRAFANA_WEBHOOK_BASIC_AUTH: basicAuth.optional(),
  GRAFANA_WEBHOOK_HMAC_SECRET: secret.optional(),
  GRAFANA_WEBHOOK_TIMESTAMP_HEADER: z.string().min(1).optional(),
  JOB_CONCURRENCY: int(4),
  CONTROLROOM_INSTANCE_ID: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, dot, dash, underscore').default(os.hostname().replace(/[^A-Za-z0-9_.-]/g, '-')),

  SLACK_BOT_TOKEN: z.string().min(1).optional(),
  SLACK_API_URL: z.string().url().default('https://slack.com/api/'),
  SLACK_SIGNING_SECRET: z.string().min(1).optional(),
  SLACK_CHANNEL_P1: z.string().min(1).default('#controlroom-pages'),
  SLACK_CHANNEL_P2: z.string().min(1).default('#controlroom-alerts'),
  SLACK_CHANNEL_P3: z.string().min(1).default('#controlroom-tickets'),
  SLACK_ESCALATION_CHANNEL: z.string().min(1).default('#controlroom-escalations'),
  SLACK_ESCALATION_DELAY_SECONDS: int(600),
  SLACK_CHANNEL_INTERVAL_MS: int(1_100),
  ALERT_STORM_THRESHOLD: int(10),

  CONTROLROOM_AUTH: z.enum(['grafana-id', 'shared-secret']).optional(),
  CONTROLROOM_API_SECRET: apiSecret.optional(),
  /** The secret being rotated out: accepted alongside CONTROLROOM_API_SECRET until Grafana has the new one. */
  CONTROLROOM_API_SECRET_PREVIOUS: apiSecret.optional(),
  GRAFANA_URL: z.string().url().optional(),
  GRAFANA_ID_ISSUER: z.string().url().optional(),
  GRAFANA_SERVICE_ACCOUNT_TOKEN: z.string().min(1).optional(),
  /** A file holding the token instead (read when needed, so it may appear after start-up: the compose stack's grafana-init writes it). */
  GRAFANA_SERVICE_ACCOUNT_TOKEN_FILE: z.string().min(1).optional(),
  GRAFANA_ORG_ID: z.coerce.number().int().positive().default(1),
  CONTROLROOM_TRUSTED_PROXY: z.string().default('loopback'),
  CONTROLROOM_PUBLIC_URL: z.string().url().optional(),
  FREEZE_QUIET_PERIOD_SECONDS: int(1_800),
  FREEZE_EXCEPTION_LABELS: z.string().default('p0-fix,security-fix'),
  GITHUB_API_URL: z.string().url().default('https://api.github.com'),
  GITHUB_TOKEN: z.string().min(1).optional(),
  GITHUB_APP_ID: z.string().regex(/^\d+$/, 'numeric App id').optional(),
  GITHUB_APP_PRIVATE_KEY: z.string().min(1).optional(),
  GITHUB_APP_INSTALLATION_ID: z.coerce.number().int().positive().optional(),
  GITHUB_REPOSITORIES: z
    .string()
    .regex(/^\s*[\w.-]+\/[\w.-]+\s*(,\s*[\w.-]+\/[\w.-]+\s*)*$/, 'comma-separated owner/repo')
    .optional(),
  GITHUB_WEBHOOK_SECRET: secret.optional(),

  BULK_MAX_UPLOAD_BYTES: int(50 * 1024 * 1024),
  BULK_MAX_LANES: int(200_000),
  BULK_MAX_ERRORS_REPORTED: int(1_000),
  BULK_RATE_BATCH: int(5_000),

  /** JSON array of {name, role: primary|secondary, base_url, health_url, replication_lag_url?}. */
  FAILOVER_REGIONS: z.string().optional(),
  FAILOVER_CHECK_INTERVAL_SECONDS: int(30),
  FAILOVER_CHECK_TIMEOUT_MS: int(5_000),
  FAILOVER_UNHEALTHY_AFTER: int(3),
  FAILOVER_HEALTHY_AFTER: int(2),
  FAILOVER_AUTO: z.enum(['true', 'false']).default('true').transform((v) => v === 'true'),
  FAILOVER_STEP_SECONDS: int(30),
  FAILOVER_LEASE_SECONDS: int(15),
  /** Most time a cutover waits for the regions' background queues to drain before it is aborted. */
  FAILOVER_DRAIN_TIMEOUT_SECONDS: int(120),
  /** Recovery objectives every drill, game day and real cutover is judged against (Phase 6: 15 min, 5 min). */
  FAILOVER_RTO_TARGET_SECONDS: z.coerce.number().positive().default(900),
  FAILOVER_RPO_TARGET_SECONDS: z.coerce.number().positive().default(300),
  /** Post-cutover integrity checks: when the "after" figures are read, and what they may differ by. */
  FAILOVER_INTEGRITY_SETTLE_SECONDS: z.coerce.number().int().min(0).default(60),
  FAILOVER_INTEGRITY_MAX_QUEUE_GROWTH: z.coerce.number().int().min(0).default(100),
  FAILOVER_INTEGRITY_MAX_ERROR_RATE_INCREASE: z.coerce.number().min(0).max(1).default(0.02),

  // Executive scorecard KPIs (issue 17; read by the exporter's business collector, see README "Metric contract").
  /** ARPA baseline in dollars for tms_arpa_uplift_ratio (e.g. the Phase 4 figure); unset = KPI_ARPA_BASELINE_AT, else the start of the data. */
  KPI_ARPA_BASELINE_DOLLARS: z.coerce.number().positive().optional(),
  /** The instant whose ARPA is the baseline (ISO 8601 with a zone, e.g. the Phase 4 launch); unset = the first instant any account paid. */
  KPI_ARPA_BASELINE_AT: z
    .string()
    .datetime({ offset: true, message: 'an ISO 8601 instant with a zone, e.g. 2026-06-01T00:00:00Z' })
    .transform((v) => new Date(v))
    .optional(),
  /** Dollars per overage unit the Stripe meter bills, by feature: {"rates":0.5,"bulk_rating":20}; an unpriced feature makes the overage share unknown. */
  KPI_OVERAGE_UNIT_PRICES: z
    .string()
    .default('{}')
    .transform((raw, ctx) => {
      try {
        const parsed: unknown = JSON.parse(raw);
        if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
          const entries = Object.entries(parsed);
          if (entries.every(([, v]) => typeof v === 'number' && Number.isFinite(v) && v >= 0)) return Object.fromEntries(entries) as Record<string, number>;
        }
      } catch {
        // reported below
      }
      ctx.addIssue({ code: 'custom', message: 'a JSON object of feature key to dollars per overage unit (a number >= 0), e.g. {"rates":0.5}' });
      return z.NEVER;
    }),

  // ---- `controlroom start`'s Prometheus + Alertmanager and the terminal (issue 19, cli/stack/) ----
  /** Port of the Prometheus `start` runs (127.0.0.1 only). */
  PROMETHEUS_PORT: z.coerce.number().int().min(1).max(65535).default(9090),
  /** Port of the Alertmanager `start` runs (127.0.0.1 only). */
  ALERTMANAGER_PORT: z.coerce.number().int().min(1).max(65535).default(9093),
  /** Tests only: scrape and rule evaluation interval of `start`'s Prometheus instead of provisioning's 15 s. */
  STACK_INTERVAL_SECONDS: z.coerce.number().int().min(1).max(60).optional(),
  /** auto = human-readable lines when stdout is a terminal, JSON lines otherwise. */
  LOG_FORMAT: z.enum(['auto', 'json', 'pretty']).default('auto'),

  ...billingConfigShape,
  ...evidenceConfigShape,
}).superRefine((config, ctx) => {
  if (config.KPI_ARPA_BASELINE_DOLLARS !== undefined && config.KPI_ARPA_BASELINE_AT !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['KPI_ARPA_BASELINE_AT'], message: 'set either KPI_ARPA_BASELINE_DOLLARS or KPI_ARPA_BASELINE_AT, not both' });
  }
  // Each mode names what it lacks, so start-up stops with the variable to set.
  const need = (name: keyof typeof config, why: string) => {
    if (!config[name]) ctx.addIssue({ code: 'custom', path: [name], message: `required ${why}` });
  };
  if (config.CONTROLROOM_AUTH === 'grafana-id') {
    need('GRAFANA_URL', 'when CONTROLROOM_AUTH=grafana-id (where Grafana serves /api/signing-keys/keys and its users API)');
    if (!config.GRAFANA_SERVICE_ACCOUNT_TOKEN_FILE) {
      need('GRAFANA_SERVICE_ACCOUNT_TOKEN', "(or GRAFANA_SERVICE_ACCOUNT_TOKEN_FILE) when CONTROLROOM_AUTH=grafana-id: it reads the user's org role and the app's RBAC actions");
    }
  }
  try {
    trustGrafanaHop(config.CONTROLROOM_TRUSTED_PROXY);
  } catch (error) {
    ctx.addIssue({ code: 'custom', path: ['CONTROLROOM_TRUSTED_PROXY'], message: (error as Error).message.replace(/^CONTROLROOM_TRUSTED_PROXY: /, '') });
  }
  if (!config.CONTROLROOM_AUTH && (config.CONTROLROOM_API_SECRET || config.GRAFANA_URL)) {
    // Never a silent default: shared-secret lets the secret's holder act as anyone.
    ctx.addIssue({
      code: 'custom',
      path: ['CONTROLROOM_AUTH'],
      message: `required when ${config.CONTROLROOM_API_SECRET ? 'CONTROLROOM_API_SECRET' : 'GRAFANA_URL'} is set: grafana-id (recommended) or shared-secret (development only)`,
    });
  }
  if (config.CONTROLROOM_AUTH === 'shared-secret') need('CONTROLROOM_API_SECRET', 'when CONTROLROOM_AUTH=shared-secret');
  if (config.CONTROLROOM_API_SECRET_PREVIOUS && !config.CONTROLROOM_API_SECRET) need('CONTROLROOM_API_SECRET', 'when CONTROLROOM_API_SECRET_PREVIOUS is set');
  if (config.CONTROLROOM_API_SECRET && config.CONTROLROOM_API_SECRET === config.CONTROLROOM_API_SECRET_PREVIOUS) {
    ctx.addIssue({ code: 'custom', path: ['CONTROLROOM_API_SECRET_PREVIOUS'], message: 'equals CONTROLROOM_API_SECRET: set it to the secret being rotated out' });
  }
});

export type Config = z.infer<typeof schema>;

/** Reads configuration from the environment; a bad value stops start-up with a message naming the variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`invalid configuration: ${problems}`);
  }
  return parsed.data;
}
