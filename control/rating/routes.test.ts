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
  const res = await fetch(`${h.base}${url}`, { method, headers: as(role), body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
};

test('admins register, trial, activate and roll back pricing models; viewers read; all audited', async () => {
  const listed = await call('GET', '/api/pricing/models', 'Viewer');
  assert.deepEqual(listed.body.models.map((m: { version: string; status: string }) => [m.version, m.status]), [['v1', 'active']]);

  const v2 = { ...SEED_V1, version: 'v2', minimumCharge: 375 };
  assert.equal((await call('POST', '/api/pricing/models', 'Editor', v2)).status, 403);
  const bad = await call('POST', '/api/pricing/models', 'Admin', { ...v2, minMargin: 8 });
  assert.equal(bad.status, 400);
  assert.match(bad.body.error, /minMargin/);
  assert.equal((await call('POST', '/api/pricing/models', 'Admin', v2)).status, 201);
  const candidate = await call('POST', '/api/pricing/models/v2/candidate', 'Admin', { share: 0.1 });
  assert.deepEqual([candidate.status, candidate.body.model.status], [200, 'candidate']);
  assert.equal((await call('POST', '/api/pricing/models/v9/activate', 'Admin')).status, 404);
  const activated = await call('POST', '/api/pricing/models/v2/activate', 'Admin');
  assert.deepEqual([activated.status, activated.body.model.status], [200, 'active']);
  const rolledBack = await call('POST', '/api/pricing/rollback', 'Admin');
  assert.deepEqual([rolledBack.status, rolledBack.body.model.version, rolledBack.body.model.status], [200, 'v1', 'active']);
  const audited = await h.db.pool.query(`SELECT actor, action FROM audit_log WHERE action LIKE 'pricing_model.%' ORDER BY id`);
  assert.deepEqual(audited.rows.map((r) => r.action), [
    'pricing_model.registered',
    'pricing_model.candidate_promoted',
    'pricing_model.activated',
    'pricing_model.rolled_back',
  ]);
  assert.ok(audited.rows.every((r) => r.actor === 'grafana:admin.user'));
});
