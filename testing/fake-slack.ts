import { startHttpRecorder, type HttpRecorder, type RecordedCall } from './http-recorder.ts';

export interface SlackCall {
  method: string;
  args: Record<string, unknown>;
  at: number;
  /** The status the fake answered with. */
  status: number;
}

/**
 * A local stand-in for the Slack Web API: records every call (decoded from Slack's form encoding),
 * answers like Slack (channel ids, message ts), and fails on demand with 429 + Retry-After or 500.
 */
export class FakeSlack {
  readonly calls: SlackCall[] = [];
  private readonly failures: Array<{
    method: string | null;
    status: number;
    retryAfter?: number;
    match?: (args: Record<string, unknown>) => boolean;
  }> = [];
  private seq = 0;
  private constructor(private readonly recorder: HttpRecorder) {}

  static async start(): Promise<FakeSlack> {
    let fake: FakeSlack | undefined;
    const recorder = await startHttpRecorder((call) => fake!.answer(call));
    fake = new FakeSlack(recorder);
    return fake;
  }

  /** Base URL for @slack/web-api's slackApiUrl. */
  get apiUrl(): string {
    return `${this.recorder.url}/api/`;
  }

  /** The next `times` calls (of `method`, or of any method; only those whose arguments `match`, if given) fail with `status`. */
  failNext(
    times: number,
    status: 429 | 500 | 503,
    options: { method?: string; retryAfter?: number; match?: (args: Record<string, unknown>) => boolean } = {}
  ): void {
    for (let i = 0; i < times; i++)
      this.failures.push({
        method: options.method ?? null,
        status,
        retryAfter: options.retryAfter,
        match: options.match,
      });
  }

  /** Failures asked for with failNext and not yet answered. */
  get pendingFailures(): number {
    return this.failures.length;
  }

  /** Successful calls of one API method. */
  ok(method: string): SlackCall[] {
    return this.calls.filter((c) => c.method === method && c.status === 200);
  }

  async waitFor(match: (call: SlackCall) => boolean, timeoutMs = 30_000): Promise<SlackCall> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const found = this.calls.find((c) => c.status === 200 && match(c));
      if (found) return found;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(
      `no matching Slack call within ${timeoutMs} ms; calls: ${this.calls.map((c) => `${c.method}:${c.status}`).join(', ')}`
    );
  }

  close(): Promise<void> {
    return this.recorder.close();
  }

  private answer(call: RecordedCall) {
    const method = call.path.replace(/^\/api\//, '').split('?')[0] ?? '';
    const args = decode(call);
    const failure = this.failures.findIndex(
      (f) => (f.method === null || f.method === method) && (!f.match || f.match(args))
    );
    if (failure >= 0) {
      const [f] = this.failures.splice(failure, 1);
      this.calls.push({ method, args, at: call.at, status: f!.status });
      return f!.status === 429
        ? {
            status: 429,
            headers: { 'retry-after': String(f!.retryAfter ?? 1) },
            body: { ok: false, error: 'ratelimited' },
          }
        : { status: f!.status, body: { ok: false, error: 'internal_error' } };
    }
    this.calls.push({ method, args, at: call.at, status: 200 });
    const channel = channelId(String(args.channel ?? ''));
    switch (method) {
      case 'chat.postMessage':
        return {
          status: 200,
          body: {
            ok: true,
            channel,
            ts: `1700000000.${String(++this.seq).padStart(6, '0')}`,
            message: { text: args.text },
          },
        };
      case 'chat.update':
        return { status: 200, body: { ok: true, channel, ts: args.ts, text: args.text } };
      default:
        return { status: 200, body: { ok: true } };
    }
  }
}

/** Slack answers with channel ids; names map to a stable fake id, ids pass through. */
export const channelId = (channel: string) =>
  /^C[A-Z0-9]+$/.test(channel) ? channel : `C${Buffer.from(channel).toString('hex').toUpperCase().slice(0, 10)}`;

function decode(call: RecordedCall): Record<string, unknown> {
  const type = String(call.headers['content-type'] ?? '');
  if (type.includes('application/json')) return (call.json as Record<string, unknown>) ?? {};
  const form = new URLSearchParams(call.body);
  const out: Record<string, unknown> = {};
  for (const [key, value] of form) {
    out[key] = key === 'blocks' || key === 'attachments' ? JSON.parse(value) : value;
  }
  return out;
}
