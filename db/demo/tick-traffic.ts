import type { PoolClient } from '../../core/db.ts';
import { apiShares, bulkJobRate, rateShares, type DemoTenant, type PlanLimits } from './profiles.ts';
import { weightedPicker } from './random.ts';
import { diurnalFactor, ERROR_BURST_REGION, hasIncident, MEAN_DIURNAL, type Incident } from './schedule.ts';
import { apiCall, CACHED_QUOTE_SHARE, QUOTE_SHARE_OF_API, quoteLatencyMs } from './shape.ts';
import { newUsageBatch, RowBatch } from './sql.ts';
import { monthUsed, recordUsage, type DemoState } from './state.ts';
import type { TickCounts } from './summary.ts';

/**
 * Overland Express's rating integration re-quotes its whole lane book in a loop: a steady 0.05 quotes/s
 * on top of its normal traffic, enough to use up the remaining 5% of its included pro quotes within the
 * hour (the 100% warning, and overage billed from there) and to reach its hard limit a few hours later.
 * It stops at 110% of the hard limit, where the product's block finally catches up with it. Each new
 * month it starts again from zero and crosses again, so the story recurs in a long-running demo.
 */
export const OVERLAND_RUNAWAY_PER_SECOND = 0.05;
const OVERLAND_RUNAWAY_CEILING = 1.1;
/** Past its soft limit a tenant has been warned and slows to a fraction of its usual pace. */
const WARNED_PACE = 0.15;

function throttleFor(state: DemoState, limits: PlanLimits, feature: 'rates') {
  return (t: DemoTenant) => {
    const limit = limits.capped(t.plan, feature);
    return limit && limit.soft > 0 && monthUsed(state, t.id, feature) >= limit.soft ? WARNED_PACE : 1;
  };
}

/** API calls (and their api_access metering), quote requests (and their rates metering), bulk jobs (one unit each). */
export async function writeTraffic(
  client: PoolClient,
  state: DemoState,
  limits: PlanLimits,
  tickSeconds: number,
  at: Date,
  incidents: readonly Incident[],
  counts: TickCounts
): Promise<void> {
  const { rng, options } = state;
  const load = diurnalFactor(at);
  const usage = newUsageBatch();
  const meter = (companyId: string, feature: string, qty: number) => {
    usage.push({ company_id: companyId, feature_key: feature, qty, occurred_at: at });
    recordUsage(state, companyId, feature, qty);
  };

  const requests = new RowBatch('api_requests', {
    created_at: 'timestamptz',
    status_code: 'integer',
    region: 'text',
    route: 'text',
  });
  const errorRegion = hasIncident(incidents, 'error_burst') ? ERROR_BURST_REGION : null;
  const apiShare = apiShares(state.tenants, limits, options.requestsPerSecond);
  const firstParty = 1 - [...apiShare.values()].reduce((a, b) => a + b, 0);
  const pickApiTenant = weightedPicker<string | null>([...apiShare, [null, firstParty]]);
  // Metered per tenant per tick, not per call: one usage row carries the tick's calls.
  const callsByTenant = new Map<string, number>();
  const calls = rng.poisson(options.requestsPerSecond * tickSeconds * load);
  for (let i = 0; i < calls; i++) {
    const call = apiCall(rng, errorRegion);
    requests.push({ created_at: at, status_code: call.statusCode, region: call.region, route: call.route });
    const tenant = pickApiTenant?.(rng);
    if (tenant) callsByTenant.set(tenant, (callsByTenant.get(tenant) ?? 0) + 1);
  }
  for (const [companyId, n] of callsByTenant) meter(companyId, 'api_access', n);
  counts.inserted.api_requests += await requests.insert(client);

  const quoteRequests = new RowBatch('quote_requests', {
    created_at: 'timestamptz',
    response_time_ms: 'float8',
    cached: 'boolean',
    company_id: 'uuid',
  });
  const slow = hasIncident(incidents, 'slow_quotes');
  const pickQuoteTenant = weightedPicker([
    ...rateShares(state.tenants, limits, options.requestsPerSecond, throttleFor(state, limits, 'rates')),
  ]);
  const quotes = pickQuoteTenant ? rng.poisson(options.requestsPerSecond * QUOTE_SHARE_OF_API * tickSeconds * load) : 0;
  for (let i = 0; i < quotes; i++) {
    const cached = rng.chance(CACHED_QUOTE_SHARE);
    const companyId = pickQuoteTenant!(rng);
    quoteRequests.push({
      created_at: at,
      response_time_ms: quoteLatencyMs(rng, cached, slow),
      cached,
      company_id: companyId,
    });
    meter(companyId, 'rates', 1);
  }
  counts.inserted.quote_requests += await quoteRequests.insert(client);

  const overland = state.tenants.find((t) => t.id === state.overlandId);
  const overlandLimit = overland && limits.capped(overland.plan, 'rates');
  if (
    overland &&
    overlandLimit &&
    monthUsed(state, overland.id, 'rates') < overlandLimit.hard * OVERLAND_RUNAWAY_CEILING
  ) {
    const runaway = rng.poisson(OVERLAND_RUNAWAY_PER_SECOND * tickSeconds);
    if (runaway > 0) meter(overland.id, 'rates', runaway);
  }

  for (const t of state.tenants) {
    const jobsExpected = (bulkJobRate(t, limits) * tickSeconds * load) / MEAN_DIURNAL;
    if (jobsExpected > 0 && rng.chance(Math.min(1, jobsExpected))) meter(t.id, 'bulk_rating', 1);
  }
  counts.inserted.usage_events += await usage.insert(client);
}
