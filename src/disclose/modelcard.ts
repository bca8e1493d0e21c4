/**
 * The Hugging Face model card `co2_eq_emissions` block (hub-docs "Displaying carbon emissions for
 * your model": `emissions` a number in grams of CO2, `source`, `training_type`,
 * `geographical_location`, `hardware_used`) from the reports of every run of an experiment (a
 * sweep, failed runs included: the whole experiment is the footprint), and its insertion into a
 * README's YAML front matter that keeps every other byte. Pure: zone names are looked up by the caller.
 */
import { isDeepStrictEqual } from "node:util";
import { parse, stringify } from "yaml";
import type { ReportV1 } from "../../exporters/report-schema.js";
import { UsageError } from "../errors.js";

/** Training types the Hub documents. */
export const TRAINING_TYPES = ["pre-training", "fine-tuning"] as const;
export type TrainingType = (typeof TRAINING_TYPES)[number];

/** The block's figures, before they are written as YAML. */
export interface ModelCardEmissions {
  /** Σ over every job of every report of its operational emissions, g CO2e. */
  emissionsGrams: number;
  /** Σ of their embodied emissions, g (said in the comment, not in `emissions`). */
  embodiedGrams: number;
  /** Distinct jobs (a job measured on several nodes is one run). */
  runs: number;
  /** Runs with a non-zero exit code. */
  failedRuns: number;
  source: string;
  trainingType?: TrainingType;
  geographicalLocation: string;
  hardwareUsed: string;
}

/** One report and the file it came from. */
export interface NamedReport {
  file: string;
  report: ReportV1;
}

type Job = ReportV1["jobs"][number] & { exitCode?: number };

/** "8 x NVIDIA H100 80GB HBM3" for the GPUs a job used in one report (its CPUs when it used no GPU). */
function hardwareOf(report: ReportV1, job: Job): Map<string, number> {
  const used = report.devices.filter((d) => (job.deviceEnergyJoules[d.id] ?? 0) > 0);
  const gpus = used.filter((d) => d.kind === "gpu");
  const chosen = gpus.length ? gpus : used.filter((d) => d.kind === "cpu");
  const counts = new Map<string, number>();
  for (const d of chosen) counts.set(d.model ?? `unknown ${d.kind}`, (counts.get(d.model ?? `unknown ${d.kind}`) ?? 0) + 1);
  return counts;
}

const describeHardware = (counts: Map<string, number>) => [...counts].map(([model, n]) => `${n} x ${model}`).join(" + ") || "no device measured";

/**
 * The block's figures over every run of the reports. `locationOf(zone)` names a zone ("Germany (DE)").
 */
export function modelCardEmissions(args: {
  reports: readonly NamedReport[];
  version: string;
  trainingType?: TrainingType;
  locationOf: (zone: string) => string;
}): ModelCardEmissions {
  const runs = new Map<string, { failed: boolean; hardware: Map<string, number> }>();
  let emissionsGrams = 0;
  let embodiedGrams = 0;
  const zones = new Set<string>();
  for (const { report } of args.reports) {
    zones.add(report.intensity.zone);
    for (const job of report.jobs as Job[]) {
      emissionsGrams += job.emissionsGrams;
      embodiedGrams += job.embodiedEmissionsGrams;
      const run = runs.get(job.id) ?? { failed: false, hardware: new Map<string, number>() };
      const exit = job.exitCode ?? report.exitCode;
      run.failed ||= exit !== undefined && exit !== 0;
      // A job on several nodes: its devices add up.
      for (const [model, n] of hardwareOf(report, job)) run.hardware.set(model, (run.hardware.get(model) ?? 0) + n);
      runs.set(job.id, run);
    }
  }
  const perRun = new Map<string, number>();
  for (const r of runs.values()) perRun.set(describeHardware(r.hardware), (perRun.get(describeHardware(r.hardware)) ?? 0) + 1);
  const hardwareUsed = perRun.size === 1 ? [...perRun.keys()][0] : [...perRun].map(([h, n]) => `${h} (${n} run${n === 1 ? "" : "s"})`).join("; ");
  return {
    emissionsGrams,
    embodiedGrams,
    runs: runs.size,
    failedRuns: [...runs.values()].filter((r) => r.failed).length,
    source: `powerprint ${args.version}`,
    trainingType: args.trainingType,
    geographicalLocation: [...zones].map(args.locationOf).join("; "),
    hardwareUsed,
  };
}

/** The `co2_eq_emissions` value as the Hub reads it. */
export function modelCardValue(m: ModelCardEmissions): Record<string, string | number> {
  return {
    // 12 significant digits: the sum without its float residue (118.80000000000001 → 118.8).
    emissions: Number(m.emissionsGrams.toPrecision(12)),
    source: m.source,
    ...(m.trainingType ? { training_type: m.trainingType } : {}),
    geographical_location: m.geographicalLocation,
    hardware_used: m.hardwareUsed,
  };
}

/** The YAML block (top-level key `co2_eq_emissions`), with a comment on what the number covers. */
export function modelCardYaml(m: ModelCardEmissions, eol = "\n"): string {
  const body = stringify({ co2_eq_emissions: modelCardValue(m) }, { lineWidth: 0 });
  const failed = m.failedRuns ? `, ${m.failedRuns} failed, counted` : "";
  const comment = `  # ${m.runs} run${m.runs === 1 ? "" : "s"} (the whole experiment${failed}): operational CO2e of the jobs, g; embodied ${m.embodiedGrams.toPrecision(4)} g not included`;
  const [head, ...rest] = body.trimEnd().split("\n");
  return [head, comment, ...rest].join(eol) + eol;
}

/** Parsed YAML of a front matter, or UsageError naming the file. */
function parseFrontMatter(file: string, text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = parse(text) ?? {};
  } catch (err) {
    throw new UsageError(file, `its YAML front matter does not parse (${(err as Error).message.split("\n")[0]}); fix it first`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new UsageError(file, "its YAML front matter is not a mapping");
  return value as Record<string, unknown>;
}

/**
 * The README with `block` as its front matter's `co2_eq_emissions`: an existing one (the key's line
 * and its indented lines) replaced in place, else the block added at the end of the front matter;
 * a README without front matter gets one at the top. Every other byte is kept, and the result is
 * checked by parsing it: the other keys unchanged, the block's value as intended (else UsageError).
 */
export function writeIntoFrontMatter(file: string, readme: string, m: ModelCardEmissions): string {
  const eol = readme.includes("\r\n") ? "\r\n" : "\n";
  const block = modelCardYaml(m, eol);
  const open = /^---[ \t]*\r?\n/.exec(readme);
  const close = open ? /^---[ \t]*(?:\r?\n|$)/m.exec(readme.slice(open[0].length)) : null;
  if (!open || !close) return `---${eol}${block}---${eol}${readme}`;
  const fmStart = open[0].length;
  const fmEnd = fmStart + close.index;
  const front = readme.slice(fmStart, fmEnd);
  const before = parseFrontMatter(file, front);
  // The existing entry: its key line, then every indented (or blank) line, trailing blanks excluded.
  const lines = front.split(/(?<=\n)/);
  const at = lines.findIndex((l) => /^co2_eq_emissions\s*:/.test(l));
  let next: string;
  if (at < 0) next = front + (front === "" || front.endsWith("\n") ? "" : eol) + block;
  else {
    let end = at + 1;
    while (end < lines.length && /^(?:[ \t]|\r?\n$)/.test(lines[end])) end++;
    while (end > at + 1 && /^\s*$/.test(lines[end - 1])) end--;
    next = lines.slice(0, at).join("") + block + lines.slice(end).join("");
  }
  const after = parseFrontMatter(file, next);
  const { co2_eq_emissions: written, ...rest } = after;
  const { co2_eq_emissions: _old, ...restBefore } = before;
  if (!isDeepStrictEqual(rest, restBefore) || !isDeepStrictEqual(written, modelCardValue(m))) {
    throw new UsageError(file, "its front matter could not be updated without changing other keys (an unusual layout of co2_eq_emissions?); print the block with --model-card and paste it");
  }
  return readme.slice(0, fmStart) + next + readme.slice(fmEnd);
}
