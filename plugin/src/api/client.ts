import { config, getBackendSrv, isFetchError } from '@grafana/runtime';
import { lastValueFrom } from 'rxjs';
import { API_BASE } from '../constants';

/** A refused or failed call, with the server's own explanation when it gave one. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly details?: unknown
  ) {
    super(message);
  }
}

/** The text to show for anything a call or a handler threw. */
export const errorMessage = (error: unknown): string => (error instanceof Error ? error.message : String(error));

interface CallOptions {
  method?: 'GET' | 'POST' | 'DELETE';
  params?: Record<string, string | number | undefined>;
  data?: unknown;
  headers?: Record<string, string>;
}

/** The URL of a Control Room API path as the browser reaches it: through Grafana's plugin proxy. */
export function apiUrl(path: string, params: CallOptions['params'] = {}): string {
  const query = Object.entries(params)
    .filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
    .join('&');
  return `${API_BASE}/${path.replace(/^\//, '')}${query ? `?${query}` : ''}`;
}

function messageOf(status: number, data: unknown, fallback: string): string {
  const body = (data ?? {}) as { error?: unknown; message?: unknown };
  // Control Room answers {error}; Grafana's proxy itself answers {message} (route access denied, no route).
  const text = typeof body.error === 'string' ? body.error : typeof body.message === 'string' ? body.message : '';
  if (status === 403 && text === 'plugin proxy route access denied') {
    return 'Your Grafana role does not allow this action';
  }
  return text || fallback || `request failed (HTTP ${status})`;
}

/**
 * The same URL for a plain link (a download): unlike backendSrv, the browser does not resolve it against
 * Grafana's <base href>, so it needs Grafana's sub path (root_url) in front.
 */
export function apiLinkUrl(path: string, params: CallOptions['params'] = {}): string {
  return `${config.appSubUrl ?? ''}${apiUrl(path, params)}`;
}

/** Calls the Control Room API; resolves with the JSON body, rejects with an ApiError. */
export async function api<T>(path: string, options: CallOptions = {}): Promise<T> {
  try {
    const response = await lastValueFrom(
      getBackendSrv().fetch<T>({
        url: apiUrl(path, options.params),
        method: options.method ?? 'GET',
        data: options.data,
        headers: options.headers,
        // The pages show the error where it happened; Grafana's global toast would repeat it.
        showErrorAlert: false,
        showSuccessAlert: false,
      })
    );
    return response.data;
  } catch (error) {
    if (isFetchError(error)) {
      const details = (error.data as { details?: unknown } | undefined)?.details;
      throw new ApiError(messageOf(error.status, error.data, error.statusText ?? ''), error.status, details);
    }
    throw new ApiError(errorMessage(error), 0);
  }
}
