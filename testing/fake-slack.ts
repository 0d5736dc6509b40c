import { startHttpRecorder, type HttpRecorder, type RecordedCall } from './http-recorder.ts';

export interface SlackCall {
  method: string;
  args: Record<string, unknown>;
  at: number;
  /** The status the fake answered with. */
  status: number;
  /** The ts a successful chat.postMessage was answered with. */
  ts?: string;
  /** The Slack error of a call answered `ok: false` with HTTP 200 (refuseScope). */
  refused?: string;
}

/** A message the fake holds, as conversations.history shows it. */
export interface FakeSlackMessage {
  ts: string;
  text: string;
  thread_ts?: string;
  metadata?: { event_type: string; event_payload: Record<string, unknown> };
}

/**
 * A local stand-in for the Slack Web API: records every call (decoded from Slack's form encoding),
 * answers like Slack (channel ids, message ts), and fails on demand with 429 + Retry-After or 500.
 * It keeps the messages posted (with their metadata) per channel, and answers conversations.history
 * (newest first, `oldest`/`latest` exclusive unless `inclusive`, `limit`, `cursor`, metadata only with
 * `include_all_metadata`) and conversations.list (channels posted to, by id and name without `#`).
 */
export class FakeSlack {
  readonly calls: SlackCall[] = [];
  private readonly failures: Array<{
    method: string | null;
    status: number;
    retryAfter?: number;
    match?: (args: Record<string, unknown>) => boolean;
  }> = [];
  /** The last ts handed out, in microseconds: each post gets a later one, from the wall clock as Slack's are. */
  private lastTsMicros = 0;
  /** Channel id to its messages, oldest first. */
  readonly messages = new Map<string, FakeSlackMessage[]>();
  /** Channel id to its name (without `#`), for every channel posted to by name. */
  private readonly channelNames = new Map<string, string>();
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

  /**
   * Every later call of `method` is answered as Slack answers a token without the scope it needs
   * (HTTP 200, `ok: false`, `error: 'missing_scope'`) until `grant(method)`.
   */
  refuseScope(method: string): void {
    this.unscoped.add(method);
  }

  grant(method: string): void {
    this.unscoped.delete(method);
  }

  private readonly unscoped = new Set<string>();

  /** Failures asked for with failNext and not yet answered. */
  get pendingFailures(): number {
    return this.failures.length;
  }

  /** Successful calls of one API method. */
  ok(method: string): SlackCall[] {
    return this.calls.filter((c) => c.method === method && c.status === 200 && !c.refused);
  }

  async waitFor(match: (call: SlackCall) => boolean, timeoutMs = 30_000): Promise<SlackCall> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const found = this.calls.find((c) => c.status === 200 && !c.refused && match(c));
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

  /** Slack's conversations.history: the channel's top-level messages and thread parents, newest first. */
  private history(args: Record<string, unknown>) {
    const channel = String(args.channel ?? '');
    if (!/^C[A-Z0-9]+$/.test(channel)) return { status: 200, body: { ok: false, error: 'channel_not_found' } };
    const inclusive = args.inclusive === true || args.inclusive === 'true' || args.inclusive === '1';
    const oldest = args.oldest === undefined ? 0 : Number(args.oldest);
    const latest = args.latest === undefined ? Infinity : Number(args.latest);
    const withMetadata = args.include_all_metadata === true || args.include_all_metadata === 'true';
    const inRange = (m: FakeSlackMessage) =>
      inclusive ? Number(m.ts) >= oldest && Number(m.ts) <= latest : Number(m.ts) > oldest && Number(m.ts) < latest;
    const all = (this.messages.get(channel) ?? []).filter((m) => !m.thread_ts && inRange(m)).reverse();
    return {
      status: 200,
      body: page(all, args, 'messages', (m) => ({
        type: 'message',
        ts: m.ts,
        text: m.text,
        ...(withMetadata && m.metadata ? { metadata: m.metadata } : {}),
      })),
    };
  }

  private list(args: Record<string, unknown>) {
    const all = [...this.channelNames].map(([id, name]) => ({ id, name, is_channel: true }));
    return { status: 200, body: page(all, args, 'channels', (c) => c) };
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
    if (this.unscoped.has(method)) {
      this.calls.push({ method, args, at: call.at, status: 200, refused: 'missing_scope' });
      return { status: 200, body: { ok: false, error: 'missing_scope', needed: 'channels:history' } };
    }
    this.calls.push({ method, args, at: call.at, status: 200 });
    const channel = channelId(String(args.channel ?? ''));
    switch (method) {
      case 'chat.postMessage': {
        this.lastTsMicros = Math.max(Date.now() * 1000, this.lastTsMicros + 1);
        const ts = `${Math.floor(this.lastTsMicros / 1e6)}.${String(this.lastTsMicros % 1e6).padStart(6, '0')}`;
        this.calls.at(-1)!.ts = ts;
        const name = String(args.channel ?? '');
        if (name !== channel) this.channelNames.set(channel, name.replace(/^#/, ''));
        const message: FakeSlackMessage = { ts, text: String(args.text ?? '') };
        if (args.thread_ts) message.thread_ts = String(args.thread_ts);
        if (args.metadata) message.metadata = args.metadata as FakeSlackMessage['metadata'];
        this.messages.set(channel, [...(this.messages.get(channel) ?? []), message]);
        return { status: 200, body: { ok: true, channel, ts, message: { text: args.text } } };
      }
      case 'conversations.history':
        return this.history(args);
      case 'conversations.list':
        return this.list(args);
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

/** Slack's cursor pagination: `limit` (default 100, at most 1000) items from `cursor` on, and the next cursor. */
function page<T>(all: T[], args: Record<string, unknown>, field: string, show: (item: T) => unknown) {
  const limit = Math.min(Math.max(Number(args.limit ?? 100) || 100, 1), 1000);
  const start = args.cursor
    ? Number(
        Buffer.from(String(args.cursor), 'base64')
          .toString()
          .replace(/^offset:/, '')
      )
    : 0;
  const items = all.slice(start, start + limit);
  const more = start + limit < all.length;
  return {
    ok: true,
    [field]: items.map(show),
    // conversations.history says has_more; conversations.list only gives the cursor.
    ...(field === 'messages' ? { has_more: more } : {}),
    response_metadata: { next_cursor: more ? Buffer.from(`offset:${start + limit}`).toString('base64') : '' },
  };
}

function decode(call: RecordedCall): Record<string, unknown> {
  const type = String(call.headers['content-type'] ?? '');
  if (type.includes('application/json')) return (call.json as Record<string, unknown>) ?? {};
  const form = new URLSearchParams(call.body);
  const out: Record<string, unknown> = {};
  for (const [key, value] of form) {
    out[key] = key === 'blocks' || key === 'attachments' || key === 'metadata' ? JSON.parse(value) : value;
  }
  return out;
}
