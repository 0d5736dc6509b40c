import { timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import { BlockList, isIP } from 'node:net';
import type { Express, Request, RequestHandler } from 'express';
import { createRemoteJWKSet, customFetch, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { UserError } from './errors.ts';
import type { Logger } from './logger.ts';

/**
 * Who may use the control API, decided in one place: every /api route that acts or reads calls
 * requireRole() or requireAction() from here, and buildApp() installs the one AccessControl they consult.
 *
 * Two modes (CONTROLROOM_AUTH):
 * - `grafana-id`: the caller is the user named by the signed ID token Grafana forwards in X-Grafana-Id
 *   (ES256, verified against Grafana's JWKS at /api/signing-keys/keys). The org role and the app's RBAC
 *   actions are read from Grafana's API with a service-account token. X-Grafana-Context must name the same
 *   user; its role is never trusted. Whoever holds the shared secret still cannot act as anyone else.
 * - `shared-secret` (development): X-Controlroom-Secret proves the call came through the app's proxy route,
 *   and X-Grafana-Context (set by Grafana's plugin proxy, so a browser cannot forge it) names the user and
 *   the org role. Whoever holds the secret can claim any user: only for setups where nobody else can.
 */

export type Role = 'Viewer' | 'Editor' | 'Admin';
const RANK: Record<Role, number> = { Viewer: 1, Editor: 2, Admin: 3 };
const isRole = (value: unknown): value is Role => typeof value === 'string' && Object.hasOwn(RANK, value);

export type AuthMode = 'grafana-id' | 'shared-secret';

export const PLUGIN_ID = 'transbot-controlroom-app';

/**
 * The app's RBAC actions (plugin.json `roles`; Grafana requires the plugin id as prefix) and the org role
 * each falls back to where Grafana has no plugin roles. plugin.json grants each action to that basic role,
 * so both rules agree until a Grafana admin changes the grants; plugin/src/plugin.json is checked against
 * this table by core/access.test.ts.
 */
export const ACTIONS = {
  read: { action: `${PLUGIN_ID}.controlroom:read`, role: 'Viewer' },
  bulkWrite: { action: `${PLUGIN_ID}.bulk:write`, role: 'Editor' },
  limitsRequest: { action: `${PLUGIN_ID}.limits:request`, role: 'Editor' },
  freezeWrite: { action: `${PLUGIN_ID}.freeze:write`, role: 'Editor' },
  incidentsWrite: { action: `${PLUGIN_ID}.incidents:write`, role: 'Editor' },
  freezeOverride: { action: `${PLUGIN_ID}.freeze:override`, role: 'Admin' },
  failoverWrite: { action: `${PLUGIN_ID}.failover:write`, role: 'Admin' },
  pricingWrite: { action: `${PLUGIN_ID}.pricing:write`, role: 'Admin' },
} as const satisfies Record<string, { action: string; role: Role }>;
export type ActionName = keyof typeof ACTIONS;

export interface Caller {
  /** Grafana login, intact (UTF-8). */
  login: string;
  /** The org role, from Grafana's API (grafana-id) or from X-Grafana-Context (shared-secret). Never raised by server admin. */
  role: Role;
  userId: number | null;
  /** Grafana's user uid (grafana-id mode). */
  uid: string | null;
  orgId: number | null;
  /** How the identity was established. */
  via: AuthMode;
  /** The app's RBAC actions Grafana grants the user, or null where Grafana has no plugin roles (org role decides). */
  actions: ReadonlySet<string> | null;
}

export const SECRET_HEADER = 'x-controlroom-secret';
/** authlib/authn/const.go: httpHeaderIDToken. */
export const ID_TOKEN_HEADER = 'x-grafana-id';
export const CONTEXT_HEADER = 'x-grafana-context';

export interface AccessConfig {
  CONTROLROOM_AUTH?: AuthMode | undefined;
  CONTROLROOM_API_SECRET?: string | undefined;
  CONTROLROOM_API_SECRET_PREVIOUS?: string | undefined;
  GRAFANA_URL?: string | undefined;
  GRAFANA_ID_ISSUER?: string | undefined;
  GRAFANA_SERVICE_ACCOUNT_TOKEN?: string | undefined;
  GRAFANA_SERVICE_ACCOUNT_TOKEN_FILE?: string | undefined;
  GRAFANA_ORG_ID?: number | undefined;
}

/** Test seams; production uses the defaults. */
export interface AccessOptions {
  fetch?: typeof fetch;
  /** How long a user's role and actions are reused (default 10 s, like authlib's example cache). */
  roleCacheMs?: number;
  /** Least time between two JWKS refetches triggered by an unknown kid (default 5 s). */
  jwksCooldownMs?: number;
  logger?: Pick<Logger, 'warn'>;
}

/** Header values arrive as latin1 in Node; Grafana writes raw UTF-8 bytes (Go's json.Marshal does not escape non-ASCII). */
export function utf8Header(req: Request, name: string): string | undefined {
  const raw = req.header(name);
  if (raw === undefined) return undefined;
  const bytes = Buffer.from(raw, 'latin1');
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    // Not UTF-8 after all: the header was latin1 text, which Node already decoded.
    return raw;
  }
}

function secretMatches(presented: string, secrets: readonly string[]): boolean {
  const a = Buffer.from(presented);
  let ok = false;
  // Every configured secret is compared, so the time taken does not tell which one matched.
  for (const secret of secrets) {
    const b = Buffer.from(secret);
    if (a.length === b.length && timingSafeEqual(a, b)) ok = true;
  }
  return ok;
}

interface GrafanaContext {
  login: string;
  orgRole: string | undefined;
  userId: number | null;
  uid: string | null;
  orgId: number | null;
}

/** X-Grafana-Context: Grafana's SignedInUser as JSON (pkg/api/pluginproxy/pluginproxy.go, director); older versions spell some keys differently. */
function grafanaContext(req: Request): GrafanaContext {
  const raw = utf8Header(req, CONTEXT_HEADER);
  if (!raw)
    throw new UserError(401, 'missing X-Grafana-Context: no signed-in Grafana user (call through the Grafana app)');
  let ctx: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(raw);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
    ctx = parsed as Record<string, unknown>;
  } catch {
    throw new UserError(401, 'X-Grafana-Context is not a JSON object');
  }
  const pick = (...keys: string[]) => keys.map((k) => ctx[k]).find((v) => v !== undefined && v !== null && v !== '');
  if (pick('IsAnonymous', 'isAnonymous') === true)
    throw new UserError(401, 'anonymous Grafana users cannot use Control Room');
  const login = pick('Login', 'login');
  if (typeof login !== 'string' || login === '') throw new UserError(401, 'X-Grafana-Context has no user login');
  const num = (v: unknown) => (typeof v === 'number' && Number.isSafeInteger(v) ? v : null);
  const uid = pick('UserUID', 'UserUid', 'userUid');
  const orgRole = pick('OrgRole', 'orgRole');
  return {
    login,
    orgRole: typeof orgRole === 'string' ? orgRole : undefined,
    userId: num(pick('UserID', 'UserId', 'userId')),
    uid: typeof uid === 'string' ? uid : null,
    orgId: num(pick('OrgID', 'OrgId', 'orgId')),
  };
}

/** Grafana's ID token claims (pkg/services/auth/idimpl/service.go SignIdentity; authlib authn.IDTokenClaims). */
interface IdTokenClaims extends JWTPayload {
  type?: string;
  identifier?: string;
  namespace?: string;
  username?: string;
  email?: string;
  name?: string;
}

interface Membership {
  role: Role;
  userId: number;
  actions: ReadonlySet<string> | null;
}

/** A value kept for a short while; a failed lookup is not kept. */
class ShortCache<T> {
  private readonly entries = new Map<string, { at: number; value: Promise<T> }>();
  constructor(private readonly ttlMs: number) {}
  get(key: string, load: () => Promise<T>): Promise<T> {
    const now = Date.now();
    const hit = this.entries.get(key);
    if (hit && now - hit.at < this.ttlMs) return hit.value;
    const value = load();
    this.entries.set(key, { at: now, value });
    value.catch(() => {
      if (this.entries.get(key)?.value === value) this.entries.delete(key);
    });
    // Bounded: expired entries go when the map grows past a few thousand users.
    if (this.entries.size > 5_000) {
      for (const [k, e] of this.entries) if (now - e.at >= this.ttlMs) this.entries.delete(k);
    }
    return value;
  }
}

export class AccessControl {
  readonly mode: AuthMode;
  private readonly secrets: string[];
  private readonly grafanaUrl: URL | null;
  private readonly issuer: string | null;
  private readonly orgId: number;
  private readonly saToken: string | null;
  private readonly saTokenFile: string | null;
  private readonly jwks: ReturnType<typeof createRemoteJWKSet> | null;
  private readonly fetch: typeof fetch;
  private readonly memberships: ShortCache<Membership>;
  private readonly rbacProbe: ShortCache<boolean>;
  private readonly logger: Pick<Logger, 'warn'> | undefined;

  constructor(mode: AuthMode, config: AccessConfig, options: AccessOptions = {}) {
    this.mode = mode;
    this.secrets = [config.CONTROLROOM_API_SECRET, config.CONTROLROOM_API_SECRET_PREVIOUS].filter((s): s is string =>
      Boolean(s)
    );
    this.fetch = options.fetch ?? fetch;
    this.logger = options.logger;
    this.memberships = new ShortCache(options.roleCacheMs ?? 10_000);
    this.rbacProbe = new ShortCache(Math.max(options.roleCacheMs ?? 10_000, 60_000));
    this.orgId = config.GRAFANA_ORG_ID ?? 1;
    if (mode === 'grafana-id') {
      if (!config.GRAFANA_URL) throw new Error('GRAFANA_URL: required when CONTROLROOM_AUTH=grafana-id');
      if (!config.GRAFANA_SERVICE_ACCOUNT_TOKEN && !config.GRAFANA_SERVICE_ACCOUNT_TOKEN_FILE) {
        throw new Error(
          'GRAFANA_SERVICE_ACCOUNT_TOKEN: required (or GRAFANA_SERVICE_ACCOUNT_TOKEN_FILE) when CONTROLROOM_AUTH=grafana-id'
        );
      }
      this.grafanaUrl = new URL(config.GRAFANA_URL.endsWith('/') ? config.GRAFANA_URL : `${config.GRAFANA_URL}/`);
      // Grafana signs with iss = cfg.AppURL, its root_url, which always ends in '/'.
      this.issuer = config.GRAFANA_ID_ISSUER ?? this.grafanaUrl.href;
      this.saToken = config.GRAFANA_SERVICE_ACCOUNT_TOKEN ?? null;
      this.saTokenFile = config.GRAFANA_SERVICE_ACCOUNT_TOKEN_FILE ?? null;
      // jose refetches the set when a token names a kid it does not hold (Grafana rotated its key), at most
      // once per cooldown, so tokens with made-up kids cannot make Control Room hammer Grafana.
      this.jwks = createRemoteJWKSet(new URL('api/signing-keys/keys', this.grafanaUrl), {
        cooldownDuration: options.jwksCooldownMs ?? 5_000,
        cacheMaxAge: 10 * 60_000,
        timeoutDuration: 5_000,
        ...(options.fetch ? { [customFetch]: options.fetch } : {}),
      });
    } else {
      if (this.secrets.length === 0)
        throw new Error('CONTROLROOM_API_SECRET: required when CONTROLROOM_AUTH=shared-secret');
      this.grafanaUrl = null;
      this.issuer = null;
      this.saToken = null;
      this.saTokenFile = null;
      this.jwks = null;
    }
  }

  /** Establishes who is calling, or throws a 401/403/503 UserError saying why not. */
  async identify(req: Request): Promise<Caller> {
    if (this.secrets.length > 0) {
      const presented = req.header(SECRET_HEADER);
      if (!presented)
        throw new UserError(401, 'missing X-Controlroom-Secret: call through the Grafana app (plugin proxy)');
      if (!secretMatches(presented, this.secrets)) throw new UserError(401, 'invalid X-Controlroom-Secret');
    }
    const context = grafanaContext(req);
    if (this.mode === 'shared-secret') {
      // Same rule as Grafana's route reqRole (pluginproxy.go hasAccessToRoute: GetOrgRole().Includes):
      // the org role alone; a server admin with a Viewer org role is a Viewer.
      const role: Role = isRole(context.orgRole) ? context.orgRole : 'Viewer';
      return {
        login: context.login,
        role,
        userId: context.userId,
        uid: context.uid,
        orgId: context.orgId,
        via: 'shared-secret',
        actions: null,
      };
    }
    return this.identifyByIdToken(req, context);
  }

  private async identifyByIdToken(req: Request, context: GrafanaContext): Promise<Caller> {
    const token = req.header(ID_TOKEN_HEADER);
    if (!token) {
      throw new UserError(
        401,
        'missing X-Grafana-Id: Grafana did not forward an ID token (enable ID forwarding: feature toggle idForwarding)'
      );
    }
    let claims: IdTokenClaims;
    try {
      const verified = await jwtVerify<IdTokenClaims>(token, this.jwks!, {
        algorithms: ['ES256'],
        issuer: this.issuer!,
        audience: `org:${this.orgId}`,
        requiredClaims: ['exp', 'sub'],
        clockTolerance: 5,
      });
      // Grafana marks ID tokens typ "jwt" (authlib TokenTypeID; versions before 11.1 set no typ). An access
      // token ("at+jwt") must not pass as a user's identity.
      const typ = verified.protectedHeader.typ?.toLowerCase().replace(/^application\//, '');
      if (typ !== undefined && typ !== 'jwt')
        throw new UserError(401, `X-Grafana-Id refused: a ${verified.protectedHeader.typ} token is not an ID token`);
      claims = verified.payload;
    } catch (error) {
      if (error instanceof UserError) throw error;
      throw new UserError(401, `X-Grafana-Id refused: ${describeJoseError(error, this.orgId)}`);
    }
    // sub is the typed id (idimpl: Subject = id.GetID()), "user:<uid>" in current Grafana and "user:<id>" in
    // older ones; the `identifier` claim is the raw uid. Only users act in Control Room.
    const [type, subjectId] = splitTyped(claims.sub!);
    const uid = claims.identifier || subjectId;
    if (type !== 'user' || !uid)
      throw new UserError(403, `X-Grafana-Id names ${claims.sub}, not a user: only Grafana users can use Control Room`);
    const login = claims.username;
    if (!login) throw new UserError(401, 'X-Grafana-Id has no username claim');
    if (context.login !== login) {
      throw new UserError(
        401,
        `X-Grafana-Context names ${JSON.stringify(context.login)} but the signed ID token is for ${JSON.stringify(login)}`
      );
    }
    if (context.uid !== null && context.uid !== uid && String(context.userId) !== subjectId) {
      throw new UserError(401, `X-Grafana-Context names user uid ${context.uid} but the signed ID token is for ${uid}`);
    }
    if (context.orgId !== null && context.orgId !== this.orgId) {
      throw new UserError(
        401,
        `X-Grafana-Context names org ${context.orgId} but the signed ID token is for org ${this.orgId}`
      );
    }
    const membership = await this.memberships.get(`${uid}\u0000${login}`, () =>
      this.lookUpMembership(claims.sub!, uid, login)
    );
    if (context.userId !== null && context.userId !== membership.userId) {
      throw new UserError(
        401,
        `X-Grafana-Context names user id ${context.userId} but the signed ID token is for user id ${membership.userId}`
      );
    }
    return {
      login,
      role: membership.role,
      userId: membership.userId,
      uid,
      orgId: this.orgId,
      via: 'grafana-id',
      actions: membership.actions,
    };
  }

  /** The service-account token; a token file is read each time, so a rotated token is picked up. */
  private serviceAccountToken(): string {
    if (this.saToken) return this.saToken;
    let token = '';
    try {
      token = fs.readFileSync(this.saTokenFile!, 'utf8').trim();
    } catch (error) {
      throw new UserError(
        503,
        `GRAFANA_SERVICE_ACCOUNT_TOKEN_FILE ${this.saTokenFile} cannot be read (${(error as NodeJS.ErrnoException).code}): roles cannot be resolved yet`
      );
    }
    if (!token)
      throw new UserError(
        503,
        `GRAFANA_SERVICE_ACCOUNT_TOKEN_FILE ${this.saTokenFile} is empty: roles cannot be resolved yet`
      );
    return token;
  }

  private async grafanaGet(path: string): Promise<{ status: number; body: unknown }> {
    const token = this.serviceAccountToken();
    let res: Response;
    try {
      res = await this.fetch(new URL(path, this.grafanaUrl!), {
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          'x-grafana-org-id': String(this.orgId),
        },
        signal: AbortSignal.timeout(5_000),
      });
    } catch (error) {
      throw new UserError(
        503,
        `cannot reach Grafana at ${this.grafanaUrl!.origin} to resolve the user's role: ${(error as Error).message}`
      );
    }
    const text = await res.text();
    let body: unknown = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      body = text;
    }
    return { status: res.status, body };
  }

  /**
   * The org role from Grafana's org users API (GET /api/org/users?query=, needs org.users:read) and the
   * app's actions from its permission search (GET /api/access-control/users/permissions/search, the call
   * authlib's authz client makes; needs users.permissions:read). Both with the service-account token.
   */
  private async lookUpMembership(typedId: string, uid: string, login: string): Promise<Membership> {
    const users = await this.grafanaGet(`api/org/users?query=${encodeURIComponent(login)}&limit=100`);
    if (users.status === 401 || users.status === 403) {
      throw new UserError(
        503,
        `Grafana refused GRAFANA_SERVICE_ACCOUNT_TOKEN (${users.status}) when resolving roles: give the service account org.users:read`
      );
    }
    if (users.status !== 200 || !Array.isArray(users.body))
      throw new UserError(503, `Grafana answered ${users.status} to the org users lookup`);
    // The login names the user; the uid (or, from older Grafana, the numeric id) makes sure it is the same one.
    const entry = (users.body as Array<Record<string, unknown>>).find(
      (u) =>
        typeof u.login === 'string' &&
        u.login.toLowerCase() === login.toLowerCase() &&
        (typeof u.uid !== 'string' || u.uid === uid || String(u.userId) === uid)
    );
    if (!entry || typeof entry.userId !== 'number')
      throw new UserError(403, `${login} is not a member of Grafana org ${this.orgId}`);
    const role: Role | null = isRole(entry.role) ? entry.role : null;
    if (!role) throw new UserError(403, `${login} has no role in Grafana org ${this.orgId}`);
    return { role, userId: entry.userId, actions: await this.lookUpActions(typedId, entry.userId) };
  }

  private async lookUpActions(typedId: string, userId: number): Promise<ReadonlySet<string> | null> {
    const prefix = `${PLUGIN_ID}.`;
    // Whether this Grafana has the app's roles at all: any org member holding any of its actions.
    const rbac = await this.rbacProbe.get('probe', async () => {
      const all = await this.grafanaGet(
        `api/access-control/users/permissions/search?actionPrefix=${encodeURIComponent(prefix)}`
      );
      if (all.status !== 200 || typeof all.body !== 'object' || all.body === null) {
        this.logger?.warn(
          { status: all.status },
          "Grafana's permission search is unavailable: the org role decides (give the service account users.permissions:read)"
        );
        return false;
      }
      return Object.values(all.body).some(
        (perms) => typeof perms === 'object' && perms !== null && Object.keys(perms).length > 0
      );
    });
    if (!rbac) return null;
    const mine = await this.grafanaGet(
      `api/access-control/users/permissions/search?namespacedId=${encodeURIComponent(typedId)}&actionPrefix=${encodeURIComponent(prefix)}`
    );
    if (mine.status !== 200 || typeof mine.body !== 'object' || mine.body === null) {
      throw new UserError(503, `Grafana answered ${mine.status} to the permission search for ${typedId}`);
    }
    const perms = (mine.body as Record<string, unknown>)[String(userId)];
    return new Set(
      typeof perms === 'object' && perms !== null ? Object.keys(perms).filter((a) => a.startsWith(prefix)) : []
    );
  }
}

function splitTyped(sub: string): [string, string] {
  const i = sub.indexOf(':');
  return i < 0 ? [sub, ''] : [sub.slice(0, i), sub.slice(i + 1)];
}

function describeJoseError(error: unknown, orgId: number): string {
  if (error instanceof joseErrors.JWTExpired) return 'the ID token has expired';
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    if (error.claim === 'aud') return `the ID token is not for Grafana org ${orgId}`;
    if (error.claim === 'iss') return 'the ID token was issued by another Grafana (unexpected iss)';
    return `the ID token's ${error.claim} claim is invalid (${error.reason})`;
  }
  if (error instanceof joseErrors.JWKSNoMatchingKey)
    return "no key in Grafana's signing keys matches the ID token (foreign-signed or unknown kid)";
  if (error instanceof joseErrors.JWSSignatureVerificationFailed)
    return "the ID token's signature does not verify against Grafana's signing keys";
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return 'the ID token is not signed with ES256';
  if (error instanceof joseErrors.JWKSTimeout || error instanceof joseErrors.JWKSInvalid) {
    return `Grafana's signing keys could not be fetched (${(error as Error).message})`;
  }
  if (error instanceof joseErrors.JOSEError) return `the ID token is invalid (${error.message})`;
  return `the ID token could not be verified (${(error as Error).message})`;
}

/**
 * The control API's access check for a configuration (loadConfig already refused an incomplete one; this
 * throws naming the variable for configurations built otherwise); null when CONTROLROOM_AUTH is unset:
 * the control API then answers 503.
 */
export function createAccessControl(config: AccessConfig, options: AccessOptions = {}): AccessControl | null {
  if (!config.CONTROLROOM_AUTH) return null;
  if (config.CONTROLROOM_AUTH === 'shared-secret') {
    options.logger?.warn(
      'CONTROLROOM_AUTH=shared-secret: whoever holds the secret can act as any Grafana user; use grafana-id outside development'
    );
  }
  return new AccessControl(config.CONTROLROOM_AUTH, config, options);
}

declare module 'express-serve-static-core' {
  interface Request {
    caller?: Caller;
  }
}

const ACCESS_KEY = 'controlroomAccess';

/** Makes `access` the check every requireRole/requireAction of this app consults (null: the control API answers 503). */
export function installAccessControl(app: Express, access: AccessControl | null): void {
  app.locals[ACCESS_KEY] = access;
}

async function callerOf(req: Request): Promise<Caller> {
  if (req.caller) return req.caller;
  const access = req.app.locals[ACCESS_KEY] as AccessControl | null | undefined;
  if (!access)
    throw new UserError(
      503,
      'the control API is not configured on this server: set CONTROLROOM_AUTH (and CONTROLROOM_API_SECRET or the GRAFANA_* settings)'
    );
  req.caller = await access.identify(req);
  return req.caller;
}

/** Lets the request through when the user's org role is at least `role` (Grafana's reqRole rule); 401/403 with the reason otherwise. */
export function requireRole(role: Role): RequestHandler {
  return async (req, _res, next) => {
    const caller = await callerOf(req);
    if (RANK[caller.role] < RANK[role])
      throw new UserError(403, `${role} role required; ${caller.login} is ${caller.role}`);
    next();
  };
}

/** Whether a caller may perform an action: Grafana's RBAC grant where the app's roles exist, else the action's org role. */
export function allows(caller: Caller, name: ActionName): boolean {
  const { action, role } = ACTIONS[name];
  return caller.actions ? caller.actions.has(action) : RANK[caller.role] >= RANK[role];
}

/** Lets the request through when the user may perform the action; 401/403 with the reason otherwise. */
export function requireAction(name: ActionName): RequestHandler {
  return async (req, _res, next) => {
    const caller = await callerOf(req);
    if (!allows(caller, name)) {
      const { action, role } = ACTIONS[name];
      throw new UserError(
        403,
        caller.actions
          ? `${action} required; Grafana does not grant it to ${caller.login}`
          : `${role} role required; ${caller.login} is ${caller.role}`
      );
    }
    next();
  };
}

/** The audit actor for a caller: "grafana:<login>". */
export const actorOf = (caller: Caller) => `grafana:${caller.login}`;

/** An address list (`loopback`, IPs, CIDRs, comma-separated) as a BlockList; `name` is the variable it came from. */
function addressList(name: string, list: string): BlockList {
  const trusted = new BlockList();
  for (const item of list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    if (item === 'loopback') {
      trusted.addSubnet('127.0.0.0', 8, 'ipv4');
      trusted.addAddress('::1', 'ipv6');
      continue;
    }
    const [address = '', bits] = item.split('/');
    const family = isIP(address);
    if (family === 0) throw new Error(`${name}: ${item} is not loopback, an IP address or a CIDR`);
    const type = family === 4 ? 'ipv4' : 'ipv6';
    const prefix = Number(bits);
    if (bits === undefined) trusted.addAddress(address, type);
    else if (Number.isInteger(prefix) && prefix >= 0 && prefix <= (family === 4 ? 32 : 128))
      trusted.addSubnet(address, prefix, type);
    else throw new Error(`${name}: ${item} has an invalid prefix length`);
  }
  return trusted;
}

const inList = (list: BlockList, addr: string) => {
  const plain = addr.startsWith('::ffff:') ? addr.slice(7) : addr;
  return list.check(plain, isIP(plain) === 6 ? 'ipv6' : 'ipv4');
};

/**
 * Express's `trust proxy`: Grafana's hop (CONTROLROOM_TRUSTED_PROXY: `loopback`, IPs or CIDRs), and, when
 * Grafana calls through a load balancer (the HA shape: CONTROLROOM_TRUSTED_BALANCER, HAProxy with
 * `option forwardfor`), the balancer's hop in front of it. Grafana appends the browser's address to
 * X-Forwarded-For (pkg/util/proxyutil/proxyutil.go PrepareProxyRequest) and the balancer appends Grafana's,
 * so req.ip is the browser's address either way; anything earlier in the header came from the browser and
 * is not trusted, and a caller that is neither gets its own address (one that reached the balancer
 * directly gets its own address too: the entry the balancer appended for it is not Grafana's).
 */
export function trustGrafanaHop(grafana: string, balancer = ''): (addr: string, hop: number) => boolean {
  const grafanaHop = addressList('CONTROLROOM_TRUSTED_PROXY', grafana);
  const balancerHop = addressList('CONTROLROOM_TRUSTED_BALANCER', balancer);
  const behindBalancer = balancer.trim() !== '';
  return (addr, hop) => {
    if (hop === 0) return inList(grafanaHop, addr) || (behindBalancer && inList(balancerHop, addr));
    // The second hop is believed only as Grafana behind the balancer. A request that came straight from
    // Grafana has the browser's address here, which is never in Grafana's list (Grafana is not a browser).
    return hop === 1 && behindBalancer && inList(grafanaHop, addr);
  };
}
