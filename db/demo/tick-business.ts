import type { PoolClient } from '../../core/db.ts';
import { carrierName, newBrokerName } from './names.ts';
import { weightedPicker } from './random.ts';
import { addDays, addSeconds, diurnalFactor, MEAN_DIURNAL } from './schedule.ts';
import { DOC_KINDS, DRAFT_SHARE, INVOICED_SHARE, ONBOARDED_SHARE, QUOTE_OUTCOMES } from './seed-business.ts';
import { invoicedAmount, proposedRate } from './shape.ts';
import { newUsageBatch, RowBatch } from './sql.ts';
import { markTenantsStale, recordUsage, type DemoState } from './state.ts';
import type { TickCounts } from './summary.ts';

/**
 * The slow business loop at live pace: brokers quote, shippers answer, bookings get invoiced, carriers are
 * invited and onboard, documents get renewed, trials end (about half convert) and new trials sign up.
 * Rates match the seeded history, so the 30-day funnels stay level as the window slides.
 */

const QUOTE_VALIDITY_DAYS = 3;
const TRIAL_CONVERSION = 0.5;
/** Matches the seeded history: ~15 trials ending per 30 days. */
const TRIAL_SIGNUPS_PER_DAY = 0.5;
/** About as many documents get renewed as lapse, so the expired count neither empties nor piles up. */
const DOC_RENEWALS_PER_HOUR = 1.5;
const HOUSEKEEPING_EVERY_MS = 60_000;

export async function advanceBusiness(
  client: PoolClient,
  state: DemoState,
  tickSeconds: number,
  at: Date,
  counts: TickCounts
): Promise<void> {
  const { rng, options } = state;
  const pace = (perDay: number) => (perDay * tickSeconds * diurnalFactor(at)) / MEAN_DIURNAL / 86_400;
  const seedTag = String(options.seed);

  // New quotes, and shippers answering earlier ones.
  const quotesPerDay = state.tenants.reduce((sum, t) => sum + t.profile.quotesPerDay, 0);
  const pickQuoter = weightedPicker(state.tenants.map((t) => [t.id, t.profile.quotesPerDay] as const));
  const quotes = new RowBatch('quotes', {
    company_id: 'uuid',
    status: 'text',
    proposed_rate: 'numeric',
    created_at: 'timestamptz',
  });
  const created = pickQuoter ? rng.poisson(pace(quotesPerDay)) : 0;
  for (let i = 0; i < created; i++) {
    quotes.push({
      company_id: pickQuoter!(rng),
      status: rng.chance(DRAFT_SHARE) ? 'draft' : 'sent',
      proposed_rate: proposedRate(rng),
      created_at: at,
    });
  }
  counts.inserted.quotes += await quotes.insert(client);

  const answers = rng.poisson(
    pace(quotesPerDay * (1 - DRAFT_SHARE) * (QUOTE_OUTCOMES.accepted + QUOTE_OUTCOMES.rejected))
  );
  if (answers > 0) {
    // md5 with the seed: a deterministic but unordered choice among open quotes.
    const open = await client.query<{ id: string; proposed_rate: string }>(
      `SELECT id::text, proposed_rate::text FROM quotes
        WHERE status = 'sent' AND created_at <= $1::timestamptz - interval '30 minutes' AND created_at > $1::timestamptz - interval '3 days'
        ORDER BY md5(id::text || $2) LIMIT $3`,
      [at, seedTag, answers]
    );
    const acceptShare = QUOTE_OUTCOMES.accepted / (QUOTE_OUTCOMES.accepted + QUOTE_OUTCOMES.rejected);
    const outcomes = open.rows.map(() => (rng.chance(acceptShare) ? 'accepted' : 'rejected'));
    const answered = await client.query(
      `UPDATE quotes q SET status = o.status FROM unnest($1::bigint[], $2::text[]) AS o(id, status) WHERE q.id = o.id`,
      [open.rows.map((q) => q.id), outcomes]
    );
    counts.updated.quotes += answered.rowCount ?? 0;
    const invoices = new RowBatch('invoices', { quote_id: 'bigint', amount: 'numeric', created_at: 'timestamptz' });
    open.rows.forEach((q, i) => {
      if (outcomes[i] === 'accepted' && rng.chance(INVOICED_SHARE)) {
        invoices.push({ quote_id: q.id, amount: invoicedAmount(rng, Number(q.proposed_rate)), created_at: at });
      }
    });
    counts.inserted.invoices += await invoices.insert(client);
  }

  await advanceDirectory(client, state, pace, tickSeconds, at, seedTag, counts);
  await advanceTrials(client, state, tickSeconds, at, counts);

  if (
    !state.lastHousekeepingAt ||
    Math.abs(at.getTime() - state.lastHousekeepingAt.getTime()) >= HOUSEKEEPING_EVERY_MS
  ) {
    state.lastHousekeepingAt = at;
    const expired = await client.query(
      `UPDATE quotes SET status = 'expired'
        WHERE status = 'sent' AND created_at <= $1::timestamptz - make_interval(days => $2) AND created_at > $1::timestamptz - make_interval(days => $3)`,
      [at, QUOTE_VALIDITY_DAYS, Math.max(options.backfillDays, QUOTE_VALIDITY_DAYS + 1)]
    );
    counts.updated.quotes += expired.rowCount ?? 0;
  }
}

async function advanceDirectory(
  client: PoolClient,
  state: DemoState,
  pace: (perDay: number) => number,
  tickSeconds: number,
  at: Date,
  seedTag: string,
  counts: TickCounts
): Promise<void> {
  const { rng } = state;
  const carriers = new RowBatch('directory_companies', {
    company_id: 'uuid',
    company_name: 'text',
    status: 'text',
    invited_at: 'timestamptz',
  });
  const usage = newUsageBatch();
  for (const t of state.tenants) {
    if (!rng.chance(pace(t.profile.carrierInvitesPerDay))) continue;
    carriers.push({ company_id: t.id, company_name: carrierName(rng), status: 'invited', invited_at: at });
    usage.push({ company_id: t.id, feature_key: 'directory', qty: 1, occurred_at: at });
    recordUsage(state, t.id, 'directory', 1);
  }
  counts.inserted.directory_companies += await carriers.insert(client);
  counts.inserted.usage_events += await usage.insert(client);

  const invitesPerDay = state.tenants.reduce((sum, t) => sum + t.profile.carrierInvitesPerDay, 0);
  const onboarding = rng.poisson(pace(invitesPerDay * ONBOARDED_SHARE));
  if (onboarding > 0) {
    const onboarded = await client.query<{ id: string }>(
      `UPDATE directory_companies SET status = 'onboarded', onboarded_at = $1
        WHERE id IN (SELECT id FROM directory_companies
                      WHERE status = 'invited' AND invited_at <= $1::timestamptz - interval '6 hours' AND invited_at > $1::timestamptz - interval '7 days'
                      ORDER BY md5(id::text || $2) LIMIT $3)
        RETURNING id::text`,
      [at, seedTag, onboarding]
    );
    counts.updated.directory_companies += onboarded.rowCount ?? 0;
    // Onboarding means the full compliance packet was uploaded, all of it current.
    const docs = new RowBatch('directory_docs', {
      directory_company_id: 'bigint',
      kind: 'text',
      expires_at: 'timestamptz',
    });
    for (const { id } of onboarded.rows) {
      for (const kind of DOC_KINDS)
        docs.push({ directory_company_id: id, kind, expires_at: addDays(at, rng.between(180, 400)) });
    }
    counts.inserted.directory_docs += await docs.insert(client);
  }

  const renewals = rng.poisson((DOC_RENEWALS_PER_HOUR * tickSeconds) / 3600);
  if (renewals > 0) {
    const renewed = await client.query(
      `UPDATE directory_docs SET expires_at = $1::timestamptz + interval '365 days'
        WHERE id IN (SELECT id FROM directory_docs WHERE expires_at <= $1 ORDER BY expires_at, id LIMIT $2)`,
      [at, renewals]
    );
    counts.updated.directory_docs += renewed.rowCount ?? 0;
  }
}

async function advanceTrials(
  client: PoolClient,
  state: DemoState,
  tickSeconds: number,
  at: Date,
  counts: TickCounts
): Promise<void> {
  const { rng } = state;
  const ending = await client.query<{ company_id: string }>(
    `SELECT company_id FROM org_entitlements
      WHERE stripe_subscription_id IS NULL AND trial_ends_at > $1 AND trial_ends_at <= $2 ORDER BY company_id`,
    [addSeconds(at, -tickSeconds), at]
  );
  const converting = ending.rows.filter(() => rng.chance(TRIAL_CONVERSION)).map((r) => r.company_id);
  if (converting.length > 0) {
    const converted = await client.query(
      `UPDATE org_entitlements e SET stripe_customer_id = s.customer, stripe_subscription_id = s.subscription
         FROM unnest($1::uuid[], $2::text[], $3::text[]) AS s(company_id, customer, subscription)
        WHERE e.company_id = s.company_id`,
      [converting, converting.map(() => `cus_demo_${rng.token(14)}`), converting.map(() => `sub_demo_${rng.token(14)}`)]
    );
    counts.updated.org_entitlements += converted.rowCount ?? 0;
  }
  // Trials that did not convert lose access: the tenant list must drop them.
  if (ending.rows.length > 0) markTenantsStale(state);

  if (!rng.chance((TRIAL_SIGNUPS_PER_DAY * tickSeconds) / 86_400)) return;
  // Signups lean towards pro, the plan the trial is designed to sell.
  const plan = rng.pick(['starter', 'starter', 'pro', 'pro', 'pro', 'enterprise']);
  const id = rng.uuid();
  const company = await client.query(
    `INSERT INTO companies (id, name, created_at) SELECT $1, $2, $3
      WHERE NOT EXISTS (SELECT 1 FROM companies WHERE name = $2)`,
    [id, newBrokerName(rng), at]
  );
  if ((company.rowCount ?? 0) === 0) return;
  await client.query(
    `INSERT INTO org_entitlements (company_id, plan_id, started_at, trial_ends_at) VALUES ($1, $2, $3, $3::timestamptz + interval '14 days')`,
    [id, plan, at]
  );
  counts.inserted.companies += 1;
  counts.inserted.org_entitlements += 1;
  markTenantsStale(state);
}
