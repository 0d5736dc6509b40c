import type { Rng } from './random.ts';

/** The tenant whose runaway rating integration crosses its monthly limit; also marks a seeded database. */
export const OVERLAND_EXPRESS = 'Overland Express Logistics';

const BROKER_PREFIXES = [
  'Summit',
  'Blue Ridge',
  'Lakeshore',
  'Prairie',
  'Ironhorse',
  'Keystone',
  'Cascade',
  'Redwood',
  'Gulfstream',
  'Pinnacle',
  'Heartland',
  'Crossroads',
  'Northstar',
  'Lone Star',
  'Great Lakes',
  'Coastline',
  'Granite',
  'Silver State',
  'Magnolia',
  'Frontier',
  'Timberline',
  'Canyon',
  'Harbor Point',
  'Midwest',
  'Allegheny',
  'Piedmont',
  'Sierra',
  'Bluegrass',
  'Ozark',
  'Tidewater',
  'Badger',
  'Sandhill',
  'Cornerstone',
  'Everline',
];
const BROKER_SUFFIXES = [
  'Freight',
  'Logistics',
  'Freight Solutions',
  'Transport Brokers',
  'Shipping Co.',
  'Cargo Partners',
  'Freight Group',
  'Supply Chain',
  'Brokerage',
  'Logistics Group',
];

/** `count` distinct, plausible freight-broker names; Overland Express is always the first. */
export function brokerNames(rng: Rng, count: number): string[] {
  const combos = rng.shuffle(BROKER_PREFIXES.flatMap((p) => BROKER_SUFFIXES.map((s) => `${p} ${s}`)));
  const names = [OVERLAND_EXPRESS];
  for (let i = 0; names.length < count; i++) {
    const base = combos[i % combos.length]!;
    // Past the combinations, a numbered "II", "III"... still reads like a company name.
    const round = Math.floor(i / combos.length);
    names.push(round === 0 ? base : `${base} ${'I'.repeat(round + 1)}`);
  }
  return names.slice(0, count);
}

export function newBrokerName(rng: Rng): string {
  return `${rng.pick(BROKER_PREFIXES)} ${rng.pick(BROKER_SUFFIXES)}`;
}

const CARRIER_WORDS = [
  'Martinez',
  'Johnson',
  'Nguyen',
  'Patel',
  'Kowalski',
  'Brooks',
  'Ramirez',
  'Olsen',
  'Delgado',
  'Hughes',
  'Eagle',
  'Thunder',
  'Roadrunner',
  'Big Sky',
  'Red River',
  'Steel City',
  'Open Road',
  'Mile Marker',
  'Diesel',
  'Four Corners',
  'Blackhawk',
  'Sunbelt',
  'Rio Grande',
  'Appalachian',
  'High Plains',
  'Golden Spike',
];
const CARRIER_SUFFIXES = ['Trucking LLC', 'Transport Inc.', 'Carriers', 'Freight Lines', 'Express LLC', 'Hauling Co.'];

export function carrierName(rng: Rng): string {
  return `${rng.pick(CARRIER_WORDS)} ${rng.pick(CARRIER_SUFFIXES)}`;
}
