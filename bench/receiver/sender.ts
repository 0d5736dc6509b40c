import { parentPort, Worker, workerData } from 'node:worker_threads';
import { deliverStorm, type DeliveryResult, type StormDelivery } from './storm.ts';

/**
 * The storm's sender on a thread of its own: Alertmanager is another process, so the POSTs' own work
 * (building, sending, reading 20 answers) must not queue on the receiver's event loop and be counted as
 * the receiver's latency. Same deliverStorm, same timing, just not in the measured process's loop.
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

export function deliverStormFromThread(
  url: string,
  deliveries: readonly StormDelivery[],
  concurrency: number,
  token: string
): Promise<DeliveryResult[]> {
  const input: SenderInput = { url, deliveries: [...deliveries], concurrency, token };
  const worker = new Worker(SENDER_BOOT, { eval: true, workerData: input });
  return new Promise<DeliveryResult[]>((resolve, reject) => {
    worker.once('message', (results: DeliveryResult[]) => resolve(results));
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the sender thread exited (code ${code}) without results`)));
  });
}

if (parentPort && (workerData as SenderInput | undefined)?.deliveries) {
  const { url, deliveries, concurrency, token } = workerData as SenderInput;
  parentPort.postMessage(await deliverStorm(url, deliveries, concurrency, token));
}
