import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { processAlive, procStat } from '../../db/embedded.ts';

/**
 * A long-running binary (Prometheus, Alertmanager) that Control Room starts, waits for and stops.
 *
 * - **Ready means ready**: start resolves once `readyUrl` answers 200, and rejects with the binary's last
 *   output lines if it exits first or is not ready in time (the half-started process is stopped).
 * - **Own process group** (for `controlroom start`): the terminal's Ctrl-C reaches Control Room only,
 *   which stops its children in order. The price is that a `kill -9` of Control Room leaves them
 *   running, so each records its pid and its owner's in its data directory, and the next start on that
 *   directory stops a child whose owner is gone (SIGTERM, SIGKILL after STOP_GRACE_MS) and says so once.
 *   A child whose owner still runs is never touched: start-up is refused naming the owner.
 * - **Stop**: SIGTERM (both binaries shut down cleanly on it), SIGKILL after STOP_GRACE_MS; resolves
 *   when the process has exited.
 */

export interface StackChild {
  name: string;
  pid: number;
  /** Settles when the process has exited, whether stopped or not. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Last lines the process printed (stdout and stderr), for error messages. */
  output(): string;
  stop(): Promise<void>;
}

export interface StackChildOptions {
  name: string;
  command: string;
  args: string[];
  readyUrl: string;
  /** Variables laid over this process's environment (e.g. a Prometheus replica's PROMETHEUS_REPLICA). */
  env?: Record<string, string>;
  /** Where the owner record is kept; without it nothing is recorded (throwaway test processes). */
  dataDir?: string;
  /** Run in a process group of its own (see above); test processes stay in the caller's group. */
  ownProcessGroup?: boolean;
  timeoutMs?: number;
  onLine?: (line: string) => void;
  /** Told once when a child left running by a dead Control Room on `dataDir` was stopped first. */
  onLeftoverStopped?: (message: string, details: { pid: number; ownerPid: number }) => void;
}

export const CHILD_OWNER_FILE = 'controlroom.owner.json';
const STOP_GRACE_MS = 10_000;

interface OwnerRecord {
  /** The Control Room process that started the child, with its start time (tells a reused pid apart). */
  ownerPid: number;
  ownerStartTicks: string | null;
  pid: number;
  startTicks: string | null;
}

const sameProcess = (pid: number, startTicks: string | null) => {
  if (!processAlive(pid)) return false;
  const stat = procStat(pid);
  return !startTicks || !stat || stat.startTicks === startTicks;
};

async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!processAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return !processAlive(pid);
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/** Stops a child left on `dataDir` by a Control Room that died; refuses a directory whose owner runs. */
async function takeOverDataDir(options: StackChildOptions & { dataDir: string }): Promise<void> {
  const file = path.join(options.dataDir, CHILD_OWNER_FILE);
  let record: OwnerRecord | null = null;
  try {
    record = JSON.parse(await fs.readFile(file, 'utf8')) as OwnerRecord;
  } catch {
    return; // no record: nothing of ours runs on it
  }
  if (record.ownerPid !== process.pid && sameProcess(record.ownerPid, record.ownerStartTicks)) {
    throw new Error(
      `the ${options.name} data directory ${options.dataDir} belongs to a running Control Room (pid ${record.ownerPid}): ` +
        'it is left alone. Stop that Control Room first, or give this one another CONTROLROOM_DATA_DIR (or --no-stack)'
    );
  }
  if (sameProcess(record.pid, record.startTicks)) {
    signal(record.pid, 'SIGTERM');
    if (!(await waitGone(record.pid, STOP_GRACE_MS))) {
      signal(record.pid, 'SIGKILL');
      if (!(await waitGone(record.pid, STOP_GRACE_MS)))
        throw new Error(
          `${options.name} (pid ${record.pid}) left by a dead Control Room did not stop: stop it by hand`
        );
    }
    options.onLeftoverStopped?.(
      `stopped ${options.name} (pid ${record.pid}) left running on ${options.dataDir} by Control Room pid ${record.ownerPid}, which is no longer running`,
      { pid: record.pid, ownerPid: record.ownerPid }
    );
  }
  await fs.rm(file, { force: true });
}

export async function startStackChild(options: StackChildOptions): Promise<StackChild> {
  const { dataDir } = options;
  if (dataDir) {
    await fs.mkdir(dataDir, { recursive: true });
    await takeOverDataDir({ ...options, dataDir });
  }
  const child = spawn(options.command, options.args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.ownProcessGroup ?? false,
    cwd: dataDir,
    ...(options.env ? { env: { ...process.env, ...options.env } } : {}),
  });
  const lines: string[] = [];
  const keep = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) {
      lines.push(line);
      options.onLine?.(line);
    }
    if (lines.length > 200) lines.splice(0, lines.length - 200);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  child.once('error', (error) => lines.push(String(error)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, sig) => resolve({ code, signal: sig }))
  );
  let gone = false;
  void exited.then(() => (gone = true));
  const ownerFile = dataDir ? path.join(dataDir, CHILD_OWNER_FILE) : null;
  if (ownerFile && child.pid) {
    const record: OwnerRecord = {
      ownerPid: process.pid,
      ownerStartTicks: procStat(process.pid)?.startTicks ?? null,
      pid: child.pid,
      startTicks: procStat(child.pid)?.startTicks ?? null,
    };
    await fs.writeFile(ownerFile, JSON.stringify(record));
  }

  let stopping: Promise<void> | null = null;
  const handle: StackChild = {
    name: options.name,
    pid: child.pid ?? -1,
    exited,
    output: () => lines.slice(-40).join('\n'),
    stop() {
      stopping ??= (async () => {
        if (!gone) child.kill('SIGTERM');
        const killer = setTimeout(() => !gone && child.kill('SIGKILL'), STOP_GRACE_MS);
        await exited;
        clearTimeout(killer);
        if (ownerFile) await fs.rm(ownerFile, { force: true });
      })();
      return stopping;
    },
  };

  const timeoutMs = options.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (gone) {
      await handle.stop();
      throw new Error(`${options.name} (${options.command}) exited before it was ready:\n${handle.output()}`);
    }
    try {
      const res = await fetch(options.readyUrl, { signal: AbortSignal.timeout(2_000) });
      if (res.ok) return handle;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  await handle.stop();
  throw new Error(`${options.name} not ready at ${options.readyUrl} within ${timeoutMs} ms:\n${handle.output()}`);
}
