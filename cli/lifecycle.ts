import type { Logger } from '../core/logger.ts';

type Stop = () => Promise<void>;

/** Longest a shutdown may take before the process gives up waiting and exits 1. */
const SHUTDOWN_TIMEOUT_MS = 60_000;

/**
 * The one owner of a long-running command's shutdown (start, serve, demo). SIGINT (Ctrl-C) and SIGTERM
 * stop what was started in reverse order: the HTTP server stops accepting requests, queue jobs finish or
 * are released, pools close, and the embedded Postgres, started first, stops last, so no open session is
 * ended under a service (no "terminating connection due to administrator command"). The exit code is 0
 * when every step stopped cleanly and 1 when one failed or the start-up itself failed.
 *
 * A signal during start-up waits for the step in progress, then stops what was started so far, so a
 * Postgres (which runs in its own process group) is never left behind by an interrupted start.
 */
export class Lifecycle {
  readonly #logger: Logger;
  readonly #stops: Array<{ name: string; stop: Stop }> = [];
  #startup: Promise<unknown> = Promise.resolve();
  #shutdown: Promise<void> | null = null;
  /** Set while a failed start-up stops what it started (the CLI then prints the error and exits 1). */
  #startFailed = false;

  constructor(logger: Logger) {
    this.#logger = logger;
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.on(signal, () => {
        if (this.#shutdown) this.#logger.info({ signal }, 'already shutting down');
        else void this.shutdown(signal, 0);
      });
    }
    // A crash still stops the embedded Postgres (it would otherwise outlive us in its own group).
    process.on('uncaughtException', (error) => {
      this.#logger.fatal({ err: error }, 'uncaught exception');
      void this.shutdown('uncaughtException', 1);
    });
    process.on('unhandledRejection', (reason) => {
      this.#logger.fatal({ err: reason }, 'unhandled rejection');
      void this.shutdown('unhandledRejection', 1);
    });
  }

  /** True once stopping has begun, by a signal, a crash or a failed start-up. */
  get stopping(): boolean {
    return this.#shutdown !== null || this.#startFailed;
  }

  /** Registers what stops a started part; parts stop in the reverse order of registration. */
  onStop(name: string, stop: Stop): void {
    this.#stops.push({ name, stop });
  }

  /**
   * Runs the command's start-up. If it fails, what it started is stopped before the error goes on to the
   * CLI (which prints it and exits 1).
   */
  async start(startup: () => Promise<void>): Promise<void> {
    const running = startup();
    this.#startup = running.catch(() => undefined);
    try {
      await running;
    } catch (error) {
      // A shutdown already under way stops everything and exits itself; otherwise stop here.
      if (this.#shutdown) await this.#shutdown;
      this.#startFailed = true;
      await this.#stopAll();
      throw error;
    }
  }

  /** Stops everything (once) and exits with `code`, or 1 if a step failed. */
  shutdown(reason: string, code: number): Promise<void> {
    this.#shutdown ??= (async () => {
      this.#logger.info({ reason }, 'shutting down');
      const timer = setTimeout(() => {
        this.#logger.error({ timeoutMs: SHUTDOWN_TIMEOUT_MS }, 'shutdown did not finish in time; exiting');
        process.exit(1);
      }, SHUTDOWN_TIMEOUT_MS);
      timer.unref();
      await this.#startup;
      const clean = await this.#stopAll();
      this.#logger.info('stopped');
      process.exit(clean ? code : 1);
    })();
    return this.#shutdown;
  }

  async #stopAll(): Promise<boolean> {
    let clean = true;
    for (const { name, stop } of this.#stops.splice(0).reverse()) {
      try {
        await stop();
      } catch (error) {
        clean = false;
        this.#logger.error({ err: error, step: name }, 'shutdown step failed');
      }
    }
    return clean;
  }
}
