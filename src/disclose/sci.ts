/**
 * Software Carbon Intensity (ISO/IEC 21031:2024, Green Software Foundation SCI specification) of a
 * job from its report:
 *
 *   SCI = ((E × I) + M) per R,   M = TE × TS × RS
 *
 * - E: the job's facility energy, kWh (IT × PUE: the spec asks E to include the data centre's
 *   efficiency); I: the energy-weighted mean intensity of the run (its operational emissions / E),
 *   so E × I is exactly the ledger's per-interval sum; with its kind (average or marginal);
 * - M: the ledger's embodied emissions of the job. TE: the embodied emissions of the devices the
 *   job used (the device table the run used, data/embodied.json); TS = time reserved / lifetime
 *   (time reserved: the time the report covers); RS: the job's share of those devices, M / (TE × TS)
 *   (the ledger shares embodied carbon per interval by energy share, so RS is that share's mean);
 * - R: units of work: tokens, samples or steps (marks), requests (serving), or the run itself.
 * Pure: the embodied table lookup is passed in.
 */
import type { ReportV1 } from "../../exporters/report-schema.js";
import { UsageError } from "../errors.js";
import { intensityKind, type KindLabel } from "../plan/kind.js";
import { formatCount as count, joulesToKwh } from "../units.js";

/** Functional units R. */
export const SCI_UNITS = ["tokens", "samples", "requests", "steps", "run"] as const;
export type SciUnit = (typeof SCI_UNITS)[number];

type Job = ReportV1["jobs"][number];

/** Embodied data of one device model: total gCO2e over a lifetime of seconds, and its source. */
export interface DeviceEmbodied {
  totalGrams: number;
  lifetimeSeconds: number;
  source: string;
}

/** Devices with the same embodied data, counted (TE and lifetime per group). */
export interface EmbodiedGroup {
  kind: string;
  model?: string;
  count: number;
  /** TE of the group: count × the device's embodied gCO2e. */
  totalGrams: number;
  lifetimeSeconds: number;
  /** TS = reserved / lifetime. */
  timeShare: number;
  source: string;
}

/** Everything the SCI score is made of, with units. */
export interface SciResult {
  jobId: string;
  per: SciUnit;
  /** E: facility energy, kWh. */
  energyKwh: number;
  /** I: energy-weighted mean intensity, gCO2e/kWh, and its kind. */
  intensityGramsPerKwh: number;
  intensityKind: KindLabel;
  /** How I was obtained, in words (source, zone, fallbacks). */
  intensitySource: string;
  /** E × I: the job's operational emissions, g. */
  operationalGrams: number;
  /** M and its factors. */
  embodiedGrams: number;
  reservedSeconds: number;
  groups: EmbodiedGroup[];
  /** TE: Σ of the groups' TE, g. */
  totalEmbodiedGrams: number;
  /** RS: M / Σ (TE × TS); undefined when TE is 0. */
  resourceShare?: number;
  /** R and where it came from. */
  functionalUnits: number;
  unitSource: string;
  /** ((E × I) + M) / R, gCO2e per unit. */
  sciGrams: number;
}

/**
 * The time reserved: what the report covers for the job, the span of its time series when it has
 * the job's cumulative series (the manifest's observations cover exactly that), else the job's own
 * duration (report model), else the report's.
 */
export function reservedSeconds(report: ReportV1, job: Job): number {
  const t = report.timeSeries;
  if (t && t.pointCount > 0 && t.jobCumulative?.[job.id]) return t.endSeconds[t.pointCount - 1] - (t.endSeconds[0] - t.spanSeconds[0]);
  // The job's own measured duration where the report model has it (a merged sweep's window is not the job's).
  const own = (job as { durationSeconds?: number }).durationSeconds;
  return typeof own === "number" && own > 0 ? own : report.durationSeconds;
}

/** R for a job, with its source; UsageError when the report does not have it. */
function functionalUnits(job: Job & Record<string, unknown>, per: SciUnit): { units: number; source: string } {
  if (per === "run") return { units: 1, source: "one run of the job" };
  const serving = (job.serving as { total?: { requests?: number | null; generatedTokens?: number | null } } | undefined)?.total;
  const counts: Record<Exclude<SciUnit, "run">, [number | null | undefined, string][]> = {
    tokens: [[job.tokens, "marks (tokens)"], [serving?.generatedTokens, "serving (generated tokens)"]],
    samples: [[job.samples, "marks (samples)"]],
    steps: [[job.steps, "marks (step)"]],
    requests: [[serving?.requests, "serving (requests)"]],
  };
  for (const [n, source] of counts[per]) if (typeof n === "number" && n > 0) return { units: n, source };
  const how = per === "requests" ? "requests are counted by serving (run --work-from)" : `write marks with "${per === "steps" ? "step" : per}" (docs/marks.md)`;
  throw new UsageError("--per", `job '${job.id}' has no ${per} count in the report: ${how}, or use --per run`);
}

/** Devices the job used (energy > 0 on them), grouped by kind, model and embodied data. */
function embodiedGroups(report: ReportV1, job: Job, reserved: number, embodiedOf: (kind: string, model?: string) => DeviceEmbodied | undefined): EmbodiedGroup[] {
  const groups = new Map<string, EmbodiedGroup>();
  for (const d of report.devices) {
    if (!((job.deviceEnergyJoules[d.id] ?? 0) > 0)) continue;
    const e = embodiedOf(d.kind, d.model);
    if (!e || e.totalGrams <= 0 || e.lifetimeSeconds <= 0) continue;
    const key = JSON.stringify([d.kind, d.model ?? "", e.totalGrams, e.lifetimeSeconds]);
    const g = groups.get(key) ?? { kind: d.kind, model: d.model, count: 0, totalGrams: 0, lifetimeSeconds: e.lifetimeSeconds, timeShare: reserved / e.lifetimeSeconds, source: e.source };
    g.count++;
    g.totalGrams += e.totalGrams;
    groups.set(key, g);
  }
  return [...groups.values()];
}

/** The SCI of one job of a report. */
export function computeSci(args: {
  report: ReportV1;
  job: Job & Record<string, unknown>;
  per: SciUnit;
  embodiedOf: (kind: string, model?: string) => DeviceEmbodied | undefined;
}): SciResult {
  const { report, job, per } = args;
  const r = functionalUnits(job, per);
  const energyKwh = joulesToKwh(job.facilityEnergyJoules);
  const operationalGrams = job.emissionsGrams;
  // I from the report model where it has it (reports' per-job figures), else the same quotient.
  const modelI = (job as { intensityAverageGramsPerKwh?: number | null }).intensityAverageGramsPerKwh;
  const intensityGramsPerKwh = typeof modelI === "number" ? modelI : energyKwh > 0 ? operationalGrams / energyKwh : 0;
  const fallbacks = Object.entries(report.intensity.fallbacks).map(([k, n]) => `${n} interval(s) ${k}`);
  const reserved = reservedSeconds(report, job);
  const groups = embodiedGroups(report, job, reserved, args.embodiedOf);
  const teTs = groups.reduce((a, g) => a + g.totalGrams * g.timeShare, 0);
  const embodiedGrams = job.embodiedEmissionsGrams;
  return {
    jobId: job.id,
    per,
    energyKwh,
    intensityGramsPerKwh,
    intensityKind: intensityKind(report.intensity.source),
    intensitySource: `${report.intensity.source}, zone ${report.intensity.zone}${fallbacks.length ? `; fallbacks: ${fallbacks.join(", ")}` : ""}`,
    operationalGrams,
    embodiedGrams,
    reservedSeconds: reserved,
    groups,
    totalEmbodiedGrams: groups.reduce((a, g) => a + g.totalGrams, 0),
    resourceShare: teTs > 0 ? embodiedGrams / teTs : undefined,
    functionalUnits: r.units,
    unitSource: r.source,
    sciGrams: (operationalGrams + embodiedGrams) / r.units,
  };
}


/** A number for the formula line: 4 significant digits, no exponent for ordinary magnitudes. */
const num = (v: number) => (v !== 0 && (Math.abs(v) < 1e-4 || Math.abs(v) >= 1e9) ? v.toExponential(3) : Number(v.toPrecision(4)).toString());

/** The SCI as people read it: each term with its value, unit and source, then the formula with its values. */
export function formatSci(s: SciResult): string {
  const unit = s.per === "run" ? "run" : s.per.replace(/s$/, "");
  const te = s.groups.map((g) => `${g.count} × ${g.model ?? g.kind} (${num(g.totalGrams / g.count / 1000)} kg each, lifetime ${num(g.lifetimeSeconds / 31_557_600)} y; ${g.source})`).join("; ");
  const ts = [...new Set(s.groups.map((g) => num(g.timeShare)))].join(" / ");
  const m = s.groups.length
    ? `M = TE × TS × RS = ${num(s.totalEmbodiedGrams)} g × ${ts} × ${num(s.resourceShare ?? 0)} = ${num(s.embodiedGrams)} g   (TE: ${te}; TS = ${num(s.reservedSeconds)} s reserved / lifetime; RS = the job's mean share of those devices)`
    : `M = ${num(s.embodiedGrams)} g   (no embodied data for the devices the job used)`;
  return [
    `SCI of job ${s.jobId} per ${unit} (ISO/IEC 21031:2024):`,
    `  E = ${num(s.energyKwh)} kWh facility energy (IT × PUE)`,
    `  I = ${num(s.intensityGramsPerKwh)} gCO2e/kWh, ${formatKindFor(s.intensityKind)} intensity, energy-weighted over the run (${s.intensitySource})`,
    `  ${m}`,
    `  R = ${count(s.functionalUnits)} ${s.per === "run" ? "run" : s.per} (${s.unitSource})`,
    `  SCI = ((E × I) + M) / R = ((${num(s.energyKwh)} kWh × ${num(s.intensityGramsPerKwh)} g/kWh) + ${num(s.embodiedGrams)} g) / ${count(s.functionalUnits)} = ${num(s.sciGrams)} gCO2e per ${unit}`,
  ].join("\n");
}

const formatKindFor = (k: KindLabel) => (k.detail && k.kind !== "unknown" ? `${k.kind} (${k.detail})` : k.kind === "unknown" ? `kind unknown (${k.detail ?? "not said"})` : k.kind);
