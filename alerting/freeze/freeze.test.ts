import assert from 'node:assert/strict';
import { FreezeState } from '@controlroom/contract';
import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { projectRoot } from '../../core/config.ts';
import { FakeGitHub } from '../../testing/fake-github.ts';
import { parseMetrics } from '../../testing/prom-text.ts';
import { amPayload, startReceiverHarness, waitUntil, type ReceiverHarness } from '../../testing/receiver-harness.ts';
import { STATUS_CONTEXT } from './github.ts';

const REPO = 'acme/tms';
const API_SECRET = 'controlroom-api-secret-0123456789';
const WEBHOOK_SECRET = 'github-webhook-secret-0123456789';
let h: ReceiverHarness;
let github: FakeGitHub;

before(async () => {
  github = await FakeGitHub.start();
  github.pulls.set(REPO, [
    { number: 1, sha: 'a1a1a1', labels: [] },
    { number: 2, sha: 'b2b2b2', labels: ['p0-fix'] },
  ]);
  h = await startReceiverHarness({
    GITHUB_API_URL: github.url,
    GITHUB_TOKEN: 'ghp_test_token',
    GITHUB_REPOSITORIES: REPO,
    GITHUB_WEBHOOK_SECRET: WEBHOOK_SECRET,
    CONTROLROOM_AUTH: 'shared-secret',
    CONTROLROOM_API_SECRET: API_SECRET,
    CONTROLROOM_PUBLIC_URL: 'https://controlroom.example.com',
    FREEZE_QUIET_PERIOD_SECONDS: '3',
    EXPORTER_REFRESH_MS: '500',
  });
});
after(async () => {
  await h.stop();
  await github.close();
});

const statusOf = (sha: string) => github.status(REPO, sha);
const waitForStatus = (sha: string, state: string, timeoutMs = 20_000) =>
  waitUntil(async () => (statusOf(sha)?.state === state ? statusOf(sha) : null), timeoutMs, `${sha} ${state}`);
const freeze = async () => FreezeState.parse(await (await fetch(`${h.base}/api/freeze`)).json());
const budgetAlert = (status: 'firing' | 'resolved') =>
  amPayload('{}:{alertname="ErrorBudgetHalfSpent"}', [
    { alertname: 'ErrorBudgetHalfSpent', severity: 'P2', status, labels: { slo: 'availability' } },
  ]);

const asUser = (role: string, login = `${role.toLowerCase()}.user`) => ({
  'content-type': 'application/json',
  'x-controlroom-secret': API_SECRET,
  'x-grafana-context': JSON.stringify({ UserID: 7, OrgID: 1, Login: login, OrgRole: role, IsGrafanaAdmin: false }),
});
const api = async (method: string, url: string, headers: Record<string, string>, body?: unknown) => {
  const res = await fetch(`${h.base}${url}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
};
const signed = (event: string, payload: unknown) => {
  const body = JSON.stringify(payload);
  return fetch(`${h.base}/webhooks/github`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-github-event': event,
      'x-hub-signature-256': `sha256=${createHmac('sha256', WEBHOOK_SECRET).update(body).digest('hex')}`,
    },
    body,
  });
};

describe('freeze driven by alerts, published to GitHub', () => {
  test('open pull requests get a success status while nothing freezes', async () => {
    const status = await waitForStatus('a1a1a1', 'success');
    assert.equal(status.context, STATUS_CONTEXT);
    assert.equal(status.target_url, 'https://controlroom.example.com/api/freeze');
    assert.equal((await freeze()).frozen, false);
  });

  test('ErrorBudgetHalfSpent freezes: failing status with the reason, P0 fixes exempt, gauge at 1', async () => {
    assert.equal((await h.post('/webhooks/alertmanager', budgetAlert('firing'))).status, 200);
    const blocked = await waitForStatus('a1a1a1', 'failure');
    assert.equal(
      blocked.description,
      'Release freeze: More than half of the error budget is spent: ErrorBudgetHalfSpent (availability)'
    );
    // The sync walks the pull requests one by one: wait for the second head's update too.
    const exempt = await waitUntil(async () =>
      statusOf('b2b2b2')?.description !== 'No release freeze' ? statusOf('b2b2b2') : null
    );
    assert.equal(exempt.state, 'success');
    assert.equal(exempt.description, 'Release freeze: exempt by label p0-fix');
    const state = await freeze();
    assert.deepEqual([state.frozen, state.cause], [true, 'error_budget']);
    const metrics = await waitUntil(async () => {
      const m = parseMetrics(await (await fetch(`${h.base}/metrics`)).text());
      return m.get('controlroom_release_frozen') === 1 ? m : null;
    });
    assert.equal(metrics.get('controlroom_release_freeze_reason{reason="error_budget"}'), 1);
    assert.equal(metrics.get('controlroom_release_freeze_reason{reason="none"}'), 0);
    const audited = await h.db.pool.query(`SELECT actor FROM audit_log WHERE action = 'release_freeze.frozen'`);
    assert.deepEqual(audited.rows, [{ actor: 'controlroom:release-freeze' }]);
  });

  test('a new or updated pull request gets the freeze status from its webhook; forged webhooks are refused', async () => {
    const pr = {
      action: 'opened',
      repository: { full_name: REPO },
      pull_request: { number: 3, state: 'open', head: { sha: 'c3c3c3' }, labels: [] },
    };
    const forged = await fetch(`${h.base}/webhooks/github`, {
      method: 'POST',
      headers: {
        'x-github-event': 'pull_request',
        'x-hub-signature-256': 'sha256=00',
        'content-type': 'application/json',
      },
      body: JSON.stringify(pr),
    });
    assert.equal(forged.status, 401);
    github.pulls.get(REPO)!.push({ number: 3, sha: 'c3c3c3', labels: [] }); // GitHub lists it from now on
    assert.equal((await signed('pull_request', pr)).status, 202);
    assert.equal((await waitForStatus('c3c3c3', 'failure')).context, STATUS_CONTEXT);
    const other = await signed('pull_request', { ...pr, repository: { full_name: 'someone/else' } });
    assert.equal(other.status, 202);
    assert.match(((await other.json()) as { ignored: string }).ignored, /not in GITHUB_REPOSITORIES/);
  });

  test('a deployment protection rule is rejected while frozen', async () => {
    const callback = `${github.url}/repos/${REPO}/actions/runs/42/deployment_protection_rule`;
    const res = await signed('deployment_protection_rule', {
      action: 'requested',
      environment: 'production',
      deployment_callback_url: callback,
      deployment: { id: 9 },
      repository: { full_name: REPO },
    });
    assert.equal(res.status, 202);
    const review = await waitUntil(async () =>
      github.reviews.find((r) => r.path.endsWith('/runs/42/deployment_protection_rule'))
    );
    assert.deepEqual([review.environment_name, review.state], ['production', 'rejected']);
    assert.match(review.comment, /^Release freeze: More than half of the error budget/);
  });

  test('resolving holds the freeze for the quiet period, then lifts it; a GitHub outage only delays the statuses', async () => {
    github.failNext(2, 502);
    await h.post('/webhooks/alertmanager', budgetAlert('resolved'));
    const quiet = await waitUntil(
      async () => {
        const s = await freeze();
        return s.cause === 'quiet_period' ? s : null;
      },
      10_000,
      'quiet period'
    );
    assert.equal(quiet.frozen, true);
    assert.equal(statusOf('a1a1a1')?.state, 'failure');
    await waitForStatus('a1a1a1', 'success', 30_000);
    await waitForStatus('c3c3c3', 'success', 30_000);
    assert.equal((await freeze()).cause, 'none');
    const history = await h.db.pool.query(`SELECT frozen, cause FROM controlroom.freeze_history ORDER BY id`);
    assert.deepEqual(
      history.rows.map((r) => r.cause),
      ['error_budget', 'quiet_period', 'none']
    );
    assert.ok(github.calls.filter((c) => c.method === 'GET').length > 3, 'the failed syncs were retried');
  });
});

const gateAlert = (alertname: string, status: 'firing' | 'resolved') =>
  amPayload(`{}:{alertname="${alertname}"}`, [
    { alertname, severity: 'P2', status, labels: { slo: 'agent_success', gate: 'release', action: 'freeze' } },
  ]);
const regionAlert = (status: 'firing' | 'resolved') =>
  amPayload('{}:{alertname="ActiveRegionDown"}', [
    { alertname: 'ActiveRegionDown', severity: 'P1', status, labels: { region: 'us-east-1' } },
  ]);
const P2_CHANNEL = '#controlroom-alerts';
const freezePosts = () =>
  h.slack
    .ok('chat.postMessage')
    .filter((c) => c.args.channel === P2_CHANNEL && /Release freeze|Releases frozen/.test(String(c.args.text)))
    .map((c) => ({ text: String(c.args.text), thread: (c.args.thread_ts as string | undefined) ?? null }));

describe("the plan's gates: agent success below 98% (or unreadable) and the active region down", () => {
  test('the first freeze episode was announced in the P2 channel: the start as the root, the changes and the end in its thread', async () => {
    const posts = await waitUntil(
      async () => (freezePosts().length >= 3 ? freezePosts() : null),
      20_000,
      'three announcements'
    );
    assert.equal(posts.length, 3, 'one message per change, no repeats');
    assert.deepEqual(posts[0], {
      text: ':no_entry: Releases frozen (error_budget): More than half of the error budget is spent: ErrorBudgetHalfSpent (availability)',
      thread: null,
    });
    const rootTs = h.slack.ok('chat.postMessage').find((c) => c.args.text === posts[0]!.text)!;
    const root = (await h.db.pool.query(`SELECT ts FROM controlroom.freeze_announcements ORDER BY history_id LIMIT 1`))
      .rows[0].ts;
    assert.equal(rootTs.args.channel, P2_CHANNEL);
    assert.match(posts[1]!.text, /^Releases frozen \(quiet_period\) now: Resolved; quiet period until /);
    assert.deepEqual(
      posts.slice(1).map((p) => p.thread),
      [root, root]
    );
    assert.equal(posts[2]!.text, ':white_check_mark: Release freeze ended: releases may ship again.');
  });

  test('ReleaseGateAgentSuccess freezes with cause release_gate and its own reason on GitHub', async () => {
    assert.equal((await h.post('/webhooks/alertmanager', gateAlert('ReleaseGateAgentSuccess', 'firing'))).status, 200);
    const blocked = await waitForStatus('a1a1a1', 'failure');
    assert.equal(
      blocked.description,
      'Release freeze: Release gate: agent_success in the last hour is below 98% (ReleaseGateAgentSuccess)'
    );
    const state = await freeze();
    assert.deepEqual([state.frozen, state.cause], [true, 'release_gate']);
    assert.deepEqual(
      state.triggers.map((t: { alertname: string; labels: Record<string, string> }) => [t.alertname, t.labels.gate]),
      [['ReleaseGateAgentSuccess', 'release']]
    );
    const metrics = await waitUntil(async () => {
      const m = parseMetrics(await (await fetch(`${h.base}/metrics`)).text());
      return m.get('controlroom_release_freeze_reason{reason="release_gate"}') === 1 ? m : null;
    });
    assert.equal(metrics.get('controlroom_release_frozen'), 1);
  });

  test('an unreadable gate blocks too (fail closed), with its own reason', async () => {
    await h.post('/webhooks/alertmanager', gateAlert('ReleaseGateAgentSuccess', 'resolved'));
    await h.post('/webhooks/alertmanager', gateAlert('ReleaseGateAgentSuccessUnreadable', 'firing'));
    const status = await waitUntil(
      async () => (statusOf('a1a1a1')?.description.includes('cannot be read') ? statusOf('a1a1a1') : null),
      20_000,
      'unreadable reason'
    );
    assert.equal(status.state, 'failure');
    assert.equal(
      status.description,
      'Release freeze: Release gate: agent_success in the last hour cannot be read, so the gate fails closed (ReleaseGateAgentSuccessUnreadable)'
    );
    assert.equal((await freeze()).cause, 'release_gate');
  });

  test('the active region down freezes with cause active_region_down and names the region', async () => {
    assert.equal((await h.post('/webhooks/alertmanager', regionAlert('firing'))).status, 200);
    const status = await waitUntil(
      async () => (statusOf('a1a1a1')?.description.includes('Active region') ? statusOf('a1a1a1') : null),
      20_000,
      'region reason'
    );
    assert.equal(
      status.description,
      'Release freeze: Active region us-east-1 is down: no deploys while the TMS runs degraded (ActiveRegionDown)'
    );
    assert.equal((await freeze()).cause, 'active_region_down');
  });

  test('resolving both lifts the freeze after the quiet period; the episode is its own thread', async () => {
    await h.post('/webhooks/alertmanager', regionAlert('resolved'));
    await h.post('/webhooks/alertmanager', gateAlert('ReleaseGateAgentSuccessUnreadable', 'resolved'));
    await waitForStatus('a1a1a1', 'success', 30_000);
    assert.equal((await freeze()).cause, 'none');
    const posts = await waitUntil(
      async () => {
        const p = freezePosts();
        return p.length > 3 && p[p.length - 1]!.text.includes('ended') ? p : null;
      },
      20_000,
      'the second episode announced to its end'
    );
    const episode = posts.slice(3);
    assert.equal(episode[0]!.thread, null);
    assert.equal(
      episode[0]!.text,
      ':no_entry: Releases frozen (release_gate): Release gate: agent_success in the last hour is below 98% (ReleaseGateAgentSuccess)'
    );
    const root = (
      await h.db.pool.query(
        `SELECT ts FROM controlroom.freeze_announcements WHERE history_id = episode_id ORDER BY history_id DESC LIMIT 1`
      )
    ).rows[0].ts;
    assert.ok(
      episode.slice(1).every((p) => p.thread === root),
      'every later change replies in the episode thread'
    );
    assert.ok(
      episode.some((p) =>
        p.text.startsWith('Releases frozen (active_region_down) now: Active region us-east-1 is down')
      )
    );
    const history = await h.db.pool.query(`SELECT count(*)::int AS n FROM controlroom.freeze_history`);
    assert.equal(freezePosts().length, history.rows[0].n, 'exactly one announcement per freeze change');
  });
});

describe('manual freeze and override through the Grafana app', () => {
  test('viewers cannot freeze; calls without the proxy secret are refused', async () => {
    const viewer = await api('POST', '/api/freeze/freezes', asUser('Viewer'), { reason: 'looks risky' });
    assert.deepEqual([viewer.status, viewer.body.error], [403, 'Editor role required; viewer.user is Viewer']);
    const direct = await api(
      'POST',
      '/api/freeze/freezes',
      { 'content-type': 'application/json' },
      { reason: 'looks risky' }
    );
    assert.equal(direct.status, 401);
    assert.match(direct.body.error, /X-Controlroom-Secret/);
  });

  test('an editor freezes with a reason; only an admin ends it; everything is audited', async () => {
    const bad = await api('POST', '/api/freeze/freezes', asUser('Editor'), { reason: 'x' });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error, /^invalid request: reason must be at least 3 characters: say why$/);
    const created = await api('POST', '/api/freeze/freezes', asUser('Editor', 'ed'), {
      reason: 'Black Friday code freeze',
    });
    assert.equal(created.status, 201);
    await waitForStatus('a1a1a1', 'failure');
    assert.equal(
      statusOf('a1a1a1')?.description,
      'Release freeze: Manual freeze by grafana:ed: Black Friday code freeze'
    );
    const published = await freeze();
    assert.equal(published.cause, 'manual');
    assert.ok(
      Date.parse(published.since ?? '') >= Date.parse(created.body.createdAt) - 1_000,
      'frozen since the freeze'
    );
    // Until freeze_sync publishes a change, the published `since` is the previous state's: none is given.
    await h.db.pool.query(`UPDATE controlroom.freeze_state SET frozen = false, cause = 'none' WHERE id = 1`);
    assert.equal((await freeze()).since, null);
    assert.equal((await api('DELETE', `/api/freeze/freezes/${created.body.id}`, asUser('Editor'), {})).status, 403);
    assert.equal(
      (await api('DELETE', `/api/freeze/freezes/${created.body.id}`, asUser('Admin', 'root'), { reason: 'done' }))
        .status,
      200
    );
    assert.equal(
      (await api('DELETE', `/api/freeze/freezes/${created.body.id}`, asUser('Admin', 'root'), {})).status,
      404
    );
    await waitForStatus('a1a1a1', 'success');
    // The manual freeze opened its own thread in the P2 channel, and its end replied in it.
    const manualPosts = await waitUntil(
      async () => {
        const p = freezePosts();
        const at = p.findIndex(
          (x) => x.text === ':no_entry: Releases frozen by hand: Manual freeze by grafana:ed: Black Friday code freeze'
        );
        return at >= 0 && p.length > at + 1 ? p.slice(at) : null;
      },
      20_000,
      'manual freeze announced and ended'
    );
    assert.deepEqual(
      [manualPosts[0]!.thread === null, manualPosts[1]!.text],
      [true, ':white_check_mark: Release freeze ended: releases may ship again.']
    );
    const audited = await h.db.pool.query(`SELECT actor, action FROM audit_log WHERE target = $1 ORDER BY id`, [
      `freeze_actions/${created.body.id}`,
    ]);
    assert.deepEqual(audited.rows, [
      { actor: 'grafana:ed', action: 'release_freeze.manual_freeze' },
      { actor: 'grafana:root', action: 'release_freeze.manual_freeze_ended' },
    ]);
  });

  test('an admin override lifts an alert-driven freeze; it needs an expiry within 24 h', async () => {
    await h.post(
      '/webhooks/alertmanager',
      amPayload('{}:{alertname="SLOBurnRate1h"}', [
        { alertname: 'SLOBurnRate1h', severity: 'P1', labels: { slo: 'availability' } },
      ])
    );
    await waitForStatus('a1a1a1', 'failure');
    assert.equal((await freeze()).cause, 'slo_page');
    const noExpiry = await api('POST', '/api/freeze/overrides', asUser('Admin'), { reason: 'ship the fix' });
    assert.equal(noExpiry.status, 400);
    assert.match(noExpiry.body.error, /expiresAt is required/);
    const tooLong = await api('POST', '/api/freeze/overrides', asUser('Admin'), {
      reason: 'ship the fix',
      expires_at: new Date(Date.now() + 48 * 3_600_000).toISOString(),
    });
    assert.equal(tooLong.status, 400);
    assert.equal(
      (
        await api('POST', '/api/freeze/overrides', asUser('Editor'), {
          reason: 'x'.repeat(5),
          expires_at: new Date(Date.now() + 3_600_000).toISOString(),
        })
      ).status,
      403
    );
    // The old name expires_at (above) is still accepted; expiresAt is the API's name.
    const ok = await api('POST', '/api/freeze/overrides', asUser('Admin', 'cto'), {
      reason: 'ship the fix',
      expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
    });
    assert.equal(ok.status, 201);
    await waitForStatus('a1a1a1', 'success');
    assert.equal(statusOf('a1a1a1')?.description, 'Release freeze overridden');
    const state = await freeze();
    assert.deepEqual([state.frozen, state.cause, state.override?.actor], [false, 'override', 'grafana:cto']);
    const overridden = await waitUntil(
      async () => freezePosts().find((p) => p.text.startsWith(':unlock: Release freeze overridden')),
      20_000,
      'override announced'
    );
    assert.match(overridden.text, /Override by grafana:cto until .*: ship the fix$/);
    assert.notEqual(overridden.thread, null, 'the override replies in the thread of the SLO page freeze');
  });
});

test('the deploy workflow gate script reads /api/freeze', async () => {
  const run = promisify(execFile);
  const script = path.join(projectRoot, 'scripts', 'check-freeze.sh');
  const open = await run('bash', [script], { env: { ...process.env, CONTROLROOM_URL: h.base } });
  assert.match(open.stdout, /not frozen \(override\)/);
  await h.db.pool.query(`UPDATE controlroom.freeze_actions SET ended_at = now() WHERE kind = 'override'`);
  await h.post(
    '/webhooks/alertmanager',
    amPayload('{}:{alertname="SLOBurnRate1h"}', [
      { alertname: 'SLOBurnRate1h', severity: 'P1', labels: { slo: 'availability' }, startsAt: '2026-11-23T05:00:00Z' },
    ])
  );
  await waitUntil(async () => (await freeze()).frozen, 10_000, 'frozen again');
  const blocked = await run('bash', [script], { env: { ...process.env, CONTROLROOM_URL: h.base } }).then(
    () => null,
    (error: { code: number; stdout: string }) => error
  );
  assert.equal(blocked?.code, 1);
  assert.match(blocked?.stdout ?? '', /FROZEN \(slo_page\): P1 SLO page firing: SLOBurnRate1h \(availability\)/);
});
