import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { trustGrafanaHop } from './access.ts';

/**
 * Configuration is composed, not centralised: each feature declares its own keys as a zod shape in its
 * `config.ts` (exporter/, alerting/, billing/, control/bulk/, control/failover/, evidence/), this file
 * holds only the keys every part shares (HTTP, database, logging, the job queue, control API access), and
 * cli/config.ts spreads them together into the one schema `loadConfig` reads. core/ never imports a
 * feature: the arrow runs core ← features ← cli.
 */
export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** A positive integer with a default (environment variables are strings: coerced). */
export const int = (fallback: number) => z.coerce.number().int().positive().default(fallback);
/** Words that mark a value copied from an example rather than generated. */
const PLACEHOLDER = /change-?me|changeme|placeholder|example|replace-?me|your[-_]?secret|^(secret|password|admin)$/i;
const notPlaceholder = (value: string) => !PLACEHOLDER.test(value) && new Set(value).size >= 6;
const PLACEHOLDER_MESSAGE =
  'looks like a placeholder (change-me, example, too few distinct characters): generate one, e.g. openssl rand -hex 32';
/** A shared secret (webhook token, HMAC key): long enough and not copied from an example. */
export const secret = z.string().min(16, 'at least 16 characters').refine(notPlaceholder, PLACEHOLDER_MESSAGE);
/** The control API's shared secret: whoever holds it passes the proxy check, so it must be long and generated. */
const apiSecret = z
  .string()
  .min(32, 'at least 32 characters (openssl rand -hex 32)')
  .refine(notPlaceholder, PLACEHOLDER_MESSAGE);
/** `user:password` for HTTP basic auth. */
export const basicAuth = z.string().regex(/^[^:]+:.{8,}$/, 'user:password with a password of at least 8 characters');

/** The keys every part of the service shares. */
export const sharedConfigShape = {
  PORT: z.coerce.number().int().min(0).max(65535).default(8471),
  HOST: z.string().default('0.0.0.0'),
  /**
   * How long the HTTP server keeps an idle keep-alive connection. Above the idle timeout of the Go clients
   * that call it (Alertmanager's webhooks and Prometheus's scrapes through prometheus/common: 5 min;
   * Grafana's proxy: 90 s), so the client always closes an idle connection first. Node's default (5 s)
   * closed them under a client about to reuse them: a POST racing that close fails (Go does not retry a
   * POST on a connection the server closed) and Alertmanager sends the notification again after its
   * backoff; and a storm after a quiet spell opened every connection again.
   */
  HTTP_KEEP_ALIVE_SECONDS: z.coerce.number().int().min(1).max(3600).default(310),
  DATABASE_URL: z.string().url().optional(),
  CONTROLROOM_DATA_DIR: z.string().default(path.join(projectRoot, '.data')),
  EMBEDDED_PG_PORT: z.coerce.number().int().min(1).max(65535).default(54871),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** auto = human-readable lines when stdout is a terminal, JSON lines otherwise. */
  LOG_FORMAT: z.enum(['auto', 'json', 'pretty']).default('auto'),
  PG_POOL_MAX: int(4),
  PG_STATEMENT_TIMEOUT_MS: int(10_000),
  /** Client-side wait for a query's answer; default PG_STATEMENT_TIMEOUT_MS + 5 s (see core/db.ts). */
  PG_QUERY_TIMEOUT_MS: z.coerce.number().int().positive().optional(),
  PG_CONNECT_TIMEOUT_MS: int(10_000),

  JOB_CONCURRENCY: int(4),
  /**
   * Run the job queue on a worker thread (cli/job-thread.ts), off the HTTP event loop. Off by default: on
   * 2 cores bench/receiver showed no gain beyond its run-to-run noise (README, alert receiver).
   */
  JOB_QUEUE_THREAD: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true'),
  CONTROLROOM_INSTANCE_ID: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, dot, dash, underscore')
    .default(os.hostname().replace(/[^A-Za-z0-9_.-]/g, '-')),

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
  // The HA shape: the balancer Grafana calls through (its X-Forwarded-For entry for Grafana is believed).
  CONTROLROOM_TRUSTED_BALANCER: z.string().default(''),
  CONTROLROOM_PUBLIC_URL: z.string().url().optional(),
};

export type SharedConfig = z.infer<z.ZodObject<typeof sharedConfigShape>>;

/** A problem found across keys, reported like a field's: `<path>: <message>`. */
export interface ConfigIssue {
  path: [string];
  message: string;
}

/** The checks across shared keys; each mode names what it lacks, so start-up stops with the variable to set. */
function sharedConfigIssues(config: SharedConfig): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const ctx = {
    addIssue: (issue: ConfigIssue & { code: 'custom' }) => issues.push({ path: issue.path, message: issue.message }),
  };
  const need = (name: keyof SharedConfig, why: string) => {
    if (!config[name]) ctx.addIssue({ code: 'custom', path: [name], message: `required ${why}` });
  };
  if (config.CONTROLROOM_AUTH === 'grafana-id') {
    need(
      'GRAFANA_URL',
      'when CONTROLROOM_AUTH=grafana-id (where Grafana serves /api/signing-keys/keys and its users API)'
    );
    if (!config.GRAFANA_SERVICE_ACCOUNT_TOKEN_FILE) {
      need(
        'GRAFANA_SERVICE_ACCOUNT_TOKEN',
        "(or GRAFANA_SERVICE_ACCOUNT_TOKEN_FILE) when CONTROLROOM_AUTH=grafana-id: it reads the user's org role and the app's RBAC actions"
      );
    }
  }
  try {
    trustGrafanaHop(config.CONTROLROOM_TRUSTED_PROXY, config.CONTROLROOM_TRUSTED_BALANCER);
  } catch (error) {
    // The message starts with the variable it is about (CONTROLROOM_TRUSTED_PROXY or _BALANCER).
    const [name = 'CONTROLROOM_TRUSTED_PROXY', ...problem] = (error as Error).message.split(': ');
    ctx.addIssue({ code: 'custom', path: [name], message: problem.join(': ') });
  }
  if (!config.CONTROLROOM_AUTH && (config.CONTROLROOM_API_SECRET || config.GRAFANA_URL)) {
    // Never a silent default: shared-secret lets the secret's holder act as anyone.
    ctx.addIssue({
      code: 'custom',
      path: ['CONTROLROOM_AUTH'],
      message: `required when ${config.CONTROLROOM_API_SECRET ? 'CONTROLROOM_API_SECRET' : 'GRAFANA_URL'} is set: grafana-id (recommended) or shared-secret (development only)`,
    });
  }
  if (config.CONTROLROOM_AUTH === 'shared-secret')
    need('CONTROLROOM_API_SECRET', 'when CONTROLROOM_AUTH=shared-secret');
  if (config.CONTROLROOM_API_SECRET_PREVIOUS && !config.CONTROLROOM_API_SECRET)
    need('CONTROLROOM_API_SECRET', 'when CONTROLROOM_API_SECRET_PREVIOUS is set');
  if (config.CONTROLROOM_API_SECRET && config.CONTROLROOM_API_SECRET === config.CONTROLROOM_API_SECRET_PREVIOUS) {
    ctx.addIssue({
      code: 'custom',
      path: ['CONTROLROOM_API_SECRET_PREVIOUS'],
      message: 'equals CONTROLROOM_API_SECRET: set it to the secret being rotated out',
    });
  }
  return issues;
}

/**
 * The shared keys plus the features' shapes, checked as one (cli/config.ts passes every feature's shape).
 * `featureChecks` are a feature's checks across its own keys; like the shared checks, they run once every
 * key parsed, after the shared ones.
 */
export function composeConfigSchema<Shape extends z.ZodRawShape>(
  featureShapes: Shape,
  featureChecks: ReadonlyArray<(config: z.infer<z.ZodObject<typeof sharedConfigShape & Shape>>) => ConfigIssue[]> = []
) {
  return z.object({ ...sharedConfigShape, ...featureShapes }).superRefine((config, ctx) => {
    // The composed output holds every shared key; the generic spread hides that from the compiler.
    const issues = [
      ...featureChecks.flatMap((check) => check(config)),
      ...sharedConfigIssues(config as unknown as SharedConfig),
    ];
    for (const issue of issues) ctx.addIssue({ code: 'custom', ...issue });
  });
}

/** Parses the environment; a bad value throws with a message naming each variable and what is wrong. */
export function parseConfig<T>(schema: z.ZodType<T>, env: Record<string, string | undefined>): T {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`invalid configuration: ${problems}`);
  }
  return parsed.data;
}

/** The shared keys alone, for commands that use no feature's settings (they still refuse a bad shared value). */
export function loadSharedConfig(env: NodeJS.ProcessEnv = process.env): SharedConfig {
  return parseConfig(composeConfigSchema({}), env);
}
