import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { mulberry32 } from '../../core/random.ts';
import { createTestDatabase, type TestDatabase } from '../../testing/postgres.ts';
import {
  compileModel,
  createRatingService,
  createSnapshot,
  FLAG_BITS,
  flagNames,
  laneKey,
  LOCATIONS,
  promoteCandidate,
  rateCandidate,
  RatedBatch,
  rateLane,
  registerModel,
  SEED_V1,
  tryRateLane,
  type Lane,
  type PricingModel,
  type PricingModelParams,
  type RegistrySnapshot,
  type SplitRate,
} from './index.ts';

/**
 * The registry's fast path (memoised split, shared split kernel, columnar batches) against the engine's
 * reference functions: the arm from hashing the laneKey string (RegistrySnapshot.armOf), the quote from
 * rateLane with that arm's model, and for the candidate's lanes the comparison from rateCandidate. None of
 * those use the split kernel or the arm table, so a wrong memoised arm, a swapped model or a different
 * anomaly decision shows up here.
 */
const v1 = compileModel(SEED_V1);
const variant = (version: string, patch: Partial<PricingModelParams>): PricingModel =>
  compileModel({ ...structuredClone(SEED_V1), version, ...patch });

/** Candidates that move prices in different ways, so that anomalies, caps, floors and minimums all occur. */
const CANDIDATES: PricingModel[] = [
  // +20% on van only: van lanes past the minimum are anomalies, reefer and flatbed are not.
  variant('van-up-20', { ratePerMile: { van: 1.95 * 1.2, reefer: 2.32, flatbed: 2.52 } }),
  // Fuel as a share of the linehaul, a higher minimum and tight caps: caps, minimums and needs_review.
  variant('pct-fuel-caps', {
    fuelSurcharge: { kind: 'percent_of_linehaul', fraction: 0.25 },
    minimumCharge: 600,
    regionalCaps: { Midwest: 2.2, Northeast: 2.6, 'West Coast': 3.1 },
  }),
  // A thin margin and lower rates: margin floors, and anomalies downwards.
  variant('thin', {
    ratePerMile: { van: 1.6, reefer: 1.9, flatbed: 2.1 },
    costPerMile: { van: 2.2, reefer: 2.5, flatbed: 2.7 },
    minMargin: 0.12,
  }),
];

/** How a location is written in an upload: canonical, lower case without the comma, or a ZIP. */
function spell(id: number, r: number): string {
  const l = LOCATIONS[id]!;
  if (r < 0.6) return l.name;
  if (r < 0.8) return `${l.city.toLowerCase()} ${l.state.toLowerCase()}`;
  return `${l.zip3}${String(Math.floor(r * 1e6) % 100).padStart(2, '0')}`;
}

/** Random lanes over the whole table, every equipment and month, same-city lanes and some bad rows. */
function lanes(count: number, seed: number): Lane[] {
  const rnd = mulberry32(seed);
  const n = LOCATIONS.length;
  const out: Lane[] = [];
  for (let i = 0; i < count; i++) {
    const o = Math.floor(rnd() * n);
    const d = rnd() < 0.02 ? o : Math.floor(rnd() * n);
    const lane: Lane = {
      origin: spell(o, rnd()),
      destination: spell(d, rnd()),
      equipment: (['van', 'reefer', 'flatbed'] as const)[Math.floor(rnd() * 3)]!,
      pickupDate: `2026-${String(1 + Math.floor(rnd() * 12)).padStart(2, '0')}-${String(1 + Math.floor(rnd() * 28)).padStart(2, '0')}`,
    };
    const bad = rnd();
    if (bad < 0.005) lane.origin = 'Springfeld, IL';
    else if (bad < 0.01) lane.destination = '99999';
    else if (bad < 0.015) lane.pickupDate = '2026-02-30';
    else if (bad < 0.02) lane.equipment = 'truck' as Lane['equipment'];
    out.push(lane);
  }
  return out;
}

/** What the registry must answer for a lane, from the engine's reference functions only. */
function expected(lane: Lane, snapshot: RegistrySnapshot, key?: string): SplitRate | string {
  const reason = tryRateLane(lane, snapshot.active);
  if (typeof reason === 'string') return reason;
  if (snapshot.armOf(key ?? laneKey(lane)) === 'active') {
    return { ...rateLane(lane, snapshot.active), arm: 'active', activeTotal: null, activeVersion: null };
  }
  return { ...rateCandidate(lane, snapshot.candidate!, snapshot.active), arm: 'candidate' };
}

const cents = (dollars: number) => Math.round(dollars * 100);

/** Checks the batch's columns and rateAt, and the per-lane API, against the reference, lane by lane. */
function assertAgrees(
  batch: RatedBatch,
  input: Lane[],
  snapshot: RegistrySnapshot,
  keys?: string[]
): { candidates: number; anomalies: number; failed: number } {
  assert.equal(batch.length, input.length);
  let candidates = 0;
  let anomalies = 0;
  let failed = 0;
  for (let i = 0; i < input.length; i++) {
    const want = expected(input[i]!, snapshot, keys?.[i]);
    const where = `lane ${i} ${JSON.stringify(input[i])}`;
    assert.deepEqual(snapshot.tryRate(input[i]!, keys?.[i]), want, `tryRate, ${where}`);
    assert.deepEqual(batch.rateAt(i), want, `rateAt, ${where}`);
    if (typeof want === 'string') {
      failed++;
      assert.equal(batch.failed[i], 1, where);
      assert.equal(batch.errorAt(i), want, where);
      continue;
    }
    assert.equal(batch.failed[i], 0, where);
    assert.equal(batch.errorAt(i), null, where);
    assert.equal(batch.arm[i], want.arm === 'candidate' ? 1 : 0, where);
    assert.equal(batch.totalCents[i], cents(want.total), where);
    assert.equal(batch.linehaulCents[i]! + batch.fuelCents[i]!, batch.totalCents[i], where);
    assert.equal(batch.carrierCostCents[i], cents(want.carrierCost), where);
    assert.equal(batch.miles[i], want.miles, where);
    assert.deepEqual(flagNames(batch.flags[i]!), want.flags, where);
    assert.equal(batch.activeTotalCents[i], want.activeTotal === null ? -1 : cents(want.activeTotal), where);
    if (want.arm === 'candidate') candidates++;
    if (want.flags.includes('anomaly')) anomalies++;
  }
  assert.equal(batch.failedCount, failed);
  assert.equal(batch.candidateCount, candidates);
  assert.equal(batch.anomalyCount, anomalies);
  return { candidates, anomalies, failed };
}

describe('registry fast path (split kernel, memoised arms, rateBatch)', () => {
  it('gives the engine’s quotes, arms and anomaly decisions for 30k lanes under three candidates and shares', () => {
    const input = lanes(10_000, 7);
    const seen = { candidates: 0, anomalies: 0, failed: 0, flags: new Set<string>() };
    for (const [c, candidate] of CANDIDATES.entries()) {
      const share = [0.1, 0.25, 0.5][c]!;
      const snapshot = createSnapshot({ active: v1, candidate, candidateShare: share });
      const batch = snapshot.rateBatch(input);
      const counts = assertAgrees(batch, input, snapshot);
      assert.ok(
        Math.abs(counts.candidates / (input.length - counts.failed) - share) < 0.03,
        `${candidate.version}: ${counts.candidates} lanes to the candidate for a share of ${share}`
      );
      seen.candidates += counts.candidates;
      seen.anomalies += counts.anomalies;
      seen.failed += counts.failed;
      for (let i = 0; i < batch.length; i++) for (const f of flagNames(batch.flags[i]!)) seen.flags.add(f);
    }
    // The comparison covers every kind of outcome, so it cannot pass by never reaching a case.
    assert.ok(seen.anomalies > 500, `${seen.anomalies} anomalies`);
    assert.ok(seen.failed > 300, `${seen.failed} failed lanes`);
    assert.deepEqual([...seen.flags].sort(), Object.values(flagNames(31)).sort());
  });

  it('with no candidate, prices every lane with the active model and flags nothing as an anomaly', () => {
    const input = lanes(3_000, 11);
    const solo = createSnapshot({ active: v1 });
    const batch = solo.rateBatch(input);
    const counts = assertAgrees(batch, input, solo);
    assert.equal(counts.candidates, 0);
    assert.equal(counts.anomalies, 0);
    for (let i = 0; i < batch.length; i++) if (batch.failed[i] === 0) assert.equal(batch.activeTotalCents[i], -1);
  });

  it('splits by explicit keys when given (one per lane), and refuses a key list of the wrong length', () => {
    const input = lanes(3_000, 13);
    const keys = input.map((_, i) => `shipper-${i % 997}`);
    const snapshot = createSnapshot({ active: v1, candidate: CANDIDATES[0]!, candidateShare: 0.25 });
    assertAgrees(snapshot.rateBatch(input, undefined, keys), input, snapshot, keys);
    assert.throws(() => snapshot.rateBatch(input, undefined, keys.slice(1)), /keys has 2999 entries for 3000 lanes/);
  });

  it('never reuses a remembered arm across splits: same version with another share, other versions, many splits', () => {
    const input = lanes(2_000, 17);
    // More splits than the arm tables kept (4), visited twice and interleaved, so tables are evicted,
    // recreated and switched between on every call.
    const snapshots: RegistrySnapshot[] = [];
    for (const share of [0.05, 0.1, 0.3]) {
      for (const candidate of CANDIDATES)
        snapshots.push(createSnapshot({ active: v1, candidate, candidateShare: share }));
    }
    for (let round = 0; round < 2; round++) {
      for (const snapshot of snapshots) {
        assertAgrees(snapshot.rateBatch(input), input, snapshot);
        // The per-lane API on a different split in between (it shares the kernel and the tables).
        const other = snapshots[(snapshots.indexOf(snapshot) + 4) % snapshots.length]!;
        assert.deepEqual(other.tryRate(input[0]!), expected(input[0]!, other));
      }
    }
  });

  it('reuses one batch: counts and reasons are reset, the columns grow when a bigger batch comes', () => {
    const snapshot = createSnapshot({ active: v1, candidate: CANDIDATES[0]!, candidateShare: 0.5 });
    const out = new RatedBatch(10);
    const bad: Lane = {
      origin: 'Springfeld, IL',
      destination: 'Dallas, TX',
      equipment: 'van',
      pickupDate: '2026-03-01',
    };
    const good: Lane = {
      origin: 'Chicago, IL',
      destination: 'Atlanta, GA',
      equipment: 'van',
      pickupDate: '2026-03-01',
    };
    snapshot.rateBatch([bad, good, bad], out);
    assert.equal(out.failedCount, 2);
    assert.equal(out.errorAt(2), "unknown origin 'Springfeld, IL'");

    const big = lanes(500, 19);
    assert.equal(snapshot.rateBatch(big, out), out);
    assert.ok(out.capacity >= 500);
    assertAgrees(out, big, snapshot);

    snapshot.rateBatch([good], out);
    assert.equal(out.length, 1);
    assert.equal(out.failedCount, 0);
    assert.equal(out.errorAt(2), null, 'reasons of the previous batch are gone');
    assert.deepEqual(out.rateAt(0), expected(good, snapshot));
    assert.throws(() => out.rateAt(1), /lane 1 is outside the batch \(0\.\.0\)/);
  });

  it('names every flag bit', () => {
    assert.deepEqual(flagNames(0), []);
    assert.deepEqual(flagNames(FLAG_BITS.regionalCap | FLAG_BITS.needsReview | FLAG_BITS.anomaly), [
      'regional_cap',
      'needs_review',
      'anomaly',
    ]);
    assert.deepEqual(flagNames(31), ['minimum_charge', 'margin_floor', 'regional_cap', 'needs_review', 'anomaly']);
  });
});

describe('the rating service’s batch rater', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase();
  });
  after(async () => {
    await db.drop();
  });

  it('rates a job’s lanes like the per-lane rater, with the registry’s candidate of the moment', async () => {
    const service = createRatingService();
    const input = lanes(4_000, 23);
    const perLane = (rate: (lane: Lane) => unknown, lane: Lane) => {
      try {
        return rate(lane);
      } catch (error) {
        return (error as Error).message;
      }
    };

    // Only v1: every lane to the active model.
    let batch = (await service.batchRaterForJob(db.pool))(input);
    assert.equal(batch.candidateCount, 0);
    assert.equal(batch.active?.version, 'v1');

    await registerModel(db.pool, { ...CANDIDATES[0]!.params, version: 'v2' }, 'grafana:alice');
    await promoteCandidate(db.pool, 'v2', 0.25, 'grafana:alice');
    const rate = await service.raterForJob(db.pool);
    batch = (await service.batchRaterForJob(db.pool))(input, batch);
    const snapshot = createSnapshot({
      active: v1,
      candidate: { ...CANDIDATES[0]!.params, version: 'v2' },
      candidateShare: 0.25,
    });
    for (let i = 0; i < input.length; i++) {
      assert.deepEqual(batch.rateAt(i), perLane(rate, input[i]!), `lane ${i} ${JSON.stringify(input[i])}`);
    }
    assertAgrees(batch, input, snapshot);
    assert.ok(
      batch.candidateCount > 800 && batch.anomalyCount > 100,
      `${batch.candidateCount} / ${batch.anomalyCount}`
    );
  });
});
