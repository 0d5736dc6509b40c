/**
 * Webhook acknowledgements before background work, within one process.
 *
 * Under an alert storm the HTTP event loop is shared by the webhooks being acknowledged and the alert-group
 * jobs acting on what they stored (incidents, overage tasks, freeze triggers, Slack pages: a dozen queries
 * each). On a small machine the jobs then slow every acknowledgement (bench/receiver: the loop was 91% busy),
 * and Alertmanager holds its next notification of a group until the last one is answered. So while the
 * inbox has a backlog (a notification arriving while a batch is being stored), an alert-group job waits
 * before it starts: until no backlog has been seen for `quietMs`, and never longer than its `maxWaitMs`.
 * Nothing is lost or reordered by the wait: the job is already claimed, its state changes are stored, and
 * the jobs of a group still run one at a time.
 *
 * Calm traffic (each notification stored before the next arrives) never shows a backlog, so a lone page is
 * not delayed at all; a storm delays the first pages by its own length, at most `maxWaitMs`. It sees only
 * this process's inbox: a queue on a thread of its own (JOB_QUEUE_THREAD) or another instance does not wait.
 */
export class IngestPriority {
  private lastBacklogAt = Number.NEGATIVE_INFINITY;

  constructor(
    /** How long without a backlog counts as the storm having passed. */
    private readonly quietMs = 25,
    private readonly now: () => number = () => performance.now()
  ) {}

  /** The inbox calls this when a notification has to wait for a batch being stored. */
  backlogSeen(): void {
    this.lastBacklogAt = this.now();
  }

  /** Whether a backlog was seen within the last `quietMs`. */
  get busy(): boolean {
    return this.now() - this.lastBacklogAt < this.quietMs;
  }

  /**
   * Resolves once the inbox has had no backlog for `quietMs`, or after `maxWaitMs` (0: at once). Returns how
   * long it waited, in milliseconds.
   */
  async yieldToWebhooks(maxWaitMs: number): Promise<number> {
    const started = this.now();
    const deadline = started + maxWaitMs;
    for (let now = started; now < deadline && this.busy; now = this.now()) {
      const quietAt = this.lastBacklogAt + this.quietMs;
      await new Promise((resolve) => setTimeout(resolve, Math.max(1, Math.min(quietAt, deadline) - now)));
    }
    return this.now() - started;
  }
}
