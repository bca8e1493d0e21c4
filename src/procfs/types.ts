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

/** What one process-table sample tells the sampler. Real (/proc) and simulated sources both produce it. */
export interface ProcessSample {
  /**
   * Cumulative CPU seconds per job since it was added (monotone non-decreasing), including the
   * CPU time of descendants that have already exited (reaped children), never counted twice.
   */
  jobCpuSeconds: Map<string, number>;
  /** Cumulative busy CPU seconds of the whole host (all processes), from /proc/stat. */
  hostBusyCpuSeconds: number;
  /** Cumulative total (busy + idle) CPU seconds of the host. */
  hostTotalCpuSeconds: number;
  /** Live member processes: pid → job id (used to match GPU process lists). */
  members: Map<number, string>;
  /** Number of live processes per job. */
  jobProcessCount: Map<string, number>;
}

/** A process table the sampler can sample: /proc (ProcessTracker) or the simulator. */
export interface ProcessSource {
  /** Registers a job rooted at `rootPid`: it and all its descendants belong to the job. */
  addJob(jobId: string, rootPid: number): void;
  /** Samples the table now. Never throws for vanished processes. */
  sample(): ProcessSample;
  /**
   * Selected environment variables of a job's root process (e.g. CUDA_VISIBLE_DEVICES), for
   * device-assignment fallback. Empty when unreadable.
   */
  jobEnvironment(jobId: string, names: readonly string[]): Record<string, string>;
}
