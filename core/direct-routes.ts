import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { answerError } from './http.ts';
import type { Logger } from './logger.ts';

/**
 * A route answered from Node's `request` event, ahead of Express: for the few whose rate sets what the
 * service can take (the alert webhooks: an incident's storm arrives at thousands per second). Measured in
 * bench/receiver on 2026-12-03: passing a webhook through Express (its app, the /webhooks router, the
 * feature's router: prototypes swapped onto Node's request and response, each layer's path matched) cost
 * about a third of the event loop's time per notification, and with it the storm's p99.
 *
 * `handle` answers success itself and throws (rejects) for anything else; the error is answered as every
 * Express route's is (core/http.ts answerError: the same status and JSON, the unread body settled).
 */
export interface DirectRoute {
  readonly method: 'POST';
  /** The exact path, without a query. */
  readonly path: string;
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
}

/**
 * The server's request listener: a request whose method and path (its query dropped) are exactly a direct
 * route's goes to it; every other request goes to `fallback` (the Express app) untouched. Only the exact
 * spelling is matched, so a direct route must also be served by the app, which answers the spellings
 * Express accepts beside it (a trailing slash, another case) the same way, only slower.
 */
export function withDirectRoutes(
  routes: readonly DirectRoute[],
  fallback: RequestListener,
  logger: Logger
): RequestListener {
  const byKey = new Map<string, DirectRoute>();
  for (const route of routes) {
    const key = `${route.method} ${route.path}`;
    if (byKey.has(key)) throw new Error(`two direct routes for ${key}`);
    byKey.set(key, route);
  }
  if (byKey.size === 0) return fallback;
  return (req, res) => {
    const url = req.url ?? '';
    const query = url.indexOf('?');
    const route = byKey.get(`${req.method} ${query < 0 ? url : url.slice(0, query)}`);
    if (!route) {
      fallback(req, res);
      return;
    }
    route.handle(req, res).catch((error: unknown) => {
      try {
        answerError(error, req, res, logger);
      } catch {
        // Not even the error could be answered (a throwing logger): the caller sees the connection close,
        // rather than the process ending on an unhandled rejection.
        res.destroy();
      }
    });
  };
}
