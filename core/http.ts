import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { Logger } from './logger.ts';

/** An error that maps to an HTTP status and a message the caller can act on. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

export const notFound: RequestHandler = (req, _res, next) => {
  next(new HttpError(404, `no route for ${req.method} ${req.originalUrl.split('?')[0]}`));
};

/** JSON errors everywhere: 4xx carry their message, 5xx are logged and answered without internals. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, _next) => {
    if (error instanceof HttpError) {
      res.status(error.status).json({ error: error.message, ...(error.details ? { details: error.details } : {}) });
      return;
    }
    // express.json() and friends raise errors with a status and expose=true for bad bodies.
    const status = (error as { status?: number }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      res.status(status).json({ error: (error as Error).message });
      return;
    }
    logger.error({ err: error, path: req.path }, 'request failed');
    res.status(500).json({ error: 'internal error' });
  };
}
