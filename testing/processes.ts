import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { startStackChild } from '../cli/stack/child.ts';
import { projectRoot } from '../core/config.ts';

export interface RunningProcess {
  pid: number;
  /** Last lines the process printed (stdout and stderr), for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

/**
 * Starts a binary in the test's process group and resolves once `readyUrl` answers 200; rejects with its
 * output if it dies or times out. The same supervision as `controlroom start`'s children (cli/stack/child.ts).
 */
export async function startProcess(
  command: string,
  args: string[],
  readyUrl: string,
  timeoutMs = 30_000
): Promise<RunningProcess> {
  return startStackChild({ name: path.basename(command), command, args, readyUrl, timeoutMs });
}

export interface ControlroomChild {
  child: ChildProcess;
  /** Everything the process printed so far, stdout and stderr interleaved. */
  output(): string;
  /** Settles when the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first output line matching `pattern`; rejects if the process exits first or on timeout. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** SIGKILL if still running, and wait for the exit. */
  kill(): Promise<void>;
}

/**
 * Runs `bin/controlroom.mjs` as an operator would, in a child process. `env` is laid over the test's own
 * environment; an `undefined` value removes a variable (e.g. DATABASE_URL, to get the embedded default).
 * With `ownProcessGroup` the child leads its own process group, so a test can signal the whole group as a
 * terminal's Ctrl-C does (`process.kill(-child.pid, 'SIGINT')`).
 */
export function spawnControlroom(
  args: string[],
  env: Record<string, string | undefined>,
  options: { ownProcessGroup?: boolean } = {}
): ControlroomChild {
  const merged: NodeJS.ProcessEnv = { ...process.env, ...env };
  for (const [key, value] of Object.entries(env)) if (value === undefined) delete merged[key];
  const child = spawn(process.execPath, [path.join(projectRoot, 'bin', 'controlroom.mjs'), ...args], {
    cwd: projectRoot,
    env: merged,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.ownProcessGroup ?? false,
  });
  let text = '';
  const watchers = new Set<() => void>();
  const keep = (chunk: Buffer) => {
    text += chunk.toString('utf8');
    for (const watcher of watchers) watcher();
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    // 'close': the exit code and every byte of output are in.
    child.once('close', (code, signal) => resolve({ code, signal }))
  );
  let done = false;
  void exited.then(() => {
    done = true;
    for (const watcher of watchers) watcher();
  });
  return {
    child,
    output: () => text,
    exited,
    waitForLine(pattern, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const line = text.split('\n').find((l) => pattern.test(l));
          if (line !== undefined) finish(() => resolve(line));
          else if (done)
            finish(() =>
              reject(
                new Error(`controlroom ${args.join(' ')} exited before printing ${pattern}:\n${text.slice(-4_000)}`)
              )
            );
        };
        const timer = setTimeout(
          () =>
            finish(() =>
              reject(
                new Error(
                  `no ${pattern} from controlroom ${args.join(' ')} within ${timeoutMs} ms:\n${text.slice(-4_000)}`
                )
              )
            ),
          timeoutMs
        );
        const finish = (settle: () => void) => {
          clearTimeout(timer);
          watchers.delete(check);
          settle();
        };
        watchers.add(check);
        check();
      });
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Runs a controlroom command to its end (SIGKILL after `timeoutMs`) and returns its exit code and output. */
export async function runControlroom(
  args: string[],
  env: Record<string, string | undefined>,
  timeoutMs = 120_000
): Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }> {
  const run = spawnControlroom(args, env);
  const timer = setTimeout(() => run.child.kill('SIGKILL'), timeoutMs);
  const { code, signal } = await run.exited;
  clearTimeout(timer);
  return { code, signal, output: run.output() };
}
