/** Process table as the sampler sees it. Read from /proc (root injected) or simulated. */

/** One process. Identity is (pid, startTicks): a reused PID is a different process. */
export interface ProcessInfo {
  pid: number;
  ppid: number;
  /** Start time since boot in clock ticks (/proc/PID/stat field 22). */
  startTicks: number;
  /** utime + stime, seconds (own CPU time, all threads). */
  cpuSeconds: number;
  /** cutime + cstime, seconds: CPU time of children this process has waited for (reaped). */
  childCpuSeconds: number;
  /** comm, for display. */
  name?: string;
}

/** Key identifying one process across PID reuse. */
export const processKey = (p: { pid: number; startTicks: number }): string => `${p.pid}@${p.startTicks}`;
