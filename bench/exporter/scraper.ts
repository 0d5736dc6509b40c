import { Worker } from 'node:worker_threads';

/**
 * The scraping client on its own thread, as Prometheus is in its own process: the exporter's event loop
 * then serves the scrapes but never reads their responses, so a latency is the exporter's, not the
 * client's. Sequential requests over one keep-alive connection (Prometheus keeps its connection to a
 * target too), each timed from the request sent to the last byte of the body received, in ms; plain
 * JavaScript evaluated in the worker, so it needs no TypeScript loader.
 *
 * The client is node:http reading raw Buffers, not fetch + res.text(): with the 0.14 MB body, undici's
 * fetch and the UTF-8 decoding of the body cost the client thread about 2.4 ms of CPU per scrape on the
 * benchmark machine (a CPU profile of the worker: TextDecoder's decode and writeLatin1String), more than
 * the exporter's own work, on the same 2 cores. Prometheus reads the body as bytes and parses it after
 * its scrape duration is taken, so decoding it was never part of a scrape's latency.
 */
const SCRAPER_SOURCE = `
const http = require('node:http');
const { parentPort, workerData } = require('node:worker_threads');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const scrape = () => new Promise((resolve, reject) => {
  const req = http.get(workerData.url, { agent }, (res) => {
    if (res.statusCode !== 200) {
      res.resume();
      reject(new Error(workerData.url + ' answered ' + res.statusCode));
      return;
    }
    const expected = Number(res.headers['content-length']);
    let received = 0;
    res.on('data', (chunk) => (received += chunk.length));
    res.on('error', reject);
    res.on('end', () =>
      Number.isFinite(expected) && received !== expected
        ? reject(new Error('short body: ' + received + ' of ' + expected + ' bytes'))
        : resolve(received)
    );
  });
  req.on('error', reject);
});
(async () => {
  const latencies = [];
  for (let i = 0; i < workerData.count; i++) {
    const started = process.hrtime.bigint();
    await scrape();
    latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  agent.destroy();
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
