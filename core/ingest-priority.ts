/**
 * Webhook acknowledgements before background work, within one process (and its job-queue thread).
 *
 * Under an alert storm the HTTP event loop, or with JOB_QUEUE_THREAD the other core, is shared by the
 * webhooks being acknowledged and the alert-group jobs acting on what they stored (incidents, overage
 * tasks, freeze triggers, Slack pages: a dozen queries each). On a small machine the jobs then slow every
 * acknowledgement (bench/receiver: the loop was 91% busy), and Alertmanager holds its next notification of
 * a group until the last one is answered. So while the webhook inbox has a backlog (notifications arriving
 * faster than one batch at a time), an alert-group job waits before it starts: until no backlog has been
 * seen for `quietMs`, and never longer than its `maxWaitMs`. Nothing is lost or reordered by the wait: the
 * job is already claimed, its state changes are stored, and the jobs of a group still run one at a time.
 *
 * Calm traffic (each notification stored before the next arrives) never shows a backlog, so a lone page is
 * not delayed at all. The bound is per backlog, not per job: jobs wait only during the first `maxWaitMs`
 * of a backlog, so a storm delays its first pages by its own length, at most `maxWaitMs`, and a backlog
 * that lasts longer (a sustained flood) stops delaying anything: the jobs then share the machine with the
 * webhooks as they did without this, instead of each waiting its bound (which would cap the jobs at a
 * few per second for as long as the flood lasts).
 *
 * The time of the last backlog lives in a SharedArrayBuffer (`shared`), so the job queue's thread
 * (cli/job-thread.ts) reads what the HTTP thread's inbox writes: `new IngestPriority(quietMs, shared)` there.
 * Another instance has its own: it never waits for this one's webhooks.
 */
export class IngestPriority {
  /**
   * [0]: the last backlog seen; [1]: when the current backlog began (the first one seen after `quietMs`
   * without any). Microseconds since the epoch, a clock both threads read alike; 0: never.
   */
  private readonly backlog: BigInt64Array;

  constructor(
    /** How long without a backlog counts as the storm having passed. */
    private readonly quietMs = 25,
    /** Another thread's IngestPriority's `shared`: both then see the same backlog. */
    readonly shared: SharedArrayBuffer = new SharedArrayBuffer(2 * BigInt64Array.BYTES_PER_ELEMENT)
  ) {
    this.backlog = new BigInt64Array(shared);
  }

  private static nowMicros(): bigint {
    return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000));
  }

  /** The inbox calls this when notifications arrive faster than it stores them. */
  backlogSeen(): void {
    // Only the HTTP thread writes (one writer): the began-at slot is set before the last-seen one.
    const now = IngestPriority.nowMicros();
    if (this.untilQuietMs(now) <= 0) Atomics.store(this.backlog, 1, now);
    Atomics.store(this.backlog, 0, now);
  }

  /** Milliseconds until `quietMs` will have passed since the last backlog (0 or less: quiet now). */
  private untilQuietMs(now = IngestPriority.nowMicros()): number {
    const last = Atomics.load(this.backlog, 0);
    if (last === 0n) return 0;
    return this.quietMs - Number(now - last) / 1000;
  }

  /** How long the current backlog has lasted, in milliseconds (0 when quiet). */
  private backlogAgeMs(now = IngestPriority.nowMicros()): number {
    if (this.untilQuietMs(now) <= 0) return 0;
    return Number(now - Atomics.load(this.backlog, 1)) / 1000;
  }

  /** Whether a backlog was seen within the last `quietMs`. */
  get busy(): boolean {
    return this.untilQuietMs() > 0;
  }

  /**
   * Resolves once the inbox has had no backlog for `quietMs`, or once the current backlog is `maxWaitMs` old
   * (0: at once; so never later than `maxWaitMs` from now). Returns how long it waited, in milliseconds.
   */
  async yieldToWebhooks(maxWaitMs: number): Promise<number> {
    const started = performance.now();
    for (;;) {
      const untilQuiet = this.untilQuietMs();
      const left = maxWaitMs - this.backlogAgeMs();
      if (left <= 0 || untilQuiet <= 0) break;
      await new Promise((resolve) => setTimeout(resolve, Math.max(1, Math.min(untilQuiet, left))));
    }
    return performance.now() - started;
  }
}
