import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { freePort } from '../testing/postgres.ts';
import { projectRoot } from './config.ts';
import { createLogger, redactSecrets } from './logger.ts';

/** A logger writing into an array of parsed JSON lines. */
function capture(level = 'debug') {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  return { logger: createLogger(level, sink), lines };
}

describe('no secret in logs', () => {
  test('passwords in URLs, secret query parameters and secret-named fields are redacted, in fields, messages and errors', () => {
    const { logger, lines } = capture();
    const url = 'postgres://controlroom:s3cr3t-Pa55@127.0.0.1:54871/controlroom';
    logger.info({ url, nested: { target: [url] }, dataDir: '/var/lib/x' }, 'embedded postgres running');
    logger.warn(`could not reach ${url}`);
    logger.error({ err: new Error(`connect failed for ${url}`) }, 'startup failed');
    logger.info(
      {
        token: 'xoxb-1234',
        SLACK_BOT_TOKEN: 'xoxb-5678',
        headers: { authorization: 'Bearer abc' },
        webhook_secret: 'whsec',
      },
      'config'
    );
    logger.info({ link: 'https://api.example.com/v1?access_token=tok123&page=2' }, 'called');
    logger.info({ plain: 'https://grafana.example.com/d/abc', groupKey: '{}:{alertname="X"}' }, 'kept');
    const all = lines.join('\n');
    for (const secret of ['s3cr3t-Pa55', 'xoxb-1234', 'xoxb-5678', 'Bearer abc', 'whsec', 'tok123']) {
      assert.ok(!all.includes(secret), `${secret} leaked:\n${all}`);
    }
    const first = JSON.parse(lines[0]!);
    assert.equal(
      first.url,
      'postgres://controlroom:[redacted]@127.0.0.1:54871/controlroom',
      'host, port and database stay readable'
    );
    assert.equal(first.dataDir, '/var/lib/x');
    assert.match(JSON.parse(lines[1]!).msg, /postgres:\/\/controlroom:\[redacted\]@127\.0\.0\.1/);
    const error = JSON.parse(lines[2]!).err;
    assert.match(error.message, /\[redacted\]@/);
    assert.ok(!String(error.stack).includes('s3cr3t'), 'the stack repeats the message: redacted too');
    assert.match(JSON.parse(lines[4]!).link, /access_token=\[redacted\]&page=2/);
    const kept = JSON.parse(lines[5]!);
    assert.deepEqual([kept.plain, kept.groupKey], ['https://grafana.example.com/d/abc', '{}:{alertname="X"}']);
  });

  test('redactSecrets leaves text without credentials alone', () => {
    assert.equal(redactSecrets('http://localhost:8471/metrics'), 'http://localhost:8471/metrics');
    assert.equal(redactSecrets('postgres://user@host/db'), 'postgres://user@host/db');
    assert.equal(
      redactSecrets('postgresql://u:p%40ss@h:5432/d?sslmode=require'),
      'postgresql://u:[redacted]@h:5432/d?sslmode=require'
    );
  });

  test(
    '`controlroom start` logs where its embedded database runs, without the password',
    { timeout: 180_000 },
    async () => {
      const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'controlroom-logs-'));
      await fs.chmod(dataDir, 0o755);
      const [pgPort, httpPort] = [await freePort(), await freePort()];
      const child = spawn(process.execPath, [path.join(projectRoot, 'bin/controlroom.mjs'), 'start', '--no-demo'], {
        cwd: projectRoot,
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          CONTROLROOM_DATA_DIR: dataDir,
          EMBEDDED_PG_PORT: String(pgPort),
          PORT: String(httpPort),
          HOST: '127.0.0.1',
          LOG_LEVEL: 'debug',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (c: Buffer) => (output += c.toString('utf8')));
      child.stderr.on('data', (c: Buffer) => (output += c.toString('utf8')));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      try {
        const deadline = Date.now() + 150_000;
        while (!output.includes('control room started') && child.exitCode === null && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 200));
        }
        assert.ok(output.includes('control room started'), `did not start:\n${output.slice(-3000)}`);
        const line = output.split('\n').find((l) => l.includes('embedded postgres running'));
        assert.ok(line, 'the embedded database is logged');
        assert.equal(JSON.parse(line).url, `postgres://controlroom:[redacted]@127.0.0.1:${pgPort}/controlroom`);
        assert.ok(
          !/:controlroom@/.test(output),
          `the embedded password appears in the output:\n${output
            .split('\n')
            .filter((l) => l.includes(':controlroom@'))
            .join('\n')}`
        );
      } finally {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
        await exited;
        clearTimeout(killer);
        // Never leave the child's Postgres behind, even if its shutdown failed.
        const pidFile = path.join(dataDir, 'postgres', 'postmaster.pid');
        if (existsSync(pidFile)) {
          const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
          // Only if that pid is still this cluster's postmaster (a pid can be reused once it is gone).
          const cmdline =
            pid > 0 && existsSync(`/proc/${pid}/cmdline`) ? readFileSync(`/proc/${pid}/cmdline`, 'utf8') : '';
          if (cmdline.includes('postgres') && cmdline.includes(dataDir)) {
            try {
              process.kill(pid, 'SIGQUIT');
            } catch {
              // already gone
            }
          }
          await new Promise((r) => setTimeout(r, 1_000));
        }
        await fs.rm(dataDir, { recursive: true, force: true });
      }
    }
  );
});
