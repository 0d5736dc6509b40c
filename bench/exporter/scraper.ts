import { Worker } from 'node:worker_threads';

/**
 * The scraping client on its own thread, as Prometheus is in its own process: the exporter's event loop
 * then serves the scrapes but never parses their responses, so a latency is the exporter's, not the
 * client's. Sequential requests like bench/stats.ts's scrapeLatencies (same measure: request sent to body
 * read, in ms); plain JavaScript evaluated in the worker, so it needs no TypeScript loader.
 */
const SCRAPER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
(async () => {
  const latencies = [];
  for (let i = 0; i < workerData.count; i++) {
    const started = process.hrtime.bigint();
    const res = await fetch(workerData.url);
    if (res.status !== 200) throw new Error(workerData.url + ' answered ' + res.status);
    await res.text();
    latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  parentPort.postMessage(latencies);
})().catch((error) => { throw error; });
`;

export function scrapeLatenciesFromThread(url: string, count: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(SCRAPER_SOURCE, { eval: true, workerData: { url, count } });
    let latencies: number[] | undefined;
    worker.once('message', (message: number[]) => (latencies = message));
    worker.once('error', reject);
    worker.once('exit', (code) =>
      latencies ? resolve(latencies) : reject(new Error(`the scraper thread exited with ${code} before reporting`))
    );
  });
}
