import { z } from 'zod';

const int = (fallback: number) => z.coerce.number().int().positive().default(fallback);

/** A JSON object of string → string given as one environment variable. */
const jsonMap = (what: string) =>
  z
    .string()
    .default('{}')
    .transform((raw, ctx) => {
      try {
        const parsed: unknown = JSON.parse(raw);
        if (
          parsed &&
          typeof parsed === 'object' &&
          !Array.isArray(parsed) &&
          Object.values(parsed).every((v) => typeof v === 'string' && v.length > 0)
        ) {
          return parsed as Record<string, string>;
        }
      } catch {
        // reported below
      }
      ctx.addIssue({ code: 'custom', message: `a JSON object of ${what}` });
      return z.NEVER;
    });

/**
 * The billing keys, as a zod shape spread into the service's schema by cli/config.ts
 * (`...billingConfigShape`), so `Config` satisfies `BillingConfig`.
 */
export const billingConfigShape = {
  /** Stripe API key (sk_live_… / sk_test_… / rk_…): without it no meter event is sent (rows wait in the outbox). */
  STRIPE_SECRET_KEY: z.string().min(1).optional(),
  /** The webhook endpoint's signing secret (whsec_…): without it POST /webhooks/stripe answers 503. */
  STRIPE_WEBHOOK_SECRET: z.string().min(1).optional(),
  /** Only for tests and proxies: where the Stripe client sends API calls. */
  STRIPE_API_HOST: z.string().min(1).optional(),
  STRIPE_API_PORT: z.coerce.number().int().min(1).max(65535).optional(),
  STRIPE_API_PROTOCOL: z.enum(['http', 'https']).optional(),
  STRIPE_MAX_NETWORK_RETRIES: z.coerce.number().int().min(0).max(10).default(1),
  STRIPE_TIMEOUT_MS: int(20_000),
  /** Stripe price id → plan id, e.g. {"price_pro_monthly":"pro","price_ent_yearly":"enterprise"}. */
  STRIPE_PRICE_PLANS: jsonMap('Stripe price id to plan id'),
  /** Feature key → Billing Meter event_name; a feature not listed uses "<feature>_overage". */
  STRIPE_METER_EVENT_NAMES: jsonMap('feature key to Stripe meter event name'),
  /** Days a tenant keeps its plan after a failed payment before it counts as past_due. */
  BILLING_GRACE_DAYS: int(7),
  /** The plan a canceled subscription falls back to (the migration adds 'revoked': every limit 0). */
  BILLING_REVOKED_PLAN: z.string().min(1).default('revoked'),
  /** How often the billing job runs (overage → outbox → Stripe, threshold notices, grace expiry). */
  BILLING_TICK_SECONDS: int(300),
  /** Meter events sent per job run (oldest first); the rest wait for the next run. */
  BILLING_METER_BATCH: int(500),
  /** Parallel requests to Stripe while sending a batch. */
  BILLING_METER_CONCURRENCY: int(4),
  /** Backoff of an outbox row after a failed send: base × 2^(attempts-1), capped at one hour. */
  BILLING_METER_RETRY_BASE_SECONDS: int(30),
} as const;

export const billingConfigSchema = z.object(billingConfigShape);
export type BillingConfig = z.infer<typeof billingConfigSchema>;

/** For tests and tools: the billing keys alone from an environment-like object. */
export function loadBillingConfig(env: Record<string, string | undefined>): BillingConfig {
  const parsed = billingConfigSchema.safeParse(env);
  if (!parsed.success) {
    throw new Error(
      `invalid configuration: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`
    );
  }
  return parsed.data;
}

export const meterEventName = (config: BillingConfig, feature: string) =>
  config.STRIPE_METER_EVENT_NAMES[feature] ?? `${feature}_overage`;
