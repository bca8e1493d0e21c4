import { constants, accessSync, lstatSync } from "node:fs";
import { availableParallelism, cpus } from "node:os";
import { dirname, resolve } from "node:path";
import type { JobTotals, LedgerSnapshot } from "../src/core/types.js";
import { ExportError, UsageError, errorMessage } from "../src/errors.js";
import { writeFileAtomic } from "../src/files.js";
import type { BudgetReport, ReportV1 } from "./report-schema.js";
import type { TimeSeries } from "./timeseries.js";
import { averageIntensity, averageWatts, jobFigures, phaseFigures, sumCounts, type WorkCounts } from "../src/core/figures.js";

export type { ReportV1 };

/** Everything a report is built from besides the ledger. */
export interface ReportContext {
  version: string;
  mode: "run" | "simulate" | "agent";
  /** run: the job tracked by its own cgroup or by /proc. */
  tracking?: "cgroup" | "procfs";
  scenario?: string;
  command?: string[];
  exitCode?: number;
  /** run: the job of the command (its exit code is that job's; a scenario's jobs of `run --sim` have none). */
  commandJobId?: string;
  idlePolicy: "attribute" | "separate";
  pueOrigin: string;
  /** false for a checkpoint written during the run (default true). */
  complete?: boolean;
  intensityDescription: string;
  intensityZone: string;
  intensitySource: string;
  fallbacks: Record<string, number>;
  wueLitersPerKwh: number;
  waterIntensityLitersPerKwh: number;
  waterOrigin: string;
  pricePerKwh: number;
  currency: string;
  warnings: string[];
  sampler: { ticks: number; skippedTicks: number; failures: Record<string, number>; intervalMillis: number };
  exportFailures: Record<string, number>;
  /** Downsampled series (TimeSeriesRecorder), for charts. */
  timeSeries?: TimeSeries;
  /** Budgets set and crossed (BudgetWatcher). */
  budget?: BudgetReport;
  /** Logical CPUs of the host (default: this machine's; a simulation passes its scenario's cores). */
  logicalCpus?: number;
}

/** This machine's logical CPUs (what CodeCarbon's cpu_count counts: psutil.cpu_count()). */
function machineLogicalCpus(): number {
  return Math.max(1, cpus().length || availableParallelism());
}

/** The additive totals of a job or bucket, as the report has them. */
const pickTotals = (t: JobTotals) => ({
  id: t.id,
  name: t.name,
  attributes: t.attributes,
  energyJoules: t.energyJoules,
  facilityEnergyJoules: t.facilityEnergyJoules,
  emissionsGrams: t.emissionsGrams,
  embodiedEmissionsGrams: t.embodiedEmissionsGrams,
  waterLiters: t.waterLiters,
  cost: t.cost,
  phaseEnergyJoules: t.phaseEnergyJoules,
  deviceEnergyJoules: t.deviceEnergyJoules,
  cpuSeconds: t.cpuSeconds ?? 0,
  // --work-from: the serving figures as the ledger computed them (src/core/serving.ts).
  ...(t.serving ? { serving: t.serving } : {}),
});

type ReportJob = ReportV1["jobs"][number];
type ReportPhase = NonNullable<ReportJob["phases"]>[number];
/** A phase's measured totals (the report model adds its figures). */
type PhaseInput = Pick<ReportPhase, "name" | "energyJoules" | "emissionsGrams" | "durationSeconds" | "samples" | "tokens" | "steps">;

/**
 * A job of the report: its additive totals, its window and duration, its phases, and every figure
 * derived from them (src/core/figures.ts), computed here once. `powerprint report` calls this again
 * on merged sums, so a merged job's figures come from the same code.
 */
export function reportJob(
  totals: ReturnType<typeof pickTotals> & Partial<Pick<ReportJob, "exitCode">>,
  window: { startedAt: string; endedAt: string; durationSeconds: number },
  phases: readonly PhaseInput[] | undefined,
  work: WorkCounts,
): ReportJob {
  const energy = totals.energyJoules.total;
  const counted = phases && phases.length > 0;
  // The job's work is what its phases counted (the same as its last marked totals unless a
  // counter restarted); without phases, what it reported.
  const counts: WorkCounts = counted
    ? { samples: sumCounts(phases.map((p) => p.samples)), tokens: sumCounts(phases.map((p) => p.tokens)), steps: sumCounts(phases.map((p) => p.steps)) }
    : work;
  const { joulesPerSample, joulesPerToken, joulesPerStep, emissionsGramsPerMillionTokens, ...rest } = jobFigures({
    ...counts,
    energyJoules: totals.energyJoules,
    facilityEnergyJoules: totals.facilityEnergyJoules,
    emissionsGrams: totals.emissionsGrams,
    durationSeconds: window.durationSeconds,
  });
  // Work and per-unit fields only for a job that reported work (marks, serving): no row of nulls for the rest.
  const worked = counted || counts.samples !== null || counts.tokens !== null || counts.steps !== null;
  return {
    ...totals,
    ...window,
    ...rest,
    ...(worked ? { ...counts, joulesPerSample, joulesPerToken, joulesPerStep, emissionsGramsPerMillionTokens } : {}),
    ...(counted ? { phases: phases.map((p) => ({ ...p, ...phaseFigures(p, energy) })) } : {}),
  };
}

const orNull = (x: number | undefined): number | null => (x === undefined ? null : x);

/** A ledger job as the report has it (its window from the snapshot). */
function jobOfSnapshot(t: JobTotals, s: LedgerSnapshot, exitCode: number | undefined): ReportJob {
  const phases = t.phases?.map((p) => ({
    name: p.name,
    energyJoules: p.energyJoules,
    emissionsGrams: p.emissionsGrams,
    durationSeconds: p.durationSeconds,
    samples: orNull(p.samples),
    tokens: orNull(p.tokens),
    steps: orNull(p.steps),
  }));
  const window = {
    startedAt: isoTime(t.firstSeenMillis),
    endedAt: isoTime(t.finishedMillis ?? s.timeMillis),
    durationSeconds: (t.durationMillis ?? 0) / 1000,
  };
  const work = { samples: orNull(t.work?.samples), tokens: orNull(t.work?.tokens), steps: orNull(t.work?.step) };
  return reportJob({ ...pickTotals(t), ...(exitCode !== undefined ? { exitCode } : {}) }, window, phases, work);
}

/** The host's totals (every job and both buckets: the devices' whole energy), and the jobs' part of them. */
export function reportTotals(jobs: readonly ReturnType<typeof pickTotals>[], buckets: { system: ReturnType<typeof pickTotals>; idle: ReturnType<typeof pickTotals> }, durationSeconds: number): ReportV1["totals"] {
  const all = [...jobs, buckets.system, buckets.idle];
  const sum = (xs: readonly ReturnType<typeof pickTotals>[], f: (t: ReturnType<typeof pickTotals>) => number) => xs.reduce((a, t) => a + f(t), 0);
  const energyJoules = sum(all, (t) => t.energyJoules.total);
  const facilityEnergyJoules = sum(all, (t) => t.facilityEnergyJoules);
  const emissionsGrams = sum(all, (t) => t.emissionsGrams);
  return {
    energyJoules,
    facilityEnergyJoules,
    emissionsGrams,
    energyByKindJoules: { cpu: sum(all, (t) => t.energyJoules.cpu), gpu: sum(all, (t) => t.energyJoules.gpu), memory: sum(all, (t) => t.energyJoules.memory) },
    embodiedEmissionsGrams: sum(all, (t) => t.embodiedEmissionsGrams),
    waterLiters: sum(all, (t) => t.waterLiters),
    cost: sum(all, (t) => t.cost),
    cpuSeconds: sum(all, (t) => t.cpuSeconds),
    averagePowerWatts: averageWatts(energyJoules, durationSeconds),
    intensityAverageGramsPerKwh: averageIntensity(emissionsGrams, facilityEnergyJoules),
    jobs: {
      count: jobs.length,
      energyJoules: sum(jobs, (t) => t.energyJoules.total),
      facilityEnergyJoules: sum(jobs, (t) => t.facilityEnergyJoules),
      emissionsGrams: sum(jobs, (t) => t.emissionsGrams),
      waterLiters: sum(jobs, (t) => t.waterLiters),
      cost: sum(jobs, (t) => t.cost),
    },
  };
}

/** ISO 8601 UTC text of an epoch-ms time (an out-of-range one as the epoch, never a throw). */
const isoTime = (millis: number): string => new Date(Number.isFinite(millis) && Math.abs(millis) <= 8.64e15 ? millis : 0).toISOString();

/** Builds the v1 report from a final ledger snapshot. */
export function buildReport(s: LedgerSnapshot, c: ReportContext): ReportV1 {
  // The monotonic window when known: a wall-clock step moves startedAt/endedAt, not the duration.
  const durationSeconds = (s.elapsedMillis ?? s.timeMillis - s.startMillis) / 1000;
  const buckets = { system: pickTotals(s.buckets.system), idle: pickTotals(s.buckets.idle) };
  const commandJob = c.mode !== "run" ? undefined : (c.commandJobId ?? (s.jobs.length === 1 ? s.jobs[0].id : undefined));
  const jobs = s.jobs.map((t) => jobOfSnapshot(t, s, t.id === commandJob ? c.exitCode : undefined));
  // No --zone, no provider, no fixed value: the world average is the documented default, not a
  // fallback from something that failed (said once, as information).
  const noZone = c.intensityZone === "none" && s.grid?.source === "world-average";
  const fallbacks = { ...c.fallbacks };
  if (noZone) delete fallbacks["world-average"];
  return {
    schemaVersion: 1,
    complete: c.complete ?? true,
    tool: { name: "powerprint", version: c.version },
    mode: c.mode,
    ...(c.tracking !== undefined ? { tracking: c.tracking } : {}),
    ...(c.scenario !== undefined ? { scenario: c.scenario } : {}),
    ...(c.command !== undefined ? { command: c.command } : {}),
    ...(c.exitCode !== undefined ? { exitCode: c.exitCode } : {}),
    startedAt: isoTime(s.startMillis),
    endedAt: isoTime(s.timeMillis),
    durationSeconds,
    idlePolicy: c.idlePolicy,
    pue: { value: s.pue, origin: c.pueOrigin },
    intensity: {
      zone: s.grid?.zone ?? c.intensityZone,
      source: s.grid?.source ?? c.intensitySource,
      lastGramsPerKwh: s.grid?.intensityGramsPerKwh ?? 0,
      description: c.intensityDescription,
      fallbacks,
      ...(noZone ? { noZone: true } : {}),
    },
    water: { wueLitersPerKwh: c.wueLitersPerKwh, waterIntensityLitersPerKwh: c.waterIntensityLitersPerKwh, origin: c.waterOrigin },
    cost: { pricePerKwh: c.pricePerKwh, currency: c.currency },
    jobs,
    buckets,
    host: { logicalCpus: c.logicalCpus ?? machineLogicalCpus() },
    devices: s.devices.map((d) => ({
      id: d.id,
      kind: d.kind,
      ...(d.model !== undefined ? { model: d.model } : {}),
      source: d.source,
      method: d.method,
      energyJoules: d.energyJoules,
      idleOrigin: d.idleOrigin,
      ...(d.processUsageMethod !== undefined ? { processUsageMethod: d.processUsageMethod } : {}),
      ...(d.processUsageIntervals !== undefined ? { processUsageIntervals: d.processUsageIntervals } : {}),
      status: d.status,
      notes: d.notes,
      ...(d.parent !== undefined ? { parent: d.parent } : {}),
      ...(d.shared ? { shared: true } : {}),
      ...(d.partitionMethod !== undefined ? { partitionMethod: d.partitionMethod } : {}),
    })),
    totals: reportTotals(jobs, buckets, durationSeconds),
    warnings: c.warnings,
    sampler: c.sampler,
    exportFailures: c.exportFailures,
    ...(c.timeSeries ? { timeSeries: c.timeSeries } : {}),
    ...(c.budget ? { budget: c.budget } : {}),
  };
}

/** What is at a report path now: nothing, a regular file, or something a report must not replace. */
type PathKind = "missing" | "file" | "directory" | "symlink" | "device" | "fifo" | "socket";

function pathKind(full: string): PathKind {
  const st = lstatSync(full, { throwIfNoEntry: false });
  if (!st) return "missing";
  if (st.isSymbolicLink()) return "symlink";
  if (st.isFile()) return "file";
  if (st.isDirectory()) return "directory";
  if (st.isFIFO()) return "fifo";
  if (st.isSocket()) return "socket";
  return "device";
}

const REFUSED: Record<Exclude<PathKind, "missing" | "file">, string> = {
  directory: "is a directory",
  symlink: "is a symbolic link (the report is never written through a link)",
  device: "is a device node",
  fifo: "is a FIFO (named pipe)",
  socket: "is a socket",
};

function refusal(path: string, kind: Exclude<PathKind, "missing" | "file">): string {
  const example = kind === "directory" ? `${path.replace(/\/$/, "")}/report.json` : "./report.json";
  return `'${path}' ${REFUSED[kind]}; give the path of a regular file or a new file, such as ${example}`;
}

/**
 * Fails early (exit 2) when the report could not be written at the end: the path must be a
 * regular file or not exist yet (never a directory, symlink, device node, FIFO or socket: lstat,
 * so a link is judged itself, not its target), and its directory must exist and be writable.
 * Called before anything runs.
 */
export function checkReportPath(path: string, flag = "--report"): string {
  const full = resolve(path);
  let kind: PathKind;
  try {
    kind = pathKind(full);
    accessSync(dirname(full), constants.W_OK);
  } catch (err) {
    throw new UsageError(flag, `cannot write '${path}': directory '${dirname(full)}' does not exist or is not writable`, { cause: err });
  }
  if (kind !== "missing" && kind !== "file") throw new UsageError(flag, refusal(path, kind));
  return full;
}

/**
 * Writes JSON atomically and only to a regular file or a new path: a temporary file created in the
 * same directory with O_EXCL|O_NOFOLLOW (never an existing file, never through a link), written in
 * full, fsynced, then renamed over the target. The target is checked again just before the rename
 * (it may have changed since checkReportPath). The temporary file is removed on every failure
 * (ENOSPC, a folder removed, a refused target). Throws ExportError("report") naming the path.
 */
export function writeJsonAtomic(path: string, data: unknown): void {
  writeTextAtomic(path, JSON.stringify(data, null, 2) + "\n");
}

/** writeJsonAtomic for text already formatted (YAML, HTML, a README): the same guarantees (src/files.ts writeFileAtomic). */
export function writeTextAtomic(path: string, text: string): void {
  try {
    writeFileAtomic(path, text, {
      beforeRename: () => {
        const kind = pathKind(resolve(path));
        if (kind !== "missing" && kind !== "file") throw new ExportError("report", refusal(path, kind));
      },
    });
  } catch (err) {
    if (err instanceof ExportError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? errorMessage(err);
    throw new ExportError("report", `cannot write '${path}': ${code}`, { cause: err });
  }
}
