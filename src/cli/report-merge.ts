/**
 * Merging JSON reports (`powerprint report`): one job id seen in several reports (the nodes of a
 * multi-node job, or the pieces of a job measured in turns) becomes one job whose additive figures
 * are sums; every derived figure (average power, per-unit figures, phase shares) is computed again
 * from those sums by the report model's own function (exporters/report-json.ts reportJob), never
 * here. Each job keeps its own window and duration, so a merged CSV row carries its run's duration
 * and power, not the merged span's. Tags group jobs for sweep totals. Pure functions over validated
 * reports.
 */
import { reportJob, reportTotals, type ReportV1 } from "../../exporters/report-json.js";
import { sumCounts, unionSeconds } from "../core/figures.js";
import { mergeServing, sumFigures } from "../core/serving.js";

type Job = ReportV1["jobs"][number];
type Bucket = ReportV1["buckets"]["system"];
type Phase = NonNullable<Job["phases"]>[number];
type MergedRun = NonNullable<ReportV1["runs"]>[number];

/** Totals of one tag value. */
export type TagGroup = NonNullable<ReportV1["groups"]>[number];

export type MergedReport = ReportV1;

/** A report and the file it was read from (named in the merged report's `runs`). */
export interface ReportInput {
  file: string;
  report: ReportV1;
}

const addRecord = (a: Record<string, number>, b: Record<string, number>, prefix = "") => {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) out[prefix + k] = (out[prefix + k] ?? 0) + v;
  return out;
};

/** The additive part of a job or bucket (devices prefixed with the node they ran on). */
function additive(t: Bucket, devicePrefix: string): Bucket {
  return {
    id: t.id,
    name: t.name,
    attributes: { ...t.attributes },
    energyJoules: { ...t.energyJoules },
    facilityEnergyJoules: t.facilityEnergyJoules,
    emissionsGrams: t.emissionsGrams,
    embodiedEmissionsGrams: t.embodiedEmissionsGrams,
    waterLiters: t.waterLiters,
    cost: t.cost,
    phaseEnergyJoules: { ...t.phaseEnergyJoules },
    deviceEnergyJoules: addRecord({}, t.deviceEnergyJoules, devicePrefix),
    cpuSeconds: t.cpuSeconds,
  };
}

/** Sums the additive totals of two pieces of one consumer. */
function addTotals(a: Bucket, b: Bucket): Bucket {
  return {
    ...a,
    attributes: { ...b.attributes, ...a.attributes },
    energyJoules: { cpu: a.energyJoules.cpu + b.energyJoules.cpu, gpu: a.energyJoules.gpu + b.energyJoules.gpu, memory: a.energyJoules.memory + b.energyJoules.memory, total: a.energyJoules.total + b.energyJoules.total },
    facilityEnergyJoules: a.facilityEnergyJoules + b.facilityEnergyJoules,
    emissionsGrams: a.emissionsGrams + b.emissionsGrams,
    embodiedEmissionsGrams: a.embodiedEmissionsGrams + b.embodiedEmissionsGrams,
    waterLiters: a.waterLiters + b.waterLiters,
    cost: a.cost + b.cost,
    phaseEnergyJoules: addRecord(a.phaseEnergyJoules, b.phaseEnergyJoules),
    deviceEnergyJoules: addRecord(a.deviceEnergyJoules, b.deviceEnergyJoules),
    cpuSeconds: a.cpuSeconds + b.cpuSeconds,
  };
}

/** One job as one report has it, with its window (older reports: the report's) and its exit code. */
interface Piece {
  job: Job;
  totals: Bucket;
  startMillis: number;
  endMillis: number;
  durationSeconds: number;
  exitCode: number | undefined;
}

function pieceOf(r: ReportV1, j: Job, prefix: string): Piece {
  return {
    job: j,
    totals: additive(j, prefix),
    startMillis: Date.parse(j.startedAt ?? r.startedAt),
    endMillis: Date.parse(j.endedAt ?? r.endedAt),
    // A report written before jobs carried their own duration: the job was its run's window.
    durationSeconds: j.durationSeconds ?? r.durationSeconds,
    // A report written before jobs carried it: a run's exit code is its one job's.
    exitCode: j.exitCode ?? (r.mode === "run" && r.jobs.length === 1 && !("durationSeconds" in j) ? r.exitCode : undefined),
  };
}

/**
 * Phases of pieces of one job, by name: energy, emissions and counts summed. Time: the pieces'
 * times summed, scaled by (the job's merged duration / the sum of the pieces' durations): exact for
 * pieces measured one after another, the mean over nodes for pieces measured at once, and the
 * phases still sum to the job.
 */
function mergePhases(pieces: readonly Piece[], durationSeconds: number): Phase[] | undefined {
  if (!pieces.some((p) => p.job.phases?.length)) return undefined;
  const piecesSeconds = pieces.reduce((a, p) => a + p.durationSeconds, 0);
  const scale = piecesSeconds > 0 ? durationSeconds / piecesSeconds : 0;
  const byName = new Map<string, Phase[]>();
  for (const p of pieces) for (const ph of p.job.phases ?? []) byName.set(ph.name, [...(byName.get(ph.name) ?? []), ph]);
  return [...byName].map(([name, parts]) => ({
    name,
    energyJoules: parts.reduce((a, x) => a + x.energyJoules, 0),
    emissionsGrams: parts.reduce((a, x) => a + x.emissionsGrams, 0),
    durationSeconds: parts.length === 1 && pieces.length === 1 ? parts[0].durationSeconds : parts.reduce((a, x) => a + x.durationSeconds, 0) * scale,
    samples: sumCounts(parts.map((x) => x.samples)),
    tokens: sumCounts(parts.map((x) => x.tokens)),
    steps: sumCounts(parts.map((x) => x.steps)),
    joulesPerSample: null,
    joulesPerToken: null,
    joulesPerStep: null,
  }));
}

/** One job from its pieces: sums, the union of their windows, its figures by the report model. */
function mergeJob(pieces: readonly Piece[]): Job {
  const totals = pieces.slice(1).reduce((a, p) => addTotals(a, p.totals), pieces[0].totals);
  const durationSeconds = pieces.length === 1 ? pieces[0].durationSeconds : unionSeconds(pieces.map((p) => ({ startMillis: p.startMillis, durationSeconds: p.durationSeconds })));
  const exits = pieces.map((p) => p.exitCode).filter((x): x is number => x !== undefined);
  // A failed piece makes the job failed: the first non-zero code, else 0.
  const exitCode = exits.length ? (exits.find((x) => x !== 0) ?? 0) : undefined;
  const window = {
    startedAt: new Date(Math.min(...pieces.map((p) => p.startMillis))).toISOString(),
    endedAt: new Date(Math.max(...pieces.map((p) => p.endMillis))).toISOString(),
    durationSeconds,
  };
  const work = { samples: sumCounts(pieces.map((p) => p.job.samples)), tokens: sumCounts(pieces.map((p) => p.job.tokens)), steps: sumCounts(pieces.map((p) => p.job.steps)) };
  // Serving figures (--work-from): tokens and energies summed per model, ratios recomputed (src/core/serving.ts).
  const serving = pieces.map((p) => p.job.serving).reduce(mergeServing, undefined);
  return reportJob({ ...totals, ...(exitCode !== undefined ? { exitCode } : {}), ...(serving ? { serving } : {}) }, window, mergePhases(pieces, durationSeconds), work);
}

/** Node label of the i-th report ("n0", "n1", ...) prefixed to its device ids when merging several. */
const nodePrefix = (i: number, n: number) => (n > 1 ? `n${i}:` : "");

/** A report's jobs with every derived figure computed by the report model (older reports lack some). */
export function normalizeReport(r: ReportV1): ReportV1 {
  const jobs = r.jobs.map((j) => mergeJob([pieceOf(r, j, "")]));
  return { ...r, jobs, totals: reportTotals(jobs, r.buckets, r.durationSeconds) };
}

/**
 * Merges reports: jobs by id (sums, each job its own window), buckets summed, devices listed per
 * node, the union window, and `runs` (one per file: what was merged, failed runs included).
 */
export function mergeReports(inputs: readonly ReportInput[]): MergedReport {
  if (inputs.length === 1) return normalizeReport(inputs[0].report);
  const reports = inputs.map((x) => x.report);
  const n = reports.length;
  const pieces = new Map<string, Piece[]>();
  let system: Bucket | undefined;
  let idle: Bucket | undefined;
  reports.forEach((r, i) => {
    const prefix = nodePrefix(i, n);
    for (const j of r.jobs) pieces.set(j.id, [...(pieces.get(j.id) ?? []), pieceOf(r, j, prefix)]);
    system = system ? addTotals(system, additive(r.buckets.system, prefix)) : additive(r.buckets.system, prefix);
    idle = idle ? addTotals(idle, additive(r.buckets.idle, prefix)) : additive(r.buckets.idle, prefix);
  });
  const jobs = [...pieces.values()].map(mergeJob);
  const start = Math.min(...reports.map((r) => Date.parse(r.startedAt)));
  const end = Math.max(...reports.map((r) => Date.parse(r.endedAt)));
  const distinct = (xs: string[]) => [...new Set(xs)].join("+");
  const buckets = { system: system!, idle: idle! };
  const measuredSeconds = unionSeconds(reports.map((r) => ({ startMillis: Date.parse(r.startedAt), durationSeconds: r.durationSeconds })));
  const totals = reportTotals(jobs, buckets, measuredSeconds);
  const first = reports[0];
  const samePue = reports.every((r) => r.pue.value === first.pue.value);
  return {
    ...first,
    command: undefined,
    exitCode: reports.every((r) => r.exitCode === undefined) ? undefined : Math.max(...reports.map((r) => r.exitCode ?? 0)),
    scenario: distinct(reports.map((r) => r.scenario ?? "")) || undefined,
    startedAt: new Date(start).toISOString(),
    endedAt: new Date(end).toISOString(),
    durationSeconds: (end - start) / 1000,
    // Different PUEs: the merged ratio is the energy-weighted one (facility / IT).
    pue: samePue ? first.pue : { value: totals.energyJoules > 0 ? totals.facilityEnergyJoules / totals.energyJoules : first.pue.value, origin: `merged (${distinct(reports.map((r) => `${r.pue.value} ${r.pue.origin}`))})` },
    intensity: {
      zone: distinct(reports.map((r) => r.intensity.zone)),
      source: distinct(reports.map((r) => r.intensity.source)),
      lastGramsPerKwh: reports[reports.length - 1].intensity.lastGramsPerKwh,
      description: distinct(reports.map((r) => r.intensity.description)),
      fallbacks: reports.reduce((a, r) => addRecord(a, r.intensity.fallbacks), {} as Record<string, number>),
      ...(reports.every((r) => r.intensity.noZone) ? { noZone: true } : {}),
    },
    jobs,
    buckets,
    host: undefined,
    devices: reports.flatMap((r, i) => r.devices.map((d) => ({ ...d, id: nodePrefix(i, n) + d.id }))),
    totals,
    warnings: reports.flatMap((r, i) => r.warnings.map((w) => `${nodePrefix(i, n)} ${w}`)),
    sampler: {
      ticks: reports.reduce((a, r) => a + r.sampler.ticks, 0),
      skippedTicks: reports.reduce((a, r) => a + r.sampler.skippedTicks, 0),
      failures: reports.reduce((a, r) => addRecord(a, r.sampler.failures), {} as Record<string, number>),
      intervalMillis: Math.max(...reports.map((r) => r.sampler.intervalMillis)),
    },
    exportFailures: reports.reduce((a, r) => addRecord(a, r.exportFailures), {} as Record<string, number>),
    timeSeries: undefined,
    budget: undefined,
    mergedFrom: n,
    runs: inputs.map(({ file, report: r }, i) => runOf(file, r, nodePrefix(i, n))),
    groups: undefined,
  };
}

/** What one merged file was: its run, its jobs, its devices (ids as in the merged report), its series. */
function runOf(file: string, r: ReportV1, prefix: string): MergedRun {
  return {
    file,
    mode: r.mode,
    ...(r.scenario !== undefined ? { scenario: r.scenario } : {}),
    ...(r.command !== undefined ? { command: r.command } : {}),
    ...(r.exitCode !== undefined ? { exitCode: r.exitCode } : {}),
    startedAt: r.startedAt,
    endedAt: r.endedAt,
    durationSeconds: r.durationSeconds,
    jobs: r.jobs.map((j) => j.id),
    devices: r.devices.map((d) => prefix + d.id),
    ...(r.host ? { logicalCpus: r.host.logicalCpus } : {}),
    zone: r.intensity.zone,
    ...(r.timeSeries ? { timeSeries: r.timeSeries } : {}),
  };
}

/** Totals per value of `tag` over the jobs (jobs without the tag under "(untagged)"); failed jobs named. */
export function groupByTag(r: ReportV1, tag: string): TagGroup[] {
  const groups = new Map<string, TagGroup & { failedJobs: string[] }>();
  for (const j of r.jobs) {
    const value = j.attributes[tag] ?? "(untagged)";
    const g = groups.get(value) ?? { tag, value, jobs: [], energyJoules: 0, facilityEnergyJoules: 0, emissionsGrams: 0, embodiedEmissionsGrams: 0, waterLiters: 0, cost: 0, cpuSeconds: 0, failedJobs: [] };
    g.jobs.push(j.id);
    g.energyJoules += j.energyJoules.total;
    g.facilityEnergyJoules += j.facilityEnergyJoules;
    g.emissionsGrams += j.emissionsGrams;
    g.embodiedEmissionsGrams += j.embodiedEmissionsGrams;
    g.waterLiters += j.waterLiters;
    g.cost += j.cost;
    g.cpuSeconds += j.cpuSeconds;
    if (j.exitCode !== undefined && j.exitCode !== 0) g.failedJobs.push(j.id);
    // --work-from jobs of the group (replicas of a server): their serving totals summed, ratios recomputed.
    if (j.serving) g.serving = g.serving ? sumFigures([g.serving, j.serving.total]) : j.serving.total;
    groups.set(value, g);
  }
  return [...groups.values()].sort((a, b) => b.facilityEnergyJoules - a.facilityEnergyJoules);
}
