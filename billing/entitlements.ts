import type { PoolClient } from '../core/db.ts';
import { audit } from '../core/audit.ts';
import type { Stripe } from './stripe.ts';
import type { BillingConfig } from './config.ts';

export type BillingStatus = 'active' | 'trialing' | 'past_due' | 'grace' | 'canceled';

export interface EventOutcome {
  outcome: string;
  companyId: string | null;
}

interface EntitlementRow {
  company_id: string;
  plan_id: string;
  billing_status: BillingStatus;
  grace_until: Date | null;
  stripe_customer_id: string | null;
  stripe_subscription_id: string | null;
  last_stripe_event_at: Date | null;
  last_subscription_event_at: Date | null;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const idOf = (v: string | { id: string } | null | undefined) => (v == null ? null : typeof v === 'string' ? v : v.id);
const seconds = (s: number | null | undefined) => (s == null ? null : new Date(s * 1000));

/** Stripe subscription status → ours. past_due is a failed renewal: the tenant keeps its plan for a grace period. */
export function billingStatusOf(status: Stripe.Subscription.Status): BillingStatus {
  switch (status) {
    case 'active':
      return 'active';
    case 'trialing':
      return 'trialing';
    case 'past_due':
      return 'grace';
    case 'canceled':
    case 'incomplete_expired':
      return 'canceled';
    default:
      // unpaid, incomplete, paused: no paid service.
      return 'past_due';
  }
}

/** The plan of a subscription: the first of its prices that STRIPE_PRICE_PLANS maps. */
export function planOf(config: BillingConfig, subscription: Stripe.Subscription): string | null {
  for (const item of subscription.items?.data ?? []) {
    const plan = item.price?.id ? config.STRIPE_PRICE_PLANS[item.price.id] : undefined;
    if (plan) return plan;
  }
  return null;
}

/** The subscription of an invoice: `parent.subscription_details` since API 2025-03, `subscription` before. */
function invoiceSubscription(invoice: Stripe.Invoice): string | null {
  const fromParent = idOf(invoice.parent?.subscription_details?.subscription as string | { id: string } | undefined);
  return fromParent ?? idOf((invoice as unknown as { subscription?: string | { id: string } | null }).subscription);
}

function periodEndOf(subscription: Stripe.Subscription): Date | null {
  const fromItems = subscription.items?.data
    ?.map((i) => i.current_period_end)
    .filter((v): v is number => typeof v === 'number');
  if (fromItems && fromItems.length > 0) return seconds(Math.max(...fromItems));
  return seconds((subscription as unknown as { current_period_end?: number }).current_period_end);
}

async function findEntitlement(
  client: PoolClient,
  subscriptionId: string | null,
  customerId: string | null,
  companyHint: string | null
): Promise<EntitlementRow | null> {
  const { rows } = await client.query<EntitlementRow & { rank: number }>(
    `SELECT e.company_id, e.plan_id, e.billing_status, e.grace_until, e.stripe_customer_id, e.stripe_subscription_id,
            e.last_stripe_event_at, e.last_subscription_event_at,
            CASE WHEN e.stripe_subscription_id = $1 THEN 1 WHEN e.stripe_customer_id = $2 THEN 2 ELSE 3 END AS rank
       FROM org_entitlements e
      WHERE ($1::text IS NOT NULL AND e.stripe_subscription_id = $1)
         OR ($2::text IS NOT NULL AND e.stripe_customer_id = $2)
         OR ($3::uuid IS NOT NULL AND e.company_id = $3)
      ORDER BY rank, e.company_id
      LIMIT 1
      FOR UPDATE`,
    [subscriptionId, customerId, companyHint]
  );
  return rows[0] ?? null;
}

const FIELDS =
  'company_id, plan_id, billing_status, grace_until, stripe_customer_id, stripe_subscription_id, last_stripe_event_at, last_subscription_event_at';

/**
 * Applies one verified Stripe event to org_entitlements, inside the caller's transaction (which also
 * records the event id, so a redelivery never gets here twice). Out of order: a status change older
 * than the last one applied for the tenant is ignored, and so is a plan change older than the last
 * subscription event; events of a subscription that is no longer the tenant's do nothing.
 */
export async function applyStripeEvent(
  client: PoolClient,
  config: BillingConfig,
  event: Stripe.Event
): Promise<EventOutcome> {
  const at = new Date(event.created * 1000);
  switch (event.type) {
    case 'customer.subscription.created':
    case 'customer.subscription.updated':
    case 'customer.subscription.deleted':
      return applySubscription(client, config, event, event.data.object, at);
    case 'invoice.payment_failed':
    case 'invoice.payment_succeeded':
    case 'invoice.paid':
      return applyInvoice(client, config, event, event.data.object, at);
    default:
      return { outcome: 'ignored_type', companyId: null };
  }
}

async function applySubscription(
  client: PoolClient,
  config: BillingConfig,
  event: Stripe.Event,
  sub: Stripe.Subscription,
  at: Date
): Promise<EventOutcome> {
  const customerId = idOf(sub.customer);
  const hint = sub.metadata?.company_id && UUID.test(sub.metadata.company_id) ? sub.metadata.company_id : null;
  const deleted = event.type === 'customer.subscription.deleted';
  const status: BillingStatus = deleted ? 'canceled' : billingStatusOf(sub.status);
  const mapped = planOf(config, sub);
  let row = await findEntitlement(client, sub.id, customerId, hint);

  if (!row) {
    // A tenant Stripe knows before we do: only a subscription naming a live company creates its entitlement.
    if (!hint || !mapped || status === 'canceled')
      return { outcome: mapped ? 'unmatched' : 'unmatched_unknown_price', companyId: null };
    const { rows } = await client.query<EntitlementRow>(
      `INSERT INTO org_entitlements (company_id, plan_id, stripe_customer_id, stripe_subscription_id)
       SELECT c.id, $2, $3, $4 FROM companies c WHERE c.id = $1 AND c.deleted_at IS NULL
       ON CONFLICT (company_id) DO NOTHING
       RETURNING ${FIELDS}`,
      [hint, mapped, customerId, sub.id]
    );
    row = rows[0] ?? (await findEntitlement(client, sub.id, customerId, hint));
    if (!row) return { outcome: 'unmatched', companyId: null };
  }

  const current = row.stripe_subscription_id;
  if (current && current !== sub.id) {
    // Another subscription of the tenant: a new live one replaces the old; the end of an old one is history.
    const currentLive = row.billing_status !== 'canceled';
    if (status === 'canceled' || (currentLive && status === 'past_due'))
      return { outcome: 'other_subscription', companyId: row.company_id };
  }
  if (row.last_subscription_event_at && at < row.last_subscription_event_at)
    return { outcome: 'stale', companyId: row.company_id };

  const statusIsCurrent = !row.last_stripe_event_at || at >= row.last_stripe_event_at;
  const nextStatus = statusIsCurrent ? status : row.billing_status;
  const plan = nextStatus === 'canceled' ? config.BILLING_REVOKED_PLAN : (mapped ?? row.plan_id);
  const graceUntil =
    nextStatus === 'grace'
      ? row.billing_status === 'grace' && row.grace_until
        ? row.grace_until
        : new Date(at.getTime() + config.BILLING_GRACE_DAYS * 86_400_000)
      : null;
  await client.query(
    `UPDATE org_entitlements
        SET plan_id = $2, billing_status = $3, grace_until = $4,
            trial_ends_at = coalesce($5, trial_ends_at),
            current_period_end = coalesce($6, current_period_end),
            stripe_customer_id = coalesce($7, stripe_customer_id),
            stripe_subscription_id = $8,
            last_subscription_event_at = $9,
            last_stripe_event_at = greatest(last_stripe_event_at, $9)
      WHERE company_id = $1`,
    [row.company_id, plan, nextStatus, graceUntil, seconds(sub.trial_end), periodEndOf(sub), customerId, sub.id, at]
  );
  const outcome = !mapped && !deleted ? 'applied_unknown_price' : statusIsCurrent ? 'applied' : 'applied_plan_only';
  await audit(client, {
    actor: 'controlroom:billing',
    action: `billing.${event.type}`,
    target: `stripe/${event.id}`,
    companyId: row.company_id,
    payload: {
      from: { plan: row.plan_id, status: row.billing_status },
      to: { plan, status: nextStatus },
      subscription: sub.id,
      stripe_status: sub.status,
      outcome,
    },
  });
  return { outcome, companyId: row.company_id };
}

async function applyInvoice(
  client: PoolClient,
  config: BillingConfig,
  event: Stripe.Event,
  invoice: Stripe.Invoice,
  at: Date
): Promise<EventOutcome> {
  const subscriptionId = invoiceSubscription(invoice);
  const customerId = idOf(invoice.customer);
  if (!subscriptionId) return { outcome: 'ignored_no_subscription', companyId: null };
  const row = await findEntitlement(client, subscriptionId, customerId, null);
  if (!row) return { outcome: 'unmatched', companyId: null };
  if (row.stripe_subscription_id && row.stripe_subscription_id !== subscriptionId)
    return { outcome: 'other_subscription', companyId: row.company_id };
  if (row.last_stripe_event_at && at < row.last_stripe_event_at) return { outcome: 'stale', companyId: row.company_id };

  let next: BillingStatus = row.billing_status;
  let graceUntil = row.grace_until;
  if (event.type === 'invoice.payment_failed') {
    if (row.billing_status === 'active' || row.billing_status === 'trialing') {
      next = 'grace';
      graceUntil = new Date(at.getTime() + config.BILLING_GRACE_DAYS * 86_400_000);
    }
  } else if (row.billing_status === 'grace' || row.billing_status === 'past_due') {
    next = 'active';
    graceUntil = null;
  }
  await client.query(
    `UPDATE org_entitlements
        SET billing_status = $2, grace_until = $3, stripe_customer_id = coalesce(stripe_customer_id, $4),
            stripe_subscription_id = coalesce(stripe_subscription_id, $5), last_stripe_event_at = $6
      WHERE company_id = $1`,
    [row.company_id, next, graceUntil, customerId, subscriptionId, at]
  );
  const outcome = next === row.billing_status ? 'applied_no_change' : 'applied';
  if (next !== row.billing_status) {
    await audit(client, {
      actor: 'controlroom:billing',
      action: `billing.${event.type}`,
      target: `stripe/${event.id}`,
      companyId: row.company_id,
      payload: { from: row.billing_status, to: next, grace_until: graceUntil, invoice: invoice.id },
    });
  }
  return { outcome, companyId: row.company_id };
}

/** Grace periods that ended become past_due (run by the billing job). */
export async function expireGrace(client: PoolClient | import('../core/db.ts').Pool): Promise<number> {
  const { rowCount } = await client.query(
    `UPDATE org_entitlements SET billing_status = 'past_due' WHERE billing_status = 'grace' AND grace_until <= now()`
  );
  return rowCount ?? 0;
}
