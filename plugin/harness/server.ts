/**
 * A stand-in for the parts of Grafana the Control Room app plugin touches, so the BUILT plugin
 * (plugin/dist) can be driven in a real browser against the real Control Room API:
 *
 * - `/`                      the harness page (page/harness.tsx, bundled by bundle.ts), with Grafana's
 *                            boot data for the signed-in user inlined before it; `?page=` and `?theme=`
 * - `/public/plugins/<id>/`  plugin/dist, where Grafana serves a plugin's files
 * - `/public/build/img/icons/` @grafana/ui's icons, where Grafana serves them
 * - `/api/plugins/<id>/settings`  GET (meta, without secure values) and POST (Admin) the app's settings, in memory
 * - `/api/plugin-proxy/<id>/*`    Grafana's app plugin proxy, driven by dist/plugin.json "routes" (proxy.ts),
 *                                  forwarding a signed ID token for the user in X-Grafana-Id
 * - `/api/signing-keys/keys`, `/api/org/users`, `/api/access-control/users/permissions/search`
 *                                  what Control Room's grafana-id mode asks Grafana (testing/grafana-identity.ts):
 *                                  point GRAFANA_URL at the harness and use `harness.identity.serviceAccountToken`
 *
 * The signed-in user comes from the `harness_user` cookie: `<login>:<Viewer|Editor|Admin>[:grafana-admin]`.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import express, { type Request, type Response } from 'express';
import { GrafanaIdentity, type PluginRole } from '../../testing/grafana-identity.ts';
import { bundlePage, GRAFANA_RUNTIMES, PLUGIN_DIR, runtimeVersion, type GrafanaRuntime } from './bundle.ts';
import { hasRole, isOrgRole, pluginProxyHandler, pluginRoutes, type AppSettings, type HarnessUser, type PluginRoute, type ProxyRecord } from './proxy.ts';

export { bundlePage, GRAFANA_RUNTIMES, PLUGIN_DIR, runtimeVersion, type GrafanaRuntime, type PageBundle } from './bundle.ts';
export { interpolate, joinUrlFragments, matchRoutePath, type AppSettings, type HarnessUser, type OrgRole, type PluginRoute, type ProxyRecord } from './proxy.ts';

export const DIST_DIR = path.join(PLUGIN_DIR, 'dist');
export const USER_COOKIE = 'harness_user';

export interface Harness {
  url: string;
  /** The harness as Grafana's identity provider: signing keys, users and their roles, the service-account token. */
  identity: GrafanaIdentity;
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
  /** The Grafana the page stands for: the plugin's own @grafana/* (default) or the oldest grafanaDependency claims. */
  grafana?: GrafanaRuntime;
}

/** The cookie value that signs `user` in. */
export const userCookie = (user: HarnessUser): string => `${user.login}:${user.role}${user.grafanaAdmin ? ':grafana-admin' : ''}`;

export function parseUserCookie(value: string): HarnessUser {
  const [login, role, flag, ...extra] = decodeURIComponent(value).split(':');
  if (!login || !role || !isOrgRole(role) || extra.length > 0 || (flag !== undefined && flag !== 'grafana-admin')) {
    throw new Error(`${USER_COOKIE} must be <login>:<Viewer|Editor|Admin>[:grafana-admin], not '${value}'`);
  }
  return { login, role, grafanaAdmin: flag === 'grafana-admin' };
}

/** dist/plugin.json, the parts the harness reads. */
interface PluginJson {
  id: string;
  name: string;
  type: string;
  info: Record<string, unknown> & { version?: string; logos?: { small?: string; large?: string } };
  includes?: Array<{ type: string; name: string; path?: string; role?: string; addToNav?: boolean; defaultNav?: boolean }>;
  dependencies?: Record<string, unknown>;
  routes?: PluginRoute[];
  roles?: PluginRole[];
}

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
  const routes = pluginRoutes(pluginJson);
  const require = createRequire(import.meta.url);
  const runtime = options.grafana ?? GRAFANA_RUNTIMES.current;
  const iconsDir = path.join(path.dirname(require.resolve('@grafana/ui/package.json', { paths: [runtime.dir] })), 'dist/public/img/icons');
  const bundle = await bundlePage(runtime);
  /** The Grafana release the boot data reports: the runtime packages' own. */
  const grafanaVersion = runtimeVersion(runtime, '@grafana/runtime');

  const settings: AppSettings = {
    enabled: true,
    pinned: true,
    jsonData: options.apiUrl !== undefined ? { apiUrl: options.apiUrl } : {},
    secureJsonData: options.apiSecret !== undefined ? { apiSecret: options.apiSecret } : {},
  };
  const defaultUser = options.defaultUser ?? { login: 'admin', role: 'Admin', grafanaAdmin: true };
  const proxied: ProxyRecord[] = [];
  const identity = await GrafanaIdentity.create({ pluginRoles: pluginJson.roles ?? null });
  /** Grafana's user for a signed-in harness user; the cookie decides the org role, the id and uid stay. */
  const grafanaUser = (user: HarnessUser) => {
    const known = identity.users.get(user.login);
    return identity.addUser({ login: user.login, role: user.role, grafanaAdmin: user.grafanaAdmin === true, ...(known ? { id: known.id, uid: known.uid } : {}) });
  };
  grafanaUser(defaultUser);

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
    const user = cookie ? parseUserCookie(cookie.slice(USER_COOKIE.length + 1)) : defaultUser;
    grafanaUser(user);
    return user;
  };

  const bootData = (user: HarnessUser, theme: 'light' | 'dark', origin: string) => ({
    user: {
      isSignedIn: true,
      id: identity.user(user.login).id,
      uid: identity.user(user.login).uid,
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
      // Grafana's boot data lists the user's RBAC actions (contextSrv.hasPermission reads them).
      permissions: Object.fromEntries(identity.actionsOf(identity.user(user.login)).map((action) => [action, true])),
      fiscalYearStartMonth: 0,
    },
    settings: {
      appUrl: `${origin}/`,
      appSubUrl: '',
      appTitle: 'Grafana',
      buildInfo: { version: grafanaVersion, commit: 'harness', env: 'production', edition: 'Open Source', latestVersion: '', hasUpdate: false, hideVersion: false },
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

  app.all(
    /^\/api\/plugin-proxy\/.*/,
    pluginProxyHandler({ pluginId, routes, settings, identity, userOf: signedIn, recordRequest: (record) => proxied.push(record) }),
  );
  app.use((req, res, next) => {
    if (!identity.handle(req, res)) next();
  });

  app.use('/api', (_req, res) => {
    res.status(404).json({ message: 'Not found' });
  });
  // Missing static files (Grafana's fonts are not installed here: the browser falls back) answer quietly.
  app.use((error: unknown, _req: Request, res: Response, _next: express.NextFunction) => {
    const status = (error as { status?: number }).status ?? 500;
    if (status >= 500) console.error('plugin harness:', error);
    res.status(status).json({ message: status === 404 ? 'Not found' : (error as Error).message });
  });

  const server = http.createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  // Grafana signs with iss = its root_url, which ends in '/'.
  identity.issuer = `http://127.0.0.1:${port}/`;
  return {
    url: `http://127.0.0.1:${port}`,
    identity,
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
 * By hand, against a running Control Room (e.g. `CONTROLROOM_AUTH=shared-secret CONTROLROOM_API_SECRET=... npm start`):
 *   CONTROLROOM_API_URL=http://127.0.0.1:8471 CONTROLROOM_API_SECRET=... node --import tsx plugin/harness/server.ts
 * then open http://127.0.0.1:3001/?page=bulk-rating (set the harness_user cookie to change user).
 */
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const harness = await startHarness({
    apiUrl: process.env.CONTROLROOM_API_URL ?? 'http://127.0.0.1:8471',
    ...(process.env.CONTROLROOM_API_SECRET ? { apiSecret: process.env.CONTROLROOM_API_SECRET } : {}),
    port: Number(process.env.HARNESS_PORT ?? 3001),
  });
  console.log(`plugin harness on ${harness.url}/?page=bulk-rating|failover|release-freeze|pricing|config&theme=dark|light`);
  process.once('SIGINT', () => void harness.close().then(() => process.exit(0)));
}
