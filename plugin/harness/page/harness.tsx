/**
 * The browser side of the plugin harness: a page that stands in for Grafana's frontend around the BUILT
 * plugin (plugin/dist/module.js), with the real @grafana/* packages.
 *
 * Like Grafana it:
 * - reads its boot data from `window.grafanaBootData` (inlined by server.ts before this bundle runs, so
 *   @grafana/runtime's `config` sees it when it is first evaluated);
 * - initialises i18n, sets the BackendSrv (window.fetch, with Grafana's request/response/error rules) and
 *   the PluginPage shell;
 * - loads the plugin's AMD module with a global `define`, handing it the very module instances this page
 *   renders with (React, react-router, @grafana/ui...) so that contexts match;
 * - loads the app's settings from /api/plugins/<id>/settings as its meta, and renders the root page inside
 *   a router at /a/<id>/<page>, or the config page.
 *
 * Query: ?page=bulk-rating|failover|release-freeze|pricing|config and ?theme=light|dark.
 */
import * as emotionCss from '@emotion/css';
import * as grafanaData from '@grafana/data';
import { type AppPlugin, type AppPluginMeta, type AppRootProps, createTheme, type GrafanaTheme2, ThemeContext } from '@grafana/data';
import * as grafanaI18n from '@grafana/i18n';
import * as grafanaRuntime from '@grafana/runtime';
import type { BackendSrv, BackendSrvRequest, FetchError, FetchResponse, PluginPageProps } from '@grafana/runtime';
import * as grafanaUi from '@grafana/ui';
// Grafana core reaches these through its source build; the harness bundler maps them to the published files.
import { initializeI18n } from 'grafana-internal:i18n';
import { setPluginPage } from 'grafana-internal:runtime/PluginPage';
import { Alert, GlobalStyles, Icon, LoadingPlaceholder, PortalContainer, useStyles2 } from '@grafana/ui';
import * as React from 'react';
import * as ReactDOM from 'react-dom';
import { createRoot } from 'react-dom/client';
import * as jsxRuntime from 'react/jsx-runtime';
import * as reactRouter from 'react-router';
import * as rxjs from 'rxjs';
import { lastValueFrom, Observable } from 'rxjs';

const { css } = emotionCss;
const { MemoryRouter, Route, Routes } = reactRouter;

interface HarnessBoot {
  pluginId: string;
  moduleUrl: string;
  pages: Record<string, string>;
}

declare global {
  interface Window {
    grafanaBootData: { settings: Record<string, unknown>; user: Record<string, unknown>; harness: HarnessBoot };
    __grafana_public_path__?: string;
    define?: AmdDefine;
    /** For tests: 'ready' once the page rendered, or the error that stopped it. */
    __harness?: { state: 'loading' | 'ready' | 'error'; error?: string };
    /** For tests: the React the page (and so the plugin) renders with, as bundled for the Grafana runtime. */
    __harnessReact?: string;
  }
}

type AmdDefine = ((...args: unknown[]) => void) & { amd: object };

const boot = window.grafanaBootData.harness;
const query = new URLSearchParams(window.location.search);
const page = query.get('page') ?? 'bulk-rating';
const mode = query.get('theme') === 'light' ? 'light' : 'dark';
window.__harness = { state: 'loading' };
window.__harnessReact = React.version;

// ---------------------------------------------------------------------------------------------------
// BackendSrv: Grafana's rules (public/app/core/utils/fetch.ts and backend_srv.ts) on window.fetch.

const orgId = Number(window.grafanaBootData.user.orgId ?? 1);

/** Grafana's parseRequestOptions: a local URL loses its leading and trailing slash (it resolves against
 * <base href="{appSubUrl}/">) and carries the org id. */
function parseRequestOptions(options: BackendSrvRequest): BackendSrvRequest {
  if (/^http/.test(options.url)) {
    return options;
  }
  return {
    ...options,
    url: options.url.replace(/^\//, '').replace(/\/$/, ''),
    headers: { ...options.headers, 'X-Grafana-Org-Id': orgId },
  };
}

function parseHeaders(options: BackendSrvRequest): Headers {
  const headers = new Headers(options.headers ?? {});
  const method = (options.method ?? '').toLowerCase();
  // POST/PUT/PATCH without a content type are JSON; every request accepts JSON first.
  if (['post', 'put', 'patch'].includes(method) && !headers.get('content-type')) {
    headers.set('content-type', 'application/json');
  }
  if (!headers.get('accept')) {
    headers.set('accept', 'application/json, text/plain, */*');
  }
  return headers;
}

function isJsonContentType(headers: Headers): boolean {
  const type = headers.get('content-type')?.toLowerCase();
  return type === 'application/json' || type === 'application/merge-patch+json';
}

/** Strings and Blobs (Files) go as they are; other objects as JSON when the content type says so. */
function parseBody(options: BackendSrvRequest, isJson: boolean): BodyInit | undefined {
  const data: unknown = options.data;
  if (!data || typeof data === 'string') {
    return (data as string | undefined) || undefined;
  }
  if (data instanceof Blob) {
    return data;
  }
  return isJson ? JSON.stringify(data) : new URLSearchParams(data as Record<string, string>);
}

function parseUrl(options: BackendSrvRequest): string {
  const params = Object.entries(options.params ?? {}).filter(([, v]) => v !== undefined && !(v !== null && (v as { length?: number }).length === 0));
  const search = params
    .flatMap(([k, v]) => (Array.isArray(v) ? v.map((x) => [k, x]) : [[k, v]]))
    .map(([k, v]) => `${encodeURIComponent(String(k))}=${encodeURIComponent(String(v))}`)
    .join('&');
  return search ? `${options.url}?${search}` : options.url;
}

async function parseResponseBody(response: Response, responseType: BackendSrvRequest['responseType']): Promise<unknown> {
  switch (responseType) {
    case 'arraybuffer':
      return response.arrayBuffer();
    case 'blob':
      return response.blob();
    case 'text':
      return response.text();
    case 'json':
      return response.headers.get('content-length') === '0' ? {} : response.json();
    default: {
      // Grafana tries JSON first whatever the content type says, and falls back to the text.
      const text = await response.text();
      try {
        return JSON.parse(text);
      } catch {
        return text;
      }
    }
  }
}

/** Grafana's processRequestError: a string body becomes {message}, and {error} is copied to message. */
function toFetchError(response: FetchResponse<unknown>): FetchError<unknown> {
  let data = response.data ?? { message: 'Unexpected error' };
  if (typeof data === 'string') {
    data = { message: data, error: response.statusText, response: data };
  }
  const record = data as { message?: unknown; error?: unknown };
  if (record && typeof record === 'object' && !record.message && typeof record.error === 'string') {
    record.message = record.error;
  }
  return { ...response, data, isHandled: false };
}

async function send<T>(requested: BackendSrvRequest, signal: AbortSignal): Promise<FetchResponse<T>> {
  const options = parseRequestOptions(requested);
  const headers = parseHeaders(options);
  const init: RequestInit = {
    method: options.method ?? 'GET',
    headers,
    body: parseBody(options, isJsonContentType(headers)),
    credentials: options.credentials ?? (options.withCredentials ? 'include' : 'same-origin'),
    signal: options.abortSignal ?? signal,
  };
  let response: Response;
  try {
    response = await window.fetch(parseUrl(options), init);
  } catch (error) {
    // Like Grafana: a network failure is not a FetchError (it has no status).
    const failure = error instanceof Error ? error : new Error(String(error));
    Object.assign(failure, { data: { message: 'Unexpected error' } });
    throw failure;
  }
  const fetchResponse: FetchResponse<T> = {
    data: (await parseResponseBody(response, options.responseType)) as T,
    status: response.status,
    statusText: response.statusText,
    ok: response.ok,
    headers: response.headers,
    redirected: response.redirected,
    type: response.type,
    url: response.url,
    config: options,
  };
  if (!response.ok) {
    throw toFetchError(fetchResponse);
  }
  return fetchResponse;
}

const backendSrv = {
  fetch<T>(options: BackendSrvRequest): Observable<FetchResponse<T>> {
    return new Observable<FetchResponse<T>>((subscriber) => {
      const controller = new AbortController();
      send<T>(options, controller.signal).then(
        (response) => {
          subscriber.next(response);
          subscriber.complete();
        },
        (error: unknown) => {
          if (controller.signal.aborted) {
            return;
          }
          if (options.showErrorAlert !== false) {
            console.error('request failed', options.url, error);
          }
          subscriber.error(error);
        }
      );
      return () => controller.abort();
    });
  },
  async request<T>(options: BackendSrvRequest): Promise<T> {
    return (await lastValueFrom(backendSrv.fetch<T>(options))).data;
  },
  async datasourceRequest<T>(options: BackendSrvRequest): Promise<FetchResponse<T>> {
    return lastValueFrom(backendSrv.fetch<T>(options));
  },
  get<T>(url: string, params?: unknown, requestId?: string, options: Partial<BackendSrvRequest> = {}): Promise<T> {
    return backendSrv.request<T>({ ...options, url, method: 'GET', params: params as Record<string, unknown>, requestId });
  },
  delete<T>(url: string, data?: unknown, options: Partial<BackendSrvRequest> = {}): Promise<T> {
    return backendSrv.request<T>({ ...options, url, method: 'DELETE', data });
  },
  post<T>(url: string, data?: unknown, options: Partial<BackendSrvRequest> = {}): Promise<T> {
    return backendSrv.request<T>({ ...options, url, method: 'POST', data });
  },
  patch<T>(url: string, data?: unknown, options: Partial<BackendSrvRequest> = {}): Promise<T> {
    return backendSrv.request<T>({ ...options, url, method: 'PATCH', data });
  },
  put<T>(url: string, data?: unknown, options: Partial<BackendSrvRequest> = {}): Promise<T> {
    return backendSrv.request<T>({ ...options, url, method: 'PUT', data });
  },
  chunked(): Observable<FetchResponse<Uint8Array | undefined>> {
    throw new Error('chunked requests are not emulated by the harness');
  },
};

// ---------------------------------------------------------------------------------------------------
// PluginPage: Grafana's page chrome, reduced to the breadcrumb bar, the title and the content area.

const pageTitle = page === 'config' ? 'Configuration' : (boot.pages[page] ?? page);

const getPageStyles = (theme: GrafanaTheme2) => ({
  topbar: css({
    display: 'flex',
    alignItems: 'center',
    gap: theme.spacing(1),
    height: 40,
    padding: theme.spacing(0, 2),
    background: theme.colors.background.primary,
    borderBottom: `1px solid ${theme.colors.border.weak}`,
    color: theme.colors.text.secondary,
    fontSize: theme.typography.bodySmall.fontSize,
  }),
  crumbCurrent: css({ color: theme.colors.text.primary }),
  page: css({ padding: theme.spacing(2, 3, 4), background: theme.colors.background.canvas, minHeight: 'calc(100vh - 40px)' }),
  header: css({ marginBottom: theme.spacing(3) }),
  title: css({ margin: 0, fontSize: theme.typography.h2.fontSize, fontWeight: theme.typography.h2.fontWeight }),
  subTitle: css({ color: theme.colors.text.secondary, marginTop: theme.spacing(0.5) }),
});

function HarnessPluginPage({ children, pageNav, subTitle, actions, renderTitle }: PluginPageProps) {
  const styles = useStyles2(getPageStyles);
  const title = pageNav?.text ?? pageTitle;
  return (
    <div>
      <div className={styles.topbar} aria-label="Breadcrumbs">
        <Icon name="grafana" size="lg" />
        <span>Home</span>
        <Icon name="angle-right" />
        <span>Apps</span>
        <Icon name="angle-right" />
        <span>Control Room</span>
        <Icon name="angle-right" />
        <span className={styles.crumbCurrent}>{title}</span>
      </div>
      <div className={styles.page}>
        <div className={styles.header}>
          {renderTitle ? renderTitle(title) : <h1 className={styles.title}>{title}</h1>}
          {subTitle && <div className={styles.subTitle}>{subTitle}</div>}
          {actions}
        </div>
        {children}
      </div>
    </div>
  );
}

// ---------------------------------------------------------------------------------------------------
// The AMD loader: Grafana's SystemJS hands a plugin the modules it shares by name.

const shared: Record<string, unknown> = {
  react: React,
  'react-dom': ReactDOM,
  'react/jsx-runtime': jsxRuntime,
  '@grafana/data': grafanaData,
  '@grafana/ui': grafanaUi,
  '@grafana/runtime': grafanaRuntime,
  '@grafana/i18n': grafanaI18n,
  '@emotion/css': emotionCss,
  'react-router': reactRouter,
  rxjs,
  module: { uri: boot.moduleUrl },
};

function loadAmdModule(url: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let defined: Record<string, unknown> | undefined;
    let failure: unknown;
    const define = ((...args: unknown[]) => {
      const factory = args.find((a) => typeof a === 'function') as ((...deps: unknown[]) => unknown) | undefined;
      const deps = (args.find((a) => Array.isArray(a)) as string[] | undefined) ?? [];
      try {
        const exports: Record<string, unknown> = {};
        const resolved = deps.map((name) => {
          if (name === 'exports') {
            return exports;
          }
          if (!(name in shared)) {
            throw new Error(`the plugin needs '${name}', which the harness (and Grafana) does not share`);
          }
          return shared[name];
        });
        const result = factory ? factory(...resolved) : args.find((a) => typeof a === 'object' && !Array.isArray(a));
        defined = (result as Record<string, unknown> | undefined) ?? exports;
      } catch (error) {
        failure = error;
      }
    }) as AmdDefine;
    define.amd = {};
    window.define = define;
    const script = document.createElement('script');
    script.src = url;
    script.onload = () => {
      delete window.define;
      if (failure !== undefined) {
        reject(failure);
      } else if (!defined) {
        reject(new Error(`${url} did not call define()`));
      } else {
        resolve(defined);
      }
    };
    script.onerror = () => {
      delete window.define;
      reject(new Error(`could not load ${url}`));
    };
    document.head.appendChild(script);
  });
}

// ---------------------------------------------------------------------------------------------------

function Shell({ theme, children }: { theme: GrafanaTheme2; children: React.ReactNode }) {
  return (
    <ThemeContext.Provider value={theme}>
      <GlobalStyles />
      {children}
      <PortalContainer />
    </ThemeContext.Provider>
  );
}

function Failure({ error }: { error: unknown }) {
  return (
    <HarnessPluginPage>
      <Alert severity="error" title="The harness could not load the plugin">
        <pre data-testid="harness-error">{error instanceof Error ? (error.stack ?? error.message) : String(error)}</pre>
      </Alert>
    </HarnessPluginPage>
  );
}

async function main() {
  const theme = createTheme({ colors: { mode } });
  document.body.classList.add(`theme-${mode}`);
  const root = createRoot(document.getElementById('reactRoot')!);
  const render = (node: React.ReactNode) => root.render(<Shell theme={theme}>{node}</Shell>);
  render(<LoadingPlaceholder text="Loading plugin..." />);
  try {
    await initializeI18n({ language: 'en-US', ns: ['grafana'] }, 'en-US');
    grafanaRuntime.setBackendSrv(backendSrv as unknown as BackendSrv);
    setPluginPage(HarnessPluginPage);

    const meta = await backendSrv.get<AppPluginMeta>(`/api/plugins/${boot.pluginId}/settings`);
    const exports = await loadAmdModule(boot.moduleUrl);
    const plugin = exports.plugin as AppPlugin | undefined;
    if (!plugin || typeof plugin.init !== 'function') {
      throw new Error(`${boot.moduleUrl} exports no AppPlugin named 'plugin'`);
    }
    // What Grafana's importAppPlugin does.
    plugin.init(meta);
    plugin.meta = meta;

    if (page === 'config') {
      const ConfigBody = plugin.configPages?.[0]?.body;
      if (!ConfigBody) {
        throw new Error('the plugin has no config page');
      }
      render(
        <HarnessPluginPage>
          <ConfigBody plugin={plugin} query={{}} />
        </HarnessPluginPage>
      );
    } else {
      const Root = plugin.root as React.ComponentType<AppRootProps> | undefined;
      if (!Root) {
        throw new Error('the plugin has no root page');
      }
      const basename = `/a/${boot.pluginId}`;
      const path = `${basename}/${page}`;
      render(
        <MemoryRouter initialEntries={[path]}>
          <Routes>
            <Route path={`${basename}/*`} element={<Root meta={meta} basename={basename} path={path} query={{}} onNavChanged={() => {}} />} />
          </Routes>
        </MemoryRouter>
      );
    }
    window.__harness = { state: 'ready' };
  } catch (error) {
    console.error(error);
    window.__harness = { state: 'error', error: error instanceof Error ? error.message : String(error) };
    render(<Failure error={error} />);
  }
}

void main();
