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
