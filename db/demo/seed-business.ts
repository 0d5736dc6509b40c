import type { PoolClient } from '../../core/db.ts';
import { carrierName } from './names.ts';
import type { Rng } from './random.ts';
import { addDays, addSeconds, diurnalFactor, diurnalSeconds, MEAN_DIURNAL } from './schedule.ts';
import type { SeedTenant } from './seed-tenants.ts';
import { invoicedAmount, proposedRate } from './shape.ts';
import { allocateIds, RowBatch } from './sql.ts';

/** Quote outcomes once a shipper answers (or does not): ~38% book, which the quote_to_book funnel shows. */
export const QUOTE_OUTCOMES = { accepted: 0.38, rejected: 0.44, expired: 0.18 } as const;
export const DRAFT_SHARE = 0.1;
/** Unanswered quotes lapse after three days. */
const QUOTE_VALIDITY_DAYS = 3;
const MEAN_ANSWER_HOURS = 20;
export const INVOICED_SHARE = 0.9;
export const ONBOARDED_SHARE = 0.65;
/** Carriers from before the funnel window too, so the document inventory has a realistic age spread. */
const DIRECTORY_HISTORY_DAYS = 120;
export const DOC_KINDS = ['insurance', 'w9', 'operating_authority'] as const;

/** A time in [from, to) drawn with the daily traffic curve: business happens in the afternoon, not at 4 am. */
export function busyTime(rng: Rng, from: Date, to: Date): Date {
  const span = to.getTime() - from.getTime();
  for (;;) {
    const at = new Date(from.getTime() + rng.next() * span);
    if (rng.next() <= diurnalFactor(at)) return at;
  }
}

/** Expected number of events in a window for a per-day rate that follows the daily curve. */
export function expectedEvents(perDay: number, from: Date, to: Date): number {
  return (perDay * diurnalSeconds(from, to)) / (86_400 * MEAN_DIURNAL);
}

interface PlannedQuote {
  companyId: string;
  createdAt: Date;
  status: 'draft' | 'sent' | 'accepted' | 'rejected' | 'expired';
  rate: number;
  invoiceAt: Date | null;
}

function planQuote(rng: Rng, companyId: string, createdAt: Date, now: Date): PlannedQuote {
  const rate = proposedRate(rng);
  if (rng.chance(DRAFT_SHARE)) return { companyId, createdAt, status: 'draft', rate, invoiceAt: null };
  const roll = rng.next();
  if (roll >= QUOTE_OUTCOMES.accepted + QUOTE_OUTCOMES.rejected) {
    const lapsed = addDays(createdAt, QUOTE_VALIDITY_DAYS) <= now;
    return { companyId, createdAt, status: lapsed ? 'expired' : 'sent', rate, invoiceAt: null };
  }
  const answeredAt = addSeconds(createdAt, -Math.log(1 - rng.next()) * MEAN_ANSWER_HOURS * 3600);
  if (answeredAt > now) return { companyId, createdAt, status: 'sent', rate, invoiceAt: null };
  if (roll >= QUOTE_OUTCOMES.accepted) return { companyId, createdAt, status: 'rejected', rate, invoiceAt: null };
  // Invoiced after delivery, a few days after booking; the freshest bookings are not invoiced yet.
  const invoiceAt = rng.chance(INVOICED_SHARE) ? addDays(answeredAt, rng.between(1, 4)) : null;
  return {
    companyId,
    createdAt,
    status: 'accepted',
    rate,
    invoiceAt: invoiceAt && invoiceAt <= now ? invoiceAt : null,
  };
}

export async function seedQuotes(
  client: PoolClient,
  rng: Rng,
  tenants: readonly SeedTenant[],
  backfillDays: number,
  now: Date
) {
  const windowStart = addDays(now, -backfillDays);
  const planned: PlannedQuote[] = [];
  for (const t of tenants) {
    const from = t.activeFrom > windowStart ? t.activeFrom : windowStart;
    if (t.activeUntil <= from) continue;
    const count = rng.poisson(expectedEvents(t.profile.quotesPerDay, from, t.activeUntil));
    for (let i = 0; i < count; i++) planned.push(planQuote(rng, t.id, busyTime(rng, from, t.activeUntil), now));
  }
  // Ids follow time, as they would have in the real TMS.
  planned.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
  const ids = await allocateIds(client, 'quotes', planned.length);
  const quotes = new RowBatch('quotes', {
    id: 'bigint',
    company_id: 'uuid',
    status: 'text',
    proposed_rate: 'numeric',
    created_at: 'timestamptz',
  });
  const invoices = new RowBatch('invoices', { quote_id: 'bigint', amount: 'numeric', created_at: 'timestamptz' });
  planned.forEach((q, i) => {
    quotes.push({
      id: ids[i]!,
      company_id: q.companyId,
      status: q.status,
      proposed_rate: q.rate,
      created_at: q.createdAt,
    });
    if (q.invoiceAt) invoices.push({ quote_id: ids[i]!, amount: invoicedAmount(rng, q.rate), created_at: q.invoiceAt });
  });
  return { quotes: await quotes.insert(client), invoices: await invoices.insert(client) };
}

/**
 * Document expiry: mostly valid for months, ~9% expiring within a week and ~7% already lapsed, the mix a
 * carrier-compliance dashboard exists to surface.
 */
export function docExpiry(rng: Rng, now: Date): Date {
  const roll = rng.next();
  if (roll < 0.07) return addDays(now, -rng.between(0.5, 90));
  if (roll < 0.16) return addDays(now, rng.between(0.1, 7));
  return addDays(now, rng.between(8, 365));
}

export interface SeededInvite {
  companyId: string;
  invitedAt: Date;
}

export async function seedDirectory(
  client: PoolClient,
  rng: Rng,
  tenants: readonly SeedTenant[],
  backfillDays: number,
  now: Date
) {
  const windowStart = addDays(now, -Math.max(backfillDays, DIRECTORY_HISTORY_DAYS));
  const planned: { companyId: string; name: string; invitedAt: Date; onboardedAt: Date | null }[] = [];
  for (const t of tenants) {
    const from = t.activeFrom > windowStart ? t.activeFrom : windowStart;
    if (t.activeUntil <= from) continue;
    const count = rng.poisson(expectedEvents(t.profile.carrierInvitesPerDay, from, t.activeUntil));
    for (let i = 0; i < count; i++) {
      const invitedAt = busyTime(rng, from, t.activeUntil);
      const onboardedAt = rng.chance(ONBOARDED_SHARE) ? addDays(invitedAt, rng.between(0.5, 5)) : null;
      planned.push({
        companyId: t.id,
        name: carrierName(rng),
        invitedAt,
        onboardedAt: onboardedAt && onboardedAt <= now ? onboardedAt : null,
      });
    }
  }
  planned.sort((a, b) => a.invitedAt.getTime() - b.invitedAt.getTime());
  const ids = await allocateIds(client, 'directory_companies', planned.length);
  const carriers = new RowBatch('directory_companies', {
    id: 'bigint',
    company_id: 'uuid',
    company_name: 'text',
    status: 'text',
    invited_at: 'timestamptz',
    onboarded_at: 'timestamptz',
  });
  const docs = new RowBatch('directory_docs', {
    directory_company_id: 'bigint',
    kind: 'text',
    expires_at: 'timestamptz',
  });
  planned.forEach((c, i) => {
    const id = ids[i]!;
    carriers.push({
      id,
      company_id: c.companyId,
      company_name: c.name,
      status: c.onboardedAt ? 'onboarded' : 'invited',
      invited_at: c.invitedAt,
      onboarded_at: c.onboardedAt,
    });
    // Onboarding requires the full packet; some invitees upload their insurance before finishing.
    const kinds = c.onboardedAt ? DOC_KINDS : rng.chance(0.35) ? (['insurance'] as const) : [];
    for (const kind of kinds) docs.push({ directory_company_id: id, kind, expires_at: docExpiry(rng, now) });
  });
  const counts = { directory_companies: await carriers.insert(client), directory_docs: await docs.insert(client) };
  const invites: SeededInvite[] = planned.map((c) => ({ companyId: c.companyId, invitedAt: c.invitedAt }));
  return { counts, invites };
}
