/**
 * A stand-in for the parts of Grafana the Control Room app plugin touches, so the BUILT plugin
 * (plugin/dist) can be driven in a real browser against the real Control Room API:
 *
 * - `/`                      the harness page (page/harness.tsx, bundled here with esbuild), with Grafana's
 *                            boot data for the signed-in user inlined before it; `?page=` and `?theme=`
 * - `/public/plugins/<id>/`  plugin/dist, where Grafana serves a plugin's files
 * - `/public/build/img/icons/` @grafana/ui's icons, where Grafana serves them
 * - `/api/plugins/<id>/settings`  GET (meta, without secure values) and POST (Admin) the app's settings, in memory
 * - `/api/plugin-proxy/<id>/*`    Grafana's app plugin proxy, driven by dist/plugin.json "routes"
 *
 * The signed-in user comes from the `harness_user` cookie: `<login>:<Viewer|Editor|Admin>[:grafana-admin]`.
 */
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';
import express, { type Request, type Response } from 'express';

const here = path.dirname(fileURLToPath(import.meta.url));
export const PLUGIN_DIR = path.resolve(here, '..');
export const DIST_DIR = path.join(PLUGIN_DIR, 'dist');
export const USER_COOKIE = 'harness_user';

export type OrgRole = 'Viewer' | 'Editor' | 'Admin';
const RANK: Record<OrgRole, number> = { Viewer: 1, Editor: 2, Admin: 3 };

export interface HarnessUser {
  login: string;
  role: OrgRole;
  grafanaAdmin?: boolean;
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

export interface Harness {
  url: string;
  settings: AppSettings;
  proxied: ProxyRecord[];
  close(): Promise<void>;
}

export interface HarnessOptions {
  /** Control Room's base URL, stored as jsonData.apiUrl (omit to start unconfigured). */
  apiUrl?: string;
  /** Stored as secureJsonData.apiSecret. */
  apiSecret?: string;
  /** Defaults to plugin/dist. */
  distDir?: string;
  /** Who is signed in when the request has no harness_user cookie. */
  defaultUser?: HarnessUser;
  port?: number;
}

/** The cookie value that signs `user` in. */
export const userCookie = (user: HarnessUser): string => `${user.login}:${user.role}${user.grafanaAdmin ? ':grafana-admin' : ''}`;

export function parseUserCookie(value: string): HarnessUser {
  const [login, role, flag, ...extra] = decodeURIComponent(value).split(':');
  if (!login || !role || !(role in RANK) || extra.length > 0 || (flag !== undefined && flag !== 'grafana-admin')) {
    throw new Error(`${USER_COOKIE} must be <login>:<Viewer|Editor|Admin>[:grafana-admin], not '${value}'`);
  }
  return { login, role: role as OrgRole, grafanaAdmin: flag === 'grafana-admin' };
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

interface PluginJson {
  id: string;
  name: string;
  type: string;
  info: Record<string, unknown> & { version?: string; logos?: { small?: string; large?: string } };
  includes?: Array<{ type: string; name: string; path?: string; role?: string; addToNav?: boolean; defaultNav?: boolean }>;
  dependencies?: Record<string, unknown>;
  routes?: PluginRoute[];
}

/** Features of routes Grafana has and the harness does not emulate: refuse them rather than pretend. */
const UNEMULATED = ['body', 'tokenAuth', 'jwtTokenAuth', 'urlParams', 'reqAction'];

/**
 * Grafana's route tree (pkg/web) for one route path: literal segments, `:name` for one segment and a
 * trailing `*` for the rest of the path. Returns the (still encoded) part the `*` matched, '' when the
 * route has no `*` (then nothing is appended to the route's url), or null when the path does not match.
 */
export function matchRoutePath(pattern: string, proxyPath: string): string | null {
  const want = pattern.replace(/^\/+/, '').split('/');
  const have = proxyPath.replace(/^\/+/, '').split('/');
  for (let i = 0; i < want.length; i++) {
    const segment = want[i]!;
    if (segment === '*' && i === want.length - 1) return have.slice(i).join('/');
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

function hasRole(user: HarnessUser, role: OrgRole): boolean {
  return user.grafanaAdmin === true || RANK[user.role] >= RANK[role];
}

const DROPPED = new Set(['host', 'cookie', 'origin', 'referer', 'x-forwarded-host', 'x-forwarded-port', 'x-forwarded-proto']);
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

// ---------------------------------------------------------------------------------------------------
// The page bundle.

export interface PageBundle {
  files: Map<string, { contents: Uint8Array; type: string }>;
}

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.ttf': 'font/ttf',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.eot': 'application/vnd.ms-fontobject',
  '.map': 'application/json',
};

let bundling: Promise<PageBundle> | undefined;

/** Bundles page/harness.tsx once per process (esbuild, in memory). */
export function bundlePage(): Promise<PageBundle> {
  bundling ??= (async () => {
    const require = createRequire(import.meta.url);
    const packageDir = (name: string) => path.dirname(require.resolve(`${name}/package.json`, { paths: [PLUGIN_DIR] }));
    const uiDir = packageDir('@grafana/ui');
    const internal: Record<string, string> = {
      'grafana-internal:i18n': path.join(packageDir('@grafana/i18n'), 'dist/esm/i18n.mjs'),
      'grafana-internal:runtime/PluginPage': path.join(packageDir('@grafana/runtime'), 'dist/esm/components/PluginPage.mjs'),
    };
    const pageDir = path.join(here, 'page');
    const result = await esbuild.build({
      entryPoints: { harness: path.join(pageDir, 'harness.tsx') },
      bundle: true,
      write: false,
      outdir: '/harness',
      publicPath: '/harness/',
      platform: 'browser',
      format: 'iife',
      target: 'es2022',
      jsx: 'automatic',
      minify: true,
      sourcemap: 'linked',
      legalComments: 'none',
      logLevel: 'silent',
      tsconfigRaw: { compilerOptions: { jsx: 'react-jsx' } },
      // What Grafana's webpack build does for the packages it bundles.
      define: { 'process.env.NODE_ENV': '"production"', global: 'globalThis' },
      loader: { '.svg': 'dataurl', '.png': 'dataurl', '.gif': 'dataurl', '.woff': 'file', '.woff2': 'file', '.ttf': 'file', '.eot': 'file' },
      plugins: [
        {
          name: 'grafana-internal',
          setup(build) {
            build.onResolve({ filter: /^grafana-internal:/ }, (args) => {
              const file = internal[args.path];
              return file ? { path: file } : { errors: [{ text: `no harness mapping for ${args.path}` }] };
            });
            // Grafana shares one @emotion/css with plugins: the one its @grafana/ui styles with.
            build.onResolve({ filter: /^@emotion\/css$/ }, async (args) => {
              if (!args.importer.startsWith(pageDir)) return undefined;
              const resolved = await build.resolve(args.path, { resolveDir: uiDir, kind: args.kind });
              return resolved.errors.length ? { errors: resolved.errors } : { path: resolved.path };
            });
          },
        },
      ],
    });
    const problems = result.errors.concat(result.warnings.filter((w) => w.id === 'import-is-undefined'));
    if (problems.length > 0) {
      throw new Error(`bundling the harness page failed:\n${(await esbuild.formatMessages(problems, { kind: 'error' })).join('\n')}`);
    }
    const files = new Map<string, { contents: Uint8Array; type: string }>();
    for (const file of result.outputFiles) {
      files.set(path.basename(file.path), { contents: file.contents, type: TYPES[path.extname(file.path)] ?? 'application/octet-stream' });
    }
    return { files };
  })();
  bundling.catch(() => {
    bundling = undefined;
  });
  return bundling;
}

// ---------------------------------------------------------------------------------------------------

const SPINNER_SVG = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><path d="M12 2a10 10 0 1 0 10 10h-2a8 8 0 1 1-8-8z"/></svg>';

const escapeScript = (json: string) => json.replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const distDir = options.distDir ?? DIST_DIR;
  const moduleFile = path.join(distDir, 'module.js');
  if (!fs.existsSync(moduleFile) || !fs.existsSync(path.join(distDir, 'plugin.json'))) {
    throw new Error(`${moduleFile} is missing: run npm run build -w plugin first`);
  }
  const pluginJson = JSON.parse(fs.readFileSync(path.join(distDir, 'plugin.json'), 'utf8')) as PluginJson;
  const pluginId = pluginJson.id;
  const routes = pluginJson.routes ?? [];
  for (const route of routes) {
    const unsupported = UNEMULATED.filter((key) => route[key] !== undefined);
    if (unsupported.length > 0) throw new Error(`plugin.json route ${route.path}: ${unsupported.join(', ')} not emulated by the harness`);
  }
  const require = createRequire(import.meta.url);
  const iconsDir = path.join(path.dirname(require.resolve('@grafana/ui/package.json', { paths: [PLUGIN_DIR] })), 'dist/public/img/icons');
  const bundle = await bundlePage();

  const settings: AppSettings = {
    enabled: true,
    pinned: true,
    jsonData: options.apiUrl !== undefined ? { apiUrl: options.apiUrl } : {},
    secureJsonData: options.apiSecret !== undefined ? { apiSecret: options.apiSecret } : {},
  };
  const defaultUser = options.defaultUser ?? { login: 'admin', role: 'Admin', grafanaAdmin: true };
  const proxied: ProxyRecord[] = [];
  const userIds = new Map<string, number>([['admin', 1]]);
  const userId = (login: string) => {
    if (!userIds.has(login)) userIds.set(login, userIds.size + 1);
    return userIds.get(login)!;
  };

  const pluginBase = `public/plugins/${pluginId}`;
  const pages = Object.fromEntries(
    (pluginJson.includes ?? []).flatMap((inc) => {
      const prefix = `/a/${pluginId}/`;
      return inc.type === 'page' && inc.path?.startsWith(prefix) ? [[inc.path.slice(prefix.length), inc.name]] : [];
    }),
  );
  const defaultNav = (pluginJson.includes ?? []).find((inc) => inc.defaultNav)?.path ?? `/plugins/${pluginId}/`;

  /** GET /api/plugins/<id>/settings: Grafana's PluginSetting DTO (the app's meta). */
  const meta = () => ({
    name: pluginJson.name,
    type: pluginJson.type,
    id: pluginId,
    enabled: settings.enabled,
    pinned: settings.pinned,
    autoEnabled: false,
    module: `${pluginBase}/module.js`,
    baseUrl: pluginBase,
    info: {
      ...pluginJson.info,
      logos: Object.fromEntries(Object.entries(pluginJson.info.logos ?? {}).map(([k, v]) => [k, `${pluginBase}/${v}`])),
    },
    includes: (pluginJson.includes ?? []).map((inc) => ({ ...inc, slug: inc.name.toLowerCase().replace(/[^a-z0-9]+/g, '-') })),
    dependencies: pluginJson.dependencies ?? {},
    jsonData: settings.jsonData,
    secureJsonFields: Object.fromEntries(Object.keys(settings.secureJsonData).map((k) => [k, true])),
    defaultNavUrl: defaultNav,
    latestVersion: '',
    hasUpdate: false,
    state: '',
    signature: 'unsigned',
    signatureType: '',
    signatureOrg: '',
    angularDetected: false,
    loadingStrategy: 'script',
    moduleHash: '',
  });

  const signedIn = (req: Request): HarnessUser => {
    const cookie = (req.headers.cookie ?? '')
      .split(';')
      .map((c) => c.trim())
      .find((c) => c.startsWith(`${USER_COOKIE}=`));
    return cookie ? parseUserCookie(cookie.slice(USER_COOKIE.length + 1)) : defaultUser;
  };

  /** Grafana's SignedInUser, as the proxy serialises it into X-Grafana-Context. */
  const signedInUser = (user: HarnessUser) => ({
    UserID: userId(user.login),
    UserUID: `harness-${user.login}`,
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

  const bootData = (user: HarnessUser, theme: 'light' | 'dark', origin: string) => ({
    user: {
      isSignedIn: true,
      id: userId(user.login),
      uid: `harness-${user.login}`,
      externalUserId: '',
      login: user.login,
      email: `${user.login}@example.com`,
      name: user.login,
      theme,
      lightTheme: theme === 'light',
      orgCount: 1,
      orgId: 1,
      orgName: 'Main Org.',
      orgRole: user.role,
      isGrafanaAdmin: user.grafanaAdmin === true,
      gravatarUrl: '',
      timezone: 'browser',
      weekStart: '',
      locale: 'en-US',
      language: 'en-US',
      regionalFormat: 'en-US',
      helpFlags1: 0,
      hasEditPermissionInFolders: user.role !== 'Viewer',
      authenticatedBy: 'password',
      analytics: { identifier: `harness-${user.login}` },
      permissions: {},
      fiscalYearStartMonth: 0,
    },
    settings: {
      appUrl: `${origin}/`,
      appSubUrl: '',
      appTitle: 'Grafana',
      buildInfo: { version: '12.4.2', commit: 'harness', env: 'production', edition: 'Open Source', latestVersion: '', hasUpdate: false, hideVersion: false },
      featureToggles: {},
      apps: {
        [pluginId]: {
          id: pluginId,
          path: `${pluginBase}/module.js`,
          version: String(pluginJson.info.version ?? ''),
          preload: false,
          angular: { detected: false, hideDeprecation: false },
          loadingStrategy: 'script',
          extensions: { addedLinks: [], addedComponents: [], exposedComponents: [], extensionPoints: [], addedFunctions: [] },
          dependencies: pluginJson.dependencies ?? {},
        },
      },
      datasources: {},
      panels: {},
      defaultDatasource: '',
      namespace: 'default',
      unifiedAlertingEnabled: true,
      anonymousEnabled: false,
      rbacEnabled: true,
    },
    navTree: [],
    assets: { light: '', dark: '' },
    themePaths: { light: '', dark: '' },
    harness: { pluginId, moduleUrl: `/${pluginBase}/module.js`, pages },
  });

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.get('/', (req, res) => {
    let user: HarnessUser;
    try {
      user = signedIn(req);
    } catch (error) {
      res.status(400).type('text/plain').send((error as Error).message);
      return;
    }
    const theme = req.query.theme === 'light' ? 'light' : 'dark';
    const data = bootData(user, theme, `http://${req.headers.host ?? '127.0.0.1'}`);
    res.setHeader('cache-control', 'no-store');
    res.type('html').send(`<!doctype html>
<html lang="en-US">
  <head>
    <meta charset="utf-8" />
    <base href="/" />
    <title>${pages[String(req.query.page ?? '')] ?? 'Control Room'} - Grafana plugin harness</title>
    <link rel="stylesheet" href="/harness/harness.css" />
    <style>html, body { margin: 0; min-height: 100%; }</style>
    <script>
      window.grafanaBootData = ${escapeScript(JSON.stringify(data))};
      window.__grafana_public_path__ = '/public/';
    </script>
  </head>
  <body class="theme-${theme}">
    <div id="reactRoot"></div>
    <script src="/harness/harness.js"></script>
  </body>
</html>
`);
  });

  app.get('/harness/:file', (req, res) => {
    const file = bundle.files.get(String(req.params.file));
    if (!file) {
      res.status(404).end();
      return;
    }
    res.setHeader('cache-control', 'no-store');
    res.type(file.type).send(Buffer.from(file.contents));
  });

  app.use(`/public/plugins/${pluginId}`, express.static(distDir, { fallthrough: false, etag: false, cacheControl: false }));
  // Grafana's own icons are not all in @grafana/ui's package: draw the spinner the loading states need.
  app.get(['/public/build/img/icons/unicons/spinner.svg', '/public/build/img/icons/unicons/hourglass.svg'], (_req, res) => {
    res.type('image/svg+xml').send(SPINNER_SVG);
  });
  app.use('/public/build/img/icons', express.static(iconsDir, { fallthrough: false, maxAge: '1h' }));

  app.get('/api/plugins/:pluginId/settings', (req, res) => {
    if (req.params.pluginId !== pluginId) {
      res.status(404).json({ message: 'Plugin not found, no installed plugin with that id' });
      return;
    }
    res.json(meta());
  });

  app.post('/api/plugins/:pluginId/settings', express.json({ limit: '1mb' }), (req, res) => {
    if (req.params.pluginId !== pluginId) {
      res.status(404).json({ message: 'Plugin not found, no installed plugin with that id' });
      return;
    }
    let user: HarnessUser;
    try {
      user = signedIn(req);
    } catch (error) {
      res.status(401).json({ message: (error as Error).message });
      return;
    }
    if (!hasRole(user, 'Admin')) {
      res.status(403).json({ message: `You'll need additional permissions to perform this action. Permissions needed: plugins:write` });
      return;
    }
    const body = (req.body ?? {}) as Partial<AppSettings>;
    if (typeof body.enabled === 'boolean') settings.enabled = body.enabled;
    if (typeof body.pinned === 'boolean') settings.pinned = body.pinned;
    // jsonData is replaced; secureJsonData keys are set one by one (the ones not sent are kept).
    if (body.jsonData && typeof body.jsonData === 'object') settings.jsonData = { ...body.jsonData };
    if (body.secureJsonData && typeof body.secureJsonData === 'object') {
      for (const [key, value] of Object.entries(body.secureJsonData)) settings.secureJsonData[key] = String(value);
    }
    res.json({ message: 'Plugin settings updated' });
  });

  app.all(/^\/api\/plugin-proxy\/.*/, (req, res) => proxy(req, res));

  app.use('/api', (_req, res) => {
    res.status(404).json({ message: 'Not found' });
  });
  // Missing static files (Grafana's fonts are not installed here: the browser falls back) answer quietly.
  app.use((error: unknown, _req: Request, res: Response, _next: express.NextFunction) => {
    const status = (error as { status?: number }).status ?? 500;
    if (status >= 500) console.error('plugin harness:', error);
    res.status(status).json({ message: status === 404 ? 'Not found' : (error as Error).message });
  });

  function proxy(req: Request, res: Response) {
    const url = new URL(req.originalUrl, 'http://harness');
    const [, , , id, ...restSegments] = url.pathname.split('/');
    let user: HarnessUser;
    try {
      user = signedIn(req);
    } catch (error) {
      res.status(401).json({ message: (error as Error).message });
      return;
    }
    const record: ProxyRecord = { method: req.method, path: `${url.pathname}${url.search}`, user: user.login, route: null, target: null, status: 0 };
    proxied.push(record);
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

    let matched: { route: PluginRoute; rest: string } | null = null;
    for (const route of routes) {
      if (route.method && route.method !== '*' && route.method !== req.method) continue;
      const rest = matchRoutePath(route.path, proxyPath);
      if (rest === null) continue;
      // reqRole: Viewer < Editor < Admin, and a Grafana server admin passes every role.
      if (route.reqRole && route.reqRole in RANK && !hasRole(user, route.reqRole as OrgRole)) {
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
      headers['x-grafana-context'] = JSON.stringify(signedInUser(user));
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
  }

  const server = http.createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    settings,
    proxied,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * By hand, against a running Control Room (e.g. `CONTROLROOM_API_SECRET=... npm start`):
 *   CONTROLROOM_API_URL=http://127.0.0.1:8471 CONTROLROOM_API_SECRET=... node --import tsx plugin/harness/server.ts
 * then open http://127.0.0.1:3001/?page=bulk-rating (set the harness_user cookie to change user).
 */
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const harness = await startHarness({
    apiUrl: process.env.CONTROLROOM_API_URL ?? 'http://127.0.0.1:8471',
    ...(process.env.CONTROLROOM_API_SECRET ? { apiSecret: process.env.CONTROLROOM_API_SECRET } : {}),
    port: Number(process.env.HARNESS_PORT ?? 3001),
  });
  console.log(`plugin harness on ${harness.url}/?page=bulk-rating|failover|release-freeze|config&theme=dark|light`);
  process.once('SIGINT', () => void harness.close().then(() => process.exit(0)));
}
