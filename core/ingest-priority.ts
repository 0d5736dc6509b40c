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
 * not delayed at all; a storm delays the first pages by its own length, at most `maxWaitMs`.
 *
 * The time of the last backlog lives in a SharedArrayBuffer (`shared`), so the job queue's thread
 * (cli/job-thread.ts) reads what the HTTP thread's inbox writes: `new IngestPriority(quietMs, shared)` there.
 * Another instance has its own: it never waits for this one's webhooks.
 */
export class IngestPriority {
  /** The last backlog, in microseconds since the epoch (a clock both threads read alike). */
  private readonly lastBacklogAt: BigInt64Array;

  constructor(
    /** How long without a backlog counts as the storm having passed. */
    private readonly quietMs = 25,
    /** Another thread's IngestPriority's `shared`: both then see the same backlog. */
    readonly shared: SharedArrayBuffer = new SharedArrayBuffer(BigInt64Array.BYTES_PER_ELEMENT)
  ) {
    this.lastBacklogAt = new BigInt64Array(shared);
  }

  private static nowMicros(): bigint {
    return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000));
  }

  /** The inbox calls this when notifications arrive faster than it stores them. */
  backlogSeen(): void {
    Atomics.store(this.lastBacklogAt, 0, IngestPriority.nowMicros());
  }

  /** Milliseconds until `quietMs` will have passed since the last backlog (0 or less: quiet now). */
  private untilQuietMs(): number {
    const last = Atomics.load(this.lastBacklogAt, 0);
    if (last === 0n) return 0;
    return this.quietMs - Number(IngestPriority.nowMicros() - last) / 1000;
  }

  /** Whether a backlog was seen within the last `quietMs`. */
  get busy(): boolean {
    return this.untilQuietMs() > 0;
  }

  /**
   * Resolves once the inbox has had no backlog for `quietMs`, or after `maxWaitMs` (0: at once). Returns how
   * long it waited, in milliseconds.
   */
  async yieldToWebhooks(maxWaitMs: number): Promise<number> {
    const started = performance.now();
    for (;;) {
      const left = maxWaitMs - (performance.now() - started);
      const untilQuiet = this.untilQuietMs();
      if (left <= 0 || untilQuiet <= 0) break;
      await new Promise((resolve) => setTimeout(resolve, Math.max(1, Math.min(untilQuiet, left))));
    }
    return performance.now() - started;
  }
}
