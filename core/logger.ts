import { pino, stdSerializers, type DestinationStream, type Logger } from 'pino';
import PinoPretty from 'pino-pretty';

export type { Logger };

const REDACTED = '[redacted]';

/** The password of a URL's user info (`postgres://user:PASSWORD@host`); passwords in URLs are percent-encoded, so they hold no `@` or `/`. */
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:/?#@]*:)[^\s@/]*@/gi;
/** Secrets passed as query parameters (`?password=…`, `&access_token=…`). */
const QUERY_SECRET =
  /([?&](?:password|sslpassword|passwd|token|access_token|api_key|apikey|secret|client_secret|key)=)[^&#\s"']*/gi;
/** Field names whose values are secrets whatever they hold. */
const SECRET_KEY =
  /^(?:password|passwd|secret|token|api_?key|authorization|cookie|private_?key|signing_?secret|client_?secret|connection_?string|database_?url)$|(?:_token|_secret|_password|private_key|api_key|signing_key)$/i;

/** Replaces the passwords embedded in URLs and the secret query parameters of a text. */
export function redactSecrets(text: string): string {
  return text.replace(URL_PASSWORD, `$1${REDACTED}@`).replace(QUERY_SECRET, `$1${REDACTED}`);
}

function redactValue(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return redactSecrets(value);
  if (value === null || typeof value !== 'object' || depth > 6) return value;
  if (value instanceof Error) return redactValue(stdSerializers.err(value), depth + 1);
  if (Array.isArray(value)) return value.map((v) => redactValue(v, depth + 1));
  if (value instanceof Date || Buffer.isBuffer(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value))
    out[key] = SECRET_KEY.test(key) && v != null && v !== '' ? REDACTED : redactValue(v, depth + 1);
  return out;
}

/**
 * The service's logger (pino: JSON lines, or human-readable ones on a terminal, see LOG_FORMAT). No secret reaches a log line: every logged field and message
 * passes through redaction, so a database URL is logged without its password (`postgres://user:[redacted]@…`),
 * `?password=`/`?token=` query parameters are blanked, and fields named like secrets (password, token,
 * authorization, *_secret, *_key, database_url, …) are replaced whole. Errors are serialised first, so
 * their messages and stacks are redacted too.
 */
export function createLogger(
  level: string = process.env.LOG_LEVEL ?? 'info',
  destination?: DestinationStream,
  format: string = process.env.LOG_FORMAT ?? 'auto'
): Logger {
  const options = {
    level,
    base: { service: 'controlroom' },
    serializers: { err: (error: unknown) => redactValue(error, 0) },
    formatters: { log: (object: Record<string, unknown>) => redactValue(object, 0) as Record<string, unknown> },
    hooks: {
      logMethod(this: Logger, args: Parameters<Logger['info']>, method: (...a: unknown[]) => void) {
        method.apply(
          this,
          args.map((a) => (typeof a === 'string' ? redactSecrets(a) : a))
        );
      },
    },
  };
  if (destination) return pino(options, destination);
  // A person at a terminal reads lines, a log shipper reads JSON (LOG_FORMAT=json|pretty overrides). The
  // pretty stream formats the same redacted record, synchronously, so a line logged just before
  // process.exit is not lost.
  if (format === 'pretty' || (format === 'auto' && process.stdout.isTTY)) {
    return pino(
      options,
      PinoPretty({
        sync: true,
        singleLine: true,
        colorize: Boolean(process.stdout.isTTY),
        translateTime: 'SYS:HH:MM:ss',
        ignore: 'pid,hostname,service',
      })
    );
  }
  return pino(options);
}
