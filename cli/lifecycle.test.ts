import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { waitUntil } from '../testing/receiver-harness.ts';
import { OWNER_FILE } from '../db/embedded.ts';
import { freePort } from '../testing/postgres.ts';
import { spawnControlroom, type ControlroomChild } from '../testing/processes.ts';

/**
 * `controlroom start` on its embedded default, as a real child process with a temp data directory and
 * free ports: Ctrl-C and SIGTERM stop it in order and exit 0 with nothing left running; after a kill -9
 * the next start stops the Postgres left behind and says so; a Postgres owned by a live Control Room is
 * never touched.
 */

let base: string;
let dataDir: string;
let pgDir: string;
const children: ControlroomChild[] = [];

before(async () => {
  base = await fs.mkdtemp(path.join(os.tmpdir(), 'controlroom-lifecycle-'));
  // As root the cluster runs as `postgres`, which must be able to reach the data directory.
  await fs.chmod(base, 0o755);
  dataDir = path.join(base, 'data');
  pgDir = path.join(dataDir, 'postgres');
});
after(async () => {
  for (const child of children) await child.kill();
  const pid = postmasterPid();
  if (pid && alive(pid)) process.kill(pid, 'SIGINT');
  await waitUntil(async () => !pid || !alive(pid), 30_000, 'leftover postgres to stop').catch(() => undefined);
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

function postmasterPid(): number | null {
  try {
    return Number.parseInt(readFileSync(path.join(pgDir, 'postmaster.pid'), 'utf8').split('\n')[0]!, 10);
  } catch {
    return null;
  }
}

/** Pids of every process whose working directory is the data directory (a postmaster and its backends). */
function processesOnDataDir(): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/cwd`) === pgDir && alive(Number(entry))) found.push(Number(entry));
    } catch {
      // gone, or not ours to look at
    }
  }
  return found;
}

/** Pids of the live processes in a process group. */
function processGroup(pgid: number): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const fields = readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]!.split(' ');
      if (Number(fields[2]) === pgid && fields[0] !== 'Z') found.push(Number(entry));
    } catch {
      // gone
    }
  }
  return found;
}

async function startControlRoom(
  options: { ownProcessGroup?: boolean; demo?: boolean } = {}
): Promise<{ run: ControlroomChild; port: number; pgPort: number }> {
  const port = await freePort();
  const pgPort = await freePort();
  const run = spawnControlroom(
    // The Postgres lifecycle alone: the Prometheus/Alertmanager children are cli/start-stack.test.ts's.
    options.demo ? ['start', '--no-stack'] : ['start', '--no-demo', '--no-stack'],
    {
      // With the demo, `start` would serve stand-in regions on fixed ports: name regions (unreachable) instead.
      ...(options.demo
        ? {
            FAILOVER_REGIONS: JSON.stringify([
              {
                name: 'us-east-1',
                role: 'primary',
                base_url: 'http://127.0.0.1:1',
                health_url: 'http://127.0.0.1:1/healthz',
              },
              {
                name: 'us-west-2',
                role: 'secondary',
                base_url: 'http://127.0.0.1:2',
                health_url: 'http://127.0.0.1:2/healthz',
              },
            ]),
          }
        : {}),
      DATABASE_URL: undefined,
      CONTROLROOM_DATA_DIR: dataDir,
      EMBEDDED_PG_PORT: String(pgPort),
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      JOB_CONCURRENCY: '2',
      EXPORTER_REFRESH_MS: '500',
    },
    options
  );
  children.push(run);
  await run.waitForLine(/"msg":"control room started"/, 180_000);
  return { run, port, pgPort };
}

/** Some traffic so the pools hold open connections when the signal comes. */
async function exercise(port: number): Promise<void> {
  for (let i = 0; i < 5; i++) {
    assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
    assert.equal((await fetch(`http://127.0.0.1:${port}/metrics`)).status, 200);
  }
}

/** Waits for the exit, then checks it was clean and nothing is left running. */
async function assertCleanStop(run: ControlroomChild, postgresPid: number) {
  const exit = await run.exited;
  const output = run.output();
  assert.deepEqual(exit, { code: 0, signal: null }, output.slice(-4_000));
  assert.match(output, /"msg":"shutting down"/);
  assert.match(output, /"msg":"stopped"/);
  assert.doesNotMatch(output, /terminating connection/i, 'a session was cut off instead of closed');
  assert.doesNotMatch(output, /"level":50/, 'an error was logged while stopping');
  assert.equal(alive(postgresPid), false, 'the embedded Postgres outlived Control Room');
  assert.deepEqual(processesOnDataDir(), [], 'a Postgres process is still running on the data directory');
  assert.equal(existsSync(path.join(pgDir, 'postmaster.pid')), false);
  assert.equal(existsSync(path.join(pgDir, OWNER_FILE)), false, 'the ownership record outlived its owner');
}

test(
  'Ctrl-C (SIGINT to the whole process group, as a terminal sends it) stops in order and exits 0',
  { timeout: 300_000 },
  async () => {
    const { run, port } = await startControlRoom({ ownProcessGroup: true });
    const postgresPid = postmasterPid()!;
    assert.ok(postgresPid && alive(postgresPid));
    // Postgres runs in its own process group, so the terminal's Ctrl-C does not reach it.
    assert.notEqual(
      Number(readFileSync(`/proc/${postgresPid}/stat`, 'utf8').split(') ')[1]!.split(' ')[2]),
      run.child.pid
    );
    await exercise(port);
    process.kill(-run.child.pid!, 'SIGINT');
    await assertCleanStop(run, postgresPid);
    assert.deepEqual(processGroup(run.child.pid!), [], 'a process of the group is still running');
  }
);

test('SIGTERM of `start` with its demo traffic writing stops in order and exits 0', { timeout: 300_000 }, async () => {
  const { run, port } = await startControlRoom({ demo: true });
  const postgresPid = postmasterPid()!;
  await exercise(port);
  run.child.kill('SIGTERM');
  await assertCleanStop(run, postgresPid);
});

test(
  'after kill -9 the next start stops the Postgres left behind, says so in one line, and starts',
  { timeout: 300_000 },
  async () => {
    const first = await startControlRoom();
    const leftover = postmasterPid()!;
    first.run.child.kill('SIGKILL');
    await first.run.exited;
    assert.equal(alive(leftover), true, 'the test needs the Postgres to outlive a kill -9');

    const second = await startControlRoom();
    const lines = second.run
      .output()
      .split('\n')
      .filter((l) => l.includes('left running'));
    assert.equal(lines.length, 1, second.run.output().slice(-4_000));
    assert.match(
      lines[0]!,
      new RegExp(
        `stopped the embedded Postgres \\(pid ${leftover}\\) left running on .* by Control Room pid ${first.run.child.pid}, which is no longer running`
      )
    );
    assert.equal(alive(leftover), false);
    const postgresPid = postmasterPid()!;
    assert.notEqual(postgresPid, leftover);
    await exercise(second.port);
    second.run.child.kill('SIGTERM');
    await assertCleanStop(second.run, postgresPid);
  }
);

test(
  'a Postgres owned by a live Control Room is never touched: a second start is refused',
  { timeout: 300_000 },
  async () => {
    const first = await startControlRoom();
    const postgresPid = postmasterPid()!;
    const port = await freePort();
    const second = spawnControlroom(['start', '--no-demo', '--no-stack'], {
      DATABASE_URL: undefined,
      CONTROLROOM_DATA_DIR: dataDir,
      EMBEDDED_PG_PORT: String(await freePort()),
      PORT: String(port),
      HOST: '127.0.0.1',
    });
    children.push(second);
    const exit = await second.exited;
    assert.equal(exit.code, 1, second.output());
    assert.match(
      second.output(),
      new RegExp(
        `belongs to a running Control Room \\(pid ${first.run.child.pid}\\) whose Postgres is pid ${postgresPid}: it is left alone`
      )
    );
    assert.equal(postmasterPid(), postgresPid);
    assert.equal(alive(postgresPid), true);
    await exercise(first.port);
    first.run.child.kill('SIGTERM');
    await assertCleanStop(first.run, postgresPid);
  }
);

test(
  'the embedded Postgres dying under a running Control Room stops it with exit code 1',
  { timeout: 300_000 },
  async () => {
    const { run } = await startControlRoom();
    const postgresPid = postmasterPid()!;
    process.kill(postgresPid, 'SIGKILL');
    const exit = await run.exited;
    assert.deepEqual(exit, { code: 1, signal: null }, run.output().slice(-4_000));
    // Whichever notices first, the Postgres watcher or a pg client's error surfacing as uncaught (a
    // connection with no error listener), it is one ordered stop.
    assert.match(
      run.output(),
      /the embedded Postgres exited while Control Room was running|"msg":"uncaught exception"/
    );
    assert.match(run.output(), /"msg":"stopped"/);
    assert.equal(existsSync(path.join(pgDir, OWNER_FILE)), false);
    // The next start recovers the killed cluster (Postgres' own crash recovery) and runs.
    const next = await startControlRoom();
    const nextPid = postmasterPid()!;
    next.run.child.kill('SIGTERM');
    await assertCleanStop(next.run, nextPid);
  }
);
