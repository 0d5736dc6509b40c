import type { Lane, LaneRate } from '../../control/rating/engine.ts';
import { LOCATIONS, normalizeCity, type Location } from '../../control/rating/locations.ts';
import type { PricingModelParams } from '../../control/rating/model.ts';

/**
 * The baseline: how a first implementation rates a lane. It parses both location strings with regular
 * expressions on every lane, searches the table linearly (by normalised "city|ST", or by zip3), computes
 * the haversine distance every time, parses the date with `new Date`, and reads the model's JSON
 * parameters directly. Same rules and rounding as the engine, so it returns the same rates.
 */
interface Row extends Location {
  key: string;
}
const ROWS: Row[] = LOCATIONS.map((l) => ({ ...l, key: `${normalizeCity(l.city)}|${l.state}` }));

function find(text: string): Row | undefined {
  const s = text.trim();
  const zip = /^(\d{3})\d{2}(?:-\d{4})?$/.exec(s);
  if (zip) return ROWS.find((r) => r.zip3 === zip[1]);
  const m = /^(.*?),?\s+([A-Za-z]{2})$/.exec(s);
  if (!m) return undefined;
  const key = `${normalizeCity(m[1]!.replace(/,$/, ''))}|${m[2]!.toUpperCase()}`;
  return ROWS.find((r) => r.key === key);
}

function haversineMiles(a: Row, b: Row): number {
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLon = (b.lon - a.lon) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * 3958.8 * Math.asin(Math.min(1, Math.sqrt(h)));
}

export function naiveRateLane(lane: Lane, p: PricingModelParams): LaneRate {
  const o = find(lane.origin);
  if (!o) throw new Error(`unknown origin '${lane.origin}'`);
  const d = find(lane.destination);
  if (!d) throw new Error(`unknown destination '${lane.destination}'`);
  const date = new Date(`${lane.pickupDate}T00:00:00Z`);
  if (Number.isNaN(date.getTime())) throw new Error(`invalid pickupDate '${lane.pickupDate}'`);
  const season = p.seasonality[date.getUTCMonth()]!;
  const miles = o.id === d.id ? 0 : Math.round(haversineMiles(o, d) * p.circuityFactor);
  const linehaulC = Math.round(miles * p.ratePerMile[lane.equipment] * season * 100);
  let fuelC =
    p.fuelSurcharge.kind === 'percent_of_linehaul'
      ? Math.round(linehaulC * p.fuelSurcharge.fraction)
      : Math.round(miles * p.fuelSurcharge.perMile * 100);
  const costC = Math.round(miles * p.costPerMile[lane.equipment] * season * 100);
  const floorC = Math.ceil(costC * (1 + p.minMargin) - 1e-6);
  const minC = Math.round(p.minimumCharge * 100);
  const flags: string[] = [];
  let totalC = linehaulC + fuelC;
  if (totalC < minC) {
    totalC = minC;
    flags.splice(0, flags.length, 'minimum_charge');
  }
  if (totalC < floorC) {
    totalC = floorC;
    flags.splice(0, flags.length, 'margin_floor');
  }
  const cap = (p.regionalCaps as Record<string, number | undefined>)[o.region];
  if (miles > 0 && cap !== undefined) {
    const capC = Math.max(Math.floor(cap * miles * 100 + 1e-6), minC);
    if (totalC > capC) {
      totalC = capC;
      flags.splice(0, flags.length, capC === minC ? 'minimum_charge' : 'regional_cap');
    }
  }
  if (totalC < floorC) flags.push('needs_review');
  let lineC = totalC - fuelC;
  if (lineC < 0) {
    lineC = 0;
    fuelC = totalC;
  }
  return {
    miles,
    linehaul: lineC / 100,
    fuel: fuelC / 100,
    total: totalC / 100,
    perMile: miles > 0 ? Math.round(totalC / miles) / 100 : 0,
    carrierCost: costC / 100,
    margin: (totalC - costC) / 100,
    modelVersion: p.version,
    flags,
  };
}
