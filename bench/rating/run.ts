import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { projectRoot } from '../../core/config.ts';
import { rateLane, tryRateLane } from '../../control/rating/engine.ts';
import { compileModel, type PricingModelParams } from '../../control/rating/model.ts';
import { createSnapshot } from '../../control/rating/registry.ts';
import { SEED_V1 } from '../../control/rating/seed.ts';
import { runStage, STAGE_LABEL, STAGES, type Stage } from './breakdown.ts';
import { generateLanes } from './lanes.ts';
import { naiveRateLane } from './naive.ts';
import { BATCH_LANES, rateAll, type Mode } from './rate-all.ts';

/**
 * bench/rating: lanes rated per second by the engine and through the model registry, single-threaded and
 * on 2 worker threads, against a naive baseline (parse + linear table search + haversine + Date per lane)
 * in the same run.
 *   BENCH_LANES       lanes for the engine and registry runs (default 1,000,000)
 *   BENCH_NAIVE_LANES lanes for the naive runs (default 200,000; it is much slower)
 *   BENCH_SEED        PRNG seed (default 42)
 *   BENCH_WORKERS     worker threads (default 2, the machine's cores)
 * Single-threaded figures are the median of 3 passes over the same lanes (the first pass, which also fills
 * the location memo, the distance matrix and the split's arm table, is reported as `coldFirstPass`); each
 * worker makes one untimed pass first, then all workers rate their lanes at once and the wall time counts.
 * The registry runs rate through a snapshot with a 10% candidate (which also prices the active model for
 * its lanes, for the anomaly check): per lane (snapshot.tryRate, one object per lane) and in batches of
 * 5,000 (snapshot.rateBatch, columns). Target: the registry path >= 1M lanes/s on one thread. The
 * breakdown times cumulative passes (resolve, + choose, + rate primary, + rate candidate, + compare) built
 * from the engine's own kernels, by CPU time. Beside each wall-clock rate, the rate by process CPU time is
 * printed: on a shared machine it is less disturbed by other processes. Writes bench/results/rating-<timestamp>.json.
 */
const LANES = Number(process.env.BENCH_LANES ?? '1000000');
const NAIVE_LANES = Number(process.env.BENCH_NAIVE_LANES ?? '200000');
const SEED = Number(process.env.BENCH_SEED ?? '42');
const WORKERS = Number(process.env.BENCH_WORKERS ?? '2');
const RUNS = 3;
const TARGET = 5000;
/** Issue 20: the registry path with a 10% candidate, anomaly comparison included, on one thread. */
const REGISTRY_TARGET = 1_000_000;
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

interface Passes {
  lanesPerSecond: number;
  /** The same by process CPU time (user + system), less sensitive to other processes on the machine. */
  cpuLanesPerSecond: number;
  runsMs: number[];
  cpuMs: number[];
  checksum: number;
}

/** Warm-up on 50k lanes, then RUNS timed passes; rates from the median pass. */
function passes(count: number, pass: () => number, warmUp: () => void): Passes {
  warmUp();
  const runsMs: number[] = [];
  const cpuMs: number[] = [];
  let checksum = 0;
  for (let i = 0; i < RUNS; i++) {
    const cpu = process.cpuUsage();
    const t = process.hrtime.bigint();
    checksum = pass();
    runsMs.push(ms(t));
    const used = process.cpuUsage(cpu);
    cpuMs.push((used.user + used.system) / 1000);
  }
  return {
    lanesPerSecond: count / (median(runsMs) / 1000),
    cpuLanesPerSecond: count / (median(cpuMs) / 1000),
    runsMs,
    cpuMs,
    checksum,
  };
}

function single(mode: Mode, lanes: ReturnType<typeof generateLanes>): Passes {
  return passes(
    lanes.length,
    () => rateAll(mode, lanes, model, snapshot, active, naiveRateLane),
    () => rateAll(mode, lanes.slice(0, 50_000), model, snapshot, active, naiveRateLane)
  );
}

const rates = (p: Passes) =>
  `${fmt(p.lanesPerSecond)} lanes/s  (cpu time: ${fmt(p.cpuLanesPerSecond)}/s; runs ${p.runsMs.map((x) => x.toFixed(0)).join(', ')} ms)`;

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

// The registry's batch API gives the per-lane API's answers (the tests check this lane by lane over more
// cases), and for each arm the engine's own rate with that arm's model.
const checkLanes = lanes.slice(0, checkCount);
const batch = snapshot.rateBatch(checkLanes);
for (let i = 0; i < checkCount; i++) {
  const perLane = snapshot.tryRate(checkLanes[i]!);
  assert.deepEqual(batch.rateAt(i), perLane, `lane ${i}: ${JSON.stringify(checkLanes[i])}`);
  assert.ok(typeof perLane !== 'string');
  const chosen = perLane.arm === 'candidate' ? snapshot.candidate! : model;
  assert.equal(perLane.total, rateLane(checkLanes[i]!, chosen).total);
}
log(
  `  registry per lane, registry batch and engine agree on ${fmt(checkCount)} lanes (${fmt(batch.candidateCount)} to the candidate, ${fmt(batch.anomalyCount)} anomalies)`
);

const engine = single('engine', lanes);
log(`  engine, 1 thread:                  ${rates(engine)}`);
const registry = single('registry', lanes);
log(`  registry 10% split, per lane:      ${rates(registry)}`);
const registryBatch = single('registry-batch', lanes);
log(`  registry 10% split, batch ${fmt(BATCH_LANES)}: ${rates(registryBatch)}`);
assert.equal(registryBatch.checksum, registry.checksum, 'rateBatch and tryRate totals differ');
const naiveLanes = lanes.slice(0, NAIVE_LANES);
const naive = single('naive', naiveLanes);
log(`  naive, 1 thread:                   ${rates(naive)}`);

// Breakdown of the registry path: cumulative passes, a stage's cost is its pass minus the one before.
const stagePasses = new Map<Stage, Passes>();
for (const stage of STAGES) {
  stagePasses.set(
    stage,
    passes(
      lanes.length,
      () => runStage(stage, lanes, snapshot),
      () => runStage(stage, lanes.slice(0, 50_000), snapshot)
    )
  );
}
// By CPU time: on a quiet machine it matches the wall clock, on a shared one it is far steadier.
const nsPerLane = (p: Passes) => (median(p.cpuMs) * 1e6) / lanes.length;
const breakdown: Record<string, number> = {};
let previous = 0;
for (const stage of STAGES) {
  const at = nsPerLane(stagePasses.get(stage)!);
  breakdown[stage] = at - previous;
  previous = at;
}
breakdown.writeColumns = nsPerLane(registryBatch) - previous;
breakdown.buildObjects = nsPerLane(registry) - nsPerLane(registryBatch);
const batchNs = nsPerLane(registryBatch);
log(`  registry path breakdown (CPU ns per lane; cumulative passes, so noise can make a small stage negative):`);
const row = (label: string, ns: number, of = batchNs) =>
  log(`    ${label.padEnd(54)} ${ns.toFixed(0).padStart(6)} ns  ${((100 * ns) / of).toFixed(0).padStart(4)}%`);
for (const stage of STAGES) row(STAGE_LABEL[stage], breakdown[stage]!);
row('write columns (rateBatch)', breakdown.writeColumns!);
row('= rateBatch per lane', batchNs);
row('+ one result object per lane (tryRate)', breakdown.buildObjects!);
row('= tryRate per lane', nsPerLane(registry));

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
  registryPerLaneToNaive: registry.lanesPerSecond / naive.lanesPerSecond,
  registryBatchToNaive: registryBatch.lanesPerSecond / naive.lanesPerSecond,
  registryPerLaneToEngine: registry.lanesPerSecond / engine.lanesPerSecond,
};
log(`  engine / naive: ${ratio.single.toFixed(1)}x on 1 thread, ${ratio.workers.toFixed(1)}x on ${WORKERS} workers`);
const registryMet = registry.lanesPerSecond >= REGISTRY_TARGET;
log(
  `  target registry 10% split >= ${fmt(REGISTRY_TARGET)} lanes/s on 1 thread: ${registryMet ? 'MET' : 'NOT MET'} per lane at ${fmt(registry.lanesPerSecond)}/s (${ratio.registryPerLaneToNaive.toFixed(1)}x the naive ${fmt(naive.lanesPerSecond)}/s; ${ratio.registryPerLaneToEngine.toFixed(2)}x the engine alone); batch API ${fmt(registryBatch.lanesPerSecond)}/s ${registryBatch.lanesPerSecond >= REGISTRY_TARGET ? 'MET' : 'NOT MET'} (${ratio.registryBatchToNaive.toFixed(1)}x naive)`
);
log(
  `  target >= ${fmt(TARGET)} lanes/s on 2 cores: ${engineThreads.lanesPerSecond >= TARGET ? 'MET' : 'NOT MET'} (${(engineThreads.lanesPerSecond / TARGET).toFixed(0)}x the target)`
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
    registrySplit1Thread: Math.round(lanes.length / (registry.runsMs[0]! / 1000)),
    registryBatch1Thread: Math.round(lanes.length / (registryBatch.runsMs[0]! / 1000)),
    naive1Thread: Math.round(naiveLanes.length / (naive.runsMs[0]! / 1000)),
  },
  lanesPerSecond: {
    engine1Thread: Math.round(engine.lanesPerSecond),
    registrySplit1Thread: Math.round(registry.lanesPerSecond),
    registryBatch1Thread: Math.round(registryBatch.lanesPerSecond),
    engineWorkers: Math.round(engineThreads.lanesPerSecond),
    naive1Thread: Math.round(naive.lanesPerSecond),
    naiveWorkers: Math.round(naiveThreads.lanesPerSecond),
  },
  cpuLanesPerSecond: {
    engine1Thread: Math.round(engine.cpuLanesPerSecond),
    registrySplit1Thread: Math.round(registry.cpuLanesPerSecond),
    registryBatch1Thread: Math.round(registryBatch.cpuLanesPerSecond),
    naive1Thread: Math.round(naive.cpuLanesPerSecond),
  },
  runsMs: {
    engine: engine.runsMs,
    registry: registry.runsMs,
    registryBatch: registryBatch.runsMs,
    naive: naive.runsMs,
  },
  registryBreakdownCpuNsPerLane: breakdown,
  batchLanes: BATCH_LANES,
  workerWallMs: { engine: engineThreads.wallMs, naive: naiveThreads.wallMs },
  ratio,
  target: { lanesPerSecond: TARGET, met: engineThreads.lanesPerSecond >= TARGET },
  registryTarget: {
    lanesPerSecond: REGISTRY_TARGET,
    met: registryMet,
    batchMet: registryBatch.lanesPerSecond >= REGISTRY_TARGET,
  },
  checksums: {
    engine: engine.checksum,
    registry: registry.checksum,
    registryBatch: registryBatch.checksum,
    naive: naive.checksum,
  },
};
const outDir = path.join(projectRoot, 'bench', 'results');
await fs.mkdir(outDir, { recursive: true });
const file = path.join(outDir, `rating-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
await fs.writeFile(file, JSON.stringify(figures, null, 2));
log(`  wrote ${path.relative(projectRoot, file)}`);
