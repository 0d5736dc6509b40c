import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { projectRoot } from '../../core/config.ts';
import { tryRateLane } from '../../control/rating/engine.ts';
import { compileModel, type PricingModelParams } from '../../control/rating/model.ts';
import { createSnapshot } from '../../control/rating/registry.ts';
import { SEED_V1 } from '../../control/rating/seed.ts';
import { generateLanes } from './lanes.ts';
import { naiveRateLane } from './naive.ts';
import { rateAll, type Mode } from './rate-all.ts';

/**
 * bench/rating: lanes rated per second by the engine, single-threaded and on 2 worker threads, against a
 * naive baseline (parse + linear table search + haversine + Date per lane) in the same run.
 *   BENCH_LANES       lanes for the engine runs (default 1,000,000)
 *   BENCH_NAIVE_LANES lanes for the naive runs (default 200,000; it is much slower)
 *   BENCH_SEED        PRNG seed (default 42)
 *   BENCH_WORKERS     worker threads (default 2, the machine's cores)
 * Single-threaded figures are the median of 3 passes over the same lanes (the first pass, which also fills
 * the location memo and the distance matrix, is reported as `coldFirstPass`); each worker makes one
 * untimed pass first, then all workers rate their lanes at once and the wall time counts.
 * The registry run rates through a snapshot with a 10% candidate (which also prices the active model
 * for its lanes, for the anomaly check). Writes bench/results/rating-<timestamp>.json.
 */
const LANES = Number(process.env.BENCH_LANES ?? '1000000');
const NAIVE_LANES = Number(process.env.BENCH_NAIVE_LANES ?? '200000');
const SEED = Number(process.env.BENCH_SEED ?? '42');
const WORKERS = Number(process.env.BENCH_WORKERS ?? '2');
const RUNS = 3;
const TARGET = 5000;
const log = (msg: string) => console.log(msg);

const active = SEED_V1;
const candidate: PricingModelParams = {
  ...structuredClone(SEED_V1),
  version: 'v2-bench',
  ratePerMile: { van: 2.1, reefer: 2.4, flatbed: 2.6 },
};
const model = compileModel(active);
const snapshot = createSnapshot({ active: model, candidate, candidateShare: 0.1 });

// A worker's entry does not go through the parent's tsx hooks on Node 20: register tsx inside it first.
const WORKER_BOOT = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})
  .then(({ register }) => { register(); return import(${JSON.stringify(new URL('./worker.ts', import.meta.url).href)}); })`;

const ms = (since: bigint) => Number(process.hrtime.bigint() - since) / 1e6;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

function single(
  mode: Mode,
  lanes: ReturnType<typeof generateLanes>
): { lanesPerSecond: number; runsMs: number[]; checksum: number } {
  rateAll(mode, lanes.slice(0, 50_000), model, snapshot, active, naiveRateLane); // warm-up
  const runsMs: number[] = [];
  let checksum = 0;
  for (let i = 0; i < RUNS; i++) {
    const t = process.hrtime.bigint();
    checksum = rateAll(mode, lanes, model, snapshot, active, naiveRateLane);
    runsMs.push(ms(t));
  }
  return { lanesPerSecond: lanes.length / (median(runsMs) / 1000), runsMs, checksum };
}

async function threaded(
  mode: Mode,
  total: number
): Promise<{ lanesPerSecond: number; wallMs: number; workerMs: number[] }> {
  const per = Math.ceil(total / WORKERS);
  const workers = Array.from(
    { length: WORKERS },
    (_, i) =>
      new Worker(WORKER_BOOT, { eval: true, workerData: { count: per, seed: SEED + 1 + i, mode, active, candidate } })
  );
  const next = (w: Worker) =>
    new Promise<{ ms?: number; count?: number }>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
  await Promise.all(workers.map(next)); // lanes built and code warm
  const t = process.hrtime.bigint();
  const done = workers.map(next);
  for (const w of workers) w.postMessage('go');
  const results = await Promise.all(done);
  const wallMs = ms(t);
  await Promise.all(workers.map((w) => w.terminate()));
  const count = results.reduce((n, r) => n + (r.count ?? 0), 0);
  return { lanesPerSecond: count / (wallMs / 1000), wallMs, workerMs: results.map((r) => r.ms ?? 0) };
}

log(
  `bench/rating: ${fmt(LANES)} lanes (seed ${SEED}), naive baseline on ${fmt(NAIVE_LANES)}, ${WORKERS} workers, ${os.cpus().length} CPUs, node ${process.version}`
);
let t = process.hrtime.bigint();
const lanes = generateLanes(LANES, SEED);
log(`  generated lanes in ${ms(t).toFixed(0)} ms`);

// Same answers: the engine and the baseline agree lane by lane, so the ratio compares equal work.
const checkCount = Math.min(lanes.length, 20_000);
for (let i = 0; i < checkCount; i++) {
  const ours = tryRateLane(lanes[i]!, model);
  assert.notEqual(typeof ours, 'string', String(ours));
  assert.deepEqual(ours, naiveRateLane(lanes[i]!, active), `lane ${i}: ${JSON.stringify(lanes[i])}`);
}
log(`  engine and naive baseline agree on ${fmt(checkCount)} lanes`);

const engine = single('engine', lanes);
log(
  `  engine, 1 thread:            ${fmt(engine.lanesPerSecond)} lanes/s  (runs ${engine.runsMs.map((x) => x.toFixed(0)).join(', ')} ms)`
);
const registry = single('registry', lanes);
log(
  `  registry 10% split, 1 thread: ${fmt(registry.lanesPerSecond)} lanes/s  (runs ${registry.runsMs.map((x) => x.toFixed(0)).join(', ')} ms)`
);
const naiveLanes = lanes.slice(0, NAIVE_LANES);
const naive = single('naive', naiveLanes);
log(
  `  naive, 1 thread:             ${fmt(naive.lanesPerSecond)} lanes/s  (runs ${naive.runsMs.map((x) => x.toFixed(0)).join(', ')} ms)`
);

t = process.hrtime.bigint();
const engineThreads = await threaded('engine', LANES);
log(
  `  engine, ${WORKERS} workers:           ${fmt(engineThreads.lanesPerSecond)} lanes/s  (wall ${engineThreads.wallMs.toFixed(0)} ms; workers ${engineThreads.workerMs.map((x) => x.toFixed(0)).join(', ')} ms)`
);
const naiveThreads = await threaded('naive', NAIVE_LANES);
log(
  `  naive, ${WORKERS} workers:            ${fmt(naiveThreads.lanesPerSecond)} lanes/s  (wall ${naiveThreads.wallMs.toFixed(0)} ms)`
);

const ratio = {
  single: engine.lanesPerSecond / naive.lanesPerSecond,
  workers: engineThreads.lanesPerSecond / naiveThreads.lanesPerSecond,
};
log(`  engine / naive: ${ratio.single.toFixed(1)}x on 1 thread, ${ratio.workers.toFixed(1)}x on ${WORKERS} workers`);
log(
  `  target >= ${fmt(TARGET)} lanes/s on 2 cores: ${engineThreads.lanesPerSecond >= TARGET ? 'met' : 'MISSED'} (${(engineThreads.lanesPerSecond / TARGET).toFixed(0)}x the target)`
);

const figures = {
  bench: 'rating',
  at: new Date().toISOString(),
  node: process.version,
  cpus: os.cpus().length,
  cpuModel: os.cpus()[0]?.model ?? null,
  lanes: LANES,
  naiveLanes: NAIVE_LANES,
  seed: SEED,
  workers: WORKERS,
  model: { active: active.version, candidate: candidate.version, candidateShare: 0.1 },
  coldFirstPassLanesPerSecond: {
    engine1Thread: Math.round(lanes.length / (engine.runsMs[0]! / 1000)),
    naive1Thread: Math.round(naiveLanes.length / (naive.runsMs[0]! / 1000)),
  },
  lanesPerSecond: {
    engine1Thread: Math.round(engine.lanesPerSecond),
    registrySplit1Thread: Math.round(registry.lanesPerSecond),
    engineWorkers: Math.round(engineThreads.lanesPerSecond),
    naive1Thread: Math.round(naive.lanesPerSecond),
    naiveWorkers: Math.round(naiveThreads.lanesPerSecond),
  },
  runsMs: { engine: engine.runsMs, registry: registry.runsMs, naive: naive.runsMs },
  workerWallMs: { engine: engineThreads.wallMs, naive: naiveThreads.wallMs },
  ratio,
  target: { lanesPerSecond: TARGET, met: engineThreads.lanesPerSecond >= TARGET },
  checksums: { engine: engine.checksum, registry: registry.checksum, naive: naive.checksum },
};
const outDir = path.join(projectRoot, 'bench', 'results');
await fs.mkdir(outDir, { recursive: true });
const file = path.join(outDir, `rating-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
await fs.writeFile(file, JSON.stringify(figures, null, 2));
log(`  wrote ${path.relative(projectRoot, file)}`);
