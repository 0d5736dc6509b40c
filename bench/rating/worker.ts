import { parentPort, workerData } from 'node:worker_threads';
import { compileModel } from '../../control/rating/model.ts';
import { createSnapshot } from '../../control/rating/registry.ts';
import type { PricingModelParams } from '../../control/rating/model.ts';
import { naiveRateLane } from './naive.ts';
import { generateLanes } from './lanes.ts';
import { rateAll, type Mode } from './rate-all.ts';

/** One benchmark worker: builds its lanes, waits for "go", rates them and reports its time. */
const data = workerData as {
  count: number;
  seed: number;
  mode: Mode;
  active: PricingModelParams;
  candidate: PricingModelParams;
};
const lanes = generateLanes(data.count, data.seed);
const model = compileModel(data.active);
const snapshot = createSnapshot({ active: model, candidate: data.candidate, candidateShare: 0.1 });
// Warm-up: one full pass (optimised code, location memo and distance matrix filled), as the
// single-threaded figure is the median of three passes over the same lanes.
rateAll(data.mode, lanes, model, snapshot, data.active, naiveRateLane);
parentPort!.postMessage({ ready: true });
parentPort!.once('message', () => {
  const started = process.hrtime.bigint();
  const checksum = rateAll(data.mode, lanes, model, snapshot, data.active, naiveRateLane);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  parentPort!.postMessage({ ms, checksum, count: lanes.length });
});
