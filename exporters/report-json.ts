import { randomBytes } from "node:crypto";
import { closeSync, constants, accessSync, fsyncSync, lstatSync, openSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { JobTotals, LedgerSnapshot } from "../src/core/types.js";
import { ExportError, UsageError, errorMessage } from "../src/errors.js";
import type { BudgetReport, ReportV1 } from "./report-schema.js";
import type { TimeSeries } from "./timeseries.js";

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
}

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
  ...workFields(t),
  // --work-from: the serving figures as the ledger computed them (src/core/serving.ts).
  ...(t.serving ? { serving: t.serving } : {}),
});

const orNull = (x: number | undefined): number | null => (x === undefined ? null : x);
/** Joules per unit of work; undefined when the count is unknown or zero. */
const perUnit = (energyJoules: number, count: number | undefined): number | undefined => (count !== undefined && count > 0 ? energyJoules / count : undefined);

/** Per-unit figures and phases of a job that wrote marks (nothing for one that did not). */
function workFields(t: JobTotals) {
  if (!t.phases && !t.work) return {};
  const w = t.work ?? {};
  const energy = t.energyJoules.total;
  return {
    samples: orNull(w.samples),
    tokens: orNull(w.tokens),
    steps: orNull(w.step),
    joulesPerSample: orNull(perUnit(energy, w.samples)),
    joulesPerToken: orNull(perUnit(energy, w.tokens)),
    joulesPerStep: orNull(perUnit(energy, w.step)),
    ...(t.phases
      ? {
          phases: t.phases.map((p) => ({
            name: p.name,
            energyJoules: p.energyJoules,
            emissionsGrams: p.emissionsGrams,
            durationSeconds: p.durationSeconds,
            samples: orNull(p.samples),
            tokens: orNull(p.tokens),
            steps: orNull(p.steps),
            joulesPerSample: orNull(perUnit(p.energyJoules, p.samples)),
            joulesPerToken: orNull(perUnit(p.energyJoules, p.tokens)),
            joulesPerStep: orNull(perUnit(p.energyJoules, p.steps)),
          })),
        }
      : {}),
  };
}

/** Builds the v1 report from a final ledger snapshot. */
export function buildReport(s: LedgerSnapshot, c: ReportContext): ReportV1 {
  const all = [...s.jobs, s.buckets.system, s.buckets.idle];
  const sum = (f: (t: JobTotals) => number) => all.reduce((a, t) => a + f(t), 0);
  return {
    schemaVersion: 1,
    complete: c.complete ?? true,
    tool: { name: "powerprint", version: c.version },
    mode: c.mode,
    ...(c.tracking !== undefined ? { tracking: c.tracking } : {}),
    ...(c.scenario !== undefined ? { scenario: c.scenario } : {}),
    ...(c.command !== undefined ? { command: c.command } : {}),
    ...(c.exitCode !== undefined ? { exitCode: c.exitCode } : {}),
    startedAt: new Date(s.startMillis).toISOString(),
    endedAt: new Date(s.timeMillis).toISOString(),
    // The monotonic window when known: a wall-clock step moves startedAt/endedAt, not the duration.
    durationSeconds: (s.elapsedMillis ?? s.timeMillis - s.startMillis) / 1000,
    idlePolicy: c.idlePolicy,
    pue: { value: s.pue, origin: c.pueOrigin },
    intensity: {
      zone: s.grid?.zone ?? c.intensityZone,
      source: s.grid?.source ?? c.intensitySource,
      lastGramsPerKwh: s.grid?.intensityGramsPerKwh ?? 0,
      description: c.intensityDescription,
      fallbacks: c.fallbacks,
    },
    water: { wueLitersPerKwh: c.wueLitersPerKwh, waterIntensityLitersPerKwh: c.waterIntensityLitersPerKwh, origin: c.waterOrigin },
    cost: { pricePerKwh: c.pricePerKwh, currency: c.currency },
    jobs: s.jobs.map(pickTotals),
    buckets: { system: pickTotals(s.buckets.system), idle: pickTotals(s.buckets.idle) },
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
    totals: {
      energyJoules: sum((t) => t.energyJoules.total),
      facilityEnergyJoules: sum((t) => t.facilityEnergyJoules),
      emissionsGrams: sum((t) => t.emissionsGrams),
    },
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

/** writeJsonAtomic for text already formatted (YAML, HTML, a README): the same guarantees. */
export function writeTextAtomic(path: string, text: string): void {
  const full = resolve(path);
  const tmp = `${full}.tmp-${process.pid}-${randomBytes(6).toString("hex")}`;
  const bytes = Buffer.from(text, "utf8");
  let fd: number | undefined;
  try {
    fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
    // writeSync may write less than asked (a full disk can fail only on a later chunk).
    for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    const kind = pathKind(full);
    if (kind !== "missing" && kind !== "file") throw new ExportError("report", refusal(path, kind));
    renameSync(tmp, full);
  } catch (err) {
    if (fd !== undefined) {
      try {
        closeSync(fd);
      } catch {
        /* already closed */
      }
    }
    try {
      unlinkSync(tmp);
    } catch {
      /* never created, or already gone with its folder */
    }
    if (err instanceof ExportError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? errorMessage(err);
    throw new ExportError("report", `cannot write '${path}': ${code}`, { cause: err });
  }
}
