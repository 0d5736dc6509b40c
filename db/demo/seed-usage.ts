import type { PoolClient } from '../../core/db.ts';
import { OVERLAND_EXPRESS } from './names.ts';
import { apiShares, bulkJobRate, rateShares, type PlanLimits } from './profiles.ts';
import type { Rng } from './random.ts';
import { addDays, addSeconds, diurnalSeconds, MEAN_DIURNAL, startOfUtcDay, startOfUtcMonth } from './schedule.ts';
import { busyTime, type SeededInvite } from './seed-business.ts';
import type { SeedTenant } from './seed-tenants.ts';
import { QUOTE_SHARE_OF_API } from './shape.ts';
import { type UsageBatch, newAgentTaskBatch, newUsageBatch } from './sql.ts';
import type { ResolvedDemoOptions } from './state.ts';
import { AGENT_FUNCTIONS, NORMAL_FAILURE_RATE, pickAgentFunction, taskPayload } from './tick-agents.ts';

/** Overland Express starts at 95% of its included quotes this month; live traffic takes it over within the hour. */
export const OVERLAND_SEEDED_SHARE = 0.95;
/** Hot tenants sit between the 80% warning and the included amount (nothing billed yet). */
const HOT_SHARE = { min: 0.82, max: 0.97 };
/** An ordinary tenant's seeded bulk jobs stop short of this share of its daily included jobs, so only the picked one is hot. */
const BULK_ORDINARY_CEILING = 0.6;

/**
 * Splits `total` units over [from, to) in slots weighted by the daily curve (with some jitter), so the sum
 * is exact and the shape matches what live ticks would have written, without one row per unit.
 */
function spread(
  rng: Rng,
  batch: UsageBatch,
  companyId: string,
  feature: string,
  total: number,
  from: Date,
  to: Date,
  slotSeconds: number
) {
  if (total <= 0 || to <= from) return;
  const slots: { start: Date; end: Date; weight: number }[] = [];
  for (let start = from; start < to; start = addSeconds(start, slotSeconds)) {
    const end = addSeconds(start, slotSeconds) < to ? addSeconds(start, slotSeconds) : to;
    slots.push({ start, end, weight: diurnalSeconds(start, end) * rng.between(0.7, 1.3) });
  }
  const weights = slots.reduce((sum, s) => sum + s.weight, 0);
  const exact = slots.map((s) => (total * s.weight) / weights);
  const qty = exact.map(Math.floor);
  // Largest remainders get the leftover units, so the slots add up to exactly `total`.
  const leftover = total - qty.reduce((a, b) => a + b, 0);
  const order = exact.map((x, i) => [x - Math.floor(x), i] as const).sort((a, b) => b[0] - a[0]);
  for (let k = 0; k < leftover; k++) qty[order[k % order.length]![1]]! += 1;
  slots.forEach((s, i) => {
    if (qty[i]! <= 0) return;
    const at = new Date(s.start.getTime() + rng.next() * (s.end.getTime() - s.start.getTime()));
    batch.push({ company_id: companyId, feature_key: feature, qty: qty[i]!, occurred_at: at });
  });
}

/** A handful of tenants already near their included amount this period: what the usage bands and warnings are for. */
function pickHotTenants(rng: Rng, tenants: readonly SeedTenant[], limits: PlanLimits, now: Date) {
  const candidates = rng.shuffle(
    tenants.filter((t) => t.name !== OVERLAND_EXPRESS && t.subscribed && t.activeUntil >= now)
  );
  const count = Math.max(2, Math.round(tenants.length * 0.07));
  const bulk = candidates.find((t) => limits.capped(t.plan, 'bulk_rating'));
  const rates = candidates.filter((t) => t !== bulk && limits.capped(t.plan, 'rates')).slice(0, count - (bulk ? 1 : 0));
  return { rates: new Set(rates.map((t) => t.id)), bulk: new Set(bulk ? [bulk.id] : []) };
}

export async function seedUsage(
  client: PoolClient,
  rng: Rng,
  tenants: readonly SeedTenant[],
  invites: readonly SeededInvite[],
  limits: PlanLimits,
  options: ResolvedDemoOptions,
  now: Date
): Promise<number> {
  const monthStart = startOfUtcMonth(now);
  const dayStart = startOfUtcDay(now);
  const rates = rateShares(tenants, limits, options.requestsPerSecond);
  const api = apiShares(tenants, limits, options.requestsPerSecond);
  const hot = pickHotTenants(rng, tenants, limits, now);
  const usage = newUsageBatch();

  for (const t of tenants) {
    const monthFrom = t.activeFrom > monthStart ? t.activeFrom : monthStart;
    const peakSeconds = diurnalSeconds(monthFrom, t.activeUntil);
    const ratesIncluded = limits.capped(t.plan, 'rates') && limits.included(t.plan, 'rates');
    let ratesQty = Math.round((rates.get(t.id) ?? 0) * options.requestsPerSecond * QUOTE_SHARE_OF_API * peakSeconds);
    if (ratesIncluded && t.name === OVERLAND_EXPRESS) ratesQty = Math.round(ratesIncluded * OVERLAND_SEEDED_SHARE);
    else if (ratesIncluded && hot.rates.has(t.id))
      ratesQty = Math.round(ratesIncluded * rng.between(HOT_SHARE.min, HOT_SHARE.max));
    spread(rng, usage, t.id, 'rates', ratesQty, monthFrom, t.activeUntil, 3 * 3600);

    // api_access is a daily limit: only today's calls matter, at the same pace live traffic keeps.
    const dayFrom = t.activeFrom > dayStart ? t.activeFrom : dayStart;
    const apiQty = Math.round(
      (api.get(t.id) ?? 0) * options.requestsPerSecond * diurnalSeconds(dayFrom, t.activeUntil)
    );
    spread(rng, usage, t.id, 'api_access', apiQty, dayFrom, t.activeUntil, 3600);

    // Bulk rating is metered in jobs per UTC day: each day of the month so far gets its whole jobs.
    const jobRate = bulkJobRate(t, limits);
    const bulkIncluded = limits.capped(t.plan, 'bulk_rating') && limits.included(t.plan, 'bulk_rating');
    for (let day = startOfUtcDay(monthFrom); jobRate > 0 && day < t.activeUntil; day = addDays(day, 1)) {
      const from = day > monthFrom ? day : monthFrom;
      const to = addDays(day, 1) < t.activeUntil ? addDays(day, 1) : t.activeUntil;
      const expected = (jobRate * diurnalSeconds(from, to)) / MEAN_DIURNAL;
      let jobs = Math.floor(expected) + (rng.chance(expected - Math.floor(expected)) ? 1 : 0);
      if (bulkIncluded) jobs = Math.min(jobs, Math.floor(bulkIncluded * BULK_ORDINARY_CEILING));
      if (bulkIncluded && day.getTime() === dayStart.getTime() && hot.bulk.has(t.id))
        jobs = Math.floor(bulkIncluded * HOT_SHARE.max);
      for (let i = 0; i < jobs; i++)
        usage.push({ company_id: t.id, feature_key: 'bulk_rating', qty: 1, occurred_at: busyTime(rng, from, to) });
    }
  }
  // Every carrier invitation this month is one unit of the directory feature.
  for (const invite of invites) {
    if (invite.invitedAt >= monthStart)
      usage.push({ company_id: invite.companyId, feature_key: 'directory', qty: 1, occurred_at: invite.invitedAt });
  }
  return usage.insert(client);
}

/** A day of finished agent work, so completion counters are not empty before live traffic starts. */
export async function seedAgentHistory(
  client: PoolClient,
  rng: Rng,
  tenants: readonly SeedTenant[],
  now: Date
): Promise<number> {
  const live = tenants.filter((t) => t.activeUntil >= now);
  const tasks = newAgentTaskBatch();
  const from = addDays(now, -1);
  const until = addSeconds(now, -300);
  for (let i = 0; i < 300 && live.length > 0; i++) {
    const fn = pickAgentFunction(rng);
    const createdAt = busyTime(rng, from, until);
    const runtime =
      (AGENT_FUNCTIONS.find((f) => f.name === fn)?.runtimeSeconds ?? 2) * rng.between(0.6, 1.4) + rng.between(0.2, 2);
    tasks.push({
      company_id: rng.pick(live).id,
      fn_name: fn,
      payload: taskPayload(rng, fn),
      status: rng.chance(NORMAL_FAILURE_RATE * 1.5) ? 'failed' : 'success',
      created_at: createdAt,
      updated_at: addSeconds(createdAt, runtime),
    });
  }
  return tasks.insert(client);
}
