/**
 * The measuring side of `powerprint run`, on the shared Monitor: what is cheap is prepared before
 * the spawn (ledger, process tracker, marks file, intensity source); at the spawn the process
 * baseline is taken and the hardware is probed while the command starts; checkpoints of the report
 * are written while it runs; at its exit the final sample, a bounded exporter flush, the report
 * and the summary (always printed, whatever happened to the report and the exporters).
 */
import { existsSync } from "node:fs";
import type { Collector, Exporter, Logger, ProcessSource } from "../core/contracts.js";
import type { CollectorOptions } from "../../collectors/index.js";
import type { ReportContext, ReportV1 } from "../../exporters/report-json.js";
import type { JobIdentity } from "../config/identity.js";
import { CachedIntensity } from "../core/intensity-cache.js";
import { Ledger } from "../core/ledger.js";
import { Monitor, settlesWithin } from "../core/monitor.js";
import { systemClock, type MonitorClock } from "../core/clock.js";
import type { IntensityAt } from "../core/sampler.js";
import type { LedgerSnapshot } from "../core/types.js";
import type { IntensityReading } from "../grid/types.js";
import type { IntensityResolver } from "../grid/resolver.js";
import { errorMessage } from "../errors.js";
import { createResolverFromConfig, type GridConfig } from "../grid/config.js";
import { isKnownZone, staticReading, worldAverage } from "../grid/static.js";
import { MarksReader } from "../jobs/marks.js";
import { CompositeSource, FinalCpuSource, JobTrackingSource } from "../jobs/run-sources.js";
import { CgroupJobSource } from "../cgroup/job-source.js";
import type { JobCgroup } from "../cgroup/job.js";
import { releaseJobCgroup } from "./run-cgroup.js";
import { ownChildPids, ownChildrenCpuSeconds, removeMarksFolder, sweepStaleMarks, type MarksFolder, type SpawnBaseline } from "./run-spawn.js";
import { ProcessTracker } from "../jobs/tracker.js";
import type { Scenario } from "../sim/scenario.js";
import { version } from "../version.js";
import type { parseMeasureOptions } from "./common.js";
import { footprintFromGrid } from "./footprint.js";
import type { WorkConfig } from "../serving/flags.js";
import { scrapeDeadlineMillis, WorkSource } from "../serving/source.js";

/** A background intensity refresh gives up after this long, ms (the tick never waits for it). */
const INTENSITY_DEADLINE_MILLIS = 5_000;
/** A live intensity is asked again after this long, ms (the resolver caches by validity too). */
const INTENSITY_REFRESH_MILLIS = 60_000;
/** How long the end of a run waits for probing still in progress, ms. */
const SETUP_WAIT_MILLIS = 30_000;

export interface RunMeasureInput {
  scenario?: Scenario;
  measure: ReturnType<typeof parseMeasureOptions>;
  grid: GridConfig;
  intervalMillis: number;
  /** Report checkpoints while running, ms (with reportPath). */
  checkpointMillis: number;
  /** Final exporter flush deadline after the command exits, ms. */
  flushTimeoutMillis: number;
  /** --prometheus-linger, ms: the Prometheus endpoint's flush waits this long on top. */
  prometheusLingerMillis: number;
  job: JobIdentity;
  log: Logger & { warnings: string[] };
  collectorOptions: CollectorOptions;
  exporters: Exporter[];
  reportPath?: string;
  quiet?: boolean;
  /** --verbose: the summary adds each device's provenance. */
  verbose?: boolean;
  command: string[];
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
  /** --work-from: the served units of work (src/serving). */
  work?: WorkConfig;
}

/** The intensity while a live provider has not answered yet: the static table for the zone, else the world average (labelled). */
function offlineIntensity(zone: string | undefined): IntensityReading {
  const note = "the live provider had not answered yet";
  if (zone && isKnownZone(zone)) return { ...staticReading(zone), fallback: "static-table", note };
  return { ...worldAverage(), ...(zone ? { zone } : {}), note };
}

/** The simulated side of `run --sim`. */
interface SimParts {
  collectors: Collector[];
  source: ProcessSource;
  intensity?: IntensityAt;
  clock: MonitorClock;
  pue?: number;
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
  private readonly resolver: IntensityResolver;
  private readonly cache?: CachedIntensity;
  private readonly intensity: IntensityAt;
  private readonly pueOrigin: string;
  private readonly footprint: ReturnType<typeof footprintFromGrid>;
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
  private readonly clock: MonitorClock;

  private constructor(private readonly o: RunMeasureInput, sim?: SimParts) {
    const { log } = o;
    // Set up after the spawn: the job's figures count from the baseline read just before it.
    const startMillis = o.baseline?.wallMillis ?? Date.now();
    if (o.cgroup) {
      this.cgroupBaselineSeconds = o.baseline?.cgroupCpuSeconds ?? o.cgroup.cpuSeconds() ?? 0;
      // One CPU read (and one memory.stat read) per tick whatever the job's size: GPU processes are
      // matched through jobOfPid, not a member list (src/cgroup/job-source.ts).
      this.cgroupSource = new CgroupJobSource({ log });
      this.cgroupSource.attach(o.job.id, o.cgroup, this.cgroupBaselineSeconds);
    }
    this.jobSource = new JobTrackingSource(this.tracker, this.cgroupSource && o.cgroup ? { source: this.cgroupSource, cgroup: o.cgroup } : undefined, {
      // The root was just spawned by us: all its CPU (and its descendants') is the job's, also
      // what it used before this measurement was set up.
      countFromProcessStart: o.baseline !== undefined,
    });
    this.finalSource = new FinalCpuSource(this.jobSource, o.job.id);
    this.resolver = createResolverFromConfig(o.grid, { log });
    const live = this.resolver.provider && !["static-table", "fixed"].includes(this.resolver.provider.id);
    if (sim?.intensity) {
      this.intensity = sim.intensity;
    } else if (live) {
      this.cache = new CachedIntensity({ source: this.resolver, initial: offlineIntensity(o.grid.zone), deadlineMillis: INTENSITY_DEADLINE_MILLIS, refreshMillis: INTENSITY_REFRESH_MILLIS, nowMillis: () => Date.now(), log });
      this.intensity = this.cache;
    } else {
      this.intensity = this.resolver;
    }
    const pue = sim?.pue !== undefined && o.measure.pueOrigin === "default" ? sim.pue : o.measure.pue;
    this.pueOrigin = sim?.pue !== undefined && o.measure.pueOrigin === "default" ? "scenario" : o.measure.pueOrigin;
    this.footprint = footprintFromGrid(o.grid);
    this.ledger = new Ledger({ pue, ...this.footprint.ledger }, startMillis);
    this.ledger.registerJob(o.job.id, o.job.name, o.job.attributes, startMillis);
    if (o.work) {
      // The server starts under measurement: its counters count from zero.
      this.work = new WorkSource({ ledger: this.ledger, log, engines: o.work.engines, timeoutMillis: scrapeDeadlineMillis(o.intervalMillis), countFromZero: true });
      this.work.attach(o.job.id, o.work.url);
    }
    this.clock = sim?.clock ?? systemClock;
    this.openMarks();
    this.monitor = new Monitor({
      collectors: [],
      // The final-CPU correction sits below the merge, so the simulated host's busy CPU gets it too.
      processes: sim ? new CompositeSource(this.finalSource, sim.source) : this.finalSource,
      intensity: this.intensity,
      ledger: this.ledger,
      exporters: o.exporters,
      intervalMillis: o.intervalMillis,
      idlePolicy: o.measure.idlePolicy,
      idle: o.measure.idle,
      log,
      clock: this.clock,
      isVisiblePid: (pid: number) => existsSync(`/proc/${pid}`),
      beforeTick: () => {
        this.readMarks();
        this.work?.poll();
      },
    });
    if (o.reportPath) this.monitor.onSnapshot((s) => this.checkpoint(s));
  }

  /** Prepares what is cheap (no probing, no network); throws UsageError for bad input. */
  static async prepare(o: RunMeasureInput): Promise<RunMeasurement> {
    let sim: SimParts | undefined;
    if (o.scenario) {
      const { SimCollector, SimProcessSource, SimWorld, scenarioIntensity } = await import("../sim/world.js");
      const startMillis = Date.now();
      const world = new SimWorld(o.scenario, startMillis);
      // Scenario time runs on the monotonic clock from the start: a wall-clock step must not jump
      // the simulated world (its series are indexed by the time the sampler gives).
      const startMonotonicMillis = performance.now();
      const simNow = () => startMillis + (performance.now() - startMonotonicMillis);
      sim = {
        collectors: [new SimCollector(world)],
        source: new SimProcessSource(world, simNow),
        intensity: scenarioIntensity(world),
        clock: { monotonicMillis: () => performance.now(), wallMillis: simNow },
        pue: o.scenario.pue,
      };
      o.log.info(`simulated devices from scenario '${o.scenario.name}' (${o.scenario.devices.map((d) => d.id).join(", ")})`);
    }
    const m = new RunMeasurement(o, sim);
    // The live intensity is asked in the background from now on (the tick never waits for it).
    m.cache?.prefetch();
    if (sim) {
      // Simulated devices are known before the spawn: their first readings (counters included)
      // are taken now, so the run is covered edge to edge.
      m.monitor.addCollectors(sim.collectors);
      m.setup = m.monitor.start().then(() => void (m.setupDone = true));
      await m.setup;
    }
    if (o.reportPath) m.reportModule = await import("../../exporters/report-json.js");
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
    this.monitor.addJob(this.o.job.id, pid);
    if (this.jobSource.fallbackReason !== undefined) {
      this.o.log.warn(`job tracked by /proc, not its cgroup: ${this.jobSource.fallbackReason}`);
    }
    if (childCpuBaseline === undefined) this.helperCpuSeconds = undefined;
    if (this.o.scenario) return;
    const b = this.o.baseline;
    this.monitor.prime(b?.monotonicMillis, b && {
      ...(b.hostBusyCpuSeconds !== undefined && { hostBusyCpuSeconds: b.hostBusyCpuSeconds, hostTotalCpuSeconds: b.hostTotalCpuSeconds }),
      // The job's CPU counts from the baseline (cgroup) or its start (procfs): 0 at the spawn.
      jobCpuSeconds: new Map([[this.o.job.id, 0]]),
    });
    this.setup = this.setUpDevices(pid, childCpuBaseline).then(
      () => void (this.setupDone = true),
      (err: unknown) => this.o.log.warn(`measurement disabled: ${errorMessage(err)}; the command runs on`),
    );
  }

  private async setUpDevices(pid: number, childCpuBaseline: number | undefined): Promise<void> {
    const { detectCollectors } = await import("../../collectors/index.js");
    const entries = await detectCollectors({ ...this.o.collectorOptions, ...(this.o.baseline && { raplOrigin: this.o.baseline.raplMicrojoules }) });
    const collectors = entries.filter((e) => e.used).map((e) => e.collector);
    this.spawnsHelpers = collectors.some((c) => c.id === "nvidia-smi");
    reportProbe(entries, this.o.log);
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
      for (const [pid, jobId] of this.tracker.sample().members) if (jobId === this.o.job.id) pids.add(pid);
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
    this.cache?.stop();
    this.work?.close();
    await this.releaseCgroup();
    const exportFailures = await this.monitor.shutdownExporters(final, (e) => this.o.flushTimeoutMillis + (e.id === "prometheus" ? this.o.prometheusLingerMillis : 0));
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
      log.warn(`could not build the report: ${errorMessage(err)}`);
    }
    if (report && this.o.reportPath) {
      try {
        reportModule.writeJsonAtomic(this.o.reportPath, report);
      } catch (err) {
        log.warn(`could not write the report to ${this.o.reportPath}: ${errorMessage(err)}; the summary below has the figures`);
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
      const { formatSummary } = await import("../../exporters/summary.js");
      process.stderr.write(formatSummary(report, { verbose: this.o.verbose }) + "\n");
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
    const scenarioSeries = this.o.scenario !== undefined && this.intensity !== this.resolver && this.intensity !== this.cache;
    const fallbacks: Record<string, number> = scenarioSeries ? {} : { ...this.resolver.fallbackCounts() };
    const initial = this.cache?.counts.initial ?? 0;
    if (this.cache && initial > 0) {
      const kind = offlineIntensity(this.o.grid.zone).fallback ?? "world-average";
      fallbacks[kind] = (fallbacks[kind] ?? 0) + initial;
    }
    const stats = this.monitor.stats;
    return mod.buildReport(snap, {
      version: version(),
      complete: extra.complete,
      mode: "run",
      tracking: this.tracking,
      scenario: this.o.scenario?.name,
      command: this.o.command,
      ...(extra.exitCode !== undefined ? { exitCode: extra.exitCode } : {}),
      commandJobId: this.o.job.id,
      idlePolicy: this.o.measure.idlePolicy,
      pueOrigin: this.pueOrigin,
      intensityDescription: scenarioSeries ? `scenario series (zone ${this.o.scenario?.grid?.zone ?? "scenario"})` : this.resolver.describe(),
      intensityZone: this.o.grid.zone ?? "none",
      intensitySource: scenarioSeries ? "scenario" : "none",
      fallbacks,
      ...this.footprint.report,
      warnings: this.o.log.warnings,
      sampler: { ticks: stats.ticks, skippedTicks: stats.skippedTicks, failures: { ...stats.collectorFailures }, intervalMillis: this.o.intervalMillis },
      exportFailures: extra.exportFailures,
      ...this.o.reportContext?.(),
    });
  }

  /** Writes the report marked incomplete at the first interval and then every checkpointMillis (atomic rename). */
  private checkpoint(snap: LedgerSnapshot): void {
    if (!this.o.reportPath || !this.reportModule || !this.monitor.ready) return;
    const now = performance.now();
    if (now - this.lastCheckpointMillis < this.o.checkpointMillis) return;
    this.lastCheckpointMillis = now;
    try {
      const report = this.buildReport(this.reportModule, snap, { exportFailures: {}, complete: false });
      this.reportModule.writeJsonAtomic(this.o.reportPath, report);
    } catch (err) {
      this.o.log.warnOnce("report:checkpoint", `could not checkpoint the report to ${this.o.reportPath}: ${errorMessage(err)} (measuring goes on; tried again each checkpoint)`);
    }
  }

  private openMarks(): void {
    sweepStaleMarks(this.o.log);
    if (this.o.marks) this.marks = new MarksReader(this.o.marks.path);
  }

  private readMarks(): void {
    try {
      for (const m of this.marks?.poll(this.clock.wallMillis()) ?? []) this.ledger.setPhase(this.o.job.id, m.phase, m, m.timeMillis);
    } catch (err) {
      this.o.log.warnOnce("marks:read", `training-loop marks unreadable (${errorMessage(err)}): phases are no longer recorded; measuring goes on`);
      this.marks = undefined;
    }
  }

  private removeMarks(): void {
    removeMarksFolder(this.o.marks, this.o.log);
  }
}

/** One line per fallback collector (what is unavailable and why, what is used instead); the rest in --verbose. */
function reportProbe(entries: Awaited<ReturnType<typeof import("../../collectors/index.js").detectCollectors>>, log: Logger): void {
  const unavailableReason = (id: string): string | undefined => {
    const e = entries.find((x) => x.collector.id === id);
    return e && e.result.status === "unavailable" ? `${id}: ${e.result.reason}` : undefined;
  };
  for (const e of entries) {
    if (e.used && e.result.status === "ok") {
      const methods = [...new Set(e.result.devices.map((d) => d.method))].join("/");
      log.debug(`${e.collector.id}: ${e.result.devices.length} device(s), ${methods} — ${e.role}`);
      if (e.role.includes("fallback") || e.result.devices.some((d) => d.method === "model")) {
        const why = e.collector.id === "cpu-model" ? unavailableReason("rapl") : e.collector.id === "nvidia-smi" ? unavailableReason("nvml") : undefined;
        // One short line; the details (why, TDP lookups, coefficients) with --verbose, in the
        // devices' notes (report) and in 'powerprint probe'.
        log.warn(`${e.role}: using ${e.collector.id} (${methods}); details with --verbose`);
        log.debug(`${e.collector.id}${why ? ` (${why})` : ""}${e.result.note ? `: ${e.result.note}` : ""}`);
      }
    } else if (!e.used && e.result.status === "unavailable" && !e.result.reason.startsWith("not needed")) {
      log.debug(`${e.collector.id} unavailable: ${e.result.reason}`);
    }
  }
}
