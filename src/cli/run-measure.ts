/**
 * The measuring side of `powerprint run`, on the shared Monitor: what is cheap is prepared before
 * the spawn (ledger, process tracker, marks file, intensity source); at the spawn the process
 * baseline is taken and the hardware is probed while the command starts; checkpoints of the report
 * are written while it runs; at its exit the final sample, a bounded exporter flush, the report
 * and the summary (always printed, whatever happened to the report and the exporters).
 */
import { existsSync } from "node:fs";
import type { Exporter, Logger } from "../core/contracts.js";
import type { ReportContext, ReportV1 } from "../../exporters/report-json.js";
import { Ledger } from "../core/ledger.js";
import { Monitor, settlesWithin } from "../core/monitor.js";
import type { LedgerSnapshot } from "../core/types.js";
import type { RunConfig } from "../config/run.js";
import { errorMessage } from "../errors.js";
import { MarksReader } from "../jobs/marks.js";
import { CompositeSource, FinalCpuSource, JobTrackingSource } from "../jobs/run-sources.js";
import { CgroupJobSource } from "../cgroup/job-source.js";
import type { JobCgroup } from "../cgroup/job.js";
import { createPipeline, type Pipeline } from "../pipeline/index.js";
import { releaseJobCgroup } from "./run-cgroup.js";
import { ownChildPids, ownChildrenCpuSeconds, removeMarksFolder, sweepStaleMarks, type MarksFolder, type SpawnBaseline } from "./run-spawn.js";
import { ProcessTracker } from "../jobs/tracker.js";
import { version } from "../version.js";
import { scrapeDeadlineMillis, WorkSource } from "../serving/source.js";

/** How long the end of a run waits for probing still in progress, ms. */
const SETUP_WAIT_MILLIS = 30_000;

/** What run.ts hands the measurement. */
export interface RunMeasureInput {
  config: RunConfig;
  log: Logger & { warnings: string[] };
  exporters: Exporter[];
  /** More report fields from other outputs (time series, budgets), merged into every report and checkpoint. */
  reportContext?: () => Partial<ReportContext>;
  /** Called with the final report after it was written (CSV, HTML); a failure is warned, the summary still printed. */
  onReport?: (report: ReportV1) => Promise<void>;
  /** The job's own cgroup (chooseTracking); the measurement owns it from here and removes it at the end. */
  cgroup?: JobCgroup;
  /** The marks folder made before the spawn (its path is in the command's environment); removed at the end. */
  marks?: MarksFolder;
  /** The process figures read just before the spawn (see run-spawn.ts); the first interval starts there. */
  baseline?: SpawnBaseline;
}

/** One run's measurement; see the module comment. */
export class RunMeasurement {
  private readonly monitor: Monitor;
  private readonly tracker = new ProcessTracker({ root: "/" });
  private readonly jobSource: JobTrackingSource;
  private readonly cgroupSource?: CgroupJobSource;
  /** The job cgroup's CPU counter at attach, s (0 for a fresh cgroup). */
  private cgroupBaselineSeconds = 0;
  /** A grace kill of the cgroup in progress (awaited before the cgroup is removed). */
  private killing?: Promise<unknown>;
  private readonly finalSource: FinalCpuSource;
  private readonly ledger: Ledger;
  private marks?: MarksReader;
  /** --work-from: the server's endpoint, scraped in the background (src/serving/source.ts). */
  private readonly work?: WorkSource;
  private setup?: Promise<void>;
  private setupDone = false;
  private commandExited = false;
  /** Helpers spawned by probing may be reaped into our cutime: their CPU, or undefined when unknowable (correction off). */
  private helperCpuSeconds: number | undefined = 0;
  private spawnsHelpers = false;
  private lastCheckpointMillis = Number.NEGATIVE_INFINITY;
  private reportModule?: typeof import("../../exporters/report-json.js");
  private readonly c: RunConfig;

  private constructor(
    private readonly o: RunMeasureInput,
    startMillis: number,
    private readonly pipeline: Pipeline,
  ) {
    const { log } = o;
    this.c = o.config;
    if (o.cgroup) {
      this.cgroupBaselineSeconds = o.baseline?.cgroupCpuSeconds ?? o.cgroup.cpuSeconds() ?? 0;
      // One CPU read (and one memory.stat read) per tick whatever the job's size: GPU processes are
      // matched through jobOfPid, not a member list (src/cgroup/job-source.ts).
      this.cgroupSource = new CgroupJobSource({ log });
      this.cgroupSource.attach(this.c.job.id, o.cgroup, this.cgroupBaselineSeconds);
    }
    this.jobSource = new JobTrackingSource(this.tracker, this.cgroupSource && o.cgroup ? { source: this.cgroupSource, cgroup: o.cgroup } : undefined, {
      // The root was just spawned by us: all its CPU (and its descendants') is the job's, also
      // what it used before this measurement was set up.
      countFromProcessStart: o.baseline !== undefined,
    });
    this.finalSource = new FinalCpuSource(this.jobSource, this.c.job.id);
    const sim = this.pipeline.scenario;
    this.ledger = new Ledger(this.pipeline.ledgerOptions, startMillis);
    this.ledger.registerJob(this.c.job.id, this.c.job.name, this.c.job.attributes, startMillis);
    if (this.c.work) {
      // The server starts under measurement: its counters count from zero.
      this.work = new WorkSource({ ledger: this.ledger, log, engines: this.c.work.engines, timeoutMillis: scrapeDeadlineMillis(this.c.intervalMillis), countFromZero: true });
      this.work.attach(this.c.job.id, this.c.work.url);
    }
    this.openMarks();
    this.monitor = new Monitor({
      collectors: [],
      // The final-CPU correction sits below the merge, so the simulated host's busy CPU gets it too.
      processes: sim ? new CompositeSource(this.finalSource, sim.processes()) : this.finalSource,
      intensity: this.pipeline.intensity.intensity,
      ledger: this.ledger,
      exporters: o.exporters,
      intervalMillis: this.c.intervalMillis,
      idlePolicy: this.c.measure.idlePolicy,
      idle: this.c.measure.idle,
      log,
      clock: this.pipeline.clock,
      isVisiblePid: (pid: number) => existsSync(`/proc/${pid}`),
      beforeTick: () => {
        this.readMarks();
        this.work?.poll();
      },
    });
    if (this.c.reportPath) this.monitor.onSnapshot((s) => this.checkpoint(s));
  }

  /** Prepares what is cheap (no probing, no network); throws UsageError for bad input. */
  static async prepare(o: RunMeasureInput): Promise<RunMeasurement> {
    // Set up after the spawn: the job's figures count from the baseline read just before it.
    const startMillis = o.baseline?.wallMillis ?? Date.now();
    // Cheap: no probing, no network (a live intensity provider is asked in the background). A
    // scenario's world starts at the ledger's start: its clock (start + monotonic time since) never
    // reads earlier than the start, so no interval reaches before the job's window.
    const pipeline = await createPipeline(o.config, { log: o.log, time: { kind: "real", startMillis } });
    const m = new RunMeasurement(o, startMillis, pipeline);
    // The live intensity is asked in the background from now on (the tick never waits for it).
    m.pipeline.intensity.prefetch();
    if (m.pipeline.scenario) {
      // Simulated devices are known before the spawn: their first readings (counters included)
      // are taken now, so the run is covered edge to edge.
      m.monitor.addCollectors(await m.pipeline.devices());
      m.setup = m.monitor.start().then(() => void (m.setupDone = true));
      await m.setup;
    }
    if (o.config.reportPath) m.reportModule = await import("../../exporters/report-json.js");
    return m;
  }

  /**
   * The command was spawned as `pid` (a moment ago: this measurement is set up after the spawn, so
   * the command never waits for it): accounting reaches back to the baseline read just before the
   * spawn (RunMeasureInput.baseline), the hardware is probed meanwhile (real devices) and sampling
   * starts once it is known. `childCpuBaseline`: our cutime read just before the spawn (undefined:
   * the final CPU correction is off). `cgroupMove`: whether the root was moved into the job's
   * cgroup at the spawn (run.ts does it before the handshake lets the command exec; an error: the
   * job is tracked by /proc from its first instruction on); undefined: not tried (moved here).
   */
  onSpawn(pid: number, childCpuBaseline: number | undefined, cgroupMove?: { status: "ok" } | { status: "error"; reason: string }): void {
    this.jobSource.moved = cgroupMove;
    this.monitor.addJob(this.c.job.id, pid);
    if (this.jobSource.fallbackReason !== undefined) {
      this.o.log.warn(`job tracked by /proc, not its cgroup: ${this.jobSource.fallbackReason}`);
    }
    if (childCpuBaseline === undefined) this.helperCpuSeconds = undefined;
    if (this.c.scenario) return;
    const b = this.o.baseline;
    this.monitor.prime(b?.monotonicMillis, b && {
      ...(b.hostBusyCpuSeconds !== undefined && { hostBusyCpuSeconds: b.hostBusyCpuSeconds, hostTotalCpuSeconds: b.hostTotalCpuSeconds }),
      // The job's CPU counts from the baseline (cgroup) or its start (procfs): 0 at the spawn.
      jobCpuSeconds: new Map([[this.c.job.id, 0]]),
    });
    this.setup = this.setUpDevices(pid, childCpuBaseline).then(
      () => void (this.setupDone = true),
      (err: unknown) => this.o.log.warn(`measurement disabled: ${errorMessage(err)}; the command runs on`),
    );
  }

  private async setUpDevices(pid: number, childCpuBaseline: number | undefined): Promise<void> {
    const collectors = await this.pipeline.devices(this.o.baseline && { raplOrigin: this.o.baseline.raplMicrojoules });
    this.spawnsHelpers = collectors.some((c) => c.id === "nvidia-smi");
    this.noteHelperCpu(pid, childCpuBaseline);
    this.monitor.addCollectors(collectors);
    await this.monitor.start();
  }

  /**
   * Probing ran while the command started: CPU of helper processes it spawned (lscpu, nvidia-smi)
   * is in our cutime too. Known exactly when all were reaped before the command exits; otherwise
   * (one still running, or the command already gone) the final CPU correction is turned off.
   */
  private noteHelperCpu(pid: number, childCpuBaseline: number | undefined): void {
    if (childCpuBaseline === undefined) return;
    const others = ownChildPids()?.filter((p) => p !== pid);
    const now = ownChildrenCpuSeconds();
    if (others === undefined || others.length > 0 || this.commandExited || now === undefined) {
      this.o.log.debug(`final CPU correction off: ${others?.length ? `helper process(es) ${others.join(", ")} still running` : "the probe's helpers cannot be told apart from the command"}`);
      this.helperCpuSeconds = undefined;
      return;
    }
    this.helperCpuSeconds = now - childCpuBaseline;
  }

  /** What the job is tracked by (the report's `tracking`). */
  get tracking(): "cgroup" | "procfs" {
    return this.jobSource.tracking;
  }

  /** Live members of the job (its cgroup's, or the tracker's membership refreshed now), the root included. */
  jobPids(rootPid: number): number[] {
    const pids = new Set<number>([rootPid]);
    if (this.tracking === "cgroup" && this.o.cgroup) {
      for (const pid of this.o.cgroup.pids()) pids.add(pid);
      return [...pids];
    }
    try {
      for (const [pid, jobId] of this.tracker.sample().members) if (jobId === this.c.job.id) pids.add(pid);
    } catch {
      /* /proc unreadable: the root only */
    }
    return [...pids];
  }

  /** The command exited (reaped). */
  noteExit(): void {
    this.commandExited = true;
  }

  /**
   * The grace kill of a cgroup-tracked job: every member, whatever it did to leave the process tree
   * (`cgroup.kill` on cgroup2, else SIGKILL to each member until none is left). false when the job
   * is tracked by /proc (the caller signals the members it knows).
   */
  killJob(): boolean {
    if (this.tracking !== "cgroup" || !this.o.cgroup) return false;
    const cgroup = this.o.cgroup;
    this.killing = cgroup.kill().then(
      (r) => r.remaining > 0 && this.o.log.warn(`${r.remaining} process(es) still in ${cgroup.dir} after SIGKILL (${r.method})`),
      (err: unknown) => this.o.log.warn(`could not kill the job's cgroup ${cgroup.dir}: ${errorMessage(err)}`),
    );
    return true;
  }

  /**
   * The command's total CPU seconds (kernel figure): with cgroup tracking, the cgroup's counter now
   * (after the command exited, before removal: every descendant, daemons included); else our
   * cutime growth since `baseline`.
   */
  setFinalCpu(baseline: number | undefined): void {
    if (this.tracking === "cgroup" && this.o.cgroup) {
      const total = this.o.cgroup.cpuSeconds();
      if (total !== undefined) this.finalSource.finalCpuSeconds = total - this.cgroupBaselineSeconds;
      return;
    }
    const after = ownChildrenCpuSeconds();
    if (this.spawnsHelpers || baseline === undefined || after === undefined || this.helperCpuSeconds === undefined) return;
    this.finalSource.finalCpuSeconds = after - baseline - this.helperCpuSeconds;
  }

  /**
   * The final sample, the bounded flush, the report (complete) and the summary. `started` false:
   * the command could not be spawned (the report is still written; no summary of nothing).
   */
  async finish(f: { exitCode: number; started: boolean }): Promise<void> {
    const { log } = this.o;
    // Probing still running (a slow nvidia-smi): its own timeouts bound it; this bound is the safety net.
    if (this.setup && !(await settlesWithin(this.setup, SETUP_WAIT_MILLIS))) {
      log.warn(`hardware probing still running ${SETUP_WAIT_MILLIS / 1000} s after the command exited: the figures end with what was measured so far`);
    }
    const final = this.setupDone || !this.setup ? await this.monitor.stop() : await this.monitor.stop({ finalTick: false });
    this.pipeline.intensity.stop();
    this.work?.close();
    await this.releaseCgroup();
    const exportFailures = await this.monitor.shutdownExporters(final, (e) => this.c.flushTimeoutMillis + (e.id === "prometheus" ? this.c.export.prometheusLingerMillis : 0));
    if (this.marks && (this.marks.malformed > 0 || this.marks.oversized > 0 || this.marks.badCounters > 0)) {
      const bad = this.marks.badCounters > 0 ? `, and ${this.marks.badCounters} counter(s) that were not non-negative integers` : "";
      log.warn(`training-loop marks: skipped ${this.marks.malformed} malformed and ${this.marks.oversized} oversized line(s)${bad} (expected JSON lines like {"phase": "train", "step": 1})`);
    }
    this.removeMarks();
    const reportModule = this.reportModule ?? (await import("../../exporters/report-json.js"));
    let report: ReportV1 | undefined;
    try {
      report = this.buildReport(reportModule, final, { exitCode: f.exitCode, exportFailures, complete: true });
    } catch (err) {
      // Named by what was asked for: the report model feeds the summary too.
      log.warn(`could not build the ${this.c.reportPath ? "report" : "summary"}: ${errorMessage(err)}`);
    }
    if (report && this.c.reportPath) {
      try {
        reportModule.writeJsonAtomic(this.c.reportPath, report);
      } catch (err) {
        log.warn(`could not write the report to ${this.c.reportPath}: ${errorMessage(err)}; the summary below has the figures`);
      }
    }
    if (report && this.o.onReport) {
      try {
        await this.o.onReport(report);
      } catch (err) {
        log.warn(`could not write an output: ${errorMessage(err)}`);
      }
    }
    // A command that never started used no energy: its summary would only show zeros next to
    // "no device could be read"; the not-found/not-executable line already said what happened.
    // -q keeps the summary (it silences progress and the live line only).
    if (f.started && report) {
      const { detailsFileOf, formatSummary } = await import("../../exporters/summary.js");
      const detailsFile = detailsFileOf({ reportPath: this.c.reportPath, htmlPath: this.c.outputs.htmlPath });
      process.stderr.write(formatSummary(report, { verbose: this.c.verbose, detailsFile }) + "\n");
    }
  }

  /** After the last read of the job cgroup: its files released, a grace kill awaited, the cgroup removed (or left to the processes still in it). */
  private async releaseCgroup(): Promise<void> {
    this.cgroupSource?.close();
    if (!this.o.cgroup) return;
    await this.killing;
    try {
      await releaseJobCgroup(this.o.cgroup, this.o.log);
    } catch (err) {
      this.o.log.warn(`could not remove the job's cgroup ${this.o.cgroup.dir}: ${errorMessage(err)}`);
    }
  }

  private buildReport(
    mod: typeof import("../../exporters/report-json.js"),
    snap: LedgerSnapshot,
    extra: { exitCode?: number; exportFailures: Record<string, number>; complete: boolean },
  ): ReportV1 {
    const stats = this.monitor.stats;
    return mod.buildReport(snap, {
      version: version(),
      complete: extra.complete,
      mode: "run",
      tracking: this.tracking,
      command: this.c.command,
      ...(extra.exitCode !== undefined ? { exitCode: extra.exitCode } : {}),
      commandJobId: this.c.job.id,
      ...this.pipeline.reportFields(),
      warnings: this.o.log.warnings,
      sampler: { ticks: stats.ticks, skippedTicks: stats.skippedTicks, failures: { ...stats.collectorFailures }, intervalMillis: this.c.intervalMillis },
      exportFailures: extra.exportFailures,
      ...this.o.reportContext?.(),
    });
  }

  /** Writes the report marked incomplete at the first interval and then every checkpointMillis (atomic rename). */
  private checkpoint(snap: LedgerSnapshot): void {
    if (!this.c.reportPath || !this.reportModule || !this.monitor.ready) return;
    const now = performance.now();
    if (now - this.lastCheckpointMillis < this.c.checkpointMillis) return;
    this.lastCheckpointMillis = now;
    try {
      const report = this.buildReport(this.reportModule, snap, { exportFailures: {}, complete: false });
      this.reportModule.writeJsonAtomic(this.c.reportPath, report);
    } catch (err) {
      this.o.log.warnOnce("report:checkpoint", `could not checkpoint the report to ${this.c.reportPath}: ${errorMessage(err)} (measuring goes on; tried again each checkpoint)`);
    }
  }

  private openMarks(): void {
    sweepStaleMarks(this.o.log);
    if (this.o.marks) this.marks = new MarksReader(this.o.marks.path);
  }

  private readMarks(): void {
    try {
      for (const m of this.marks?.poll(this.pipeline.clock.wallMillis()) ?? []) this.ledger.setPhase(this.c.job.id, m.phase, m, m.timeMillis);
    } catch (err) {
      this.o.log.warnOnce("marks:read", `training-loop marks unreadable (${errorMessage(err)}): phases are no longer recorded; measuring goes on`);
      this.marks = undefined;
    }
  }

  private removeMarks(): void {
    removeMarksFolder(this.o.marks, this.o.log);
  }
}
