import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { waitUntil } from '../testing/receiver-harness.ts';
import { embeddedPostgresUrl } from '../db/embedded.ts';
import { CHILD_OWNER_FILE } from './stack/child.ts';
import { freePort } from '../testing/postgres.ts';
import { runControlroom, spawnControlroom, type ControlroomChild } from '../testing/processes.ts';

/**
 * `controlroom start` with its Prometheus and Alertmanager, as an operator runs it: a child process on a
 * temp data directory and free ports. A triggered incident goes the whole way through the real binaries
 * (demo traffic → exporter → Prometheus rules → Alertmanager → receiver → freeze, and a usage alert →
 * notify_ops task); Ctrl-C stops every child and exits 0; after a kill -9 the next start stops the
 * children left behind.
 *
 * For the test only, STACK_INTERVAL_SECONDS=1 makes Prometheus scrape and evaluate every second instead
 * of provisioning's 15 s. Nothing else is shortened: Alertmanager's group_wait (30 s) and the usage
 * alerts' `for: 5m` are the real ones, so the notify_ops task arrives about six minutes in.
 */

let base: string;
let regions: http.Server[] = [];
let regionsJson: string;
const children: ControlroomChild[] = [];

before(async () => {
  base = await fs.mkdtemp(path.join(os.tmpdir(), 'controlroom-start-stack-'));
  // As root the embedded cluster runs as `postgres`, which must be able to reach the data directory.
  await fs.chmod(base, 0o755);
  // Two healthy stand-in regions on free ports (the demo's own use fixed ports): no region alert, so the
  // freeze this test sees is the incident's.
  regions = await Promise.all(
    [0, 1].map(
      () =>
        new Promise<http.Server>((resolve) => {
          const server = http.createServer((req, res) => {
            if (req.url === '/healthz')
              res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
            else res.writeHead(404).end();
          });
          server.listen(0, '127.0.0.1', () => resolve(server));
        })
    )
  );
  const url = (s: http.Server) => `http://127.0.0.1:${(s.address() as { port: number }).port}`;
  regionsJson = JSON.stringify([
    { name: 'us-east-1', role: 'primary', base_url: url(regions[0]!), health_url: `${url(regions[0]!)}/healthz` },
    { name: 'us-west-2', role: 'secondary', base_url: url(regions[1]!), health_url: `${url(regions[1]!)}/healthz` },
  ]);
});

after(async () => {
  for (const child of children) await child.kill();
  // Anything a failed test left on the data directories (a kill -9 above) is stopped here.
  for (const pid of processesUnder(base)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  await Promise.all(regions.map((s) => new Promise((r) => s.close(r))));
  await fs.rm(base, { recursive: true, force: true });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Live processes whose working directory is under `dir` (Postgres, Prometheus and Alertmanager chdir into their data). */
function processesUnder(dir: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/cwd`).startsWith(`${dir}/`) && alive(Number(entry))) found.push(Number(entry));
    } catch {
      // gone, or not ours to look at
    }
  }
  return found;
}

const childPid = (dataDir: string, name: 'prometheus' | 'alertmanager') =>
  (JSON.parse(readFileSync(path.join(dataDir, name, CHILD_OWNER_FILE), 'utf8')) as { pid: number }).pid;

interface Started {
  run: ControlroomChild;
  dataDir: string;
  port: number;
  pgPort: number;
  promPort: number;
  amPort: number;
}

async function startWithStack(
  dataDir: string,
  ports?: Omit<Started, 'run' | 'dataDir'>,
  args: string[] = []
): Promise<Started> {
  const p = ports
    ? { port: ports.port, pgPort: ports.pgPort, promPort: ports.promPort, amPort: ports.amPort }
    : { port: await freePort(), pgPort: await freePort(), promPort: await freePort(), amPort: await freePort() };
  const run = spawnControlroom(
    ['start', ...args],
    {
      DATABASE_URL: undefined,
      ALERTMANAGER_WEBHOOK_TOKEN: undefined,
      CONTROLROOM_DATA_DIR: dataDir,
      EMBEDDED_PG_PORT: String(p.pgPort),
      PORT: String(p.port),
      HOST: '127.0.0.1',
      PROMETHEUS_PORT: String(p.promPort),
      ALERTMANAGER_PORT: String(p.amPort),
      STACK_INTERVAL_SECONDS: '1',
      FAILOVER_REGIONS: regionsJson,
      // Only the alert path may notify ops here: the billing tick runs once at start, then not again.
      BILLING_TICK_SECONDS: '86400',
      LOG_LEVEL: 'info',
      LOG_FORMAT: 'json',
      JOB_CONCURRENCY: '2',
    },
    { ownProcessGroup: true }
  );
  children.push(run);
  await run.waitForLine(/"msg":"control room started"/, 240_000);
  return { run, dataDir, ...p };
}

async function assertEverythingStopped(started: Started, pids: number[]) {
  const exit = await started.run.exited;
  const output = started.run.output();
  assert.deepEqual(exit, { code: 0, signal: null }, output.slice(-4_000));
  assert.match(output, /"msg":"stopped"/);
  assert.doesNotMatch(output, /"level":50/, 'an error was logged while stopping');
  for (const pid of pids) assert.equal(alive(pid), false, `pid ${pid} outlived Control Room`);
  assert.deepEqual(processesUnder(started.dataDir), [], 'a process is still running on the data directory');
  for (const name of ['prometheus', 'alertmanager'])
    assert.equal(existsSync(path.join(started.dataDir, name, CHILD_OWNER_FILE)), false);
}

test(
  'a triggered incident pages through real Prometheus and Alertmanager, freezes releases and opens a task; Ctrl-C stops every child and exits 0',
  { timeout: 600_000 },
  async () => {
    const started = await startWithStack(path.join(base, 'run'));
    const { run, dataDir, port, pgPort } = started;
    const output = run.output();
    assert.match(output, new RegExp(`"prometheus":"http://127.0.0.1:${started.promPort}"`));
    assert.match(output, new RegExp(`"alertmanager":"http://127.0.0.1:${started.amPort}"`));
    const prometheus = childPid(dataDir, 'prometheus');
    const alertmanager = childPid(dataDir, 'alertmanager');
    // Children in their own process groups: the terminal's Ctrl-C reaches Control Room, which stops them.
    for (const pid of [prometheus, alertmanager])
      assert.equal(Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[2]), pid);

    // Prometheus scrapes Control Room (once its target discovery has run).
    const targets = await waitUntil(
      async () => {
        const body = (await (await fetch(`http://127.0.0.1:${started.promPort}/api/v1/targets`)).json()) as {
          data: { activeTargets: Array<{ labels: Record<string, string>; scrapeUrl: string; health: string }> };
        };
        return body.data.activeTargets.some((t) => t.health === 'up') ? body.data.activeTargets : null;
      },
      30_000,
      'Prometheus to scrape Control Room'
    );
    assert.deepEqual(
      targets.map((t) => [t.labels.job, t.scrapeUrl]),
      [['controlroom', `http://127.0.0.1:${port}/metrics`]]
    );

    // The operator's commands, against the running instance's embedded Postgres (no DATABASE_URL).
    const trigger = { DATABASE_URL: undefined, EMBEDDED_PG_PORT: String(pgPort) };
    for (const incident of ['error_burst', 'tenant_limits']) {
      const result = await runControlroom(['demo', '--incident', incident], trigger, 60_000);
      assert.equal(result.code, 0, result.output);
    }

    const db = new pg.Pool({ connectionString: embeddedPostgresUrl(pgPort), max: 2 });
    try {
      // The page reaches the receiver (Alertmanager sent this run's token; a wrong one is a 401 and stores nothing).
      const page = await waitUntil(
        async () =>
          (
            await db.query<{ severity: string }>(
              `SELECT severity FROM controlroom.alert_events
              WHERE source = 'alertmanager' AND alertname = 'SLOBurnRate1h' AND labels->>'slo' = 'availability' AND status = 'firing'`
            )
          ).rows[0],
        180_000,
        'the availability page to reach the receiver'
      );
      assert.equal(page.severity, 'P1');
      await run.waitForLine(/"msg":"alert firing: SLOBurnRate1h \(P1\)/, 30_000);

      // The freeze engages.
      const freeze = await waitUntil(
        async () => {
          const body = (await (await fetch(`http://127.0.0.1:${port}/api/freeze`)).json()) as {
            frozen: boolean;
            cause: string;
          };
          return body.frozen ? body : null;
        },
        60_000,
        'the release freeze'
      );
      assert.ok(['slo_page', 'error_budget'].includes(freeze.cause), `cause ${freeze.cause}`);
      await run.waitForLine(/"msg":"release freeze on: /, 30_000);

      // A usage alert (after its `for: 5m`) opens a notify_ops task.
      const task = await waitUntil(
        async () =>
          (
            await db.query<{ id: string; threshold: number }>(
              `SELECT id, (payload->>'threshold')::int AS threshold FROM agent_tasks
              WHERE fn_name = 'notify_ops' AND payload->>'source' = 'alert' ORDER BY id LIMIT 1`
            )
          ).rows[0],
        450_000,
        'a notify_ops task from a usage alert'
      );
      assert.ok([80, 90, 100].includes(task.threshold));
      await run.waitForLine(new RegExp(`"msg":"notify_ops task ${task.id} created"`), 30_000);
    } finally {
      await db.end();
    }

    // No secret in the output: the generated token is only in the 0600 file Alertmanager reads.
    const token = readFileSync(path.join(dataDir, 'alertmanager', 'webhook-token'), 'utf8');
    assert.equal((await fs.stat(path.join(dataDir, 'alertmanager', 'webhook-token'))).mode & 0o077, 0);
    assert.ok(!run.output().includes(token), 'the webhook token was logged');

    process.kill(-run.child.pid!, 'SIGINT');
    await assertEverythingStopped(started, [prometheus, alertmanager]);
    // Kept between starts, like Postgres.
    assert.ok(readdirSync(path.join(dataDir, 'prometheus', 'data')).length > 0);
    assert.ok(existsSync(path.join(dataDir, 'alertmanager', 'data')));
  }
);

test(
  'after kill -9 of Control Room the next start stops the Prometheus and Alertmanager left behind, saying so once each',
  { timeout: 400_000 },
  async () => {
    const first = await startWithStack(path.join(base, 'killed'), undefined, ['--no-demo']);
    const leftovers = {
      prometheus: childPid(first.dataDir, 'prometheus'),
      alertmanager: childPid(first.dataDir, 'alertmanager'),
    };
    first.run.child.kill('SIGKILL');
    await first.run.exited;
    assert.ok(
      alive(leftovers.prometheus) && alive(leftovers.alertmanager),
      'the test needs the children to outlive a kill -9'
    );

    const second = await startWithStack(first.dataDir, first, ['--no-demo']);
    for (const [name, pid] of Object.entries(leftovers)) {
      const lines = second.run
        .output()
        .split('\n')
        .filter((l) => l.includes(`stopped ${name} (pid ${pid}) left running`));
      assert.equal(lines.length, 1, second.run.output().slice(-4_000));
      assert.match(lines[0]!, new RegExp(`by Control Room pid ${first.run.child.pid}, which is no longer running`));
      assert.equal(alive(pid), false);
    }
    const now = [childPid(second.dataDir, 'prometheus'), childPid(second.dataDir, 'alertmanager')];
    second.run.child.kill('SIGTERM');
    await assertEverythingStopped(second, now);
  }
);
