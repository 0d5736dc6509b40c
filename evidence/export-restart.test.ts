import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { waitUntil } from '../testing/receiver-harness.ts';
import { createTestDatabase, type TestDatabase } from '../testing/postgres.ts';
import { runControlroom, spawnControlroom } from '../testing/processes.ts';
import { startPrometheusStack, type PrometheusStack } from '../testing/prometheus-stack.ts';

const KEY = 'export-restart-signing-key-0123456789abcdef';
const period = [
  '--from',
  '2026-01-01T00:00:00Z',
  '--to',
  '2026-01-01T06:00:00Z',
  '--dashboard',
  'controlroom-self',
  '--dashboard',
  'controlroom-regions',
];

let db: TestDatabase;
let prometheus: PrometheusStack;
let hung: net.Server;
const held: net.Socket[] = [];
let tmp: string;

before(async () => {
  db = await createTestDatabase();
  prometheus = await startPrometheusStack({ scrapeTargets: ['127.0.0.1:1'], ruleFiles: [] });
  // A Prometheus that accepts connections and never answers: the export is caught mid-way, with its
  // staging directory created and its queries in flight, when it is killed.
  hung = net.createServer((socket) => held.push(socket));
  await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'controlroom-export-restart-'));
});
after(async () => {
  for (const socket of held) socket.destroy();
  hung.close();
  await prometheus.stop();
  await db.drop();
  await fs.rm(tmp, { recursive: true, force: true });
});

test(
  'kill -9 in the middle of an evidence export: no bundle appears, and the next export to the same --out replaces the leftovers',
  { timeout: 300_000 },
  async () => {
    const out = path.join(tmp, 'bundle');
    const env = { DATABASE_URL: db.url, EVIDENCE_SIGNING_KEY: KEY, LOG_LEVEL: 'warn' };
    const first = spawnControlroom(['evidence', 'export', ...period, '--out', out], {
      ...env,
      PROMETHEUS_URL: `http://127.0.0.1:${(hung.address() as net.AddressInfo).port}`,
    });
    await waitUntil(async () => held.length > 0, 60_000, 'the export to query Prometheus');
    const staging = (await fs.readdir(tmp)).filter((name) => name.startsWith('.bundle.exporting-'));
    assert.deepEqual(staging, [`.bundle.exporting-${first.child.pid}`]);
    await first.kill();

    // Rolled back, as the README says: --out does not exist; only the hidden staging directory is left.
    assert.equal(existsSync(out), false, 'a killed export left a partial bundle at --out');
    assert.ok(existsSync(path.join(tmp, staging[0]!)));

    const second = await runControlroom(['evidence', 'export', ...period, '--out', out], {
      ...env,
      PROMETHEUS_URL: prometheus.prometheusUrl,
    });
    assert.equal(second.code, 0, second.output);
    assert.deepEqual((await fs.readdir(tmp)).sort(), ['bundle'], "the dead export's staging directory was not removed");
    const verify = await runControlroom(['evidence', 'verify', out], { EVIDENCE_SIGNING_KEY: KEY, LOG_LEVEL: 'warn' });
    assert.equal(verify.code, 0, verify.output);
    assert.match(verify.output, /: ok/);
  }
);
