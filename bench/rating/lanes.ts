import { LOCATIONS } from '../../control/rating/locations.ts';
import type { Lane } from '../../control/rating/engine.ts';
import { mulberry32 } from '../../core/random.ts';

const EQUIPMENT = ['van', 'reefer', 'flatbed'] as const;

/** How a location is written in an upload: mostly "City, ST", some lower-case / no comma, some ZIPs. */
function spell(i: number, r: number): string {
  const l = LOCATIONS[i]!;
  if (r < 0.7) return `${l.city}, ${l.state}`;
  if (r < 0.85) return `${l.city.toLowerCase()} ${l.state.toLowerCase()}`;
  return `${l.zip3}${String(Math.floor(r * 1e6) % 100).padStart(2, '0')}`;
}

/**
 * `count` random lanes between table cities, each with freshly built strings (as parsed from an upload):
 * equipment uniform, pickup dates across 2026.
 */
export function generateLanes(count: number, seed: number): Lane[] {
  const rnd = mulberry32(seed);
  const n = LOCATIONS.length;
  const lanes: Lane[] = new Array(count);
  for (let k = 0; k < count; k++) {
    const o = Math.floor(rnd() * n);
    const d = Math.floor(rnd() * n);
    const month = 1 + Math.floor(rnd() * 12);
    const day = 1 + Math.floor(rnd() * 28);
    lanes[k] = {
      origin: spell(o, rnd()),
      destination: spell(d, rnd()),
      equipment: EQUIPMENT[Math.floor(rnd() * 3)]!,
      pickupDate: `2026-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`,
    };
  }
  return lanes;
}
