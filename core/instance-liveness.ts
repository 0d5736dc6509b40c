import type { Pool, PoolClient } from './db.ts';
import { instanceOfWorker } from './jobs.ts';
import type { Logger } from './logger.ts';

/**
 * Which Control Room instances sharing the database are alive, and the queue jobs a dead one held.
 *
 * Each running instance holds a session advisory lock named after its CONTROLROOM_INSTANCE_ID on a
 * connection of its own for as long as it runs. Postgres releases a session lock when the session ends,
 * so the lock is free exactly when the instance is gone: stopped, crashed, or kill -9'd (the kernel closes
 * the socket, the backend ends at once). Holding it at start-up also refuses a second instance started
 * with the same id, which would otherwise free the first one's jobs (startJobQueue) and share its lease.
 *
 * graphile-worker frees a crashed worker's job locks only after four hours, and startJobQueue frees them
 * when the same instance starts again; on a pair that may never happen. So every instance sweeps: a job
 * (or a named queue) locked by a worker of an instance whose lock it can take is released at once, and
 * the survivor's workers pick it up within a poll. Every queue task is already safe to run again after a
 * crash mid-way (it must be, for kill -9 of a single instance), which is what running it on the other
 * instance is. The same sweep hands over anything else a dead instance held (`Handover`, e.g. the
 * failover lease, control/failover/lease.ts), with the dead instance's lock held meanwhile.
 *
 * Failure mode: an instance that loses its liveness connection while the rest of it keeps working (a
 * Postgres restart drops every connection; a network cut that spares other connections) looks dead to
 * the other instance, which then releases its jobs; a job it was running may then run on both for a
 * while. It re-takes its lock on the next sweep and says so in an error log. Behind a network, Postgres
 * notices a vanished host only through TCP keepalives: set tcp_keepalives_idle/interval/count on the
 * server (README, "Running two instances") or a dead host's jobs wait for the keepalive to give up.
 */

/** How often each instance looks for jobs held by a dead one (and re-takes a lost lock of its own). */
export const LIVENESS_SWEEP_MS = 2_000;
/** A restart right after a kill -9 may find the old session not yet ended by Postgres: it waits this long. */
const CLAIM_WAIT_MS = 15_000;

const lockKey = (instanceId: string) => `controlroom-instance:${instanceId}`;

/**
 * Something an instance holds that a dead instance's survivor must take over: the sweep asks who holds
 * what (`heldBy`), and for each holder whose liveness lock is free, hands it over with that lock held (so
 * the dead instance cannot restart meanwhile). `handOver` must be safe for a holder that is in fact alive
 * but lost its liveness session (see the failure mode above): whatever it frees must stay fenced or be
 * safe to run twice.
 */
export interface Handover<T = unknown> {
  /** What is handed over, for logs: "queue jobs", "failover lease". */
  name: string;
  /** Instance id → what it holds of this kind now (the sweep skips our own). */
  heldBy(client: PoolClient): Promise<Map<string, T>>;
  /** Frees what the dead `instance` held; returns what was freed, for logs and tests. */
  handOver(client: PoolClient, instance: string, held: T): Promise<unknown>;
}

/**
 * Queue jobs (and named queues) locked by a dead instance's graphile workers: released at once, and the
 * survivor's workers pick them up within a poll.
 */
export const queueJobsHandover: Handover<string[]> = {
  name: 'queue jobs',
  async heldBy(client) {
    const { rows } = await client.query<{ locked_by: string }>(
      `SELECT locked_by FROM graphile_worker._private_jobs WHERE locked_by IS NOT NULL
       UNION SELECT locked_by FROM graphile_worker._private_job_queues WHERE locked_by IS NOT NULL`
    );
    const byInstance = new Map<string, string[]>();
    for (const { locked_by } of rows) {
      const instance = instanceOfWorker(locked_by);
      if (instance === null) continue;
      byInstance.set(instance, [...(byInstance.get(instance) ?? []), locked_by]);
    }
    return byInstance;
  },
  async handOver(client, _instance, workers) {
    await client.query(`SELECT graphile_worker.force_unlock_workers($1::text[])`, [workers]);
    return workers;
  },
};

export interface InstanceLiveness {
  /** Dead instances found and what of theirs was handed over so far (logs and tests). */
  readonly released: ReadonlyArray<{ instance: string; what: string; items: unknown }>;
  /** Looks for dead instances' jobs (and other handovers) once now (the sweep does it every LIVENESS_SWEEP_MS). */
  sweep(): Promise<void>;
  /** Stops sweeping and ends the session, which frees this instance's lock. */
  stop(): Promise<void>;
}

/**
 * Takes this instance's liveness lock (waiting out the session of its own previous run, for up to
 * CLAIM_WAIT_MS) and starts the sweep. Throws when another running instance already has the id.
 */
export async function claimInstance(options: {
  pool: Pool;
  instanceId: string;
  logger: Logger;
  sweepMs?: number;
  /** Default CLAIM_WAIT_MS (tests: shorter). */
  claimWaitMs?: number;
  /** What else a dead instance's survivor takes over, after its queue jobs (e.g. the failover lease). */
  handovers?: ReadonlyArray<Handover<unknown>>;
}): Promise<InstanceLiveness> {
  const { pool, instanceId } = options;
  const log = options.logger.child({ component: 'instance-liveness' });
  const sweepMs = options.sweepMs ?? LIVENESS_SWEEP_MS;
  const released: Array<{ instance: string; what: string; items: unknown }> = [];
  const handovers: ReadonlyArray<Handover<unknown>> = [queueJobsHandover, ...(options.handovers ?? [])];

  let session: PoolClient | null = null;
  let endSession = () => undefined as void;
  const openSession = async (): Promise<boolean> => {
    const client = await pool.connect();
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      if (session === client) session = null;
      client.release(true);
    };
    // A session lost between sweeps (a Postgres restart) is noticed here and re-taken on the next sweep.
    client.on('error', end);
    let locked = false;
    try {
      const { rows } = await client.query<{ locked: boolean }>(
        `SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked`,
        [lockKey(instanceId)]
      );
      locked = rows[0]!.locked;
    } finally {
      // Never back into the pool: the session is this lock's, or nothing.
      if (!locked) end();
    }
    if (!locked) return false;
    endSession = end;
    session = client;
    return true;
  };

  const deadline = Date.now() + (options.claimWaitMs ?? CLAIM_WAIT_MS);
  while (!(await openSession())) {
    if (Date.now() > deadline)
      throw new Error(
        `CONTROLROOM_INSTANCE_ID ${instanceId} is in use by another running instance on this database: ` +
          'give each instance its own id'
      );
    await new Promise((r) => setTimeout(r, 250));
  }

  const sweep = async () => {
    if (!session) {
      if (await openSession()) log.error({ instanceId }, 'liveness session re-taken after it was lost');
      else {
        log.error({ instanceId }, 'liveness session lost and not yet re-taken: the other instance may run our jobs');
        return;
      }
    }
    const client = session!;
    for (const handover of handovers) {
      const held = await handover.heldBy(client);
      for (const [instance, what] of held) {
        if (instance === instanceId) continue;
        // Taken only while handing over: the dead instance, restarting now, waits for it (CLAIM_WAIT_MS), so
        // it never finds its things handed over under it.
        const { rows: probe } = await client.query<{ dead: boolean }>(
          `SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS dead`,
          [lockKey(instance)]
        );
        if (!probe[0]!.dead) continue;
        try {
          const handed = await handover.handOver(client, instance, what);
          released.push({ instance, what: handover.name, items: handed });
          log.warn(
            { instance, [handover.name]: handed },
            `instance ${instance} is gone: its ${handover.name} handed over to this instance`
          );
        } finally {
          await client.query(`SELECT pg_advisory_unlock(hashtextextended($1, 0))`, [lockKey(instance)]);
        }
      }
    }
  };

  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const schedule = () => {
    timer = setTimeout(() => {
      running = sweep()
        .catch((err: unknown) => log.warn({ err }, 'liveness sweep failed; retried at the next one'))
        .finally(() => {
          if (!stopped) schedule();
        });
    }, sweepMs);
    timer.unref();
  };
  schedule();

  return {
    released,
    sweep,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
      // Ending the session frees the lock: the other instance may take this one's jobs (there are none
      // left once the queue stopped) and a restart with this id may claim it.
      if (session) endSession();
    },
  };
}
