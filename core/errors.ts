/**
 * The one error a caller can act on. Domain code and routes throw it with the HTTP status it means and a
 * message written for the user (what is wrong and where); `details` carries structured facts the Grafana
 * app shows (a plan-limit refusal's allowance, an upgrade hint). core/http.ts's `errorHandler` is the only
 * place that turns it, or anything else, into a response: a UserError answers `{error, details?}` with its
 * status, every other error is logged and answered 500 without internals.
 */
export class UserError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details?: unknown
  ) {
    super(message);
    this.name = 'UserError';
  }
}

/**
 * A Postgres data exception (SQLSTATE class 22: a value out of range, malformed, or with a NUL byte): raised
 * only by a value a caller sent, so the caller's mistake, never the service's. Told apart from other
 * errors with a `code` by the severity Postgres errors carry.
 */
export function isPostgresDataException(error: unknown): boolean {
  const { code, severity } = (error ?? {}) as { code?: unknown; severity?: unknown };
  return Boolean(severity) && typeof code === 'string' && code.startsWith('22');
}
