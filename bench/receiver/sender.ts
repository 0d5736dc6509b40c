import { parentPort, Worker, workerData } from 'node:worker_threads';
import { threadCpuMs } from './cpu.ts';
import { startFloorServer } from './floor.ts';
import { deliverStorm, type DeliveryResult, type StormDelivery } from './storm.ts';

/**
 * The storm's sender on a thread of its own: Alertmanager is another process, so the POSTs' own work
 * (building, sending, reading 20 answers) must not queue on the receiver's event loop and be counted as
 * the receiver's latency. Same deliverStorm, same timing, just not in the measured process's loop. (A
 * process of its own was tried on 2026-12-03: no better, see the README's receiver benchmark.)
 *
 * Alertmanager is also a long-running (compiled) process, while this thread starts cold: its first POSTs
 * ran the HTTP client's code for the first time in a new isolate and took about 60 ms more than the
 * receiver's own time, on the 20 concurrent POSTs that then made the p99 (20 of 690 is 2.9%). So the thread
 * first sends the same storm, with the same concurrency, to a sink of its own (floor.ts's server, in this
 * thread: it answers as the receiver does, without storing anything). Then it says it is ready and waits
 * for `go`: the benchmark takes its readings (CPU from /proc, event-loop counters) in between, on the
 * receiver's loop, before the first POST rather than while the storm's first POSTs wait on that loop. The
 * receiver learns nothing from the warm-up; the connections to it are new, as after a quiet spell.
 */
interface SenderInput {
  url: string;
  deliveries: StormDelivery[];
  concurrency: number;
  token: string;
}

// A worker's entry does not go through the parent's tsx hooks on Node 20: register tsx inside it first
// (as bench/rating does).
const SENDER_BOOT = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})
  .then(({ register }) => { register(); return import(${JSON.stringify(import.meta.url)}); })`;

/** The answers, and the sender thread's own CPU time while it sent them (NaN without Linux's /proc). */
export interface SentStorm {
  results: DeliveryResult[];
  senderCpuMs: number;
}

/**
 * `onReady`: the thread is warm; what the benchmark does here happens before the first POST to `url`,
 * which follows at once (the storm's clocks start there). `onDone`: the last answer came back, before the
 * results travel to this thread.
 */
export function sendStormFromThread(
  url: string,
  deliveries: readonly StormDelivery[],
  concurrency: number,
  token: string,
  hooks: { onReady?: () => void; onDone?: () => void } = {}
): Promise<SentStorm> {
  const input: SenderInput = { url, deliveries: [...deliveries], concurrency, token };
  const worker = new Worker(SENDER_BOOT, { eval: true, workerData: input });
  return new Promise<SentStorm>((resolve, reject) => {
    worker.on('message', (message: 'ready' | 'done' | SentStorm) => {
      if (message === 'ready') {
        hooks.onReady?.();
        worker.postMessage('go');
      } else if (message === 'done') hooks.onDone?.();
      else {
        resolve(message);
        // Its port (listening for `go`) would keep the thread alive.
        void worker.terminate();
      }
    });
    worker.once('error', reject);
    // After the results this changes nothing (the promise is settled).
    worker.once('exit', (code) => reject(new Error(`the sender thread exited (code ${code}) without results`)));
  });
}

if (parentPort && (workerData as SenderInput | undefined)?.deliveries) {
  const port = parentPort;
  const { url, deliveries, concurrency, token } = workerData as SenderInput;
  const sink = await startFloorServer();
  await deliverStorm(sink.url, deliveries, concurrency, token);
  await sink.close();
  const go = new Promise<void>((resolve) => port.on('message', (message) => message === 'go' && resolve()));
  port.postMessage('ready');
  await go;
  const cpuBefore = threadCpuMs();
  const results = await deliverStorm(url, deliveries, concurrency, token);
  const senderCpuMs = threadCpuMs() - cpuBefore;
  port.postMessage('done');
  port.postMessage({ results, senderCpuMs } satisfies SentStorm);
}

/** The answers only (sendStormFromThread without the CPU figure). */
export const deliverStormFromThread = async (
  url: string,
  deliveries: readonly StormDelivery[],
  concurrency: number,
  token: string
): Promise<DeliveryResult[]> => (await sendStormFromThread(url, deliveries, concurrency, token)).results;
