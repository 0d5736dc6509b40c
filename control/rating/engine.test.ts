import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ANOMALY_THRESHOLD,
  compileModel,
  createSnapshot,
  LOCATIONS,
  laneKey,
  PricingModelError,
  rateCandidate,
  rateLane,
  RatingError,
  rateWithRegistry,
  REGIONS,
  resolveLocation,
  SEED_V1,
  tryRateLane,
  type Lane,
  type PricingModelParams,
} from './index.ts';

const v1 = compileModel(SEED_V1);
const lane = (
  origin: string,
  destination: string,
  equipment: Lane['equipment'] = 'van',
  pickupDate = '2026-03-10'
): Lane => ({
  origin,
  destination,
  equipment,
  pickupDate,
});
const variant = (patch: Partial<PricingModelParams>): PricingModelParams => ({ ...structuredClone(SEED_V1), ...patch });
const cents = (x: number) => Math.round(x * 100);

describe('location table', () => {
  it('covers the 48 contiguous states with at least 250 cities, unique zip3s and known regions', () => {
    assert.ok(LOCATIONS.length >= 250, `${LOCATIONS.length} cities`);
    const states = new Set(LOCATIONS.map((l) => l.state));
    states.delete('DC');
    assert.equal(states.size, 48);
    assert.equal(new Set(LOCATIONS.map((l) => l.zip3)).size, LOCATIONS.length);
    for (const l of LOCATIONS) assert.ok((REGIONS as readonly string[]).includes(l.region), l.name);
  });

  it('resolves "City, ST" spellings, abbreviations and state names', () => {
    const stl = resolveLocation('St. Louis, MO');
    assert.equal(stl?.name, 'St. Louis, MO');
    for (const text of [
      'saint louis, mo',
      '  ST LOUIS ,  MO ',
      'St Louis MO',
      'St. Louis, Missouri',
      'st. louis, mo 63101',
    ]) {
      assert.equal(resolveLocation(text)?.id, stl!.id, text);
    }
    assert.equal(resolveLocation('Ft. Worth, TX')?.name, 'Fort Worth, TX');
    assert.equal(resolveLocation('fort worth, tx')?.name, 'Fort Worth, TX');
    assert.equal(resolveLocation('Winston Salem, NC')?.name, 'Winston-Salem, NC');
    assert.equal(resolveLocation('Port Saint Lucie, FL')?.name, 'Port St. Lucie, FL');
    assert.equal(resolveLocation('Coeur dAlene, ID')?.name, "Coeur d'Alene, ID");
    assert.equal(resolveLocation('Portland, OR')?.region, 'Pacific Northwest');
    assert.equal(resolveLocation('Portland, ME')?.region, 'Northeast');
  });

  it('resolves a 5-digit ZIP on its first three digits, and only when the table has that zip3', () => {
    assert.equal(resolveLocation('60601')?.name, 'Chicago, IL');
    assert.equal(resolveLocation('60699')?.name, 'Chicago, IL');
    assert.equal(resolveLocation('30303-1234')?.name, 'Atlanta, GA');
    assert.equal(resolveLocation(' 75201 ')?.name, 'Dallas, TX');
    assert.equal(resolveLocation('99501'), undefined); // Anchorage: not in the table
    assert.equal(resolveLocation('00501'), undefined);
    assert.equal(resolveLocation('6060'), undefined);
    assert.equal(resolveLocation('606011'), undefined);
  });
});

describe('rateLane', () => {
  it('gives plausible road miles', () => {
    const chiAtl = rateLane(lane('Chicago, IL', 'Atlanta, GA'), v1).miles;
    assert.ok(chiAtl >= 700 && chiAtl <= 800, `Chicago → Atlanta ${chiAtl} mi`);
    const laNyc = rateLane(lane('Los Angeles, CA', 'New York, NY'), v1).miles;
    assert.ok(laNyc >= 2700 && laNyc <= 3000, `LA → NYC ${laNyc} mi`);
    const dalHou = rateLane(lane('Dallas, TX', 'Houston, TX'), v1).miles;
    assert.ok(dalHou >= 220 && dalHou <= 290, `Dallas → Houston ${dalHou} mi`);
    assert.equal(rateLane(lane('Atlanta, GA', 'Chicago, IL'), v1).miles, chiAtl, 'symmetric');
  });

  it('adds up: linehaul + fuel = total, margin = total - carrier cost, per mile = total / miles', () => {
    for (const equipment of ['van', 'reefer', 'flatbed'] as const) {
      const r = rateLane(lane('Chicago, IL', 'Atlanta, GA', equipment), v1);
      assert.equal(cents(r.linehaul) + cents(r.fuel), cents(r.total));
      assert.equal(cents(r.total) - cents(r.carrierCost), cents(r.margin));
      assert.equal(r.perMile, Math.round((r.total / r.miles) * 100) / 100);
      assert.equal(r.modelVersion, 'v1');
      assert.deepEqual(r.flags, []);
      // March seasonality 0.98, fuel $0.46/mi.
      const season = SEED_V1.seasonality[2]!;
      assert.equal(r.fuel, Math.round(r.miles * 0.46 * 100) / 100);
      assert.equal(r.linehaul, Math.round(r.miles * SEED_V1.ratePerMile[equipment] * season * 100) / 100);
      assert.equal(r.carrierCost, Math.round(r.miles * SEED_V1.costPerMile[equipment] * season * 100) / 100);
    }
  });

  it('prices equipment in the seeded order van < reefer < flatbed, around $2.40 / $2.80 / $3.00 all-in', () => {
    const [van, reefer, flatbed] = (['van', 'reefer', 'flatbed'] as const).map((e) =>
      rateLane(lane('Chicago, IL', 'Dallas, TX', e, '2026-08-12'), v1)
    );
    assert.ok(van!.perMile < reefer!.perMile && reefer!.perMile < flatbed!.perMile);
    assert.ok(
      Math.abs(van!.perMile - 2.41) < 0.02 &&
        Math.abs(reefer!.perMile - 2.78) < 0.02 &&
        Math.abs(flatbed!.perMile - 2.98) < 0.02
    );
  });

  it('is deterministic', () => {
    const l = lane('Laredo, TX', 'Chicago, IL', 'reefer', '2026-06-15');
    assert.deepEqual(rateLane(l, v1), rateLane({ ...l }, v1));
    assert.deepEqual(rateLane(l, v1), rateLane(lane('78040', 'chicago, il', 'reefer', '2026-06-15'), v1));
  });

  it('charges at least the minimum, same-city lanes included', () => {
    const same = rateLane(lane('Dallas, TX', 'dallas, tx'), v1);
    assert.equal(same.miles, 0);
    assert.equal(same.total, 350);
    assert.equal(same.perMile, 0);
    assert.deepEqual(same.flags, ['minimum_charge']);
    const short = rateLane(lane('Dallas, TX', 'Fort Worth, TX'), v1);
    assert.ok(short.miles > 0 && short.miles < 60);
    assert.equal(short.total, 350);
    assert.equal(cents(short.linehaul) + cents(short.fuel), 35000);
    assert.deepEqual(short.flags, ['minimum_charge']);
  });

  it('applies the pickup month seasonality', () => {
    const feb = rateLane(lane('Chicago, IL', 'Atlanta, GA', 'van', '2026-02-10'), v1);
    const jun = rateLane(lane('Chicago, IL', 'Atlanta, GA', 'van', '2026-06-10'), v1);
    const dec = rateLane(lane('Chicago, IL', 'Atlanta, GA', 'van', '2026-12-01'), v1);
    assert.ok(jun.total > feb.total && dec.total > feb.total);
    assert.equal(feb.fuel, jun.fuel, 'fuel is not seasonal');
    const ratio = jun.linehaul / feb.linehaul;
    assert.ok(Math.abs(ratio - 1.07 / 0.95) < 0.001, `June / February linehaul ${ratio}`);
  });

  it('supports a fuel surcharge as a fraction of the linehaul', () => {
    const m = compileModel(variant({ version: 'pct', fuelSurcharge: { kind: 'percent_of_linehaul', fraction: 0.2 } }));
    const r = rateLane(lane('Chicago, IL', 'Atlanta, GA'), m);
    assert.equal(r.fuel, Math.round(r.linehaul * 0.2 * 100) / 100);
  });

  it('raises a price below the margin floor to carrier cost x (1 + minMargin)', () => {
    const m = compileModel(variant({ version: 'thin', costPerMile: { van: 2.6, reefer: 2.42, flatbed: 2.6 } }));
    const r = rateLane(lane('Chicago, IL', 'Atlanta, GA'), m);
    assert.deepEqual(r.flags, ['margin_floor']);
    assert.equal(cents(r.total), Math.ceil(cents(r.carrierCost) * 1.08 - 1e-6));
    assert.ok(r.margin / r.carrierCost >= 0.08 && r.margin / r.carrierCost < 0.0801);
    assert.equal(cents(r.linehaul) + cents(r.fuel), cents(r.total));
  });

  it('caps the all-in rate per mile by origin region, and asks for review when the cap breaks the margin floor', () => {
    const capped = compileModel(variant({ version: 'cap', regionalCaps: { Midwest: 2.0 } }));
    const r = rateLane(lane('Chicago, IL', 'Atlanta, GA'), capped);
    assert.deepEqual(r.flags, ['regional_cap', 'needs_review']); // cost $2.08/mi x 0.98 x 1.08 > $2.00
    assert.equal(cents(r.total), Math.floor(r.miles * 200));
    assert.ok(r.margin < r.carrierCost * 0.08);

    const roomy = compileModel(variant({ version: 'cap2', regionalCaps: { Midwest: 2.3 } }));
    const ok = rateLane(lane('Chicago, IL', 'Atlanta, GA'), roomy);
    assert.deepEqual(ok.flags, ['regional_cap']);
    assert.equal(ok.perMile, 2.3);
    assert.ok(ok.margin >= ok.carrierCost * 0.08);

    // The cap is on the origin's region: the reverse lane leaves the Southeast and is not capped.
    assert.deepEqual(rateLane(lane('Atlanta, GA', 'Chicago, IL'), capped).flags, []);
    // The cap never takes a short lane below the minimum charge.
    const short = rateLane(
      lane('Chicago, IL', 'Joliet, IL'),
      compileModel(variant({ version: 'cap3', regionalCaps: { Midwest: 1 } }))
    );
    assert.equal(short.total, 350);
    assert.deepEqual(short.flags, ['minimum_charge']);
  });

  it('flags a candidate more than 10% away from the active model as an anomaly', () => {
    const up15 = compileModel(
      variant({ version: 'up15', ratePerMile: { van: 1.95 * 1.15, reefer: 2.32, flatbed: 2.52 } })
    );
    const up5 = compileModel(
      variant({ version: 'up5', ratePerMile: { van: 1.95 * 1.05, reefer: 2.32, flatbed: 2.52 } })
    );
    const l = lane('Chicago, IL', 'Atlanta, GA');
    const a = rateCandidate(l, up15, v1);
    assert.ok(Math.abs(a.total - a.activeTotal) / a.activeTotal > ANOMALY_THRESHOLD);
    assert.deepEqual(a.flags, ['anomaly']);
    assert.equal(a.activeTotal, rateLane(l, v1).total);
    assert.equal(a.activeVersion, 'v1');
    assert.equal(a.modelVersion, 'up15');
    const b = rateCandidate(l, up5, v1);
    assert.deepEqual(b.flags, []);
    // Reefer is unchanged in up15: no anomaly there.
    assert.deepEqual(rateCandidate(lane('Chicago, IL', 'Atlanta, GA', 'reefer'), up15, v1).flags, []);
  });

  it('reports lanes it cannot rate with a per-row reason', () => {
    assert.equal(tryRateLane(lane('Springfeld, IL', 'Dallas, TX'), v1), "unknown origin 'Springfeld, IL'");
    assert.equal(tryRateLane(lane('Dallas, TX', '99999'), v1), "unknown destination '99999'");
    assert.equal(tryRateLane(lane('Dallas, TX', 'Springfield'), v1), "unknown destination 'Springfield'");
    assert.match(
      tryRateLane({ ...lane('Dallas, TX', 'Austin, TX'), equipment: 'truck' as 'van' }, v1) as string,
      /unknown equipment 'truck'/
    );
    assert.match(
      tryRateLane(lane('Dallas, TX', 'Austin, TX', 'van', '2026-02-30'), v1) as string,
      /invalid pickupDate '2026-02-30'/
    );
    assert.match(tryRateLane(lane('Dallas, TX', 'Austin, TX', 'van', '2026-2-3'), v1) as string, /invalid pickupDate/);
    assert.equal(typeof tryRateLane(lane('Dallas, TX', 'Austin, TX', 'van', '2028-02-29'), v1), 'object', 'leap day');
    assert.equal(
      tryRateLane({ ...lane('x', 'Austin, TX'), origin: undefined as unknown as string }, v1),
      'origin is missing'
    );
    assert.match(
      tryRateLane({ ...lane('x', 'Austin, TX'), origin: 60601 as unknown as string }, v1) as string,
      /origin must be text/
    );
    assert.throws(
      () => rateLane(lane('Springfeld, IL', 'Dallas, TX'), v1),
      (e: unknown) => e instanceof RatingError && e.message === "unknown origin 'Springfeld, IL'"
    );
  });
});

describe('pricing model validation', () => {
  it('names the bad field', () => {
    const bad = (patch: Record<string, unknown>, field: RegExp) =>
      assert.throws(
        () => compileModel({ ...structuredClone(SEED_V1), ...patch }),
        (e: unknown) => e instanceof PricingModelError && field.test(e.message)
      );
    bad({ ratePerMile: { van: -1, reefer: 2, flatbed: 2 } }, /ratePerMile\.van: ratePerMile must be > 0/);
    bad({ costPerMile: { van: 2, reefer: 2 } }, /costPerMile\.flatbed: costPerMile is required/);
    bad({ seasonality: [1, 1, 1] }, /: seasonality must have 12 monthly multipliers/);
    bad({ minMargin: 8 }, /: minMargin must be a fraction/);
    bad({ regionalCaps: { Norteast: 3 } }, /regionalCaps has an unknown field 'Norteast'/);
    bad({ fuelSurcharge: { kind: 'per_gallon', amount: 1 } }, /fuelSurcharge/);
    bad({ circuityFactor: 0.9 }, /: circuityFactor must be >= 1/);
    bad({ version: 'has space' }, /: version must be/);
    bad({ surprise: true }, /unknown field 'surprise'/);
  });
});

describe('A/B split', () => {
  const candidate = compileModel(variant({ version: 'v2', ratePerMile: { van: 2.05, reefer: 2.4, flatbed: 2.6 } }));
  const snapshot = createSnapshot({ active: v1, candidate, candidateShare: 0.1 });

  it('sends about 10% of 20k lane keys to the candidate, the same key always to the same model', () => {
    let toCandidate = 0;
    for (let i = 0; i < 20_000; i++) {
      const key = `lane-${i}`;
      const model = snapshot.choose(key);
      if (model === candidate) toCandidate++;
      assert.equal(snapshot.choose(key), model);
    }
    const share = toCandidate / 20_000;
    assert.ok(Math.abs(share - 0.1) <= 0.015, `candidate share ${share}`);
  });

  it('splits real lanes by their canonical key, whatever the spelling', () => {
    const n = LOCATIONS.length;
    let toCandidate = 0;
    let total = 0;
    for (let i = 0; i < 20_000; i++) {
      const o = LOCATIONS[(i * 7919) % n]!;
      const d = LOCATIONS[(i * 104729 + 13) % n]!;
      const l = lane(o.name, d.name, (['van', 'reefer', 'flatbed'] as const)[i % 3], '2026-05-20');
      const r = rateWithRegistry(l, snapshot);
      assert.equal(r.arm, snapshot.armOf(laneKey(l)));
      assert.equal(r.modelVersion, r.arm === 'candidate' ? 'v2' : 'v1');
      if (r.arm === 'candidate') {
        toCandidate++;
        assert.equal(r.activeVersion, 'v1');
        assert.equal(r.activeTotal, rateLane(l, v1).total);
      } else assert.equal(r.activeTotal, null);
      total++;
    }
    assert.ok(Math.abs(toCandidate / total - 0.1) <= 0.015, `candidate share ${toCandidate / total}`);
    const a = rateWithRegistry(lane('Chicago, IL', 'Atlanta, GA'), snapshot);
    const b = rateWithRegistry(lane('chicago il', '30303'), snapshot);
    assert.equal(a.arm, b.arm);
    assert.equal(laneKey(lane('chicago il', '30303')), 'Chicago, IL|Atlanta, GA|van');
  });

  it('honours other shares and an explicit key, and everything goes to the active model without a candidate', () => {
    const quarter = createSnapshot({ active: v1, candidate, candidateShare: 0.25 });
    let n = 0;
    for (let i = 0; i < 20_000; i++) if (quarter.armOf(`shipper-${i}`) === 'candidate') n++;
    assert.ok(Math.abs(n / 20_000 - 0.25) <= 0.015, `share ${n / 20_000}`);
    const l = lane('Chicago, IL', 'Atlanta, GA');
    assert.equal(rateWithRegistry(l, quarter, 'shipper-7').arm, quarter.armOf('shipper-7'));
    const solo = createSnapshot({ active: SEED_V1 });
    assert.equal(solo.candidateShare, 0);
    for (let i = 0; i < 1000; i++) assert.equal(solo.choose(`k${i}`), solo.active);
    assert.equal(rateWithRegistry(l, solo).arm, 'active');
  });

  it('salts the split with the candidate version, so each experiment gets its own lanes', () => {
    const other = createSnapshot({
      active: v1,
      candidate: compileModel({ ...structuredClone(SEED_V1), version: 'v3' }),
      candidateShare: 0.1,
    });
    let both = 0;
    let first = 0;
    for (let i = 0; i < 20_000; i++) {
      const key = `lane-${i}`;
      if (snapshot.armOf(key) === 'candidate') {
        first++;
        if (other.armOf(key) === 'candidate') both++;
      }
    }
    assert.ok(both / first < 0.2, `overlap ${both} of ${first}`);
  });
});
