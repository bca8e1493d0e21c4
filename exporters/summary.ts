import type { ReportV1 } from "./report-json.js";
import { servingSummaryLine } from "./serving.js";
import { formatDuration, formatEnergy, formatGrams, formatLiters, formatPlain, formatSi, joulesToKwh } from "../src/units.js";

/** Longest summary line, characters. */
export const SUMMARY_WIDTH = 100;
/** Jobs listed one per line; the rest are counted on one line. */
const MAX_JOB_LINES = 3;
/** Phases listed in the table; the rest are counted on one line. */
const MAX_PHASE_LINES = 5;

type Job = ReportV1["jobs"][number];
/** Per-phase stats as the ledger reports them (`jobs[].phases[]`), when present. */
interface PhaseStats {
  name: string;
  energyJoules: number;
  emissionsGrams?: number;
  durationSeconds?: number;
  samples?: number | null;
  tokens?: number | null;
  steps?: number | null;
  joulesPerSample?: number | null;
  joulesPerToken?: number | null;
}
type JobWithUnits = Job & { phases?: PhaseStats[]; joulesPerSample?: number | null; joulesPerToken?: number | null; samples?: number | null; tokens?: number | null };

/**
 * The end-of-run summary printed on stderr, for people: at most about 12 lines of at most 100
 * characters. Duration, energy per device kind with its method, facility energy and PUE,
 * emissions with the intensity and its source, water, embodied, cost, the jobs, a per-phase table
 * when marks exist, per-unit figures (J per sample, gCO2e per million tokens), and one short line
 * per fallback. Every number has 3 significant digits and an SI prefix (src/units.ts).
 * `verbose` adds one line per device with its full provenance (idle baseline, split, notes); the
 * JSON report always has it.
 */
export function formatSummary(r: ReportV1, o: { verbose?: boolean } = {}): string {
  const lines: string[] = [];
  const all = [...r.jobs, r.buckets.system, r.buckets.idle];
  const sum = (f: (t: Job) => number) => all.reduce((a, t) => a + f(t), 0);
  const kinds = (["cpu", "gpu", "memory"] as const).filter((k) => r.devices.some((d) => d.kind === k));
  const methodOf = (k: string) => [...new Set(r.devices.filter((d) => d.kind === k).map((d) => d.method))].join("/");
  lines.push(`── powerprint summary (${r.mode}${r.scenario ? `: ${r.scenario}` : ""}) · ${formatDuration(r.durationSeconds)} ──`);
  const byKind = kinds.map((k) => `${k} ${formatEnergy(sum((t) => t.energyJoules[k]))} ${methodOf(k)}`).join(", ");
  lines.push(`energy      ${formatEnergy(r.totals.energyJoules)} IT${byKind ? ` (${byKind})` : ""}`);
  lines.push(`facility    ${formatEnergy(r.totals.facilityEnergyJoules)} (PUE ${formatPlain(r.pue.value)}${r.pue.origin === "default" ? ", default: set --pue" : `, ${r.pue.origin}`})`);
  lines.push(`emissions   ${formatGrams(r.totals.emissionsGrams)} CO2e ${intensityText(r)}`);
  const cost = r.cost.pricePerKwh > 0 ? ` · cost ${formatPlain(sum((t) => t.cost))} ${r.cost.currency}` : "";
  lines.push(`water       ${formatLiters(sum((t) => t.waterLiters))} · embodied ${formatGrams(sum((t) => t.embodiedEmissionsGrams))} CO2e${cost}`);
  for (const j of r.jobs.slice(0, MAX_JOB_LINES)) lines.push(jobLine(j as JobWithUnits));
  if (r.jobs.length > MAX_JOB_LINES) lines.push(`            … ${r.jobs.length - MAX_JOB_LINES} more job(s): see the report`);
  // The phase table of the first job with marks (a run has one job; simulate lists the first).
  const marked = (r.jobs as JobWithUnits[]).find((j) => phasesOf(j).length > 0);
  if (marked) lines.push(...phaseTable(marked, r.jobs.length > 1));
  for (const j of (r.jobs as JobWithUnits[]).slice(0, MAX_JOB_LINES)) {
    const units = perUnitText(j);
    if (units) lines.push(`per unit    ${r.jobs.length > 1 ? `${j.id}: ` : ""}${units}`);
    if (j.serving) lines.push(servingSummaryLine(j.serving, r.jobs.length > 1 ? `${oneLine(j.id)}: ` : ""));
  }
  lines.push(...fallbackLines(r));
  if (o.verbose) {
    lines.push(`buckets     system ${formatEnergy(r.buckets.system.energyJoules.total)}, idle ${formatEnergy(r.buckets.idle.energyJoules.total)} (idle policy ${r.idlePolicy})`);
    for (const d of r.devices) lines.push(deviceLine(d));
  }
  return lines.map(fit).join("\n");
}

/** Emissions' intensity: the run's average (what the emissions reflect) and where it came from. */
function intensityText(r: ReportV1): string {
  const facilityKwh = joulesToKwh(r.totals.facilityEnergyJoules);
  if (facilityKwh > 0) {
    const average = r.totals.emissionsGrams / facilityKwh;
    const last = Math.abs(average - r.intensity.lastGramsPerKwh) > 0.05 * average ? `, last ${formatPlain(r.intensity.lastGramsPerKwh)}` : "";
    return `at ${formatPlain(average)} g/kWh on average${last} · ${shortSource(r)}`;
  }
  if (r.intensity.source === "none") return "· no intensity applied (no interval was recorded)";
  return `· ${formatPlain(r.intensity.lastGramsPerKwh)} g/kWh · ${shortSource(r)}`;
}

/** The intensity's source in a few words ("static table DE", "scenario series, zone DE"); the full description is in the report and the HTML. */
function shortSource(r: ReportV1): string {
  const d = r.intensity.description;
  const cut = Math.min(...[d.indexOf(": "), d.indexOf(" ("), d.length].filter((i) => i >= 0));
  const short = d.slice(0, cut);
  const zone = r.intensity.zone;
  return zone && zone !== "none" && !short.includes(zone) ? `${short}, zone ${zone}` : short;
}

function jobLine(j: JobWithUnits): string {
  const jobName = oneLine(j.name);
  const name = j.name !== j.id ? ` (${jobName.length > 16 ? `${jobName.slice(0, 15)}…` : jobName})` : "";
  return `job ${oneLine(j.id)}${name}: ${formatEnergy(j.energyJoules.total)} IT, ${formatEnergy(j.facilityEnergyJoules)} facility, ${formatGrams(j.emissionsGrams)} CO2e, ${formatDuration(j.cpuSeconds)} CPU`;
}

/** Per-unit figures of a job: from its own fields when the ledger gives them, else from its phases' counts. */
function perUnitText(j: JobWithUnits): string {
  const phases = j.phases ?? [];
  const samples = j.samples ?? (phases.some((p) => p.samples) ? phases.reduce((a, p) => a + (p.samples ?? 0), 0) : undefined);
  const tokens = j.tokens ?? (phases.some((p) => p.tokens) ? phases.reduce((a, p) => a + (p.tokens ?? 0), 0) : undefined);
  const parts: string[] = [];
  const perSample = j.joulesPerSample ?? (samples ? j.energyJoules.total / samples : undefined);
  if (perSample) parts.push(`${formatSi(perSample, "J")}/sample`);
  const perToken = j.joulesPerToken ?? (tokens ? j.energyJoules.total / tokens : undefined);
  if (perToken) parts.push(`${formatSi(perToken, "J")}/token`);
  // SCI's functional unit for language models: operational CO2e per million tokens.
  if (tokens) parts.push(`${formatGrams((j.emissionsGrams / tokens) * 1e6)} CO2e per million tokens`);
  return parts.join(", ");
}

function phasesOf(j: JobWithUnits): PhaseStats[] {
  if (j.phases?.length) return j.phases;
  return Object.entries(j.phaseEnergyJoules).map(([name, energyJoules]) => ({ name, energyJoules }));
}

/** A compact table: phase, energy, share, and CO2e, time, J/sample where the report has them. */
function phaseTable(j: JobWithUnits, named: boolean): string[] {
  const phases = phasesOf(j);
  const total = j.energyJoules.total;
  const columns: [string, number, (p: PhaseStats) => string | undefined][] = [
    ["energy", 11, (p) => formatEnergy(p.energyJoules)],
    ["share", 8, (p) => (total > 0 ? `${formatPlain((100 * p.energyJoules) / total)}%` : undefined)],
    ["CO2e", 10, (p) => (p.emissionsGrams !== undefined ? formatGrams(p.emissionsGrams) : undefined)],
    ["time", 10, (p) => (p.durationSeconds !== undefined ? formatDuration(p.durationSeconds) : undefined)],
    ["samples", 9, (p) => (p.samples ? formatPlain(p.samples) : undefined)],
    ["per sample", 10, (p) => (p.joulesPerSample ? formatSi(p.joulesPerSample, "J") : undefined)],
  ];
  // Only the columns some phase has a value for: no empty "CO2e" column without per-phase stats.
  const shown = columns.filter(([, , f]) => phases.some((p) => f(p) !== undefined));
  const head = `${(named ? `phases of ${oneLine(j.id)}` : "phase").padEnd(23)}${shown.map(([h, w]) => h.padEnd(w)).join("")}`;
  const out = [head.trimEnd()];
  for (const p of phases.slice(0, MAX_PHASE_LINES)) {
    const pn = oneLine(p.name);
    const name = pn.length > 20 ? `${pn.slice(0, 19)}…` : pn;
    out.push(`  ${name.padEnd(21)}${shown.map(([, w, f]) => (f(p) ?? "").padEnd(w)).join("")}`.trimEnd());
  }
  if (phases.length > MAX_PHASE_LINES) out.push(`  … ${phases.length - MAX_PHASE_LINES} more phase(s): see the report`);
  return out;
}

/** One short line per fallback; the details are in --verbose and the report. */
function fallbackLines(r: ReportV1): string[] {
  const out: string[] = [];
  const modelled = r.devices.filter((d) => d.method === "model").map((d) => d.id);
  if (modelled.length) out.push(`note        modelled, not measured: ${modelled.join(", ")} (how: --verbose or the report)`);
  const lost = r.devices.filter((d) => d.status === "lost").map((d) => d.id);
  if (lost.length) out.push(`note        lost during the run: ${lost.join(", ")}`);
  if (r.devices.length === 0) out.push("note        no device could be read: energy is 0 (see `powerprint probe`)");
  const fb = Object.entries(r.intensity.fallbacks).filter(([, n]) => n > 0);
  if (fb.length) out.push(`note        intensity fell back in ${fb.map(([k, n]) => `${n} interval(s) to ${k}`).join(", ")}`);
  const ef = Object.entries(r.exportFailures);
  if (ef.length) out.push(`note        export failures: ${ef.map(([k, n]) => `${k}×${n}`).join(", ")}`);
  const sf = Object.entries(r.sampler.failures);
  if (sf.length) out.push(`note        sampling failures: ${sf.map(([k, n]) => `${k}×${n}`).join(", ")}`);
  for (const c of r.budget?.crossed ?? []) {
    const v = c.quantity === "facilityEnergyJoules" ? formatEnergy(c.limit) : formatGrams(c.limit);
    out.push(`budget      --${c.budget} ${v} crossed after ${formatDuration(c.afterSeconds)}: ${c.action}`);
  }
  return out;
}

/** Full provenance of one device (--verbose). */
function deviceLine(d: ReportV1["devices"][number]): string {
  return (
    `device ${d.id}${d.model ? ` (${d.model})` : ""}: ${formatEnergy(d.energyJoules)} by ${d.method} from ${d.source}; idle baseline ${d.idleOrigin}` +
    (d.processUsageMethod ? `; per-process split ${splitText(d)}` : "") +
    (d.status === "lost" ? "; LOST during the run" : "") +
    (d.notes.length ? `; ${d.notes.join("; ")}` : "")
  );
}

/** Lines longer than SUMMARY_WIDTH end in "…" (verbose device lines are left whole: they are the details). */
function fit(line: string): string {
  if (line.startsWith("device ") || line.length <= SUMMARY_WIDTH) return line;
  return `${line.slice(0, SUMMARY_WIDTH - 1)}…`;
}

/** "utilization" or, when a device changed method during the run, "utilization (48 intervals), equal (2)". */
function splitText(d: ReportV1["devices"][number]): string {
  const counts = Object.entries(d.processUsageIntervals ?? {}).sort((a, b) => b[1] - a[1]);
  if (counts.length <= 1) return d.processUsageMethod ?? "";
  return counts.map(([m, n]) => `${m} (${n} interval${n === 1 ? "" : "s"})`).join(", ");
}

/** User text on one summary line: control characters (a newline in a command line) escaped. */
export function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f]/g, (c) => (c === "\n" ? "\\n" : c === "\r" ? "\\r" : c === "\t" ? "\\t" : `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`));
}
