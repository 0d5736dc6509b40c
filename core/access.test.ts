import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import express from 'express';
import { startReceiverHarness, type ReceiverHarness } from '../testing/receiver-harness.ts';
import { GrafanaIdentity, type PluginRole } from '../testing/grafana-identity.ts';
import {
  ACTIONS,
  createAccessControl,
  installAccessControl,
  requireAction,
  requireRole,
  trustGrafanaHop,
  type AccessConfig,
  type AccessControl,
} from './access.ts';
import { loadConfig } from '../cli/config.ts';
import { projectRoot } from './config.ts';
import { errorHandler } from './http.ts';
import { createLogger } from './logger.ts';

const SECRET = 'controlroom-api-secret-0123456789';
const NEXT_SECRET = 'controlroom-api-secret-rotated-9876543210';
const pluginJson = JSON.parse(fs.readFileSync(path.join(projectRoot, 'plugin/src/plugin.json'), 'utf8')) as {
  roles: PluginRole[];
  routes: Array<{ path: string; method?: string; reqRole?: string; reqAction?: string }>;
};

/** X-Grafana-Context the way Grafana's plugin proxy writes it: Go's JSON, non-ASCII as raw UTF-8 bytes. */
function contextHeader(fields: {
  login: string;
  role: string;
  userId?: number;
  uid?: string;
  orgId?: number;
  grafanaAdmin?: boolean;
}): string {
  const json = JSON.stringify({
    UserID: fields.userId ?? 1,
    UserUID: fields.uid,
    OrgID: fields.orgId ?? 1,
    OrgRole: fields.role,
    Login: fields.login,
    IsGrafanaAdmin: fields.grafanaAdmin ?? false,
    IsAnonymous: false,
  });
  // Node's HTTP client writes a header string as latin1: one char per byte, so these are the UTF-8 bytes.
  return Buffer.from(json, 'utf8').toString('latin1');
}

interface Answer {
  status: number;
  body: any;
}

/** A raw HTTP request (node:http, so header bytes go out exactly as given). */
function call(
  base: string,
  route: string,
  headers: Record<string, string>,
  method = 'GET',
  body?: string
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${base}${route}`,
      { method, headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : null });
        });
      }
    );
    req.on('error', reject);
    // A Buffer: a string body would be written in one chunk with the headers, all as UTF-8, re-encoding them.
    req.end(body === undefined ? undefined : Buffer.from(body, 'utf8'));
  });
}

/** A small app with the real middleware: /who answers the caller, /failover needs failover:write, /editor needs the Editor role. */
async function serve(access: AccessControl | null): Promise<{ base: string; close(): Promise<void> }> {
  const app = express();
  app.set('trust proxy', trustGrafanaHop('loopback'));
  installAccessControl(app, access);
  app.get('/who', requireAction('read'), (req, res) => {
    res.json({ ...req.caller, actions: req.caller!.actions ? [...req.caller!.actions].sort() : null, ip: req.ip });
  });
  app.post('/failover', requireAction('failoverWrite'), (_req, res) => res.json({ ok: true }));
  app.post('/editor', requireRole('Editor'), (_req, res) => res.json({ ok: true }));
  app.use(errorHandler(createLogger('silent')));
  const server = await new Promise<http.Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe('configuration', () => {
  test('each mode names the variable it lacks, and placeholder or short secrets are refused', () => {
    assert.throws(
      () => loadConfig({ CONTROLROOM_AUTH: 'grafana-id' }),
      /GRAFANA_URL: required when CONTROLROOM_AUTH=grafana-id.*GRAFANA_SERVICE_ACCOUNT_TOKEN: required/s
    );
    assert.throws(
      () => loadConfig({ CONTROLROOM_AUTH: 'shared-secret' }),
      /CONTROLROOM_API_SECRET: required when CONTROLROOM_AUTH=shared-secret/
    );
    assert.throws(() => loadConfig({ CONTROLROOM_AUTH: 'basic' }), /CONTROLROOM_AUTH/);
    // No silent mode: a secret alone does not pick shared-secret.
    assert.throws(
      () => loadConfig({ CONTROLROOM_API_SECRET: SECRET }),
      /CONTROLROOM_AUTH: required when CONTROLROOM_API_SECRET is set: grafana-id \(recommended\) or shared-secret/
    );
    assert.throws(
      () => loadConfig({ CONTROLROOM_API_SECRET: 'change-me-controlroom-secret-000000' }),
      /CONTROLROOM_API_SECRET: looks like a placeholder/
    );
    assert.throws(
      () => loadConfig({ CONTROLROOM_API_SECRET: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' }),
      /CONTROLROOM_API_SECRET: looks like a placeholder/
    );
    assert.throws(
      () => loadConfig({ CONTROLROOM_API_SECRET: 'short-but-random-9f2c' }),
      /CONTROLROOM_API_SECRET: at least 32 characters/
    );
    assert.throws(
      () => loadConfig({ CONTROLROOM_API_SECRET_PREVIOUS: SECRET }),
      /CONTROLROOM_API_SECRET: required when CONTROLROOM_API_SECRET_PREVIOUS is set/
    );
    assert.throws(
      () => loadConfig({ ALERTMANAGER_WEBHOOK_TOKEN: 'change-me-alertmanager-token' }),
      /ALERTMANAGER_WEBHOOK_TOKEN: looks like a placeholder/
    );
    assert.throws(
      () => loadConfig({ CONTROLROOM_TRUSTED_PROXY: 'grafana' }),
      /CONTROLROOM_TRUSTED_PROXY: grafana is not loopback/
    );
    assert.throws(
      () => loadConfig({ CONTROLROOM_TRUSTED_BALANCER: '172.28.0.20/40' }),
      /CONTROLROOM_TRUSTED_BALANCER: 172.28.0.20\/40 has an invalid prefix length/
    );
    const ok = loadConfig({
      CONTROLROOM_AUTH: 'grafana-id',
      GRAFANA_URL: 'http://grafana:3000',
      GRAFANA_SERVICE_ACCOUNT_TOKEN: 'glsa_x',
      CONTROLROOM_API_SECRET: SECRET,
    });
    assert.equal(ok.CONTROLROOM_AUTH, 'grafana-id');
    // Nothing configured: the control API is off (it answers 503), the rest of the service runs.
    assert.equal(createAccessControl(loadConfig({})), null);
  });
});

describe('plugin.json roles agree with the service', () => {
  test('every action is a plugin role granted to its fallback org role, and each route asks for the action and role the service checks', () => {
    for (const { action, role } of Object.values(ACTIONS)) {
      const granting = pluginJson.roles.filter((r) => r.role.permissions.some((p) => p.action === action));
      assert.deepEqual(
        granting.map((r) => r.grants),
        [[role]],
        `${action} is granted to ${role} by one role`
      );
    }
    const byAction = new Map<string, string>(Object.values(ACTIONS).map((a) => [a.action, a.role]));
    for (const route of pluginJson.routes) {
      assert.ok(
        route.reqAction && byAction.has(route.reqAction),
        `route ${route.method} ${route.path} asks for a known action`
      );
      assert.equal(
        route.reqRole,
        byAction.get(route.reqAction!),
        `route ${route.method} ${route.path}: reqRole is the action's fallback role`
      );
    }
  });
});

describe('grafana-id mode', () => {
  let grafana: GrafanaIdentity;
  let server: Awaited<ReturnType<typeof serve>>;
  let config: AccessConfig;

  before(async () => {
    grafana = await GrafanaIdentity.create({ pluginRoles: null });
    await grafana.listen();
    grafana.addUser({ login: 'vera', role: 'Viewer' });
    grafana.addUser({ login: 'edna', role: 'Editor' });
    grafana.addUser({ login: 'ada', role: 'Admin' });
    grafana.addUser({ login: 'root', role: 'Viewer', grafanaAdmin: true });
    grafana.addUser({ login: 'zoë.ångström', name: 'Zoë Ångström', role: 'Editor' });
    config = {
      CONTROLROOM_AUTH: 'grafana-id',
      CONTROLROOM_API_SECRET: SECRET,
      CONTROLROOM_API_SECRET_PREVIOUS: NEXT_SECRET,
      GRAFANA_URL: grafana.url,
      GRAFANA_SERVICE_ACCOUNT_TOKEN: grafana.serviceAccountToken,
    };
    server = await serve(createAccessControl(config, { jwksCooldownMs: 0, roleCacheMs: 0 }));
  });
  after(async () => {
    await server.close();
    await grafana.close();
  });

  const as = async (
    login: string,
    overrides: { context?: Partial<Parameters<typeof contextHeader>[0]>; token?: string; secret?: string | null } = {}
  ) => {
    const user = grafana.user(login);
    const headers: Record<string, string> = {
      'x-grafana-context': contextHeader({
        login: user.login,
        role: user.role,
        userId: user.id,
        uid: user.uid,
        grafanaAdmin: user.grafanaAdmin,
        ...overrides.context,
      }),
      'x-grafana-id': overrides.token ?? (await grafana.sign(login)),
    };
    if (overrides.secret !== null) headers['x-controlroom-secret'] = overrides.secret ?? SECRET;
    return headers;
  };

  test('the identity and the org role come from the verified token and Grafana, not from X-Grafana-Context', async () => {
    const who = await call(server.base, '/who', await as('edna', { context: { role: 'Admin', grafanaAdmin: true } }));
    assert.equal(who.status, 200, JSON.stringify(who.body));
    assert.deepEqual(
      {
        login: who.body.login,
        role: who.body.role,
        userId: who.body.userId,
        uid: who.body.uid,
        orgId: who.body.orgId,
        via: who.body.via,
        actions: who.body.actions,
      },
      {
        login: 'edna',
        role: 'Editor',
        userId: grafana.user('edna').id,
        uid: grafana.user('edna').uid,
        orgId: 1,
        via: 'grafana-id',
        actions: null,
      }
    );
  });

  test("the secret with a forged Admin context and a Viewer's valid token is refused", async () => {
    // Context claims another user (an Admin): the token names vera.
    const other = await call(
      server.base,
      '/failover',
      await as('vera', { context: { login: 'ada', role: 'Admin', uid: grafana.user('ada').uid } }),
      'POST'
    );
    assert.equal(other.status, 401);
    assert.match(other.body.error, /X-Grafana-Context names "ada" but the signed ID token is for "vera"/);
    // Context names vera but claims Admin: the role comes from Grafana, so vera is a Viewer.
    const raised = await call(
      server.base,
      '/failover',
      await as('vera', { context: { role: 'Admin', grafanaAdmin: true } }),
      'POST'
    );
    assert.equal(raised.status, 403);
    assert.match(raised.body.error, /Admin role required; vera is Viewer/);
    // Context without a token at all.
    const bare = await as('ada');
    delete bare['x-grafana-id'];
    const none = await call(server.base, '/failover', bare, 'POST');
    assert.equal(none.status, 401);
    assert.match(none.body.error, /missing X-Grafana-Id/);
  });

  test('expired, foreign-signed, other-issuer and other-org tokens are refused with 401 saying why', async () => {
    const cases: Array<[string, Promise<string>, RegExp]> = [
      ['expired', grafana.sign('ada', { expiresInSeconds: -60 }), /expired/],
      ['foreign-signed', grafana.sign('ada', { key: 'foreign' }), /no key in Grafana's signing keys matches/],
      ['other issuer', grafana.sign('ada', { issuer: 'https://evil.example.com/' }), /issued by another Grafana/],
      ['other org', grafana.sign('ada', { audience: 'org:2' }), /not for Grafana org 1/],
      ['garbage', Promise.resolve('not.a.jwt'), /X-Grafana-Id refused/],
      ['access token', grafana.sign('ada', { typ: 'at+jwt' }), /a at\+jwt token is not an ID token/],
    ];
    for (const [name, token, message] of cases) {
      const res = await call(server.base, '/who', await as('ada', { token: await token }));
      assert.equal(res.status, 401, name);
      assert.match(res.body.error, message, name);
    }
    // A service account's token is genuine, but only users act in Control Room.
    const robot = await call(
      server.base,
      '/who',
      await as('ada', { token: await grafana.sign('ada', { subject: 'service-account:7' }) })
    );
    assert.equal(robot.status, 403);
    assert.match(robot.body.error, /names service-account:7, not a user/);
    // A token signed with Grafana's key but altered afterwards.
    const [h, p, s] = (await grafana.sign('vera')).split('.');
    const payload = JSON.parse(Buffer.from(p!, 'base64url').toString('utf8')) as Record<string, unknown>;
    const forged = [h, Buffer.from(JSON.stringify({ ...payload, username: 'ada' })).toString('base64url'), s].join('.');
    const tampered = await call(server.base, '/who', await as('ada', { token: forged }));
    assert.equal(tampered.status, 401);
    assert.match(tampered.body.error, /signature does not verify/);
  });

  test("Grafana's key rotation (a new kid) is picked up without a restart", async () => {
    assert.equal((await call(server.base, '/who', await as('ada'))).status, 200);
    const fetchesBefore = grafana.requests.filter((r) => r === '/api/signing-keys/keys').length;
    const kid = await grafana.rotateKey();
    const token = await grafana.sign('ada');
    assert.equal(JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()).kid, kid);
    const res = await call(server.base, '/who', await as('ada', { token }));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.ok(
      grafana.requests.filter((r) => r === '/api/signing-keys/keys').length > fetchesBefore,
      'the JWKS was fetched again'
    );
  });

  test('a server admin with a Viewer org role is a Viewer: cannot fail over, cannot act as Editor', async () => {
    const failover = await call(server.base, '/failover', await as('root'), 'POST');
    assert.equal(failover.status, 403);
    assert.match(failover.body.error, /root is Viewer/);
    assert.equal((await call(server.base, '/editor', await as('root'), 'POST')).status, 403);
    assert.equal((await call(server.base, '/failover', await as('ada'), 'POST')).status, 200);
  });

  test('both configured secrets are accepted (rotation); anything else, or none, is refused', async () => {
    assert.equal((await call(server.base, '/who', await as('vera', { secret: NEXT_SECRET }))).status, 200);
    const wrong = await call(server.base, '/who', await as('vera', { secret: `${SECRET}x` }));
    assert.equal(wrong.status, 401);
    assert.match(wrong.body.error, /invalid X-Controlroom-Secret/);
    assert.equal((await call(server.base, '/who', await as('vera', { secret: null }))).status, 401);
  });

  test('a non-ASCII login arrives intact, and the client IP is the one Grafana forwarded', async () => {
    const headers = { ...(await as('zoë.ångström')), 'x-forwarded-for': '203.0.113.9, 198.51.100.7' };
    const who = await call(server.base, '/who', headers);
    assert.equal(who.status, 200, JSON.stringify(who.body));
    assert.equal(who.body.login, 'zoë.ångström');
    // Grafana appended the browser's address last; the earlier entry came from the browser and is ignored.
    assert.equal(who.body.ip, '198.51.100.7');
  });

  test('a user Grafana does not know in the org is refused; an unreachable Grafana is a 503, not a pass', async () => {
    const ghost = grafana.addUser({ login: 'ghost', role: 'Admin' });
    const headers = await as('ghost');
    grafana.users.delete(ghost.login);
    const res = await call(server.base, '/who', headers);
    assert.equal(res.status, 403);
    assert.match(res.body.error, /ghost is not a member of Grafana org 1/);

    const down = await serve(
      createAccessControl({ ...config, GRAFANA_URL: 'http://127.0.0.1:9' }, { jwksCooldownMs: 0 })
    );
    try {
      const refused = await call(down.base, '/who', await as('ada'));
      assert.equal(refused.status, 401);
      assert.match(refused.body.error, /signing keys could not be fetched|could not be verified/);
    } finally {
      await down.close();
    }
  });
});

describe('grafana-id mode with the app roles (RBAC)', () => {
  let grafana: GrafanaIdentity;
  let server: Awaited<ReturnType<typeof serve>>;

  before(async () => {
    grafana = await GrafanaIdentity.create({ pluginRoles: pluginJson.roles });
    await grafana.listen();
    grafana.addUser({ login: 'ada', role: 'Admin' });
    grafana.addUser({ login: 'oncall', role: 'Editor', extraActions: [ACTIONS.failoverWrite.action] });
    grafana.addUser({ login: 'restricted-admin', role: 'Admin', onlyActions: [ACTIONS.read.action] });
    const access = createAccessControl(
      {
        CONTROLROOM_AUTH: 'grafana-id',
        GRAFANA_URL: grafana.url,
        GRAFANA_SERVICE_ACCOUNT_TOKEN: grafana.serviceAccountToken,
      },
      { roleCacheMs: 0 }
    );
    server = await serve(access);
  });
  after(async () => {
    await server.close();
    await grafana.close();
  });

  const as = async (login: string) => {
    const user = grafana.user(login);
    return {
      'x-grafana-context': contextHeader({ login, role: user.role, uid: user.uid, userId: user.id }),
      'x-grafana-id': await grafana.sign(login),
    };
  };

  test("Grafana's grants decide: an Editor granted failover:write may fail over, an Admin without it may not", async () => {
    const who = await call(server.base, '/who', await as('ada'));
    assert.deepEqual(
      who.body.actions,
      Object.values(ACTIONS)
        .map((a) => a.action)
        .sort()
    );
    assert.equal((await call(server.base, '/failover', await as('oncall'), 'POST')).status, 200);
    const refused = await call(server.base, '/failover', await as('restricted-admin'), 'POST');
    assert.equal(refused.status, 403);
    assert.match(
      refused.body.error,
      /transbot-controlroom-app\.failover:write required; Grafana does not grant it to restricted-admin/
    );
    // requireRole stays the org-role rule.
    assert.equal((await call(server.base, '/editor', await as('restricted-admin'), 'POST')).status, 200);
  });
});

describe('shared-secret mode', () => {
  let server: Awaited<ReturnType<typeof serve>>;
  before(async () => {
    server = await serve(createAccessControl({ CONTROLROOM_AUTH: 'shared-secret', CONTROLROOM_API_SECRET: SECRET }));
  });
  after(() => server.close());

  test('the org role in X-Grafana-Context decides; a server admin with a Viewer org role is a Viewer', async () => {
    const headers = (login: string, role: string, grafanaAdmin = false) => ({
      'x-controlroom-secret': SECRET,
      'x-grafana-context': contextHeader({ login, role, grafanaAdmin }),
    });
    assert.equal((await call(server.base, '/failover', headers('root', 'Viewer', true), 'POST')).status, 403);
    assert.equal((await call(server.base, '/failover', headers('ada', 'Admin'), 'POST')).status, 200);
    const who = await call(server.base, '/who', headers('zoë', 'Viewer'));
    assert.deepEqual([who.body.login, who.body.via], ['zoë', 'shared-secret']);
    const noSecret = await call(server.base, '/who', {
      'x-grafana-context': contextHeader({ login: 'ada', role: 'Admin' }),
    });
    assert.equal(noSecret.status, 401);
  });

  test('without a configured mode the control API answers 503 naming what to set', async () => {
    const off = await serve(null);
    try {
      const res = await call(off.base, '/who', {});
      assert.equal(res.status, 503);
      assert.match(res.body.error, /CONTROLROOM_AUTH/);
    } finally {
      await off.close();
    }
  });
});

describe('the service end to end (grafana-id)', () => {
  let grafana: GrafanaIdentity;
  let h: ReceiverHarness;

  before(async () => {
    grafana = await GrafanaIdentity.create({ pluginRoles: pluginJson.roles });
    await grafana.listen();
    grafana.addUser({ login: 'zoë.ångström', name: 'Zoë Ångström', role: 'Editor' });
    grafana.addUser({ login: 'root', role: 'Viewer', grafanaAdmin: true });
    h = await startReceiverHarness({
      CONTROLROOM_AUTH: 'grafana-id',
      CONTROLROOM_API_SECRET: SECRET,
      GRAFANA_URL: grafana.url,
      GRAFANA_SERVICE_ACCOUNT_TOKEN: grafana.serviceAccountToken,
    });
  });
  after(async () => {
    await h?.stop();
    await grafana?.close();
  });

  const headersOf = async (login: string) => {
    const user = grafana.user(login);
    return {
      'x-controlroom-secret': SECRET,
      'x-grafana-context': contextHeader({
        login,
        role: user.role,
        uid: user.uid,
        userId: user.id,
        grafanaAdmin: user.grafanaAdmin,
      }),
      'x-grafana-id': await grafana.sign(login),
      'x-forwarded-for': '192.0.2.44',
    };
  };

  test('a non-ASCII login is audited intact, with the address Grafana forwarded', async () => {
    const res = await call(
      h.base,
      '/api/freeze/freezes',
      await headersOf('zoë.ångström'),
      'POST',
      JSON.stringify({ reason: 'Migration à 18 h' })
    );
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.body.actor, 'grafana:zoë.ångström');
    const { rows } = await h.db.pool.query<{ actor: string; ip_address: string }>(
      `SELECT actor, host(ip_address) AS ip_address FROM audit_log WHERE action = 'release_freeze.manual_freeze' ORDER BY id DESC LIMIT 1`
    );
    assert.deepEqual(rows[0], { actor: 'grafana:zoë.ångström', ip_address: '192.0.2.44' });
  });

  test('a server admin with a Viewer org role cannot fail over', async () => {
    const res = await call(
      h.base,
      '/api/regions/failover',
      await headersOf('root'),
      'POST',
      JSON.stringify({ to: 'us-west-2', reason: 'drill' })
    );
    assert.equal(res.status, 403);
    assert.match(res.body.error, /failover:write required; Grafana does not grant it to root/);
    const { rows } = await h.db.pool.query(`SELECT 1 FROM audit_log WHERE actor = 'grafana:root'`);
    assert.equal(rows.length, 0);
  });
});

describe('the client address recorded: Grafana, and the balancer it may call through', () => {
  /** req.ip for one request from 127.0.0.1 with this X-Forwarded-For, under trustGrafanaHop(grafana, balancer). */
  const ipSeen = async (grafana: string, balancer: string, forwardedFor: string) => {
    const app = express();
    app.set('trust proxy', trustGrafanaHop(grafana, balancer));
    app.get('/ip', (req, res) => res.json({ ip: req.ip }));
    const server = await new Promise<http.Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    try {
      const { port } = server.address() as AddressInfo;
      const res = await fetch(`http://127.0.0.1:${port}/ip`, { headers: { 'x-forwarded-for': forwardedFor } });
      return ((await res.json()) as { ip: string }).ip.replace(/^::ffff:/, '');
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  };

  test('behind the balancer: the browser address Grafana forwarded, never one the browser wrote', async () => {
    // The balancer (here loopback) appended Grafana's address (192.0.2.10); Grafana appended the browser's.
    assert.equal(await ipSeen('192.0.2.10', 'loopback', '203.0.113.9, 192.0.2.10'), '203.0.113.9');
    assert.equal(await ipSeen('192.0.2.10', 'loopback', '6.6.6.6, 203.0.113.9, 192.0.2.10'), '203.0.113.9');
    // Someone who reached the balancer directly: the entry the balancer appended is theirs, not Grafana's.
    assert.equal(await ipSeen('192.0.2.10', 'loopback', '203.0.113.9, 198.51.100.1'), '198.51.100.1');
  });

  test('without a balancer only Grafana is a hop: one entry believed, and none from anyone else', async () => {
    assert.equal(await ipSeen('loopback', '', '203.0.113.9, 192.0.2.10'), '192.0.2.10');
    assert.equal(await ipSeen('192.0.2.10', '', '203.0.113.9'), '127.0.0.1');
  });
});
