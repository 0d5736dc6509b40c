import http from 'node:http';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';

/**
 * The parts of Grafana that Control Room's grafana-id mode talks to, for tests and the plugin harness:
 * - signing ID tokens the way pkg/services/auth/idimpl/service.go does (ES256, typ "jwt", iss = root URL,
 *   aud "org:<id>", sub "user:<uid>", 10 min expiry, authlib IDTokenClaims: identifier, type, namespace,
 *   username, email, name);
 * - GET /api/signing-keys/keys, the JWKS of the signing keys (unauthenticated, as in Grafana);
 * - GET /api/org/users?query= (OrgUserDTO list) and GET /api/access-control/users/permissions/search
 *   (map of user id → action → scopes), both behind the service-account bearer token.
 * Keys rotate with rotateKey(); the users, their org roles and the app's role grants are plain data.
 */

export type OrgRole = 'Viewer' | 'Editor' | 'Admin';
const INCLUDES: Record<OrgRole, OrgRole[]> = {
  Viewer: ['Viewer'],
  Editor: ['Viewer', 'Editor'],
  Admin: ['Viewer', 'Editor', 'Admin'],
};

export interface GrafanaUser {
  id: number;
  uid: string;
  login: string;
  role: OrgRole;
  name?: string;
  email?: string;
  /** Server admin: no effect on the org role (pluginproxy.go hasAccessToRoute uses GetOrgRole()). */
  grafanaAdmin?: boolean;
  /** The app's actions granted to this user beyond (or instead of, with `onlyActions`) the basic role's. */
  extraActions?: string[];
  onlyActions?: string[];
}

/** plugin.json `roles`: each role's actions, granted to basic roles (Grafana's basic roles inherit: Admin ⊃ Editor ⊃ Viewer). */
export interface PluginRole {
  role: { name: string; permissions: Array<{ action: string }> };
  grants: string[];
}

interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

async function newKey(): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const kid = randomUUID();
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' } };
}

export class GrafanaIdentity {
  readonly users = new Map<string, GrafanaUser>();
  readonly serviceAccountToken = `glsa_${randomUUID().replace(/-/g, '')}`;
  /** Paths requested, for assertions (JWKS refetches, role lookups). */
  readonly requests: string[] = [];
  private keys: SigningKey[] = [];
  private server: http.Server | null = null;
  url = '';

  private constructor(
    /** Grafana's root_url; the tokens' iss. */
    public issuer: string,
    readonly orgId: number,
    /** null: a Grafana without the app's roles (the org role decides). */
    public pluginRoles: PluginRole[] | null
  ) {}

  static async create(
    options: { issuer?: string; orgId?: number; pluginRoles?: PluginRole[] | null } = {}
  ): Promise<GrafanaIdentity> {
    const identity = new GrafanaIdentity(options.issuer ?? '', options.orgId ?? 1, options.pluginRoles ?? null);
    identity.keys = [await newKey()];
    return identity;
  }

  addUser(user: Omit<GrafanaUser, 'id' | 'uid'> & { id?: number; uid?: string }): GrafanaUser {
    const full: GrafanaUser = {
      id: user.id ?? this.users.size + 1,
      uid: user.uid ?? `u${randomUUID().slice(0, 8)}`,
      ...user,
    };
    this.users.set(full.login, full);
    return full;
  }

  user(login: string): GrafanaUser {
    const user = this.users.get(login);
    if (!user) throw new Error(`no Grafana user ${login}`);
    return user;
  }

  /** Grafana's key rotation: a new key signs from now on; `keepOld` keeps the previous one published. */
  async rotateKey({ keepOld = false } = {}): Promise<string> {
    const key = await newKey();
    this.keys = keepOld ? [key, ...this.keys] : [key];
    return key.kid;
  }

  get currentKid(): string {
    return this.keys[0]!.kid;
  }

  jwks(): { keys: JWK[] } {
    return { keys: this.keys.map((k) => k.jwk) };
  }

  /** An ID token for a user, as Grafana forwards it in X-Grafana-Id; options forge the variants tests refuse. */
  async sign(
    login: string,
    options: {
      expiresInSeconds?: number;
      issuer?: string;
      audience?: string;
      key?: 'current' | 'foreign';
      subject?: string;
      typ?: string;
    } = {}
  ): Promise<string> {
    const user = this.user(login);
    const signing = options.key === 'foreign' ? await newKey() : this.keys[0]!;
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({
      identifier: user.uid,
      type: 'user',
      namespace: this.orgId === 1 ? 'default' : `org-${this.orgId}`,
      authenticatedBy: 'password',
      email: user.email ?? `${user.login}@example.com`,
      username: user.login,
      name: user.name ?? user.login,
    })
      .setProtectedHeader({ alg: 'ES256', kid: signing.kid, typ: options.typ ?? 'jwt' })
      .setIssuer(options.issuer ?? this.issuer)
      .setAudience(options.audience ?? `org:${this.orgId}`)
      .setSubject(options.subject ?? `user:${user.uid}`)
      .setIssuedAt(now - 1)
      .setExpirationTime(now + (options.expiresInSeconds ?? 600))
      .sign(signing.privateKey);
  }

  /** The app's actions Grafana's RBAC grants a user (empty where the app has no roles). */
  actionsOf(user: GrafanaUser): string[] {
    if (!this.pluginRoles) return [];
    if (user.onlyActions) return [...user.onlyActions];
    const basic = INCLUDES[user.role];
    const granted = this.pluginRoles
      .filter((r) => r.grants.some((g) => basic.includes(g as OrgRole)))
      .flatMap((r) => r.role.permissions.map((p) => p.action));
    return [...new Set([...granted, ...(user.extraActions ?? [])])];
  }

  /** Answers Grafana's identity endpoints; false when the request is for something else. */
  handle(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    const url = new URL(req.url ?? '/', 'http://grafana');
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      return true;
    };
    if (req.method !== 'GET') return false;
    if (url.pathname === '/api/signing-keys/keys') {
      this.requests.push(url.pathname);
      return json(200, this.jwks());
    }
    if (url.pathname !== '/api/org/users' && url.pathname !== '/api/access-control/users/permissions/search')
      return false;
    this.requests.push(`${url.pathname}${url.search}`);
    if (req.headers.authorization !== `Bearer ${this.serviceAccountToken}`)
      return json(401, { message: 'Invalid API key' });
    if (url.pathname === '/api/org/users') {
      const query = (url.searchParams.get('query') ?? '').toLowerCase();
      const list = [...this.users.values()]
        .filter((u) => u.login.toLowerCase().includes(query) || (u.email ?? '').toLowerCase().includes(query))
        .map((u) => ({
          orgId: this.orgId,
          userId: u.id,
          uid: u.uid,
          email: u.email ?? `${u.login}@example.com`,
          name: u.name ?? u.login,
          login: u.login,
          role: u.role,
          lastSeenAt: new Date().toISOString(),
        }));
      return json(200, list);
    }
    // pkg/services/accesscontrol/api/api.go searchUsersPermissions: actionPrefix, action, namespacedId.
    const prefix = url.searchParams.get('actionPrefix') ?? '';
    const typed = url.searchParams.get('namespacedId');
    let users = [...this.users.values()];
    if (typed) {
      const [, uid] = typed.split(':');
      users = users.filter((u) => u.uid === uid || String(u.id) === uid);
      if (users.length === 0) return json(400, 'user not found');
    }
    const out: Record<string, Record<string, string[]>> = {};
    for (const u of users) {
      const actions = this.actionsOf(u).filter((a) => a.startsWith(prefix));
      if (actions.length > 0) out[String(u.id)] = Object.fromEntries(actions.map((a) => [a, []]));
    }
    return json(200, out);
  }

  /** Serves the endpoints on 127.0.0.1; the issuer defaults to the server's own URL (with Grafana's trailing slash). */
  async listen(): Promise<string> {
    this.server = http.createServer((req, res) => {
      if (!this.handle(req, res))
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"Not found"}');
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    if (!this.issuer) this.issuer = `${this.url}/`;
    return this.url;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
