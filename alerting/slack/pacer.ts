/**
 * Spaces Slack calls per channel: Slack allows about one message per second per channel, and bursts
 * beyond it are answered with 429. Calls to one channel run one after another, each starting at least
 * `intervalMs` after the previous one finished; different channels do not wait for each other. (@slack/web-api itself retries a 429 after
 * its Retry-After; this keeps us from provoking them.)
 */
export class ChannelPacer {
  private readonly tails = new Map<string, Promise<unknown>>();
  private readonly lastDone = new Map<string, number>();

  constructor(private readonly intervalMs: number) {}

  run<T>(channel: string, call: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(channel) ?? Promise.resolve();
    const next = previous
      .catch(() => undefined)
      .then(async () => {
        const wait = (this.lastDone.get(channel) ?? 0) + this.intervalMs - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        try {
          return await call();
        } finally {
          // Spaced from the end of the call: the client may have spent seconds inside it retrying a 429.
          this.lastDone.set(channel, Date.now());
        }
      });
    this.tails.set(channel, next);
    return next;
  }
}
