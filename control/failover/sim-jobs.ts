import type http from 'node:http';

/**
 * The background-job side of a simulated TMS region, as Control Room's cutover runbook talks to it:
 * - POST /jobs/pause   stops starting new background work (idempotent; the Idempotency-Key is recorded);
 * - POST /jobs/resume  starts it again;
 * - GET  /jobs/queue   {"queued": n, "running": m}: what is still queued or running.
 *
 * Used by the demo regions (db/demo/regions.ts), the drill's and game days' regions (drill.ts) and the
 * test regions (testing/failover.ts). While paused, every read of the queue finishes `drainPerRead` jobs;
 * `mode = 'stuck'` makes a region that stops draining (its jobs never finish), and `pauseAnswers` makes
 * its pause endpoint fail, so both failure paths of a cutover can be exercised.
 */
export class SimulatedJobQueue {
  paused = false;
  mode: 'drains' | 'stuck' = 'drains';
  /** Status the pause endpoint answers (200 by default; e.g. 503 for a region that cannot pause). */
  pauseAnswers = 200;
  resumeAnswers = 200;
  queued: number;
  running: number;
  /** Every pause / resume request received, with its Idempotency-Key (repeats included). */
  readonly calls: Array<{ action: 'pause' | 'resume'; key: string | null; at: number }> = [];

  constructor(
    initial: { queued?: number; running?: number } = {},
    private readonly drainPerRead = 1
  ) {
    this.queued = initial.queued ?? 0;
    this.running = initial.running ?? 0;
  }

  get depth(): number {
    return this.queued + this.running;
  }

  /** Keys of the distinct pause (or resume) calls: what the TMS acted on, however often a call was repeated. */
  distinct(action: 'pause' | 'resume'): string[] {
    return [...new Set(this.calls.filter((c) => c.action === action).map((c) => c.key ?? '(no key)'))];
  }

  /** New work arriving while not paused (the demo's background traffic). Ignored while paused. */
  enqueue(n: number): void {
    if (!this.paused) this.queued += n;
  }

  private drainStep(): void {
    if (!this.paused || this.mode === 'stuck') return;
    for (let i = 0; i < this.drainPerRead; i++) {
      if (this.running > 0) this.running -= 1;
      else if (this.queued > 0) this.queued -= 1;
    }
  }

  /** Answers the three routes; false for any other request (the caller answers it). */
  handle(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    const path = (req.url ?? '/').split('?')[0];
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method === 'GET' && path === '/jobs/queue') {
      this.drainStep();
      send(200, { queued: this.queued, running: this.running, paused: this.paused });
      return true;
    }
    if (req.method === 'POST' && (path === '/jobs/pause' || path === '/jobs/resume')) {
      req.resume();
      const action = path === '/jobs/pause' ? 'pause' : 'resume';
      const key = req.headers['idempotency-key'];
      this.calls.push({ action, key: typeof key === 'string' ? key : null, at: Date.now() });
      const status = action === 'pause' ? this.pauseAnswers : this.resumeAnswers;
      if (status >= 200 && status < 300) this.paused = action === 'pause';
      send(status, { paused: this.paused });
      return true;
    }
    return false;
  }
}
