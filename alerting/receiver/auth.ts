import { createHmac, timingSafeEqual } from 'node:crypto';
import { UserError } from '../../core/errors.ts';

export interface WebhookCredentials {
  bearerToken?: string;
  /** "user:password" */
  basicAuth?: string;
}

const sameSecret = (a: string, b: string) => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

/** Checks an Authorization header against the configured bearer token or basic credentials. */
export function checkAuthorization(header: string | undefined, credentials: WebhookCredentials, source: string): void {
  if (!credentials.bearerToken && !credentials.basicAuth) {
    throw new UserError(503, `${source} webhook credentials are not configured on this server`);
  }
  if (!header) throw new UserError(401, 'missing Authorization header (Bearer token or Basic credentials)');
  const [scheme = '', value = ''] = header.split(/\s+/, 2);
  if (scheme.toLowerCase() === 'bearer' && credentials.bearerToken && sameSecret(value, credentials.bearerToken))
    return;
  if (scheme.toLowerCase() === 'basic' && credentials.basicAuth) {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    if (sameSecret(decoded, credentials.basicAuth)) return;
  }
  throw new UserError(401, `invalid ${scheme ? `${scheme} ` : ''}credentials`);
}

/**
 * Grafana's optional webhook signature: hex HMAC-SHA256 of the raw body, or of "timestamp:body" when a
 * timestamp header is configured (then the timestamp must be within five minutes, against replays).
 */
export function checkGrafanaSignature(
  rawBody: Buffer,
  secret: string,
  signature: string | undefined,
  timestamp: string | undefined,
  timestampRequired: boolean,
  nowMs = Date.now()
): void {
  if (!signature) throw new UserError(401, 'missing X-Grafana-Alerting-Signature header');
  let signed = rawBody;
  if (timestampRequired) {
    if (!timestamp) throw new UserError(401, 'missing signature timestamp header');
    const seconds = Number(timestamp);
    if (!Number.isFinite(seconds) || Math.abs(nowMs / 1000 - seconds) > 300) {
      throw new UserError(401, 'signature timestamp is more than five minutes off');
    }
    signed = Buffer.concat([Buffer.from(`${timestamp}:`), rawBody]);
  }
  const expected = createHmac('sha256', secret).update(signed).digest('hex');
  if (!sameSecret(signature.trim().toLowerCase(), expected))
    throw new UserError(401, 'signature does not match the body');
}
