import http from 'node:http';

export interface RecordedCall {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
  at: number;
}

export interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface HttpRecorder {
  url: string;
  calls: RecordedCall[];
  /** Replaces the reply for calls from now on (e.g. to fail on demand). */
  respondWith(reply: (call: RecordedCall) => Reply): void;
  /** Resolves with the first recorded call (past or future) that matches, or rejects after the timeout. */
  waitFor(match: (call: RecordedCall) => boolean, timeoutMs?: number): Promise<RecordedCall>;
  close(): Promise<void>;
}

/**
 * A local HTTP server on 127.0.0.1 that records every call and answers as told: the stand-in for a
 * webhook receiver or an outside API (Slack, GitHub, Stripe) in tests.
 */
export async function startHttpRecorder(
  reply: (call: RecordedCall) => Reply = () => ({ status: 200, body: { ok: true } })
) {
  const calls: RecordedCall[] = [];
  let respond = reply;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let json: unknown;
      try {
        json = body ? JSON.parse(body) : undefined;
      } catch {
        json = undefined;
      }
      const call: RecordedCall = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body,
        json,
        at: Date.now(),
      };
      calls.push(call);
      const out = respond(call);
      res.writeHead(out.status, { 'content-type': 'application/json', ...out.headers });
      res.end(out.body === undefined ? '' : JSON.stringify(out.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (typeof address !== 'object' || !address) throw new Error('recorder has no address');
  const recorder: HttpRecorder = {
    url: `http://127.0.0.1:${address.port}`,
    calls,
    respondWith(next) {
      respond = next;
    },
    async waitFor(match, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const found = calls.find(match);
        if (found) return found;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`no matching call within ${timeoutMs} ms; ${calls.length} calls recorded`);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return recorder;
}
