import { OrgRole } from '@grafana/data';
import { BackendSrv, BackendSrvRequest, config, FetchResponse, setBackendSrv } from '@grafana/runtime';
import { Observable } from 'rxjs';

export interface Reply {
  status?: number;
  data?: unknown;
}

export interface RecordedCall {
  url: string;
  method: string;
  data: unknown;
  headers: Record<string, string>;
}

type Handler = (call: RecordedCall) => Reply | Promise<Reply>;

/**
 * Installs a BackendSrv whose fetch answers from `handler` and records every call, so component tests
 * run the real api() client and @grafana/runtime error handling (isFetchError) unchanged.
 */
export function installBackend(handler: Handler): RecordedCall[] {
  const calls: RecordedCall[] = [];
  const fetch = <T>(options: BackendSrvRequest) =>
    new Observable<FetchResponse<T>>((subscriber) => {
      const call: RecordedCall = {
        url: options.url,
        method: options.method ?? 'GET',
        data: options.data,
        headers: options.headers ?? {},
      };
      calls.push(call);
      Promise.resolve(handler(call)).then(
        ({ status = 200, data = {} }) => {
          if (status >= 400) {
            subscriber.error({ status, statusText: `HTTP ${status}`, data, config: options });
            return;
          }
          subscriber.next({
            data: data as T,
            status,
            statusText: 'OK',
            ok: true,
            headers: new Headers(),
            redirected: false,
            type: 'basic',
            url: options.url,
            config: options,
          });
          subscriber.complete();
        },
        (e) => subscriber.error(e)
      );
    });
  setBackendSrv({ fetch } as unknown as BackendSrv);
  return calls;
}

/** Signs in a user with this org role and RBAC permissions (what Grafana's boot data says about the user). */
export function signInAs(
  orgRole: 'Viewer' | 'Editor' | 'Admin',
  isGrafanaAdmin = false,
  permissions: Record<string, boolean> = {}
) {
  config.bootData.user = {
    ...config.bootData.user,
    login: `${orgRole.toLowerCase()}-user`,
    orgRole: OrgRole[orgRole],
    isGrafanaAdmin,
    permissions,
  };
}

/** The path after the plugin proxy prefix, without the query. */
export const pathOf = (call: RecordedCall) => call.url.replace(/^\/api\/plugin-proxy\/[^/]+\//, '').split('?')[0];
export const queryOf = (call: RecordedCall) => new URLSearchParams(call.url.split('?')[1] ?? '');
