import fs from 'node:fs';

/**
 * CPU time read from Linux's /proc, in milliseconds (user + system): where a storm's CPU went on a machine
 * whose cores the sender, the receiver and Postgres share. Elsewhere (no /proc) every reading is NaN.
 */
const CLOCK_TICKS_PER_MS = 0.1; // USER_HZ is 100 on Linux

function cpuMsOfStat(path: string): number {
  try {
    const stat = fs.readFileSync(path, 'utf8');
    // Fields after the command name (which may hold spaces) start at state; utime and stime are 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_MS;
  } catch {
    return Number.NaN;
  }
}

/** The calling thread's own CPU time (the sender thread measures itself with it; the main thread, its event loop's). */
export const threadCpuMs = () => cpuMsOfStat('/proc/thread-self/stat');

/** The CPU time of a process tree: the postmaster `rootPid` and every process whose parent it is. */
export function processTreeCpuMs(rootPid: number): number {
  let total = cpuMsOfStat(`/proc/${rootPid}/stat`);
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return Number.NaN;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry) || Number(entry) === rootPid) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === rootPid) total += cpuMsOfStat(`/proc/${entry}/stat`);
    } catch {
      // the process ended meanwhile
    }
  }
  return total;
}
