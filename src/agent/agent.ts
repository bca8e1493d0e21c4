/**
 * The long-running agent: the shared Monitor pipeline plus what is the agent's own: job discovery
 * (AgentSource over the mode's source), lifecycle (finish, retention, drop), state (restore at
 * start, checkpoint every interval and at the end) and the health endpoint.
 */
import type { Collector, Exporter, Logger } from "../core/contracts.js";
import type { MonitorClock } from "../core/clock.js";
import type { IdleConfig } from "../core/energy.js";
import { Ledger, type LedgerOptions } from "../core/ledger.js";
import { Monitor } from "../core/monitor.js";
import type { IntensityAt } from "../core/sampler.js";
import type { IdlePolicy, LedgerSnapshot } from "../core/types.js";
import { errorMessage, UsageError } from "../errors.js";
import { AgentSource, type DiscoveringSource } from "./lifecycle.js";
import { RESTORED_ATTRIBUTE, buildState, loadState, writeStateAtomic, type ResumeState } from "./state.js";

/** Attribute of jobs whose totals include the agent's downtime, counted from counters that survived it. */
export const GAP_ATTRIBUTE = "powerprint.gap";
/**
 * Exit tails: how often the jobs' processes are read between samples (pod and selector modes), ms,
 * and up to how many processes: a job's top-level process that exits right after reaping its
 * workers loses at most this much of their last CPU instead of up to an interval. ~10 µs a
 * process a read: at most 16 × 50 reads a second, well under 1 % of a core.
 */
const CLOSE_WATCH_MILLIS = 20;
const CLOSE_WATCH_MAX_PROCESSES = 16;
/** A counter could have wrapped over a downtime if this many watts over it exceed its range: then its downtime energy is not counted. */
const GAP_MAX_WATTS = 1000;
import { openHealthEndpoint, type HealthServer } from "./health.js";
import { removeStaleTempFiles } from "../files.js";
import type { SelfMetrics, SelfStats } from "../core/self-metrics.js";

/** This process's own CPU seconds (user, system; getrusage) and resident memory, bytes. */
function processFigures(): Pick<SelfStats, "cpuUserSeconds" | "cpuSystemSeconds" | "rssBytes"> {
  const cpu = process.cpuUsage();
  return { cpuUserSeconds: cpu.user / 1e6, cpuSystemSeconds: cpu.system / 1e6, rssBytes: process.memoryUsage.rss() };
}
import { MarksReader } from "../jobs/marks.js";
import type { ListenAddress } from "../../exporters/prometheus.js";
import { AgentWork } from "../serving/agent-work.js";
import type { WorkConfig } from "../config/serving.js";
import { scrapeDeadlineMillis } from "../serving/source.js";

export interface AgentOptions {
  mode: string;
  collectors: Collector[];
  real?: DiscoveringSource;
  sim?: DiscoveringSource;
  intensity: IntensityAt;
  ledgerOptions: LedgerOptions;
  exporters: Exporter[];
  intervalMillis: number;
  idlePolicy: IdlePolicy;
  idle?: IdleConfig;
  log: Logger;
  clock: MonitorClock;
  isVisiblePid?: (pid: number) => boolean;
  /** Host identity written into the state file (a file of another host is set aside). */
  host: string;
  stateFile?: string;
  checkpointIntervalMillis: number;
  retentionMillis: number;
  maxTerminated?: number;
  /** Bound on the jobs held, live and finished (--max-jobs; AgentSource). */
  maxJobs?: number;
  /** Where the exporters read the agent's own figures; the agent fills it in. */
  selfMetrics?: SelfMetrics;
  /** This boot's id (<proc>/sys/kernel/random/boot_id): counters of another boot are not resumed. */
  bootId?: string;
  listen?: ListenAddress;
  /** The health endpoint, already listening (started before the hardware was probed); else started from `listen`. */
  health?: HealthServer;
  /** --strict-endpoints: a --listen address that cannot be bound is exit 2 (else warned, measuring goes on). */
  strictEndpoints?: boolean;
  /** Bound of the final export at shutdown, ms. */
  finalExportDeadlineMillis: number;
  /** Attributes on every discovered job (--tag). */
  extraAttributes?: Record<string, string>;
  /** Training-loop marks file (POWERPRINT_MARKS of the training container) and the job its phases belong to. */
  marks?: { path: string; jobId: string };
  /** --work-from: the served units of work of the pod's job (jobId) or of the newest live selector job (src/serving/agent-work.ts). */
  work?: { config?: WorkConfig; jobId?: string; urlOf?: (jobId: string) => URL | undefined };
}

export class Agent {
  readonly ledger: Ledger;
  readonly source: AgentSource;
  readonly monitor: Monitor;
  private health?: HealthServer;
  private checkpointTimer?: NodeJS.Timeout;
  private keepAlive?: NodeJS.Timeout;
  private lastTickStartMonotonicMillis?: number;
  private stopping?: Promise<LedgerSnapshot>;
  private marksReader?: MarksReader;
  private marksPolled = false;
  private checkpointDue = false;
  private closeWatch?: NodeJS.Timeout;
  /** The restored checkpoint's resume point, if any (resumeDowntime). */
  private restoredResume: ResumeState | undefined;
  private readonly work?: AgentWork;
  /** Checkpoints written, and the last failure (disk full...) if any. */
  readonly checkpoints = { written: 0, failed: 0 };

  constructor(private readonly o: AgentOptions) {
    const startMillis = o.clock.wallMillis();
    this.ledger = new Ledger(o.ledgerOptions, startMillis);
    this.source = new AgentSource({
      real: o.real,
      sim: o.sim,
      ledger: this.ledger,
      retentionMillis: o.retentionMillis,
      maxTerminated: o.maxTerminated,
      maxJobs: o.maxJobs,
      extraAttributes: o.extraAttributes,
      // A job's device assignment (CUDA_/NVIDIA_VISIBLE_DEVICES of its processes) is read when it
      // has processes: at registration a pod's job may have none yet. Discovering sources ignore
      // the root PID of addJob; the Monitor then notes the job's devices from its environment.
      onLive: (id) => {
        this.monitor.addJob(id, 0);
        this.work?.live(id);
      },
      nowMillis: () => o.clock.wallMillis(),
      log: o.log,
    });
    this.restore();
    if (o.work) this.work = new AgentWork({ ledger: this.ledger, log: o.log, ...o.work, timeoutMillis: scrapeDeadlineMillis(o.intervalMillis) });
    this.monitor = new Monitor({
      collectors: o.collectors,
      processes: this.source,
      intensity: o.intensity,
      ledger: this.ledger,
      exporters: o.exporters,
      intervalMillis: o.intervalMillis,
      idlePolicy: o.idlePolicy,
      idle: o.idle,
      log: o.log,
      clock: o.clock,
      isVisiblePid: o.isVisiblePid,
      afterTick: () => {
        if (!this.checkpointDue) return;
        this.checkpointDue = false;
        this.checkpoint();
      },
      beforeTick: () => {
        this.lastTickStartMonotonicMillis = o.clock.monotonicMillis();
        this.pollMarks();
        this.work?.poll();
      },
    });
    o.selfMetrics?.setProvider(() => this.selfStats());
    this.resumeDowntime();
  }

  /**
   * After a restart, counts the time the agent was down where counters survived it (node mode: each
   * pod cgroup's CPU counter and the host's; energy counters: RAPL, NVML): the first interval
   * reaches back to the checkpoint's last sample, CPU seconds exactly, energy from each counter
   * that cannot have wrapped (GAP_MAX_WATTS over the gap within its range) and did not go back.
   * Power and model devices' energy over the downtime is not known: not counted (said). The jobs
   * whose pods counted from saved counters carry powerprint.gap=true. Not in pod and selector
   * modes (process counters do not survive as such: their downtime is not counted), nor across a
   * reboot (every counter restarted).
   */
  private resumeDowntime(): void {
    const r = this.restoredResume;
    if (!r) return;
    const gapMillis = this.o.clock.wallMillis() - r.wallMillis;
    if (gapMillis <= 0) return;
    if (!this.o.bootId || r.bootId !== this.o.bootId) {
      this.o.log.info(`state: the host rebooted since the checkpoint${this.o.bootId ? "" : " (or this boot's id is unreadable)"}: its counters restarted, the downtime is not counted`);
      return;
    }
    if (!this.source.resumeFrom(r.podCpuSeconds ?? {})) return;
    this.monitor.resume({
      originMonotonicMillis: this.o.clock.monotonicMillis() - gapMillis,
      atOrigin: { hostBusyCpuSeconds: r.hostBusyCpuSeconds, hostTotalCpuSeconds: r.hostTotalCpuSeconds, jobsFromZero: true },
      deviceCounters: r.deviceCounters,
      maxWatts: GAP_MAX_WATTS,
    });
    // The resume primed the first sample: the pods found again are known now.
    const resumed = this.source.resumedJobs();
    const names = new Map(this.ledger.snapshot().jobs.map((j) => [j.id, j.name]));
    for (const id of resumed) if (names.has(id)) this.ledger.updateJobIdentity(id, names.get(id)!, { [GAP_ATTRIBUTE]: "true" });
    const counters = Object.keys(r.deviceCounters);
    this.o.log.info(
      `state: the agent was down ${Math.round(gapMillis / 1000)} s since the checkpoint's last sample: counted from counters that survived it: CPU of ${resumed.size} job(s) from their pods' cgroups and the host's /proc/stat` +
        `${counters.length > 0 ? `, energy from ${counters.join(", ")} (unless it may have wrapped)` : ""}; other devices' energy over it is not known (not counted); those jobs carry ${GAP_ATTRIBUTE}=true`,
    );
  }

  /** The agent's own figures (exported as powerprint.agent.* and process.*; see src/core/self-metrics.ts). */
  selfStats(): SelfStats {
    const stats = this.monitor.stats;
    const collectors = this.monitor.collectorIds;
    const failures = new Map<string, number>();
    for (const id of collectors) for (const kind of ["timeout", "error"]) failures.set(`${id}\u0000${kind}`, 0);
    for (const [key, count] of Object.entries(stats.collectorFailures)) {
      // "collector:<id>:timeout", "collector:<id>", or a stage: "procfs", "intensity", "jobs".
      const m = /^collector:(.+?)(?::(timeout))?$/.exec(key);
      const k = `${m ? m[1] : key}\u0000${m?.[2] ?? "error"}`;
      failures.set(k, (failures.get(k) ?? 0) + count);
    }
    const hung = new Set(this.monitor.hungSources);
    const tickMillis = this.monitor.lastTickDurationMillis;
    return {
      ...(tickMillis !== undefined ? { tickDurationSeconds: tickMillis / 1000 } : {}),
      ticksSkipped: stats.skippedTicks,
      sourceFailures: [...failures].map(([k, count]) => {
        const [source, kind] = k.split("\u0000");
        return { source, kind, count };
      }),
      sourceHung: collectors.map((source) => ({ source, hung: hung.has(source) })),
      jobs: this.source.counts,
      jobsDropped: Object.entries(this.source.droppedBy).map(([reason, count]) => ({ reason, count })),
      ...processFigures(),
    };
  }

  /**
   * Phases from the marks file. The first poll applies only the last mark there (the phase now:
   * earlier ones were counted before a restart, or are history); later polls apply each new one.
   */
  private pollMarks(): void {
    const m = this.o.marks;
    if (!m) return;
    this.marksReader ??= new MarksReader(m.path);
    let marks = this.marksReader.poll(this.o.clock.wallMillis());
    if (!this.marksPolled) {
      this.marksPolled = true;
      marks = marks.slice(-1);
    }
    for (const mark of marks) {
      if (this.ledger.hasJob(m.jobId)) this.ledger.setPhase(m.jobId, mark.phase, mark, mark.timeMillis);
    }
  }

  /** The health endpoint's base URL, once started. */
  get healthUrl(): string | undefined {
    return this.health?.url;
  }

  /** Restores the state file (if any) into the fresh ledger; a bad one is set aside with a warning. */
  private restore(): void {
    const path = this.o.stateFile;
    if (!path) return;
    const stale = removeStaleTempFiles(path);
    if (stale.length > 0) this.o.log.info(`state: removed ${stale.length} temp file(s) of an interrupted checkpoint (${stale.slice(0, 3).join(", ")}${stale.length > 3 ? ", ..." : ""})`);
    const r = loadState(path, { host: this.o.host, mode: this.o.mode, nowMillis: this.o.clock.wallMillis() });
    if (r.status === "absent") {
      this.o.log.info(`state: ${path} does not exist yet: starting from zero`);
    } else if (r.status === "set-aside") {
      this.o.log.warn(`state: ${path} ${r.reason}: ${r.movedTo ? `set aside as ${r.movedTo}` : "not used"}; starting from zero`);
    } else {
      this.restoredResume = r.state.resume;
      // Marked only after an unclean stop: then up to one checkpoint interval is missing from its totals.
      this.ledger.restore(r.state.ledger, r.state.final ? {} : { [RESTORED_ATTRIBUTE]: "true" });
      this.source.adoptRestored(r.state.ledger.jobs.map((j) => j.id));
      const at = new Date(r.state.savedMillis).toISOString();
      this.o.log.info(
        `state: restored ${r.state.ledger.jobs.length} job(s) from ${path} (checkpoint of ${at}); ` +
          (r.state.final
            ? "it was written at a clean stop: nothing was lost"
            : `the agent did not stop cleanly: what it measured after that checkpoint (at most --checkpoint-interval) is lost; the restored jobs carry ${RESTORED_ATTRIBUTE}=true`),
      );
    }
  }

  /** Starts the health endpoint, the exporters, the sampling loop and the checkpoints. */
  async start(): Promise<void> {
    this.health = this.o.health ?? (this.o.listen ? await openHealthEndpoint(this.o.listen, { strict: this.o.strictEndpoints === true, log: this.o.log }) : undefined);
    this.health?.attach({ ready: () => this.monitor.ready, notLive: () => this.notLive(), jobs: () => this.jobsView() });
    // The Monitor's timers never hold the process; the agent runs until a signal.
    this.keepAlive = setInterval(() => undefined, 1 << 30);
    await this.monitor.start();
    if (this.source.refreshes && this.o.intervalMillis > CLOSE_WATCH_MILLIS) {
      this.closeWatch = setInterval(() => {
        try {
          this.source.refresh(CLOSE_WATCH_MAX_PROCESSES);
        } catch (err) {
          this.o.log.warnOnce("agent:close-watch", `reading the jobs' processes between samples failed: ${errorMessage(err)} (their tails may be lost; sampling goes on)`);
        }
      }, CLOSE_WATCH_MILLIS);
      this.closeWatch.unref();
    }
    if (this.o.stateFile) {
      // Due on the timer, written after the next tick: a checkpoint never falls inside a tick, so
      // its totals and its resume point are of the same sample.
      this.checkpointTimer = setInterval(() => void (this.checkpointDue = true), this.o.checkpointIntervalMillis);
      this.checkpointTimer.unref();
    }
  }

  /** Writes the state file now. Never throws: a failure is warned about once per kind and measuring goes on. */
  checkpoint(final = false): boolean {
    const path = this.o.stateFile;
    if (!path) return false;
    try {
      const point = this.monitor.resumePoint();
      const pods = this.source.resumeCounters();
      const resume = point && { ...(this.o.bootId && { bootId: this.o.bootId }), ...point, ...(pods && { podCpuSeconds: pods }) };
      const state = buildState(this.ledger.serialize(), { host: this.o.host, mode: this.o.mode, savedMillis: this.o.clock.wallMillis(), final, ...(resume && { resume }) });
      writeStateAtomic(path, state);
      this.checkpoints.written++;
      this.o.log.debug(`state: checkpoint ${this.checkpoints.written} written to ${path}`);
      return true;
    } catch (err) {
      this.checkpoints.failed++;
      const code = (err as NodeJS.ErrnoException).code ?? "error";
      this.o.log.warnOnce(`state:write:${code}`, `state: cannot write ${path} (${errorMessage(err)}); measuring goes on, the next checkpoint retries`);
      return false;
    }
  }

  /**
   * Stops: the final tick, the checkpoint, the final export (bounded), the health endpoint.
   * Idempotent (a second signal waits for the first stop).
   */
  stop(): Promise<LedgerSnapshot> {
    this.stopping ??= (async () => {
      if (this.checkpointTimer) clearInterval(this.checkpointTimer);
      if (this.closeWatch) clearInterval(this.closeWatch);
      const final = await this.monitor.stop();
      this.work?.close();
      this.checkpoint(true);
      await this.monitor.shutdownExporters(final, this.o.finalExportDeadlineMillis);
      await this.health?.close();
      if (this.keepAlive) clearInterval(this.keepAlive);
      return final;
    })();
    return this.stopping;
  }

  /**
   * Why the agent is not live (/healthz 503), or undefined: no sample started for max(30 s, 3
   * intervals), or a source hung (its read past its deadline, unanswered) or failing (reads in a
   * row failed). A restart probes the hardware again (a source refused at probe is left out, said).
   */
  private notLive(): string | undefined {
    const reasons: string[] = [];
    const now = this.o.clock.monotonicMillis();
    const last = this.lastTickStartMonotonicMillis;
    if (last !== undefined && now - last > Math.max(30_000, 3 * this.o.intervalMillis)) reasons.push(`no sample started for ${Math.round((now - last) / 1000)} s`);
    for (const s of this.monitor.sourceStates()) {
      if (s.state === "hung") reasons.push(`source ${s.id} hung: its read has not answered for ${Math.round((now - (s.sinceMonotonicMillis ?? now)) / 1000)} s (it is not read again until it does)`);
      else if (s.state === "failing") reasons.push(`source ${s.id} failing: ${s.detail}`);
    }
    return reasons.length > 0 ? reasons.join("; ") : undefined;
  }

  private jobsView(): unknown {
    const snap = this.monitor.snapshot();
    const pids = new Map<string, number[]>();
    for (const [pid, job] of this.source.lastMembers) {
      const list = pids.get(job);
      if (list) list.push(pid);
      else pids.set(job, [pid]);
    }
    return {
      timeMillis: snap.timeMillis,
      agentPid: process.pid,
      ready: this.monitor.ready,
      terminatedRetained: this.source.terminated.size,
      dropped: this.source.dropped,
      jobs: snap.jobs.map((j) => ({
        id: j.id,
        name: j.name,
        attributes: j.attributes,
        finishedMillis: this.ledger.finishedAt(j.id) ?? null,
        pids: (pids.get(j.id) ?? []).sort((a, b) => a - b),
        cpuSeconds: j.cpuSeconds ?? 0,
        energyJoules: j.energyJoules.total,
      })),
    };
  }
}
