/**
 * `--csv FILE`: one row per job of a run, CodeCarbon's `emissions.csv` columns first (same names,
 * order and units, so notebooks and dashboards reading CodeCarbon's file keep working), then
 * powerprint's own columns.
 *
 * Column list pinned from CodeCarbon's source, codecarbon/output_methods/emissions_data.py, the
 * EmissionsData dataclass field order (its CSV writer writes `EmissionsData.values`, the fields in
 * declaration order), mlco2/codecarbon commit 118873936dadf2608ae4d2af9862fcca4c2fe3d6 (3.0 line:
 * has experiment_id, ends on_cloud, pue). A later commit seen (0999d9c1) adds utilisation and water
 * fields in an order Python cannot import (defaulted fields before required ones), so it is not
 * used. Units as CodeCarbon documents them: duration s, emissions kg CO2e, emissions_rate kg/s,
 * *_power W (mean over the job's own duration), *_energy and energy_consumed kWh (IT energy,
 * before PUE), ram_total_size GB; cpu_count the host's logical CPUs.
 *
 * Appending: a new file gets the header; an existing file must start with exactly this header
 * (else `--csv` is refused up front, exit 2; a header that changed while the job ran gets the row
 * written to FILE.<pid>.csv instead, with a warning, so no measured row is lost). Each append is
 * one write(2) with O_APPEND (whole rows, concurrent runs appending to one file do not interleave),
 * fsync'd; a short write (disk full) is truncated back so no half row stays.
 */
import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync, readSync, statSync, writeSync } from "node:fs";
import { arch, release, type } from "node:os";
import { parse } from "csv-parse/sync";
import { stringify } from "csv-stringify/sync";
import { UsageError } from "../src/errors.js";
import { gramsToKilograms, joulesToKwh } from "../src/units.js";
import type { ReportV1 } from "./report-json.js";
import { SERVING_CSV_COLUMNS, servingCsvColumns } from "./serving.js";

/** CodeCarbon 3.0 EmissionsData fields, in declaration (= CSV column) order. */
export const CODECARBON_COLUMNS = [
  "timestamp", "project_name", "run_id", "experiment_id", "duration", "emissions", "emissions_rate",
  "cpu_power", "gpu_power", "ram_power", "cpu_energy", "gpu_energy", "ram_energy", "energy_consumed",
  "country_name", "country_iso_code", "region", "cloud_provider", "cloud_region", "os", "python_version",
  "codecarbon_version", "cpu_count", "cpu_model", "gpu_count", "gpu_model", "longitude", "latitude",
  "ram_total_size", "tracking_mode", "on_cloud", "pue",
] as const;

/** powerprint's own columns, after CodeCarbon's; units in the names. */
export const POWERPRINT_COLUMNS = [
  "powerprint_version", "job_id", "job_name", "mode", "scenario", "exit_code", "started_at", "ended_at",
  "facility_energy_kwh", "energy_method", "intensity_source", "intensity_zone", "intensity_avg_g_per_kwh",
  "intensity_fallback_intervals", "pue_origin", "water_l", "embodied_emissions_kg", "cost", "currency",
  "cpu_seconds", "samples", "tokens", "steps", "joules_per_sample", "joules_per_token", "g_co2e_per_million_tokens",
  "tags", "budget_crossed",
] as const;

export const CSV_COLUMNS: readonly string[] = [...CODECARBON_COLUMNS, ...POWERPRINT_COLUMNS, ...SERVING_CSV_COLUMNS];
export type CsvRow = Record<(typeof CODECARBON_COLUMNS)[number] | (typeof POWERPRINT_COLUMNS)[number] | (typeof SERVING_CSV_COLUMNS)[number], string | number>;

const METHOD_RANK = { counter: 0, power: 1, model: 2 } as const;
type Job = ReportV1["jobs"][number];
type Device = ReportV1["devices"][number];

/** What a row says about the run its job ran in: devices and logical CPUs (a merged report: the job's own runs'). */
function hostOf(r: ReportV1, j: Job): { devices: Device[]; logicalCpus: number | "" } {
  const runs = r.runs?.filter((run) => run.jobs.includes(j.id));
  if (!runs || runs.length === 0) return { devices: r.devices, logicalCpus: r.host?.logicalCpus ?? "" };
  const ids = new Set(runs.flatMap((run) => run.devices));
  const cpus = runs.map((run) => run.logicalCpus);
  // A job measured on several nodes used all of their CPUs.
  return { devices: r.devices.filter((d) => ids.has(d.id)), logicalCpus: cpus.every((c) => c !== undefined) ? cpus.reduce((a, c) => a + c!, 0) : "" };
}

/** A figure of the report model, "" where it has none (null: no count, no time). */
const orEmpty = (x: number | null | undefined): number | "" => (x === null || x === undefined ? "" : x);

/**
 * One row per job of the report, in CSV_COLUMNS' units. Every figure is the report model's
 * (exporters/report-json.ts reportJob): the job's own duration, average power, emissions rate,
 * per-unit figures; this only converts units (J → kWh, g → kg) and names columns.
 */
export function csvRows(r: ReportV1): CsvRow[] {
  const fallbacks = Object.values(r.intensity.fallbacks).reduce((a, n) => a + n, 0);
  const crossed = r.budget?.crossed.map((c) => c.budget).join(";") ?? "";
  return r.jobs.map((j) => {
    const { devices, logicalCpus } = hostOf(r, j);
    const cpus = devices.filter((d) => d.kind === "cpu");
    // Whole GPUs: a MIG instance (parent set) is part of one already counted.
    const gpus = devices.filter((d) => d.kind === "gpu" && d.parent === undefined);
    const gpuModels = [...new Set(gpus.map((g) => g.model ?? "unknown"))];
    // The weakest method of the job's devices: a row with one modelled device is a modelled row.
    const method = devices.reduce<keyof typeof METHOD_RANK | "none">((m, d) => (m === "none" || METHOD_RANK[d.method] > METHOD_RANK[m] ? d.method : m), "none");
    const power = j.averagePowerWatts;
    const endedAt = j.endedAt ?? r.endedAt;
    return {
      // CodeCarbon writes local time without a zone; powerprint writes UTC (the `Z` says so).
      timestamp: endedAt.replace(/\.\d+Z$/, "Z"),
      project_name: j.attributes.project ?? j.name,
      run_id: j.id,
      experiment_id: j.attributes.experiment ?? "",
      duration: j.durationSeconds ?? r.durationSeconds,
      emissions: gramsToKilograms(j.emissionsGrams),
      emissions_rate: orEmpty(j.emissionsRateGramsPerSecond === null || j.emissionsRateGramsPerSecond === undefined ? undefined : gramsToKilograms(j.emissionsRateGramsPerSecond)),
      cpu_power: orEmpty(power?.cpu),
      gpu_power: orEmpty(power?.gpu),
      ram_power: orEmpty(power?.memory),
      cpu_energy: joulesToKwh(j.energyJoules.cpu),
      gpu_energy: joulesToKwh(j.energyJoules.gpu),
      ram_energy: joulesToKwh(j.energyJoules.memory),
      energy_consumed: joulesToKwh(j.energyJoules.total),
      country_name: "",
      country_iso_code: "",
      region: r.intensity.zone === "none" ? "" : r.intensity.zone,
      cloud_provider: "",
      cloud_region: "",
      os: `${type()}-${release()}-${arch()}`,
      python_version: "",
      codecarbon_version: "",
      // CodeCarbon's cpu_count: the host's logical CPUs (psutil.cpu_count()), not its CPU packages.
      cpu_count: logicalCpus,
      cpu_model: [...new Set(cpus.map((c) => c.model ?? "unknown"))].join("; "),
      gpu_count: gpus.length,
      gpu_model: gpus.length ? `${gpus.length} x ${gpuModels.join(", ")}` : "",
      longitude: "",
      latitude: "",
      ram_total_size: "",
      tracking_mode: "process",
      on_cloud: "N",
      pue: r.pue.value,
      powerprint_version: r.tool.version,
      job_id: j.id,
      job_name: j.name,
      mode: r.mode,
      scenario: r.scenario ?? "",
      exit_code: j.exitCode ?? "",
      started_at: j.startedAt ?? r.startedAt,
      ended_at: endedAt,
      facility_energy_kwh: joulesToKwh(j.facilityEnergyJoules),
      energy_method: method,
      intensity_source: r.intensity.source,
      intensity_zone: r.intensity.zone,
      intensity_avg_g_per_kwh: j.intensityAverageGramsPerKwh ?? r.intensity.lastGramsPerKwh,
      intensity_fallback_intervals: fallbacks,
      pue_origin: r.pue.origin,
      water_l: j.waterLiters,
      embodied_emissions_kg: gramsToKilograms(j.embodiedEmissionsGrams),
      cost: j.cost,
      currency: r.cost.currency,
      cpu_seconds: j.cpuSeconds,
      samples: orEmpty(j.samples),
      tokens: orEmpty(j.tokens),
      steps: orEmpty(j.steps),
      joules_per_sample: orEmpty(j.joulesPerSample),
      joules_per_token: orEmpty(j.joulesPerToken),
      g_co2e_per_million_tokens: orEmpty(j.emissionsGramsPerMillionTokens),
      tags: Object.entries(j.attributes).map(([k, v]) => `${k}=${v}`).join(";"),
      budget_crossed: crossed,
      // --work-from (docs/serving.md): the job's serving totals.
      ...servingCsvColumns(j.serving),
    };
  });
}

/**
 * RFC 4180 text of rows: LF line ends (as CodeCarbon writes them on Linux, through pandas); a field
 * is quoted when it holds a comma, a quote, a CR or an LF (a multi-line `python -c` command in a
 * job name stays one field of one record).
 */
export function csvText(rows: CsvRow[], withHeader: boolean, crlf = false): string {
  return stringify(rows, { header: withHeader, columns: [...CSV_COLUMNS], record_delimiter: crlf ? "windows" : "unix", quoted_match: /[\r\n]/, cast: { number: (n) => numberText(n) } });
}

/** Plain decimal text for a number (CodeCarbon writes Python floats: repr, exponent allowed; so do we, losslessly). */
function numberText(n: number): string {
  return Number.isFinite(n) ? String(n) : "";
}

/** The header of an existing CSV file: undefined when the file is absent or empty. */
export function existingHeader(path: string): string[] | undefined {
  return existingHead(path)?.header;
}

/** The header of an existing CSV file and its line end (files written before powerprint wrote LF end in CRLF). */
function existingHead(path: string): { header: string[]; crlf: boolean } | undefined {
  if (!statSync(path, { throwIfNoEntry: false })?.size) return undefined;
  const fd = openSync(path, "r");
  try {
    const buf = Buffer.alloc(64 * 1024);
    const n = readSync(fd, buf, 0, buf.length, 0);
    const text = buf.subarray(0, n).toString("utf8");
    const end = text.search(/\r?\n/);
    const rows = parse(end >= 0 ? text.slice(0, end) : text, { relax_column_count: true }) as string[][];
    return { header: rows[0] ?? [], crlf: end >= 0 && text[end] === "\r" };
  } finally {
    closeSync(fd);
  }
}

const sameHeader = (h: string[]) => h.length === CSV_COLUMNS.length && h.every((c, i) => c === CSV_COLUMNS[i]);

/**
 * Fails early (exit 2, nothing run) when FILE exists with another header: appending would give
 * rows that do not match their columns. Call before the run.
 */
export function checkCsvPath(path: string, flag = "--csv"): void {
  let header: string[] | undefined;
  try {
    if (statSync(path, { throwIfNoEntry: false })?.isDirectory()) throw new UsageError(flag, `'${path}' is a directory; give a file path such as ${path.replace(/\/$/, "")}/emissions.csv`);
    header = existingHeader(path);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(flag, `cannot read '${path}': ${(err as Error).message}`, { cause: err });
  }
  if (header && !sameHeader(header)) {
    throw new UsageError(flag, `'${path}' has another header (${header.slice(0, 4).join(",")},...): give a new file, or one powerprint wrote`);
  }
}

/** Where the rows went. */
export type CsvAppendResult = { status: "appended"; path: string; rows: number } | { status: "diverted"; path: string; rows: number; reason: string };

/** Appends the report's rows to FILE (header first when FILE is new or empty). */
export function appendCsv(path: string, r: ReportV1): CsvAppendResult {
  const rows = csvRows(r);
  const head = existingHead(path);
  if (head && !sameHeader(head.header)) {
    // The header changed after the up-front check: keep the measured rows, in a file of their own.
    const other = `${path}.${process.pid}.csv`;
    const otherHead = existingHead(other);
    appendWhole(other, csvText(rows, otherHead === undefined, otherHead?.crlf));
    return { status: "diverted", path: other, rows: rows.length, reason: `'${path}' has another header` };
  }
  // A file an older powerprint started in CRLF goes on in CRLF: one line end per file, so readers that detect it keep working.
  appendWhole(path, csvText(rows, head === undefined, head?.crlf));
  return { status: "appended", path, rows: rows.length };
}

/** One O_APPEND write of the whole text, fsync'd; a short write is cut back off. */
function appendWhole(path: string, text: string): void {
  const fd = openSync(path, "a", 0o644);
  try {
    const before = fstatSync(fd).size;
    const data = Buffer.from(text, "utf8");
    let written = 0;
    try {
      written = writeSync(fd, data);
      if (written !== data.length) throw new Error(`short write (${written} of ${data.length} bytes): disk full?`);
      fsyncSync(fd);
    } catch (err) {
      if (written > 0) ftruncateSync(fd, before);
      throw err;
    }
  } finally {
    closeSync(fd);
  }
}
