import type { ReportV1 } from "./report-json.js";
import { servingSummaryLine } from "./serving.js";
import { formatCount, formatDuration, formatEnergy, formatGrams, formatLiters, formatPlain, formatSi, formatWatts } from "../src/units.js";

/** Longest summary line, characters. */
export const SUMMARY_WIDTH = 100;
/** Jobs listed one per line; the rest are counted on one line. */
const MAX_JOB_LINES = 3;
/** Phases listed in the table; the rest are counted on one line. */
const MAX_PHASE_LINES = 5;
/** Failed runs and tag groups listed (a merged report); the rest are counted on one line. */
const MAX_LIST_LINES = 5;

type Job = ReportV1["jobs"][number];

/** How the summary is shown. */
export interface SummaryOptions {
  /** One line per device with its full provenance (--verbose). */
  verbose?: boolean;
  /**
   * The file the user asked for that holds every detail (the JSON report, else the HTML page):
   * lines the summary cuts short point there. Without one, no line mentions a report (issue 18:
   * messages never name an output that was not asked for).
   */
  detailsFile?: string;
}

/** The file of the outputs asked for that a summary's cut lines point to: the JSON report, else the HTML page. */
export function detailsFileOf(o: { reportPath?: string; htmlPath?: string }): string | undefined {
  return o.reportPath ?? o.htmlPath;
}
type Phase = NonNullable<Job["phases"]>[number];

/**
 * The end-of-run summary printed on stderr (and `powerprint report`'s on stdout), for people: about
 * 12 lines of at most 100 characters. Every line says whose figure it is: `job` (one line per job:
 * its energy, CO2e, average power over its own duration, CPU time), `host` (the devices' whole
 * energy: every job plus `system`, host activity outside the jobs, and `idle`, power no process
 * used), then the host's facility energy, emissions and water, a per-phase table when the job wrote
 * marks, per-unit figures, and one short line per fallback or piece of information.
 *
 * Every figure is the report model's (exporters/report-json.ts): nothing is computed here, only
 * formatted. One number format (src/units.ts): 3 significant digits with an SI prefix for
 * measured quantities, whole numbers with digit grouping for counts (4,096 samples).
 * `verbose` adds one line per device with its full provenance; the JSON report always has it.
 */
export function formatSummary(r: ReportV1, o: SummaryOptions = {}): string {
  const lines: string[] = [headLine(r)];
  const more = seeDetails(o.detailsFile);
  // Failed jobs first (a merged sweep's failed run must not hide behind "more jobs").
  const failed = (j: Job) => j.exitCode !== undefined && j.exitCode !== 0;
  const shown = [...r.jobs.filter(failed), ...r.jobs.filter((j) => !failed(j))].slice(0, MAX_JOB_LINES);
  for (const j of shown) lines.push(jobLine(j, r));
  if (r.jobs.length > MAX_JOB_LINES) lines.push(`            … ${r.jobs.length - MAX_JOB_LINES} more job(s)${more}`);
  if (r.jobs.length === 0) lines.push("job         none measured");
  lines.push(...hostLines(r));
  // The phase table of the first job with marks (a run has one job; simulate lists the first).
  const marked = r.jobs.find((j) => (j.phases?.length ?? 0) > 0);
  if (marked) lines.push(...phaseTable(marked, r.jobs.length > 1, more));
  for (const j of shown) {
    const prefix = r.jobs.length > 1 ? `${oneLine(j.id)}: ` : "";
    const work = workText(j);
    if (work) lines.push(`work        ${prefix}${work}`);
    const units = perUnitText(j);
    if (units) lines.push(`per unit    ${prefix}${units}`);
    // --work-from: the serving figures (docs/serving.md), formatted by exporters/serving.ts.
    if (j.serving) lines.push(servingSummaryLine(j.serving, prefix));
  }
  lines.push(...mergedLines(r, more));
  lines.push(...noteLines(r, o));
  if (o.verbose) {
    for (const d of r.devices) lines.push(deviceLine(d));
  }
  return lines.map(fit).join("\n");
}

/** What a cut list adds: where the rest is (": see FILE"), or nothing when no such file was asked for. */
function seeDetails(file: string | undefined): string {
  return file === undefined ? "" : `: see ${oneLine(file)}`;
}

/** The head: what this summary covers (a run, a simulation, an agent's jobs, or what was merged). */
function headLine(r: ReportV1): string {
  if (r.runs && r.runs.length > 1) {
    const span = `${shortTime(r.startedAt)} → ${shortTime(r.endedAt, r.startedAt)} UTC`;
    const failed = r.runs.filter((x) => x.exitCode !== undefined && x.exitCode !== 0).length;
    return `── powerprint report: ${r.runs.length} runs, ${r.jobs.length} job${r.jobs.length === 1 ? "" : "s"}${failed ? `, ${failed} failed` : ""} · ${span} ──`;
  }
  return `── powerprint summary (${r.mode}${r.scenario ? `: ${oneLine(r.scenario)}` : ""}) · ${formatDuration(r.durationSeconds)} ──`;
}

/** "2026-12-06 14:02:11" (ISO, seconds), or only the time when `sameDayAs` is on the same day. */
function shortTime(iso: string, sameDayAs?: string): string {
  const t = iso.replace("T", " ").replace(/\.\d+Z$|Z$/, "");
  return sameDayAs && sameDayAs.slice(0, 10) === iso.slice(0, 10) ? t.slice(11) : t;
}

/** One job: IT energy, CO2e, average power over its own duration, its CPU time; a failed run said. */
function jobLine(j: Job, r: ReportV1): string {
  const jobName = oneLine(j.name);
  const name = j.name !== j.id ? ` (${jobName.length > 16 ? `${jobName.slice(0, 15)}…` : jobName})` : "";
  const duration = j.durationSeconds ?? r.durationSeconds;
  const power = j.averagePowerWatts ? ` · ${formatWatts(j.averagePowerWatts.total)} over ${formatDuration(duration)}` : ` · ${formatDuration(duration)}`;
  // Said before the figures, so a long line never cuts it off.
  const failed = j.exitCode !== undefined && j.exitCode !== 0 ? ` FAILED (exit ${j.exitCode})` : "";
  return `job ${oneLine(j.id)}${name}${failed}: ${formatEnergy(j.energyJoules.total)} IT, ${formatGrams(j.emissionsGrams)} CO2e${power} · ${formatDuration(j.cpuSeconds)} CPU`;
}

/** The host: every device's energy, with the part no job used (`system`, `idle`), facility, emissions, water. */
function hostLines(r: ReportV1): string[] {
  const t = r.totals;
  const byKindJoules = t.energyByKindJoules;
  const kinds = (["cpu", "gpu", "memory"] as const).filter((k) => r.devices.some((d) => d.kind === k));
  const methodOf = (k: string) => [...new Set(r.devices.filter((d) => d.kind === k).map((d) => d.method))].join("/");
  const byKind = byKindJoules ? kinds.map((k) => `${k} ${formatEnergy(byKindJoules[k])} ${methodOf(k)}`).join(", ") : "";
  const parts = `jobs ${formatEnergy(t.jobs?.energyJoules ?? 0)} + system ${formatEnergy(r.buckets.system.energyJoules.total)} + idle ${formatEnergy(r.buckets.idle.energyJoules.total)}`;
  const lines = [`host        ${formatEnergy(t.energyJoules)} IT = ${parts}`];
  if (byKind) lines.push(`devices     ${byKind}`);
  const pue = `PUE ${formatPlain(r.pue.value)}${r.pue.origin === "default" ? ", default: set --pue" : `, ${r.pue.origin}`}`;
  lines.push(`facility    host ${formatEnergy(t.facilityEnergyJoules)} (${pue})`);
  lines.push(`emissions   host ${formatGrams(t.emissionsGrams)} CO2e ${intensityText(r)}`);
  const cost = r.cost.pricePerKwh > 0 && t.cost !== undefined ? ` · cost ${formatPlain(t.cost)} ${r.cost.currency}` : "";
  if (t.waterLiters !== undefined && t.embodiedEmissionsGrams !== undefined) {
    lines.push(`water       host ${formatLiters(t.waterLiters)} · embodied ${formatGrams(t.embodiedEmissionsGrams)} CO2e${cost}`);
  }
  return lines;
}

/** Emissions' intensity: the average the emissions reflect (the model's), the last one when it differs, and the source. */
function intensityText(r: ReportV1): string {
  const average = r.totals.intensityAverageGramsPerKwh;
  // No --zone: the information line says where the figure came from, once.
  const source = r.intensity.noZone ? "" : ` · ${shortSource(r)}`;
  if (average !== null && average !== undefined) {
    const last = Math.abs(average - r.intensity.lastGramsPerKwh) > 0.05 * average ? `, last ${formatPlain(r.intensity.lastGramsPerKwh)}` : "";
    return `at ${formatPlain(average)} g/kWh on average${last}${source}`;
  }
  if (r.intensity.source === "none") return "· no intensity applied (no interval was recorded)";
  return `· ${formatPlain(r.intensity.lastGramsPerKwh)} g/kWh${source}`;
}

/** The intensity's source in a few words ("static table DE", "scenario series, zone DE"), numbers left to the figures. */
function shortSource(r: ReportV1): string {
  const d = r.intensity.description;
  const cut = Math.min(...[d.indexOf(": "), d.indexOf(" ("), d.length].filter((i) => i >= 0));
  // The description's own number (written by the grid module, its own format) is not repeated.
  const short = d.slice(0, cut).replace(/\s*[\d.]+\s*gCO2e\/kWh/, "");
  const zone = r.intensity.zone;
  return zone && zone !== "none" && !short.includes(zone) ? `${short}, zone ${zone}` : short;
}

/** Per-unit figures of a job, as the report model computed them. */
function perUnitText(j: Job): string {
  const parts: string[] = [];
  if (j.joulesPerSample) parts.push(`${formatSi(j.joulesPerSample, "J")}/sample`);
  if (j.joulesPerToken) parts.push(`${formatSi(j.joulesPerToken, "J")}/token`);
  if (j.joulesPerStep && !j.joulesPerSample && !j.joulesPerToken) parts.push(`${formatSi(j.joulesPerStep, "J")}/step`);
  // SCI's functional unit for language models: operational CO2e per million tokens.
  if (j.emissionsGramsPerMillionTokens) parts.push(`${formatGrams(j.emissionsGramsPerMillionTokens)} CO2e per million tokens`);
  return parts.join(", ");
}

/** A job's units of work, whole and grouped: "4,096 samples, 98,304 tokens, 3 steps". */
function workText(j: Job): string {
  const counts: [number | null | undefined, string][] = [[j.samples, "samples"], [j.tokens, "tokens"], [j.steps, "steps"]];
  return counts.filter(([n]) => n !== null && n !== undefined).map(([n, unit]) => `${formatCount(n!)} ${unit}`).join(", ");
}

/** A compact table: phase, energy, share, CO2e, time, counts and J/sample where the report has them. */
function phaseTable(j: Job, named: boolean, more: string): string[] {
  const phases = j.phases ?? [];
  const columns: [string, number, (p: Phase) => string | undefined][] = [
    ["energy", 11, (p) => formatEnergy(p.energyJoules)],
    ["share", 8, (p) => (p.energyShare !== null && p.energyShare !== undefined ? `${formatPlain(100 * p.energyShare)}%` : undefined)],
    ["CO2e", 10, (p) => formatGrams(p.emissionsGrams)],
    ["time", 10, (p) => formatDuration(p.durationSeconds)],
    ["samples", 10, (p) => (p.samples ? formatCount(p.samples) : undefined)],
    ["per sample", 10, (p) => (p.joulesPerSample ? formatSi(p.joulesPerSample, "J") : undefined)],
  ];
  // Only the columns some phase has a value for.
  const shown = columns.filter(([, , f]) => phases.some((p) => f(p) !== undefined));
  const head = `${(named ? `phases of ${oneLine(j.id)}` : "phase").padEnd(23)}${shown.map(([h, w]) => h.padEnd(w)).join("")}`;
  const out = [head.trimEnd()];
  for (const p of phases.slice(0, MAX_PHASE_LINES)) {
    const pn = oneLine(p.name);
    const name = pn.length > 20 ? `${pn.slice(0, 19)}…` : pn;
    out.push(`  ${name.padEnd(21)}${shown.map(([, w, f]) => (f(p) ?? "").padEnd(w)).join("")}`.trimEnd());
  }
  if (phases.length > MAX_PHASE_LINES) out.push(`  … ${phases.length - MAX_PHASE_LINES} more phase(s)${more}`);
  return out;
}

/** A merged report: its failed runs (exit ≠ 0), and the totals per tag value (`--group-by`). */
function mergedLines(r: ReportV1, more: string): string[] {
  const out: string[] = [];
  const failed = (r.runs ?? []).filter((x) => x.exitCode !== undefined && x.exitCode !== 0);
  for (const x of failed.slice(0, MAX_LIST_LINES)) out.push(`failed      ${oneLine(x.file)}: exit ${x.exitCode} (${x.jobs.map(oneLine).join(", ")})`);
  if (failed.length > MAX_LIST_LINES) out.push(`failed      … ${failed.length - MAX_LIST_LINES} more run(s)${more}`);
  const groups = r.groups ?? [];
  const money = r.cost.pricePerKwh > 0;
  for (const g of groups.slice(0, MAX_LIST_LINES)) {
    const failedJobs = g.failedJobs?.length ? `, ${g.failedJobs.length} failed` : "";
    out.push(
      `group       ${oneLine(g.tag)}=${oneLine(g.value)}: ${g.jobs.length} job${g.jobs.length === 1 ? "" : "s"}${failedJobs}, ` +
        `${formatEnergy(g.facilityEnergyJoules)} facility, ${formatGrams(g.emissionsGrams)} CO2e, ${formatDuration(g.cpuSeconds)} CPU` +
        `${money ? `, ${formatPlain(g.cost)} ${r.cost.currency}` : ""}` +
        (g.serving?.joulesPerGeneratedToken != null ? `, ${formatSi(g.serving.joulesPerGeneratedToken, "J")}/token over ${formatCount(g.serving.generatedTokens ?? 0)} tokens` : ""),
    );
  }
  if (groups.length > MAX_LIST_LINES) out.push(`group       … ${groups.length - MAX_LIST_LINES} more value(s)${more}`);
  return out;
}

/** Information (once) and one short line per fallback; the details are in --verbose (and the report, when one was asked for). */
function noteLines(r: ReportV1, o: SummaryOptions): string[] {
  const out: string[] = [];
  if (r.intensity.noZone) out.push(`grid        no --zone: world average ${formatPlain(r.intensity.lastGramsPerKwh)} g/kWh (set --zone or a provider)`);
  const modelled = r.devices.filter((d) => d.method === "model").map((d) => d.id);
  if (modelled.length) out.push(`note        modelled, not measured (how: ${howModelled(o)}): ${modelled.join(", ")}`);
  const lost = r.devices.filter((d) => d.status === "lost").map((d) => d.id);
  if (lost.length) out.push(`note        lost during the run: ${lost.join(", ")}`);
  if (r.devices.length === 0) out.push("note        no device could be read: energy is 0 (see `powerprint probe`)");
  const fb = Object.entries(r.intensity.fallbacks).filter(([, n]) => n > 0);
  if (fb.length) out.push(`note        intensity fell back in ${fb.map(([k, n]) => `${formatCount(n)} interval(s) to ${k}`).join(", ")}`);
  const ef = Object.entries(r.exportFailures);
  if (ef.length) out.push(`note        export failures: ${ef.map(([k, n]) => `${k}×${formatCount(n)}`).join(", ")}`);
  const sf = Object.entries(r.sampler.failures);
  if (sf.length) out.push(`note        sampling failures: ${sf.map(([k, n]) => `${k}×${formatCount(n)}`).join(", ")}`);
  for (const c of r.budget?.crossed ?? []) {
    const v = c.quantity === "facilityEnergyJoules" ? formatEnergy(c.limit) : formatGrams(c.limit);
    out.push(`budget      --${c.budget} ${v} crossed after ${formatDuration(c.afterSeconds)}: ${c.action}`);
  }
  return out;
}

/** Where a modelled device's model is described: the verbose lines below, --verbose, or the file asked for. */
function howModelled(o: SummaryOptions): string {
  if (o.verbose) return "the device lines below";
  return o.detailsFile === undefined ? "--verbose" : `--verbose or ${oneLine(o.detailsFile)}`;
}

/** Full provenance of one device (--verbose). */
function deviceLine(d: ReportV1["devices"][number]): string {
  return (
    `device ${d.id}${d.model ? ` (${d.model})` : ""}: ${formatEnergy(d.energyJoules)} by ${d.method} from ${d.source}; idle baseline ${d.idleOrigin}` +
    (d.parent ? `; MIG instance of ${d.parent}, its share split by ${d.partitionMethod ?? "slices"}` : "") +
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
  return counts.map(([m, n]) => `${m} (${formatCount(n)} interval${n === 1 ? "" : "s"})`).join(", ");
}

/** User text on one summary line: control characters (a newline in a command line) escaped. */
export function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f]/g, (c) => (c === "\n" ? "\\n" : c === "\r" ? "\\r" : c === "\t" ? "\\t" : `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`));
}
