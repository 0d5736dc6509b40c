/**
 * Grafana's app plugin proxy, `/api/plugin-proxy/<id>/*`, the way pkg/api/pluginproxy/pluginproxy.go uses
 * the "routes" of the plugin's plugin.json: route matching (pkg/web/tree.go), reqAction and reqRole
 * (hasAccessToRoute), templates in the url and headers, the headers Grafana drops and adds (X-Grafana-Context,
 * the forwarded ID token in X-Grafana-Id), `Content-Security-Policy: sandbox` on the answer
 * (pkg/util/proxyutil), and the request and answer streamed through.
 */
import http from 'node:http';
import https from 'node:https';
import type { Request, Response } from 'express';
import type { GrafanaIdentity } from '../../testing/grafana-identity.ts';

export type OrgRole = 'Viewer' | 'Editor' | 'Admin';
const RANK: Record<OrgRole, number> = { Viewer: 1, Editor: 2, Admin: 3 };

export const isOrgRole = (role: string): role is OrgRole => Object.hasOwn(RANK, role);

export interface HarnessUser {
  login: string;
  role: OrgRole;
  grafanaAdmin?: boolean;
}

/**
 * Viewer < Editor < Admin, by the org role alone: pluginproxy.go hasAccessToRoute checks
 * `signedInUser.GetOrgRole().Includes(route.ReqRole)`, so a server admin with a Viewer org role is a Viewer.
 */
export function hasRole(user: HarnessUser, role: OrgRole): boolean {
  return RANK[user.role] >= RANK[role];
}

/** The app's settings as Grafana stores them (secureJsonData stays on the server). */
export interface AppSettings {
  enabled: boolean;
  pinned: boolean;
  jsonData: Record<string, unknown>;
  secureJsonData: Record<string, string>;
}

/** One request the emulated plugin proxy answered, for assertions. */
export interface ProxyRecord {
  method: string;
  path: string;
  user: string;
  /** The plugin.json route that matched, or null. */
  route: string | null;
  /** Where it was sent, or null when the proxy answered itself (403/404/5xx). */
  target: string | null;
  status: number;
}

// ---------------------------------------------------------------------------------------------------
// plugin.json routes, the way pkg/api/pluginproxy/pluginproxy.go uses them.

interface RouteHeader {
  name: string;
  content: string;
}

export interface PluginRoute {
  path: string;
  method?: string;
  reqRole?: string;
  reqAction?: string;
  url?: string;
  headers?: RouteHeader[];
  [other: string]: unknown;
}

/** Features of routes Grafana has and the harness does not emulate: refuse them rather than pretend. */
const UNEMULATED = ['body', 'tokenAuth', 'jwtTokenAuth', 'urlParams'];

/** A route the harness emulates, its reqRole checked to be a role. */
export interface CheckedRoute {
  path: string;
  method?: string;
  reqRole?: OrgRole;
  /** Checked against the user's RBAC actions (plugin.json roles granted to basic roles); wins over reqRole. */
  reqAction?: string;
  url?: string;
  headers?: RouteHeader[];
}

/** The routes of plugin.json, refused at start-up if they use a feature the harness does not emulate. */
export function pluginRoutes(pluginJson: { routes?: PluginRoute[] }): CheckedRoute[] {
  return (pluginJson.routes ?? []).map(({ reqRole, ...route }) => {
    const unsupported = UNEMULATED.filter((key) => route[key] !== undefined);
    if (unsupported.length > 0) throw new Error(`plugin.json route ${route.path}: ${unsupported.join(', ')} not emulated by the harness`);
    if (reqRole === undefined) return route;
    // Grafana skips a reqRole it does not know, which would leave a write route open: refuse the typo here.
    if (!isOrgRole(reqRole)) throw new Error(`plugin.json route ${route.path}: reqRole '${reqRole}' is not Viewer, Editor or Admin`);
    return { ...route, reqRole };
  });
}

/**
 * Grafana's route tree (pkg/web/tree.go) for one route path: literal segments, `:name` for one segment and a
 * trailing `*` for one or more further segments. Tree.Match trims one leading and one trailing '/' of the
 * path, so `freeze/*` does not match `freeze` nor `freeze/`, a static route matches with a trailing slash,
 * and the part `*` matched loses its trailing slash (pluginproxy.go keeps it only behind the
 * pluginProxyPreserveTrailingSlash feature flag, off by default). Returns the (still encoded) part the `*`
 * matched, '' when the route has no `*` (then nothing is appended to the route's url), or null when the
 * path does not match.
 */
export function matchRoutePath(pattern: string, proxyPath: string): string | null {
  const want = pattern.replace(/\/$/, '').replace(/^\//, '').split('/');
  const have = proxyPath.replace(/^\//, '').replace(/\/$/, '').split('/');
  for (let i = 0; i < want.length; i++) {
    const segment = want[i]!;
    if (segment === '*' && i === want.length - 1) return i < have.length ? have.slice(i).join('/') : null;
    const actual = have[i];
    if (actual === undefined) return null;
    if (segment.startsWith(':')) {
      if (actual === '') return null;
    } else if (safeDecode(actual) !== segment) {
      return null;
    }
  }
  return have.length === want.length ? '' : null;
}

function safeDecode(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}

/** util.JoinURLFragments */
export function joinUrlFragments(a: string, b: string): string {
  if (b.length === 0) return a;
  const aSlash = a.endsWith('/');
  const bSlash = b.startsWith('/');
  if (aSlash && bSlash) return a + b.slice(1);
  if (!aSlash && !bSlash) return `${a}/${b}`;
  return a + b;
}

/**
 * The Go text/template expressions plugin routes use: `{{ .JsonData.key }}` and `{{ .SecureJsonData.key }}`.
 * A missing key prints `<no value>`, as Go's templates do for a map.
 */
export function interpolate(template: string, settings: AppSettings): string {
  const out = template.replace(/\{\{-?\s*\.(JsonData|SecureJsonData)\.([A-Za-z_][A-Za-z0-9_]*)\s*-?\}\}/g, (_m, scope: string, key: string) => {
    const source: Record<string, unknown> = scope === 'JsonData' ? settings.jsonData : settings.secureJsonData;
    const value = source[key];
    return value === undefined || value === null ? '<no value>' : typeof value === 'string' ? value : JSON.stringify(value);
  });
  if (out.includes('{{')) throw new Error(`template not emulated by the harness: ${template}`);
  return out;
}

/** Request headers the proxy does not pass on (host becomes the target's). */
const DROPPED = new Set(['host', 'cookie', 'origin', 'referer', 'x-forwarded-host', 'x-forwarded-port', 'x-forwarded-proto']);
/** Per-connection headers, passed on in neither direction. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/** Grafana's SignedInUser, as the proxy serialises it into X-Grafana-Context. */
const signedInUser = (user: HarnessUser, userId: number, uid: string) => ({
  UserID: userId,
  UserUID: uid,
  OrgID: 1,
  OrgName: 'Main Org.',
  OrgRole: user.role,
  Login: user.login,
  Name: user.login,
  Email: `${user.login}@example.com`,
  AuthenticatedBy: 'password',
  IsServiceAccount: false,
  IsGrafanaAdmin: user.grafanaAdmin === true,
  IsAnonymous: false,
  IsDisabled: false,
  HelpFlags1: 0,
  LastSeenAt: new Date().toISOString(),
  Teams: [],
});

export interface PluginProxyOptions {
  pluginId: string;
  /** Signs the ID token the proxy forwards (ID forwarding on, as by default in Grafana 12.3+) and knows the users' RBAC actions. */
  identity: GrafanaIdentity;
  routes: CheckedRoute[];
  /** Read on every request: the settings API changes them in place. */
  settings: AppSettings;
  /** The signed-in user; throws on a malformed cookie (answered 401). */
  userOf: (req: Request) => HarnessUser;
  /** Called with each request's record (not for a malformed cookie's 401); its route, target and status are filled in as it goes. */
  recordRequest: (record: ProxyRecord) => void;
}

/** The handler for `/api/plugin-proxy/*`. */
export function pluginProxyHandler({ pluginId, routes, settings, identity, userOf, recordRequest }: PluginProxyOptions) {
  return async (req: Request, res: Response): Promise<void> => {
    const url = new URL(req.originalUrl, 'http://harness');
    const [, , , id, ...restSegments] = url.pathname.split('/');
    let user: HarnessUser;
    try {
      user = userOf(req);
    } catch (error) {
      res.status(401).json({ message: (error as Error).message });
      return;
    }
    const record: ProxyRecord = { method: req.method, path: `${url.pathname}${url.search}`, user: user.login, route: null, target: null, status: 0 };
    recordRequest(record);
    const answer = (status: number, message: string) => {
      record.status = status;
      res.status(status).json({ message });
    };
    if (id !== pluginId) {
      answer(404, 'Plugin not found');
      return;
    }
    const proxyPath = restSegments.join('/');
    const unsafe = (segment: string) => {
      const decoded = safeDecode(segment);
      return decoded === null || decoded === '..' || decoded === '.';
    };
    if (restSegments.some(unsafe)) {
      answer(400, 'invalid proxy path');
      return;
    }

    let matched: { route: CheckedRoute; rest: string } | null = null;
    for (const route of routes) {
      if (route.method && route.method !== '*' && route.method !== req.method) continue;
      const rest = matchRoutePath(route.path, proxyPath);
      if (rest === null) continue;
      // hasAccessToRoute: reqAction (RBAC) when set, else reqRole by the org role alone.
      const allowed = route.reqAction ? identity.actionsOf(identity.user(user.login)).includes(route.reqAction) : !route.reqRole || hasRole(user, route.reqRole);
      if (!allowed) {
        record.route = route.path;
        answer(403, 'plugin proxy route access denied');
        return;
      }
      matched = { route, rest };
      break;
    }
    if (!matched) {
      answer(404, 'plugin route match not found');
      return;
    }
    record.route = matched.route.path;

    let target: URL;
    const headers: http.OutgoingHttpHeaders = {};
    try {
      target = new URL(interpolate(matched.route.url ?? '', settings));
      if (target.protocol !== 'http:' && target.protocol !== 'https:') throw new Error(`unsupported protocol scheme ${target.protocol}`);
      // proxyutil.PrepareProxyRequest and the director: no cookies, Origin, Referer or X-Forwarded-Host/Port/Proto.
      for (const [name, value] of Object.entries(req.headers)) {
        if (HOP_BY_HOP.has(name) || DROPPED.has(name)) continue;
        if (value !== undefined) headers[name] = value;
      }
      headers.host = target.host;
      headers['x-grafana-referer'] = req.headers.referer ?? '';
      headers['x-forwarded-for'] = [req.headers['x-forwarded-for'], req.socket.remoteAddress].filter(Boolean).join(', ');
      const grafanaUser = identity.user(user.login);
      // Go's json.Marshal writes non-ASCII as raw UTF-8: the header carries those bytes (one latin1 char each).
      headers['x-grafana-context'] = Buffer.from(JSON.stringify(signedInUser(user, grafanaUser.id, grafanaUser.uid)), 'utf8').toString('latin1');
      // proxyutil.ApplyForwardIDHeader: the signed-in user's ID token, replacing any the browser sent.
      headers['x-grafana-id'] = await identity.sign(user.login);
      for (const header of matched.route.headers ?? []) {
        headers[header.name.toLowerCase()] = interpolate(header.content, settings);
      }
    } catch (error) {
      answer(502, `plugin proxy: ${(error as Error).message}`);
      return;
    }
    const upstreamPath = joinUrlFragments(target.pathname, matched.rest) + url.search;
    record.target = `${target.origin}${upstreamPath}`;

    const upstream = (target.protocol === 'https:' ? https : http).request(
      { protocol: target.protocol, hostname: target.hostname, port: target.port, method: req.method, path: upstreamPath, headers },
      (upstreamRes) => {
        record.status = upstreamRes.statusCode ?? 502;
        const out: http.OutgoingHttpHeaders = {};
        for (const [name, value] of Object.entries(upstreamRes.headers)) {
          if (HOP_BY_HOP.has(name) || name === 'set-cookie') continue;
          if (value !== undefined) out[name] = value;
        }
        // proxyutil.SetProxyResponseHeaders (reverse_proxy.go modifyResponse): an answer rendered as a page runs sandboxed.
        out['content-security-policy'] = 'sandbox';
        res.writeHead(record.status, out);
        upstreamRes.pipe(res);
      },
    );
    upstream.on('error', (error) => {
      if (!res.headersSent) {
        answer(502, `Bad Gateway: ${error.message}`);
      } else {
        res.destroy(error);
      }
    });
    req.pipe(upstream);
  };
}
