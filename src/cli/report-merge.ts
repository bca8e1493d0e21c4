/**
 * Merging JSON reports (`powerprint report`): one job id seen in several reports (nodes of a
 * multi-node job) becomes one job whose additive figures are sums; tags group jobs for sweep
 * totals. Pure functions over validated reports.
 */
import type { ReportV1 } from "../../exporters/report-json.js";
import { mergeServing, sumFigures, type ServingFigures } from "../core/serving.js";

type Totals = ReportV1["jobs"][number];
/** One phase as the report has it (`jobs[].phases[]`). */
type Phase = NonNullable<ReportV1["jobs"][number]["phases"]>[number];

/** Totals of one tag value. */
export interface TagGroup {
  tag: string;
  value: string;
  jobs: string[];
  energyJoules: number;
  facilityEnergyJoules: number;
  emissionsGrams: number;
  embodiedEmissionsGrams: number;
  waterLiters: number;
  cost: number;
  cpuSeconds: number;
  /** --work-from jobs of the group (replicas of a server): their serving totals summed, ratios recomputed. */
  serving?: ServingFigures;
}

export type MergedReport = ReportV1 & { mergedFrom?: number; groups?: TagGroup[] };

const addRecord = (a: Record<string, number>, b: Record<string, number>, prefix = "") => {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) out[prefix + k] = (out[prefix + k] ?? 0) + v;
  return out;
};

/** Sums two totals of the same consumer (`devicePrefix` names the node the second one ran on). */
function addTotals(a: Totals, b: Totals, devicePrefix: string): Totals {
  const sumOpt = (x: number | null | undefined, y: number | null | undefined) => (x == null && y == null ? undefined : (x ?? 0) + (y ?? 0));
  const merged: Totals & { phases?: Phase[] } = {
    ...a,
    attributes: { ...b.attributes, ...a.attributes },
    energyJoules: { cpu: a.energyJoules.cpu + b.energyJoules.cpu, gpu: a.energyJoules.gpu + b.energyJoules.gpu, memory: a.energyJoules.memory + b.energyJoules.memory, total: a.energyJoules.total + b.energyJoules.total },
    facilityEnergyJoules: a.facilityEnergyJoules + b.facilityEnergyJoules,
    emissionsGrams: a.emissionsGrams + b.emissionsGrams,
    embodiedEmissionsGrams: a.embodiedEmissionsGrams + b.embodiedEmissionsGrams,
    waterLiters: a.waterLiters + b.waterLiters,
    cost: a.cost + b.cost,
    phaseEnergyJoules: addRecord(a.phaseEnergyJoules, b.phaseEnergyJoules),
    deviceEnergyJoules: addRecord(a.deviceEnergyJoules, b.deviceEnergyJoules, devicePrefix),
    cpuSeconds: a.cpuSeconds + b.cpuSeconds,
  };
  // Serving figures (--work-from): tokens and energies summed per model, ratios recomputed.
  const serving = mergeServing(a.serving, b.serving);
  if (serving) merged.serving = serving;
  // Per-phase stats (ledger `phases`, when the reports have them): summed by phase name; per-unit
  // figures recomputed from the sums (J per sample of the whole job across nodes).
  const pa = (a as { phases?: Phase[] }).phases;
  const pb = (b as { phases?: Phase[] }).phases;
  if (pa || pb) {
    const byName = new Map<string, Phase>();
    for (const p of [...(pa ?? []), ...(pb ?? [])]) {
      const q = byName.get(p.name);
      if (!q) {
        byName.set(p.name, { ...p });
        continue;
      }
      q.energyJoules += p.energyJoules;
      q.emissionsGrams += p.emissionsGrams;
      q.durationSeconds = Math.max(q.durationSeconds ?? 0, p.durationSeconds ?? 0);
      q.samples = sumOpt(q.samples, p.samples) ?? null;
      q.tokens = sumOpt(q.tokens, p.tokens) ?? null;
      q.steps = sumOpt(q.steps, p.steps) ?? null;
      q.joulesPerSample = q.samples ? q.energyJoules / q.samples : null;
      q.joulesPerToken = q.tokens ? q.energyJoules / q.tokens : null;
      q.joulesPerStep = q.steps ? q.energyJoules / q.steps : null;
    }
    merged.phases = [...byName.values()];
  }
  return merged;
}

/** Node label of the i-th report ("n0", "n1", ...) prefixed to its device ids when merging several. */
const nodePrefix = (i: number, n: number) => (n > 1 ? `n${i}:` : "");

/** Merges reports: jobs by id (sums), buckets summed, devices listed per node, the union window. */
export function mergeReports(reports: ReportV1[]): MergedReport {
  if (reports.length === 1) return reports[0];
  const n = reports.length;
  const jobs = new Map<string, Totals>();
  let system: Totals | undefined;
  let idle: Totals | undefined;
  reports.forEach((r, i) => {
    const prefix = nodePrefix(i, n);
    const prefixed = (t: Totals): Totals => ({ ...t, deviceEnergyJoules: addRecord({}, t.deviceEnergyJoules, prefix) });
    for (const j of r.jobs) {
      const have = jobs.get(j.id);
      jobs.set(j.id, have ? addTotals(have, j, prefix) : prefixed(j));
    }
    system = system ? addTotals(system, r.buckets.system, prefix) : prefixed(r.buckets.system);
    idle = idle ? addTotals(idle, r.buckets.idle, prefix) : prefixed(r.buckets.idle);
  });
  const start = Math.min(...reports.map((r) => Date.parse(r.startedAt)));
  const end = Math.max(...reports.map((r) => Date.parse(r.endedAt)));
  const all = [...jobs.values(), system!, idle!];
  const sum = (f: (t: Totals) => number) => all.reduce((a, t) => a + f(t), 0);
  const distinct = (xs: string[]) => [...new Set(xs)].join("+");
  const itJ = sum((t) => t.energyJoules.total);
  const facJ = sum((t) => t.facilityEnergyJoules);
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
    pue: samePue ? first.pue : { value: itJ > 0 ? facJ / itJ : first.pue.value, origin: `merged (${distinct(reports.map((r) => `${r.pue.value} ${r.pue.origin}`))})` },
    intensity: {
      zone: distinct(reports.map((r) => r.intensity.zone)),
      source: distinct(reports.map((r) => r.intensity.source)),
      lastGramsPerKwh: reports[reports.length - 1].intensity.lastGramsPerKwh,
      description: distinct(reports.map((r) => r.intensity.description)),
      fallbacks: reports.reduce((a, r) => addRecord(a, r.intensity.fallbacks), {} as Record<string, number>),
    },
    jobs: [...jobs.values()],
    buckets: { system: system!, idle: idle! },
    devices: reports.flatMap((r, i) => r.devices.map((d) => ({ ...d, id: nodePrefix(i, n) + d.id }))),
    totals: { energyJoules: itJ, facilityEnergyJoules: facJ, emissionsGrams: sum((t) => t.emissionsGrams) },
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
  };
}

/** Totals per value of `tag` over the jobs (jobs without the tag under "(untagged)"). */
export function groupByTag(r: ReportV1, tag: string): TagGroup[] {
  const groups = new Map<string, TagGroup>();
  for (const j of r.jobs) {
    const value = j.attributes[tag] ?? "(untagged)";
    const g = groups.get(value) ?? { tag, value, jobs: [], energyJoules: 0, facilityEnergyJoules: 0, emissionsGrams: 0, embodiedEmissionsGrams: 0, waterLiters: 0, cost: 0, cpuSeconds: 0 };
    g.jobs.push(j.id);
    g.energyJoules += j.energyJoules.total;
    g.facilityEnergyJoules += j.facilityEnergyJoules;
    g.emissionsGrams += j.emissionsGrams;
    g.embodiedEmissionsGrams += j.embodiedEmissionsGrams;
    g.waterLiters += j.waterLiters;
    g.cost += j.cost;
    g.cpuSeconds += j.cpuSeconds;
    if (j.serving) g.serving = g.serving ? sumFigures([g.serving, j.serving.total]) : j.serving.total;
    groups.set(value, g);
  }
  return [...groups.values()].sort((a, b) => b.facilityEnergyJoules - a.facilityEnergyJoules);
}
