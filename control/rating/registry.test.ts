import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { UserError } from '../../core/errors.ts';
import { createTestDatabase, type TestDatabase } from '../../testing/postgres.ts';
import {
  activate,
  createRatingService,
  listModels,
  loadRegistry,
  PricingModelError,
  promoteCandidate,
  rateLane,
  rateWithRegistry,
  registerModel,
  rollback,
  SEED_V1,
  withdrawCandidate,
  type PricingModelParams,
} from './index.ts';

const ACTOR = 'grafana:alice';
const model = (version: string, vanRate = SEED_V1.ratePerMile.van): PricingModelParams => ({
  ...structuredClone(SEED_V1),
  version,
  ratePerMile: { ...SEED_V1.ratePerMile, van: vanRate },
});

let db: TestDatabase;
beforeEach(async () => {
  db = await createTestDatabase();
});
afterEach(async () => {
  await db.drop();
});

async function audits(): Promise<
  { actor: string; action: string; target: string; payload: Record<string, unknown> }[]
> {
  const { rows } = await db.pool.query(
    `SELECT actor, action, target, payload FROM audit_log WHERE action LIKE 'pricing_model.%' ORDER BY id`
  );
  return rows;
}
async function statuses(): Promise<Record<string, string>> {
  const { rows } = await db.pool.query<{ version: string; status: string }>(
    `SELECT version, status FROM controlroom.pricing_models`
  );
  return Object.fromEntries(rows.map((r) => [r.version, r.status]));
}
const STATUS = { not_found: 404, conflict: 409, invalid: 400 } as const;
const rejects = (p: Promise<unknown>, code: keyof typeof STATUS, message: RegExp) =>
  assert.rejects(p, (e: unknown) => e instanceof UserError && e.status === STATUS[code] && message.test(e.message));

describe('pricing model registry', () => {
  it('starts with the seeded v1 active, no candidate, and its params are the ones the engine ships', async () => {
    const snapshot = await loadRegistry(db.pool);
    assert.equal(snapshot.active.version, 'v1');
    assert.deepEqual(snapshot.active.params, SEED_V1);
    assert.equal(snapshot.candidate, null);
    assert.equal(snapshot.candidateShare, 0);
    const [row] = await listModels(db.pool);
    assert.equal(row?.status, 'active');
    assert.equal(row?.createdBy, 'controlroom:migration');
    assert.ok(row?.activatedAt instanceof Date);
  });

  it('registers drafts with validation, and refuses a duplicate version', async () => {
    await assert.rejects(
      registerModel(db.pool, { ...model('v2'), minimumCharge: -5 }, ACTOR),
      (e: unknown) => e instanceof PricingModelError && /: minimumCharge must be > 0/.test(e.message)
    );
    await assert.rejects(
      registerModel(db.pool, { version: 'v2' }, ACTOR),
      (e: unknown) => e instanceof PricingModelError && /ratePerMile/.test(e.message)
    );
    const row = await registerModel(db.pool, model('v2'), ACTOR);
    assert.equal(row.status, 'draft');
    assert.equal(row.createdBy, ACTOR);
    await rejects(registerModel(db.pool, model('v2'), ACTOR), 'conflict', /'v2' already exists/);
    assert.deepEqual(
      (await audits()).map((a) => [a.actor, a.action, a.target]),
      [[ACTOR, 'pricing_model.registered', 'pricing_models/v2']]
    );
    assert.deepEqual(await statuses(), { v1: 'active', v2: 'draft' });
  });

  it('promotes a candidate that takes its share of lanes, with the active price and anomaly flag alongside', async () => {
    await registerModel(db.pool, model('v2', SEED_V1.ratePerMile.van * 1.2), ACTOR);
    await rejects(promoteCandidate(db.pool, 'v2', 0.9, ACTOR), 'invalid', /candidate share must be > 0 and <= 0.5/);
    await rejects(promoteCandidate(db.pool, 'v1', 0.1, ACTOR), 'conflict', /'v1' is the active model/);
    await rejects(promoteCandidate(db.pool, 'nope', 0.1, ACTOR), 'not_found', /no pricing model 'nope'/);
    const row = await promoteCandidate(db.pool, 'v2', undefined, ACTOR);
    assert.equal(row.status, 'candidate');
    assert.equal(row.candidateShare, 0.1);

    const snapshot = await loadRegistry(db.pool);
    assert.equal(snapshot.candidate?.version, 'v2');
    assert.equal(snapshot.candidateShare, 0.1);
    const { LOCATIONS } = await import('./locations.ts');
    let toCandidate = 0;
    const N = 5000;
    for (let i = 0; i < N; i++) {
      const lane = {
        origin: LOCATIONS[i % LOCATIONS.length]!.name,
        destination: LOCATIONS[(i * 31 + 7) % LOCATIONS.length]!.name,
        equipment: 'van' as const,
        pickupDate: '2026-09-01',
      };
      const r = rateWithRegistry(lane, snapshot);
      if (r.arm === 'candidate') {
        toCandidate++;
        assert.equal(r.modelVersion, 'v2');
        assert.equal(r.activeTotal, rateLane(lane, snapshot.active).total);
        // +20% on the van linehaul moves long lanes past 10%; minimum-charge lanes do not move.
        assert.equal(r.flags.includes('anomaly'), Math.abs(r.total - r.activeTotal!) / r.activeTotal! > 0.1);
      }
    }
    assert.ok(Math.abs(toCandidate / N - 0.1) < 0.02, `candidate share ${toCandidate / N}`);

    await promoteCandidate(db.pool, 'v2', 0.25, ACTOR);
    assert.equal((await loadRegistry(db.pool)).candidateShare, 0.25);

    // A second candidate replaces the first, which goes back to draft.
    await registerModel(db.pool, model('v3'), ACTOR);
    await promoteCandidate(db.pool, 'v3', 0.05, ACTOR);
    assert.deepEqual(await statuses(), { v1: 'active', v2: 'draft', v3: 'candidate' });
    await withdrawCandidate(db.pool, ACTOR);
    assert.equal((await loadRegistry(db.pool)).candidate, null);
    await rejects(withdrawCandidate(db.pool, ACTOR), 'not_found', /no candidate/);

    assert.deepEqual(
      (await audits()).map((a) => [a.action, a.target]),
      [
        ['pricing_model.registered', 'pricing_models/v2'],
        ['pricing_model.candidate_promoted', 'pricing_models/v2'],
        ['pricing_model.candidate_promoted', 'pricing_models/v2'],
        ['pricing_model.registered', 'pricing_models/v3'],
        ['pricing_model.candidate_withdrawn', 'pricing_models/v2'],
        ['pricing_model.candidate_promoted', 'pricing_models/v3'],
        ['pricing_model.candidate_withdrawn', 'pricing_models/v3'],
      ]
    );
    const promoted = (await audits())[2]!;
    assert.equal(promoted.payload.share, 0.25);
    assert.equal(promoted.payload.previousShare, 0.1);
  });

  it('activates a model (the previous one retires) and rolls back to the most recently retired one', async () => {
    await rejects(rollback(db.pool, ACTOR), 'conflict', /no retired pricing model/);
    await registerModel(db.pool, model('v2', 2.0), ACTOR);
    await registerModel(db.pool, model('v3', 2.1), ACTOR);
    await promoteCandidate(db.pool, 'v2', 0.1, ACTOR);

    const activated = await activate(db.pool, 'v2', ACTOR);
    assert.equal(activated.status, 'active');
    assert.deepEqual(await statuses(), { v1: 'retired', v2: 'active', v3: 'draft' });
    let snapshot = await loadRegistry(db.pool);
    assert.equal(snapshot.active.version, 'v2');
    assert.equal(snapshot.candidate, null, 'the candidate became the active model');
    await rejects(activate(db.pool, 'v2', ACTOR), 'conflict', /already active/);
    await rejects(activate(db.pool, 'v9', ACTOR), 'not_found', /no pricing model 'v9'/);

    await activate(db.pool, 'v3', ACTOR);
    assert.deepEqual(await statuses(), { v1: 'retired', v2: 'retired', v3: 'active' });

    const back = await rollback(db.pool, 'grafana:bob');
    assert.equal(back.version, 'v2');
    assert.deepEqual(await statuses(), { v1: 'retired', v2: 'active', v3: 'retired' });
    snapshot = await loadRegistry(db.pool);
    assert.equal(snapshot.active.version, 'v2');
    const lane = {
      origin: 'Chicago, IL',
      destination: 'Atlanta, GA',
      equipment: 'van' as const,
      pickupDate: '2026-04-01',
    };
    assert.equal(rateWithRegistry(lane, snapshot).modelVersion, 'v2');

    // Rolling back a rollback returns to the model it rolled back from.
    await rollback(db.pool, 'grafana:bob');
    assert.equal((await loadRegistry(db.pool)).active.version, 'v3');

    const log = await audits();
    assert.deepEqual(
      log.slice(3).map((a) => [a.actor, a.action, a.target, a.payload]),
      [
        [
          ACTOR,
          'pricing_model.activated',
          'pricing_models/v2',
          { version: 'v2', previous: 'v1', previousStatus: 'candidate' },
        ],
        [
          ACTOR,
          'pricing_model.activated',
          'pricing_models/v3',
          { version: 'v3', previous: 'v2', previousStatus: 'draft' },
        ],
        ['grafana:bob', 'pricing_model.rolled_back', 'pricing_models/v2', { from: 'v3', to: 'v2' }],
        ['grafana:bob', 'pricing_model.rolled_back', 'pricing_models/v3', { from: 'v2', to: 'v3' }],
      ]
    );
  });

  it('keeps exactly one active model and at most one candidate, even against direct writes', async () => {
    await registerModel(db.pool, model('v2'), ACTOR);
    await registerModel(db.pool, model('v3'), ACTOR);
    await assert.rejects(
      db.pool.query(
        `UPDATE controlroom.pricing_models SET status = 'active', activated_at = now() WHERE version = 'v2'`
      ),
      /pricing_models_one_active/
    );
    await promoteCandidate(db.pool, 'v2', 0.1, ACTOR);
    await assert.rejects(
      db.pool.query(`UPDATE controlroom.pricing_models SET status = 'candidate' WHERE version = 'v3'`),
      /pricing_models_one_candidate/
    );
    // Concurrent activations serialise on the registry lock: one active model at the end.
    await Promise.all([activate(db.pool, 'v2', ACTOR), activate(db.pool, 'v3', ACTOR)]);
    const { rows } = await db.pool.query(
      `SELECT count(*)::int AS n FROM controlroom.pricing_models WHERE status = 'active'`
    );
    assert.equal(rows[0].n, 1);
  });

  it('a failed change writes neither the change nor an audit entry', async () => {
    await db.pool.query(
      `INSERT INTO controlroom.pricing_models (version, params, status, created_by) VALUES ('broken', '{"version": "broken"}', 'draft', 'test')`
    );
    await assert.rejects(
      activate(db.pool, 'broken', ACTOR),
      (e: unknown) => e instanceof PricingModelError && /ratePerMile/.test(e.message)
    );
    assert.deepEqual(await statuses(), { v1: 'active', broken: 'draft' });
    assert.deepEqual(await audits(), []);
    await assert.rejects(registerModel(db.pool, model('v2'), '  '), /actor is required/);
    assert.deepEqual(await audits(), []);
  });

  it('backs the bulk jobs RatingService', async () => {
    const service = createRatingService();
    assert.equal(service.checkLocation('Chicago, IL', 'origin'), null);
    assert.equal(service.checkLocation('Springfeld, IL', 'origin'), "unknown origin 'Springfeld, IL'");
    const rate = await service.raterForJob(db.pool);
    const r = rate({ origin: '60601', destination: 'Atlanta, GA', equipment: 'reefer', pickupDate: '2026-07-04' });
    assert.equal(r.modelVersion, 'v1');
    assert.ok(r.total > 1500);
    assert.throws(
      () => rate({ origin: 'Chicago, IL', destination: 'Atlantis, GA', equipment: 'van', pickupDate: '2026-07-04' }),
      /unknown destination 'Atlantis, GA'/
    );
  });
});
