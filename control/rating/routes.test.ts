import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startReceiverHarness, type ReceiverHarness } from '../../testing/receiver-harness.ts';
import { SEED_V1 } from './seed.ts';

const API_SECRET = 'controlroom-api-secret-0123456789';
let h: ReceiverHarness;
before(async () => {
  h = await startReceiverHarness({ CONTROLROOM_AUTH: 'shared-secret', CONTROLROOM_API_SECRET: API_SECRET });
});
after(async () => h.stop());

const as = (role: string) => ({
  'content-type': 'application/json',
  'x-controlroom-secret': API_SECRET,
  'x-grafana-context': JSON.stringify({ Login: `${role.toLowerCase()}.user`, OrgRole: role }),
});
const call = async (method: string, url: string, role: string, body?: unknown) => {
  const res = await fetch(`${h.base}${url}`, {
    method,
    headers: as(role),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
};

test('admins register, trial, activate and roll back pricing models; viewers read; all audited', async () => {
  const listed = await call('GET', '/api/pricing/models', 'Viewer');
  assert.deepEqual(
    listed.body.models.map((m: { version: string; status: string }) => [m.version, m.status]),
    [['v1', 'active']]
  );

  const v2 = { ...SEED_V1, version: 'v2', minimumCharge: 375 };
  assert.equal((await call('POST', '/api/pricing/models', 'Editor', v2)).status, 403);
  const bad = await call('POST', '/api/pricing/models', 'Admin', { ...v2, minMargin: 8 });
  assert.equal(bad.status, 400);
  assert.match(bad.body.error, /minMargin/);
  assert.equal((await call('POST', '/api/pricing/models', 'Admin', v2)).status, 201);
  const noReason = await call('POST', '/api/pricing/models/v2/candidate', 'Admin', { share: 0.1 });
  assert.deepEqual(
    [noReason.status, noReason.body.error],
    [400, 'invalid request: reason is required: say why (3 to 500 characters)']
  );
  const badShare = await call('POST', '/api/pricing/models/v2/candidate', 'Admin', {
    share: '10%',
    reason: 'trial v2',
  });
  assert.equal(badShare.status, 400);
  assert.match(badShare.body.error, /share must be a number between 0 and 0.5/);
  const candidate = await call('POST', '/api/pricing/models/v2/candidate', 'Admin', {
    share: 0.1,
    reason: 'trial v2 on a tenth of lanes',
  });
  assert.deepEqual([candidate.status, candidate.body.model.status], [200, 'candidate']);
  assert.equal(
    (await call('POST', '/api/pricing/models/v9/activate', 'Admin', { reason: 'no such model' })).status,
    404
  );
  assert.equal((await call('POST', '/api/pricing/models/v2/activate', 'Admin')).status, 400);
  assert.equal(
    (await call('POST', '/api/pricing/models/v2/activate', 'Editor', { reason: 'not mine to do' })).status,
    403
  );
  const activated = await call('POST', '/api/pricing/models/v2/activate', 'Admin', { reason: 'v2 held up for a week' });
  assert.deepEqual([activated.status, activated.body.model.status], [200, 'active']);
  assert.equal((await call('POST', '/api/pricing/rollback', 'Admin', { reason: ' ' })).status, 400);
  const rolledBack = await call('POST', '/api/pricing/rollback', 'Admin', {
    reason: 'quotes 12% high\u0000 in the Southeast',
  });
  assert.deepEqual(
    [rolledBack.status, rolledBack.body.model.version, rolledBack.body.model.status],
    [200, 'v1', 'active']
  );
  const audited = await h.db.pool.query(
    `SELECT actor, action, payload->>'reason' AS reason FROM audit_log WHERE action LIKE 'pricing_model.%' ORDER BY id`
  );
  assert.deepEqual(
    audited.rows.map((r) => r.action),
    [
      'pricing_model.registered',
      'pricing_model.candidate_promoted',
      'pricing_model.activated',
      'pricing_model.rolled_back',
    ]
  );
  assert.ok(audited.rows.every((r) => r.actor === 'grafana:admin.user'));
  assert.deepEqual(
    audited.rows.map((r) => r.reason),
    [null, 'trial v2 on a tenth of lanes', 'v2 held up for a week', 'quotes 12% high\\u0000 in the Southeast']
  );
});

test('the overview: every model, the active one, the candidate and its share, and what each rated', async () => {
  await h.db.pool.query(`INSERT INTO controlroom.pricing_models (version, params, status, created_by)
    SELECT 'v3', jsonb_set(params, '{version}', '"v3"'), 'draft', 'test' FROM controlroom.pricing_models WHERE version = 'v1'`);
  assert.equal(
    (await call('POST', '/api/pricing/models/v3/candidate', 'Admin', { share: 0.2, reason: 'trial v3' })).status,
    200
  );
  // Known totals as the drift collector commits them: v1 rated 40 lanes as active, v3 10 as candidate.
  await h.db.pool.query(
    `INSERT INTO controlroom.exporter_state (collector, state) VALUES ('pricing_drift', $1)
     ON CONFLICT (collector) DO UPDATE SET state = EXCLUDED.state`,
    [
      JSON.stringify({
        cursor: { watermark: 50, gaps: [] },
        totals: { '["v1","active"]': [40, 0, 2, 4000000, 20000], '["v3","candidate"]': [10, 3, 1, 1234567, 5000] },
      }),
    ]
  );
  const overview = await call('GET', '/api/pricing/overview', 'Viewer');
  assert.equal(overview.status, 200);
  const { models, ...rest } = overview.body;
  assert.deepEqual(
    { ...rest, statsAsOf: typeof rest.statsAsOf },
    {
      active: 'v1',
      candidate: { version: 'v3', share: 0.2 },
      rollbackTo: 'v2',
      statsAsOf: 'string',
      anomalyThreshold: 0.1,
      maxCandidateShare: 0.5,
    }
  );
  const byVersion = Object.fromEntries(models.map((m: Record<string, any>) => [m.version, m]));
  assert.deepEqual(Object.keys(byVersion).sort(), ['v1', 'v2', 'v3']);
  assert.deepEqual(
    [byVersion.v3.status, byVersion.v3.candidateShare, byVersion.v1.candidateShare],
    ['candidate', 0.2, null]
  );
  assert.deepEqual(byVersion.v3.asCandidate, {
    lanesRated: 10,
    anomalyLanes: 3,
    needsReviewLanes: 1,
    anomalyRate: 0.3,
    needsReviewRate: 0.1,
    quotedDollars: 12345.67,
    quotedMiles: 5000,
    meanPricePerMile: 2.4691,
  });
  assert.deepEqual(
    [byVersion.v1.asActive.lanesRated, byVersion.v1.asActive.needsReviewRate, byVersion.v1.asActive.meanPricePerMile],
    [40, 0.05, 2]
  );
  assert.deepEqual(byVersion.v2.asCandidate, {
    lanesRated: 0,
    anomalyLanes: 0,
    needsReviewLanes: 0,
    anomalyRate: null,
    needsReviewRate: null,
    quotedDollars: 0,
    quotedMiles: 0,
    meanPricePerMile: null,
  });
  const anonymous = await fetch(`${h.base}/api/pricing/overview`);
  assert.equal(anonymous.status, 401);
});
