import { isUtf8 } from 'node:buffer';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ErrorRequestHandler, Request, RequestHandler } from 'express';
import { oldNamesRegistry } from '@controlroom/contract';
import type { z } from 'zod';
import { isPostgresDataException, UserError } from './errors.ts';
import type { Logger } from './logger.ts';

export const notFound: RequestHandler = (req, _res, next) => {
  next(new UserError(404, `no route for ${req.method} ${req.originalUrl.split('?')[0]}`));
};

// ---------------------------------------------------------------------------------------------------
// Validation messages. Every route validates with zod through `parseInput`, so a caller reads the API's
// own sentences naming the field ("reason is required", "steps[2] must be at most 100"), never zod's
// defaults ("Invalid input: expected string, received undefined").
// ---------------------------------------------------------------------------------------------------

const TYPE_NAMES: Record<string, string> = {
  string: 'text',
  number: 'a number',
  int: 'a whole number',
  bigint: 'a whole number',
  boolean: 'true or false',
  object: 'an object',
  array: 'a list',
  date: 'a date (ISO 8601, e.g. 2026-12-01T10:00:00Z)',
  record: 'an object',
  tuple: 'a list',
  null: 'null',
};

const listOf = (values: readonly unknown[]) => values.map((v) => JSON.stringify(v)).join(', ');
const plural = (n: number | bigint, one: string, many: string) => `${n} ${Number(n) === 1 ? one : many}`;

/**
 * The predicate for one zod issue ("is required", "must be at most 100"). Used as the per-parse error
 * map, so messages a schema sets itself (`.min(3, 'must be at least 3 characters')`) take precedence.
 */
export const apiErrorMap = (issue: z.core.$ZodRawIssue): string => {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'is required';
      return `must be ${TYPE_NAMES[issue.expected] ?? issue.expected}`;
    case 'too_small': {
      const n = issue.minimum;
      if (issue.origin === 'string')
        return Number(n) <= 1 ? 'must not be empty' : `must be at least ${plural(n, 'character', 'characters')}`;
      if (issue.origin === 'array' || issue.origin === 'set')
        return Number(n) <= 1 ? 'must not be empty' : `must have at least ${plural(n, 'item', 'items')}`;
      return issue.inclusive === false ? `must be greater than ${n}` : `must be at least ${n}`;
    }
    case 'too_big': {
      const n = issue.maximum;
      if (issue.origin === 'string') return `must be at most ${plural(n, 'character', 'characters')}`;
      if (issue.origin === 'array' || issue.origin === 'set') return `must have at most ${plural(n, 'item', 'items')}`;
      return issue.inclusive === false ? `must be less than ${n}` : `must be at most ${n}`;
    }
    case 'invalid_value':
      return issue.values.length === 1 ? `must be ${listOf(issue.values)}` : `must be one of ${listOf(issue.values)}`;
    case 'unrecognized_keys':
      return `has ${issue.keys.length === 1 ? 'an unknown field' : 'unknown fields'} ${issue.keys.map((k) => `'${k}'`).join(', ')}`;
    case 'invalid_format':
      return issue.format === 'regex' ? 'is not in the expected format' : `must be a valid ${issue.format}`;
    case 'not_multiple_of':
      return `must be a multiple of ${issue.divisor}`;
    case 'invalid_union':
      return 'does not match any accepted form';
    case 'invalid_key':
      return 'has an invalid key';
    case 'invalid_element':
      return 'has an invalid value';
    default:
      return 'is invalid';
  }
};

/** "alerts[0].labels", or "the body" for the root. */
function fieldName(path: readonly PropertyKey[]): string {
  if (path.length === 0) return 'the body';
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`)).join('');
}

// A message that is a predicate ("must be ...", "is required") reads as a sentence after the field name,
// a message that already names the field ("steps must increase") stands alone, and any other message a
// schema sets ("no region named ...") follows the field after a colon.
const PREDICATE = /^(is|are|must|has|have|needs?|cannot|should|may)\b/;

/** One issue as the API's sentence: "reason is required", "weights.us-east-1 must be at most 100". */
export function describeIssue(issue: { path: readonly PropertyKey[]; message: string }): string {
  const field = fieldName(issue.path);
  const last = issue.path.length > 0 ? String(issue.path[issue.path.length - 1]) : null;
  if (PREDICATE.test(issue.message)) return `${field} ${issue.message}`;
  if (last !== null && issue.message.startsWith(`${last} `))
    return issue.path.length === 1 ? issue.message : `${field}${issue.message.slice(last.length)}`;
  return `${field}: ${issue.message}`;
}

/** All issues as one line of the API's sentences: "reason is required; weights.us-east-1 must be at most 100". */
export function describeZodIssues(error: z.ZodError): string {
  return error.issues.map(describeIssue).join('; ');
}

/**
 * Validates `input` with `schema` (a contract schema, usually); a 400 "invalid <what>: <sentences>" when it
 * does not fit. Where the schema accepts old snake_case names (`acceptingOldNames`), a message names the
 * field as the caller spelled it ("company_id must be a UUID" to a caller that sent company_id).
 */
export function parseInput<T>(schema: z.ZodType<T>, input: unknown, what = 'request'): T {
  const result = schema.safeParse(input, { error: apiErrorMap });
  if (result.success) return result.data;
  const spelled = callerSpelling(schema, input);
  const issues = result.error.issues.map((issue) => {
    const first = issue.path[0];
    const asSent = typeof first === 'string' ? spelled.get(first) : undefined;
    return asSent ? { ...issue, path: [asSent, ...issue.path.slice(1)] } : issue;
  });
  throw new UserError(400, `invalid ${what}: ${issues.map(describeIssue).join('; ')}`);
}

/** Current name -> the old name the caller used instead, for the old names `schema` accepts. */
function callerSpelling(schema: z.ZodType, input: unknown): Map<string, string> {
  const oldNames = oldNamesRegistry.get(schema)?.oldNames ?? {};
  const spelled = new Map<string, string>();
  if (typeof input !== 'object' || input === null) return spelled;
  for (const [old, current] of Object.entries(oldNames))
    if (Object.hasOwn(input, old) && !Object.hasOwn(input, current)) spelled.set(current, old);
  return spelled;
}

// ---------------------------------------------------------------------------------------------------
// Request bodies.
// ---------------------------------------------------------------------------------------------------

// The control characters are the point: they are escaped so that text stays printable and jsonb-safe.
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTERS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g;

/**
 * Text a caller sent, made safe to store or echo: lone surrogates become U+FFFD and control characters
 * (NUL included, which Postgres text and jsonb refuse) are written as \uXXXX.
 */
export const safeText = (text: string) =>
  text
    .replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd')
    .replace(CONTROL_CHARACTERS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

/** The media type of the request ("text/csv"), lower case, without parameters; '' when absent. */
export const mediaTypeOf = (req: Request) => (req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();

/**
 * Refuses a body whose declared charset is not UTF-8 (415): everything Control Room reads is decoded as
 * UTF-8, and decoding Latin-1 as UTF-8 would silently corrupt names rather than fail.
 */
export function requireUtf8Charset(req: Request): void {
  const match = /;\s*charset\s*=\s*"?([^";\s]*)"?/i.exec(req.header('content-type') ?? '');
  const charset = match?.[1]?.toLowerCase();
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8' && charset !== 'us-ascii') {
    throw new UserError(415, `charset '${match![1]}' is not supported: send the body as UTF-8`);
  }
}

/**
 * Reads a request body of at most `maxBytes` (413 past it, from the declared Content-Length before a
 * byte is read, or while it streams). The request is never destroyed here: on refusal the error handler
 * decides how much of the rest to read off (see `errorHandler`), so a keep-alive client gets the answer.
 */
export async function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > maxBytes) throw new UserError(413, `body larger than ${maxBytes} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  return new Promise<Buffer>((resolve, reject) => {
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        cleanup();
        req.pause();
        reject(new UserError(413, `body larger than ${maxBytes} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (error: Error) => {
      cleanup();
      reject(new UserError(400, `the request body could not be read: ${error.message}`));
    };
    const onAborted = () => onError(new Error('the client aborted the upload'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}

/**
 * JSON bodies for the control API: express.json() with our messages, and a 415 (not a silent empty body)
 * when a body is sent with another media type.
 */
export function jsonBody(limitBytes: number): RequestHandler {
  return (req, res, next) => {
    const hasBody = Number(req.header('content-length') ?? '0') > 0 || req.header('transfer-encoding') !== undefined;
    if (!hasBody) {
      req.body = undefined;
      next();
      return;
    }
    const type = mediaTypeOf(req);
    if (type !== 'application/json' && !type.endsWith('+json')) {
      next(new UserError(415, `send the body as application/json, not '${type || 'no content type'}'`));
      return;
    }
    try {
      requireUtf8Charset(req);
    } catch (error) {
      next(error);
      return;
    }
    readBody(req, limitBytes).then((raw) => {
      if (raw.length === 0) {
        req.body = undefined;
        return next();
      }
      try {
        req.body = JSON.parse(decodeUtf8(raw, 'body')) as unknown;
      } catch (error) {
        return next(
          error instanceof UserError ? error : new UserError(400, `body is not valid JSON: ${(error as Error).message}`)
        );
      }
      next();
    }, next);
  };
}

/** Strict UTF-8 decoding: invalid bytes are a 400 naming the byte offset, not U+FFFD in the database. */
export function decodeUtf8(bytes: Buffer, what: string): string {
  if (isUtf8(bytes)) return bytes.toString('utf8');
  throw new UserError(400, `${what} is not valid UTF-8 (first bad byte at offset ${firstInvalidUtf8(bytes)})`);
}

/** Byte offset of the first byte that does not start or continue a valid UTF-8 sequence, or -1. */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length;) {
    const b = bytes[i]!;
    const need =
      b < 0x80 ? 0 : b >= 0xc2 && b <= 0xdf ? 1 : b >= 0xe0 && b <= 0xef ? 2 : b >= 0xf0 && b <= 0xf4 ? 3 : -1;
    if (need < 0) return i;
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if (c === undefined) return i;
      // Overlongs, surrogates and code points past U+10FFFF show in the second byte's range.
      const lo = k === 1 && b === 0xe0 ? 0xa0 : k === 1 && b === 0xf0 ? 0x90 : 0x80;
      const hi = k === 1 && b === 0xed ? 0x9f : k === 1 && b === 0xf4 ? 0x8f : 0xbf;
      if (c < lo || c > hi) return i;
    }
    i += need + 1;
  }
  return -1;
}

/** How many bytes at the end of `bytes` are the start of a sequence the next chunk must complete. */
export function incompleteUtf8Tail(bytes: Uint8Array): number {
  for (let i = bytes.length - 1; i >= Math.max(0, bytes.length - 3); i--) {
    const b = bytes[i]!;
    if ((b & 0xc0) === 0x80) continue;
    const length = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return bytes.length - i < length ? bytes.length - i : 0;
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------------
// The one error handler.
// ---------------------------------------------------------------------------------------------------

/** How much of a refused body is read off so a keep-alive connection can carry the next request. */
const DRAIN_MAX_BYTES = 1 << 20;
const DRAIN_MAX_MS = 2_000;

/**
 * A refusal may come before the body was read to its end (413 on a large upload, 401 before a webhook's
 * body). Closing a socket that still has unread bytes makes the kernel send a reset, and the client may
 * then lose our answer. So the rest is read off first, up to DRAIN_MAX_BYTES / DRAIN_MAX_MS; when the
 * body ends within that, the connection stays open for the next request. Past the bound (or when the
 * declared Content-Length is past it) the answer carries `Connection: close` and Node closes the
 * connection after sending it.
 */
function settleUnreadBody(req: IncomingMessage, res: ServerResponse, respond: () => void): void {
  if (req.complete || req.readableEnded || req.destroyed) return respond();
  req.unpipe();
  if (Number(req.headers['content-length'] ?? '0') > DRAIN_MAX_BYTES) {
    // Declared larger than we would read off: say so at once rather than after the drain bound.
    res.setHeader('Connection', 'close');
    lingerOnClose(req);
    respond();
    req.resume();
    return;
  }
  let drained = 0;
  let settled = false;
  const finish = (keepAlive: boolean) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    req.off('data', onData);
    req.off('end', onEnd);
    req.off('error', onEnd);
    if (!keepAlive) {
      res.setHeader('Connection', 'close');
      lingerOnClose(req);
    }
    respond();
    // Node discards whatever still arrives until it has sent the answer and closed the socket.
    if (!keepAlive) req.resume();
  };
  const onData = (chunk: Buffer) => {
    drained += chunk.length;
    if (drained > DRAIN_MAX_BYTES) finish(false);
  };
  const onEnd = () => finish(!req.destroyed);
  const timer = setTimeout(() => finish(false), DRAIN_MAX_MS);
  req.on('data', onData);
  req.on('end', onEnd);
  req.on('error', onEnd);
  req.resume();
}

/** How long a refused connection keeps reading off what the client still sends after our answer. */
const LINGER_MAX_MS = 2_000;

/**
 * A lingering close for a refused upload. After a `Connection: close` answer Node destroys the socket as
 * soon as the answer is written; if the client is still sending, the unread bytes make the kernel answer
 * with a reset, and a reset can discard our 413 from the client's receive buffer before it reads it (it
 * sees EPIPE or ECONNRESET instead of the message). So this socket only half-closes after the answer,
 * keeps reading off (discarding) until the client closes its side or LINGER_MAX_MS pass, then closes.
 */
function lingerOnClose(req: IncomingMessage): void {
  const socket = req.socket;
  socket.destroySoon = function lingeringClose(this: typeof socket) {
    if (this.destroyed) return;
    this.end();
    const timer = setTimeout(() => this.destroy(), LINGER_MAX_MS);
    timer.unref();
    this.once('end', () => {
      clearTimeout(timer);
      this.destroy();
    });
    this.once('close', () => clearTimeout(timer));
    this.resume();
  };
}

/** Errors of body-parser (express.json/raw) in the API's words; they carry a `type` and a 4xx status. */
function bodyParserMessage(error: {
  type?: string;
  message?: string;
  limit?: number;
  charset?: string;
  encoding?: string;
}): string {
  switch (error.type) {
    case 'entity.parse.failed':
      return `body is not valid JSON: ${error.message}`;
    case 'entity.too.large':
      return `body larger than ${error.limit} bytes`;
    case 'charset.unsupported':
      return `charset '${error.charset}' is not supported: send the body as UTF-8`;
    case 'encoding.unsupported':
      return `Content-Encoding '${error.encoding}' is not supported`;
    case 'request.aborted':
      return 'the client aborted the request';
    default:
      return error.message ?? 'bad request';
  }
}

/** The path of a request, without its query (for logs): Node's `req.url` is the raw request target. */
const pathOf = (req: IncomingMessage) => (req.url ?? '').split('?')[0] ?? '';

/**
 * What an error answers: a UserError answers `{error, details?}` with its status; errors of the framework
 * (express.json/raw, a malformed %-escape in a path) that carry a 4xx status are the caller's too; a
 * Postgres data exception is a 400 (see below); anything else is logged and answered 500
 * `{error: 'internal error'}` without internals.
 */
function errorAnswer(error: unknown, path: string, logger: Logger): { status: number; body: Record<string, unknown> } {
  if (error instanceof UserError)
    return {
      status: error.status,
      body: { error: error.message, ...(error.details ? { details: error.details } : {}) },
    };
  // express.json(), express.raw() and the router (a malformed %-escape in a path) raise errors with a
  // 4xx status for bad requests.
  const raised =
    (error as { status?: unknown; statusCode?: unknown }).status ?? (error as { statusCode?: unknown }).statusCode;
  if (typeof raised === 'number' && raised >= 400 && raised < 500)
    return { status: raised, body: { error: bodyParserMessage(error as Parameters<typeof bodyParserMessage>[0]) } };
  if (isPostgresDataException(error)) {
    // Postgres class 22 (data exception: a value out of range, malformed or with a NUL byte) can only
    // come from a value a caller sent that the route's own checks let through. It is still the
    // caller's value, so a 400; logged, because the route should have said it first.
    logger.warn({ err: error, path }, 'a value reached the database that the route did not validate');
    return { status: 400, body: { error: `invalid value: ${(error as Error).message}` } };
  }
  logger.error({ err: error, path }, 'request failed');
  return { status: 500, body: { error: 'internal error' } };
}

/**
 * The only place an error becomes a response (errorAnswer says which), for a request on Node's own
 * objects: Express's error handler below, and the routes answered ahead of Express (core/direct-routes.ts).
 */
export function answerError(error: unknown, req: IncomingMessage, res: ServerResponse, logger: Logger): void {
  if (res.headersSent) {
    // A streamed answer (CSV results) failed midway: nothing sensible can follow the bytes already sent.
    logger.error({ err: error, path: pathOf(req) }, 'request failed after the answer started');
    res.destroy();
    return;
  }
  const { status, body } = errorAnswer(error, pathOf(req), logger);
  settleUnreadBody(req, res, () => {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(text),
    });
    res.end(text);
  });
}

/** Express's error handler, the app's last: every error of a route or middleware is answered by answerError. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, _next) => answerError(error, req, res, logger);
}
