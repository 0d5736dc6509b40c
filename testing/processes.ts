import { spawn, type ChildProcess } from 'node:child_process';

export interface RunningProcess {
  child: ChildProcess;
  /** Last lines the process printed (stdout and stderr), for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

/** Starts a binary and resolves once `readyUrl` answers 200; rejects with its output if it dies or times out. */
export async function startProcess(
  command: string,
  args: string[],
  readyUrl: string,
  timeoutMs = 30_000,
): Promise<RunningProcess> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const keep = (chunk: Buffer) => {
    lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    if (lines.length > 200) lines.splice(0, lines.length - 200);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  child.once('error', (error) => lines.push(String(error)));
  const running: RunningProcess = {
    child,
    output: () => lines.slice(-40).join('\n'),
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exit;
      clearTimeout(killer);
    },
  };

  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exited) throw new Error(`${command} exited before it was ready:\n${running.output()}`);
    try {
      const res = await fetch(readyUrl);
      if (res.ok) return running;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  await running.stop();
  throw new Error(`${command} not ready at ${readyUrl} within ${timeoutMs} ms:\n${running.output()}`);
}
