/**
 * The agent's figures about itself (exported as powerprint.agent.* and process.*, see
 * src/semconv.ts): tick duration, skipped ticks, failed and hung source reads, jobs held and
 * dropped, its own CPU time and resident memory. The exporters are made before the agent (a taken
 * port is said before anything is measured), so they read these through a holder the agent fills
 * in once it exists. `run` and `simulate` leave it empty: nothing is exported.
 */

/** One read of the agent's own figures. */
export interface SelfStats {
  /** The last tick's duration, seconds (monotonic clock); undefined before the first. */
  tickDurationSeconds?: number;
  ticksSkipped: number;
  /**
   * Failed or timed-out reads by source ("rapl", "procfs", ...) and kind ("timeout", "error"):
   * every collector in use with both kinds, zeros included (a rate needs its series from the start).
   */
  sourceFailures: readonly { source: string; kind: string; count: number }[];
  /** Every collector in use, and whether its read is past its deadline and still unanswered now. */
  sourceHung: readonly { source: string; hung: boolean }[];
  jobs: { live: number; finished: number };
  /** Jobs dropped so far by reason ("retention", "max-finished-jobs", "max-jobs"). */
  jobsDropped: readonly { reason: string; count: number }[];
  cpuUserSeconds: number;
  cpuSystemSeconds: number;
  rssBytes: number;
}

/** Where exporters read the agent's figures from (empty until the agent sets its provider). */
export class SelfMetrics {
  private provider: (() => SelfStats) | undefined;

  /** The agent installs the function that reads its figures (once it is constructed). */
  setProvider(provider: () => SelfStats): void {
    this.provider = provider;
  }

  /** The figures now, or undefined when no agent runs (run, simulate). Never throws. */
  read(): SelfStats | undefined {
    try {
      return this.provider?.();
    } catch {
      return undefined;
    }
  }
}
