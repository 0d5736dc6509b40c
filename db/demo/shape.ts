import { weightedPicker, type Rng } from './random.ts';

/**
 * What a single API call or rate quote looks like: region, route, status code, latency. Kept apart from
 * the writers so the numbers the dashboards will show are all in one place.
 */

/** Quote requests are about a quarter of all API calls (the rest is loads, carriers, invoices...). */
export const QUOTE_SHARE_OF_API = 0.25;
export const CACHED_QUOTE_SHARE = 0.4;
/** Incident multipliers. */
export const ERROR_BURST_5XX_SHARE = 0.2;
export const SLOW_QUOTES_FACTOR = 4;

const NORMAL_5XX_SHARE = 0.0005;
const CLIENT_ERROR_SHARE = 0.03;

export const REGIONS = ['us-east-1', 'us-west-2'] as const;
const pickRegion = weightedPicker<string>([
  ['us-east-1', 0.7],
  ['us-west-2', 0.3],
])!;

interface Route {
  path: string;
  /** Create endpoints answer 201, reads may answer 304 to a conditional GET. */
  creates: boolean;
}

const pickRoute = weightedPicker<Route>([
  [{ path: '/v1/quotes', creates: true }, 30],
  [{ path: '/v1/quotes', creates: false }, 8],
  [{ path: '/v1/loads', creates: false }, 18],
  [{ path: '/v1/loads', creates: true }, 4],
  [{ path: '/v1/carriers', creates: false }, 16],
  [{ path: '/v1/carriers/documents', creates: false }, 4],
  [{ path: '/v1/invoices', creates: false }, 10],
  [{ path: '/v1/invoices', creates: true }, 2],
  [{ path: '/v1/bulk-rating/jobs', creates: true }, 3],
  [{ path: '/v1/bulk-rating/jobs', creates: false }, 5],
])!;

const pickClientError = weightedPicker<number>([
  [400, 20],
  [401, 12],
  [404, 30],
  [409, 10],
  [422, 18],
  [429, 10],
])!;

const pickServerError = weightedPicker<number>([
  [500, 45],
  [502, 20],
  [503, 25],
  [504, 10],
])!;

export interface ApiCall {
  region: string;
  route: string;
  statusCode: number;
}

export function apiCall(rng: Rng, errorBurstRegion: string | null): ApiCall {
  const region = pickRegion(rng);
  const route = pickRoute(rng);
  const serverErrorShare = region === errorBurstRegion ? ERROR_BURST_5XX_SHARE : NORMAL_5XX_SHARE;
  const roll = rng.next();
  let statusCode: number;
  if (roll < serverErrorShare) statusCode = pickServerError(rng);
  else if (roll < serverErrorShare + CLIENT_ERROR_SHARE) statusCode = pickClientError(rng);
  else if (route.creates) statusCode = 201;
  else statusCode = rng.chance(0.12) ? 304 : 200;
  return { region, route: route.path, statusCode };
}

/**
 * Quote latency in ms. Uncached quotes call carriers' rate engines: lognormal around 180 ms with a 1.5%
 * slow tail of 0.6-2 s, so ~2% miss the 0.5 s latency objective on a normal day and the slow-quotes
 * incident stands out; cached ones are a lookup around 30 ms.
 */
export function quoteLatencyMs(rng: Rng, cached: boolean, slowQuotes: boolean): number {
  if (cached) return round1(Math.min(rng.logNormal(30, 0.35), 400));
  let ms = rng.logNormal(180, 0.4);
  if (rng.chance(0.015)) ms = rng.between(600, 2000);
  if (slowQuotes) ms *= SLOW_QUOTES_FACTOR;
  return round1(Math.min(ms, 15_000));
}

const round1 = (n: number) => Math.round(n * 10) / 10;

export function proposedRate(rng: Rng): number {
  // Truckload lanes: most between $1,200 and $2,800, bounded to what a broker would quote at all.
  const rate = Math.min(4500, Math.max(800, rng.logNormal(1900, 0.35)));
  return Math.round(rate * 100) / 100;
}

/** Invoiced amount: accessorials and fuel move it a few percent; now and then a detention or TONU blows it up. */
export function invoicedAmount(rng: Rng, proposed: number): number {
  let noise = Math.max(-0.08, Math.min(0.08, rng.normal() * 0.035));
  if (rng.chance(0.04)) noise = (rng.chance(0.75) ? 1 : -1) * rng.between(0.15, 0.2);
  return Math.round(proposed * (1 + noise) * 100) / 100;
}
