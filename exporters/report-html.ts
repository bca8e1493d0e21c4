/**
 * `--html FILE`: one self-contained HTML file (no script, no font, no request at view time) meant
 * to be pasted into a review: a headline block (job energy, emissions, duration, average power,
 * per-unit figures, how each was obtained), charts drawn as inline SVG that fill the page's width
 * and scale with it (power per device and per job, cumulative energy and CO2e, grid intensity,
 * energy per phase), and tables (jobs, phases, devices, how each figure was obtained). A merged
 * report (`powerprint report`) adds its runs (failed ones marked), a power chart per job from each
 * run's own series, and totals per tag value.
 *
 * Every number is the report model's (exporters/report-json.ts), formatted with src/units.ts; the
 * charts plot the recorded series as they are: a gauge point (power, intensity) is a step over the
 * span it averages, a cumulative point a vertex at its end; nothing is drawn before the first
 * recorded point (no invented zero). Labels are laid out from their length so none is cut; long
 * user text in a bar label ends in "…" with the whole text as its tooltip. Written atomically.
 */
import { formatCount, formatDuration, formatEnergy, formatGrams, formatLiters, formatPlain, formatSi, formatWatts, joulesToWh } from "../src/units.js";
import { writeTextAtomic, type ReportV1 } from "./report-json.js";
import type { TimeSeries } from "./timeseries.js";
import { SERVING_TABLE_HEADER, servingTableRows } from "./serving.js";

type Job = ReportV1["jobs"][number];
type Run = NonNullable<ReportV1["runs"]>[number];

const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
/** Chart drawing units (the SVG's viewBox; it is scaled to the page's width). */
const W = 960;
const H = 250;
/** Approximate advance of one character of chart text (12 px system-ui), drawing units: labels are laid out with it. */
const CHAR_WIDTH = 7.4;
/** Per-job charts drawn for a merged report at most (the rest are said). */
const MAX_JOB_CHARTS = 24;
/** Bars in one bar chart at most (the rest are said). */
const MAX_BARS = 40;

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

/** A series to draw: each point's value, the end of the span it covers, and (gauges) the span. */
interface Series {
  name: string;
  values: number[];
}

/** Horizontal extent of point k: [end − span, end] for a gauge, the end alone for a cumulative figure. */
interface Axis {
  endSeconds: number[];
  spanSeconds: number[];
}

/**
 * A line chart over time. `kind` "gauge": each point is an average over its span, drawn as a step
 * from the span's start to its end; "cumulative": a vertex at each point's end. The path starts at
 * the first recorded point; the y axis starts at 0 (a baseline, not a data point). The SVG carries
 * its scale (`data-y-max`, `data-plot-top`, `data-plot-bottom`) so a reader can map a vertex back to
 * its value.
 */
function lineChart(id: string, title: string, axis: Axis, lines: Series[], yFormat: (v: number) => string, kind: "gauge" | "cumulative", width = W, height = H): string {
  const n = axis.endSeconds.length;
  // Every chart of a run on one time axis: from the start of the first recorded span to the last end.
  const xMin = Math.max(0, axis.endSeconds[0] - axis.spanSeconds[0]);
  const xMax = Math.max(xMin + 1e-9, axis.endSeconds[n - 1]);
  const yMax = niceCeiling(Math.max(1e-12, ...lines.flatMap((l) => l.values).filter((v) => !Number.isNaN(v))) * 1.04);
  const yLabels = [0, 0.5, 1].map((f) => yFormat(yMax * f));
  const pad = { left: Math.ceil(Math.max(...yLabels.map((t) => t.length)) * CHAR_WIDTH) + 16, right: 24, top: 14, bottom: 34 };
  const x = (v: number) => pad.left + ((v - xMin) / (xMax - xMin)) * (width - pad.left - pad.right);
  const y = (v: number) => height - pad.bottom - (v / yMax) * (height - pad.top - pad.bottom);
  const paths = lines
    .map((l, i) => {
      const pts: [number, number][] = [];
      for (let k = 0; k < n; k++) {
        if (kind === "gauge") pts.push([Math.max(xMin, axis.endSeconds[k] - axis.spanSeconds[k]), l.values[k]]);
        pts.push([axis.endSeconds[k], l.values[k]]);
      }
      // A point without a value (NaN: e.g. no token in it) breaks the line.
      const d = pts
        .map(([a, b], k) => (Number.isNaN(b) ? "" : `${k === 0 || Number.isNaN(pts[k - 1][1]) ? "M" : "L"}${x(a).toFixed(1)},${y(b).toFixed(2)}`))
        .filter(Boolean)
        .join(" ");
      return `<path class="series" data-name="${esc(l.name)}" d="${d}" fill="none" stroke="${PALETTE[i % PALETTE.length]}" stroke-width="2"/>`;
    })
    .join("");
  const grid = [0, 0.5, 1]
    .map((f, i) => `<line x1="${pad.left}" x2="${width - pad.right}" y1="${y(yMax * f)}" y2="${y(yMax * f)}" class="grid"/><text x="${pad.left - 8}" y="${y(yMax * f) + 4}" text-anchor="end">${esc(yLabels[i])}</text>`)
    .join("");
  // The first x label starts at the axis, the last ends at it: none reaches past the chart's edge.
  const xTicks = ([[0, "start"], [0.5, "middle"], [1, "end"]] as const)
    .map(([f, anchor]) => `<text x="${x(xMin + (xMax - xMin) * f).toFixed(1)}" y="${height - pad.bottom + 20}" text-anchor="${anchor}">${esc(formatDuration(xMin + (xMax - xMin) * f))}</text>`)
    .join("");
  const legend = lines.map((l, i) => `<span><i style="background:${PALETTE[i % PALETTE.length]}"></i>${esc(l.name)}</span>`).join("");
  const scale = `data-y-max="${yMax}" data-plot-top="${pad.top}" data-plot-bottom="${height - pad.bottom}"`;
  return figure(id, title, `${grid}${xTicks}${paths}`, legend, height, scale, width);
}

/** The smallest 1, 2, 2.5 or 5 × 10^k at or above `v`: round axis labels (0, half, top). */
function niceCeiling(v: number): number {
  const base = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * base >= v * (1 - 1e-12)) return m * base;
  return 10 * base;
}

interface Bar {
  name: string;
  value: number;
  note?: string;
  failed?: boolean;
}

/** A horizontal bar chart, its label column as wide as its longest label (up to 40 % of the width). */
function barChart(id: string, title: string, all: Bar[], format: (v: number) => string): string {
  const bars = all.slice(0, MAX_BARS);
  const rowH = 30;
  const maxLabelChars = Math.floor((W * 0.4) / CHAR_WIDTH);
  const label = (b: Bar) => (b.name.length > maxLabelChars ? `${b.name.slice(0, maxLabelChars - 1)}…` : b.name);
  const left = Math.ceil(Math.max(...bars.map((b) => label(b).length)) * CHAR_WIDTH) + 16;
  const valueText = (b: Bar) => format(b.value) + (b.note ? ` · ${b.note}` : "") + (b.failed ? " · FAILED" : "");
  const right = Math.ceil(Math.max(...bars.map((b) => valueText(b).length)) * CHAR_WIDTH) + 16;
  const max = Math.max(1e-12, ...bars.map((b) => b.value));
  const height = 12 + bars.length * rowH;
  const body = bars
    .map((b, i) => {
      const y0 = 6 + i * rowH;
      const w = Math.max(1, (b.value / max) * Math.max(40, W - left - right));
      const full = label(b) !== b.name ? `<title>${esc(b.name)}</title>` : "";
      return (
        `<path class="series${b.failed ? " failed" : ""}" data-name="${esc(b.name)}" d="M${left},${y0 + 4} h${w.toFixed(1)} v${rowH - 10} h${(-w).toFixed(1)} Z" fill="${b.failed ? "#b00020" : PALETTE[i % PALETTE.length]}"/>` +
        `<text x="${left - 8}" y="${y0 + rowH / 2 + 3}" text-anchor="end">${full}${esc(label(b))}</text>` +
        `<text x="${(left + w + 8).toFixed(1)}" y="${y0 + rowH / 2 + 3}">${esc(valueText(b))}</text>`
      );
    })
    .join("");
  const more = all.length > bars.length ? `<span>… ${all.length - bars.length} more: see the tables</span>` : "";
  return figure(id, title, body, more, height);
}

function figure(id: string, title: string, body: string, legend: string, height: number, attrs = "", width = W): string {
  return (
    `<figure class="chart"><figcaption>${esc(title)}</figcaption>` +
    `<svg data-chart="${esc(id)}" ${attrs} viewBox="0 0 ${width} ${height}" preserveAspectRatio="xMinYMin meet" role="img" aria-label="${esc(title)}">${body}</svg>` +
    `<div class="legend">${legend}</div></figure>`
  );
}

const axisOf = (t: TimeSeries): Axis => ({ endSeconds: t.endSeconds, spanSeconds: t.spanSeconds });

/** The time charts of one run's series. */
function timeCharts(r: ReportV1, t: TimeSeries): string[] {
  const a = axisOf(t);
  return [
    lineChart("power", "Power per device (W)", a, Object.entries(t.devicePowerWatts).map(([name, values]) => ({ name, values })), formatWatts, "gauge"),
    lineChart("job-power", "Power attributed per job (W, IT)", a, Object.entries(t.jobPowerWatts).map(([name, values]) => ({ name, values })), formatWatts, "gauge"),
    lineChart("energy", "Cumulative energy of the host (Wh): IT and facility", a, [
      { name: "IT energy", values: t.cumulativeEnergyJoules.map(joulesToWh) },
      { name: "facility energy (× PUE)", values: t.cumulativeFacilityEnergyJoules.map(joulesToWh) },
    ], (v) => formatSi(v, "Wh"), "cumulative"),
    lineChart("emissions", "Cumulative operational emissions of the host (CO2e)", a, [{ name: "CO2e", values: t.cumulativeEmissionsGrams }], formatGrams, "cumulative"),
    ...servingChart(a, t),
    lineChart("intensity", "Grid carbon intensity (gCO2e/kWh)", a, [{ name: `${r.intensity.zone} (${r.intensity.source})`, values: t.intensityGramsPerKwh }], (v) => `${formatPlain(v)} g/kWh`, "gauge"),
  ];
}

/** --work-from (docs/serving.md): J per generated token within each point; a point without tokens has none. */
function servingChart(a: Axis, t: TimeSeries): string[] {
  const serving = Object.entries(t.servingCumulative ?? {});
  if (serving.length === 0) return [];
  const lines = serving.map(([name, x]) => ({ name, values: x.joulesPerGeneratedToken.map((v) => v ?? Number.NaN) }));
  return [lineChart("serving-joules-per-token", "J per generated token over time (within each point; --work-from)", a, lines, (v) => formatSi(v, "J"), "gauge")];
}

/** A merged report: each job's power over its own run (from that run's series). */
function jobCharts(r: ReportV1): string[] {
  const out: string[] = [];
  let skipped = 0;
  for (const run of r.runs ?? []) {
    const t = run.timeSeries;
    if (!t || t.pointCount === 0) continue;
    for (const id of run.jobs) {
      const values = t.jobPowerWatts[id];
      if (!values) continue;
      if (out.length >= MAX_JOB_CHARTS) {
        skipped++;
        continue;
      }
      const failed = run.exitCode !== undefined && run.exitCode !== 0 ? ` · FAILED (exit ${run.exitCode})` : "";
      out.push(lineChart(`job-power:${id}@${run.file}`, `Job ${id}: power (W, IT) · ${run.file}${failed}`, axisOf(t), [{ name: id, values }], formatWatts, "gauge", 600, 200));
    }
  }
  if (out.length === 0) return [];
  const more = skipped > 0 ? `<p class="note">… ${skipped} more job chart(s): open those runs' own reports.</p>` : "";
  return [`<h2>Each job over its run</h2><div class="grid2">${out.join("\n")}</div>${more}`];
}

/** Energy per phase of every job with phases (name, energy, share, per-sample figure). */
function phaseChart(r: ReportV1): string | undefined {
  const bars: Bar[] = [];
  for (const j of r.jobs) {
    const prefix = r.jobs.filter((x) => x.phases?.length).length > 1 ? `${j.id}: ` : "";
    for (const p of j.phases ?? []) {
      const share = p.energyShare !== null && p.energyShare !== undefined ? `${formatPlain(100 * p.energyShare)}%` : "";
      const notes = [share, formatDuration(p.durationSeconds), p.joulesPerSample ? `${formatSi(p.joulesPerSample, "J")}/sample` : ""].filter(Boolean);
      bars.push({ name: prefix + p.name, value: p.energyJoules, note: notes.join(" · ") });
    }
  }
  return bars.length ? barChart("phases", "Energy per phase (IT)", bars, formatEnergy) : undefined;
}

/** Energy per job (several jobs), failed runs' jobs marked. */
function jobsChart(r: ReportV1): string | undefined {
  if (r.jobs.length < 2) return undefined;
  const bars = r.jobs.map((j) => ({ name: j.id, value: j.energyJoules.total, note: `${formatGrams(j.emissionsGrams)} CO2e`, failed: j.exitCode !== undefined && j.exitCode !== 0 }));
  return barChart("jobs", "Energy per job (IT)", bars, formatEnergy);
}

/** Totals per tag value (`--group-by`). */
function groupsChart(r: ReportV1): string | undefined {
  if (!r.groups?.length) return undefined;
  const bars = r.groups.map((g) => ({ name: `${g.tag}=${g.value}`, value: g.facilityEnergyJoules, note: `${formatGrams(g.emissionsGrams)} CO2e · ${g.jobs.length} job(s)${g.failedJobs?.length ? `, ${g.failedJobs.length} failed` : ""}` }));
  return barChart("groups", `Facility energy per ${r.groups[0].tag}`, bars, formatEnergy);
}

// ---------------------------------------------------------------------------------------------
// Headline and tables

const methodsOf = (r: ReportV1, kind: string) => [...new Set(r.devices.filter((d) => d.kind === kind).map((d) => `${d.method} (${d.source})`))].join(", ");
const failedJob = (j: Job) => j.exitCode !== undefined && j.exitCode !== 0;
const noPrice = (r: ReportV1) => !(r.cost.pricePerKwh > 0);
const costText = (r: ReportV1, amount: number | undefined) => (noPrice(r) ? "no price set" : `${formatPlain(amount ?? 0)} ${r.cost.currency}`);

/** The headline: the figures a reader looks for first, each with how it was obtained. */
function headline(r: ReportV1): string {
  const one = r.jobs.length === 1 ? r.jobs[0] : undefined;
  const jobs = r.totals.jobs;
  const kinds = (["gpu", "cpu", "memory"] as const).filter((k) => r.devices.some((d) => d.kind === k));
  const energyHow = kinds.map((k) => `${k}: ${methodsOf(r, k)}`).join(" · ") || "no device read";
  const intensity = r.totals.intensityAverageGramsPerKwh;
  const emissionsHow = `${intensity !== null && intensity !== undefined ? `at ${formatPlain(intensity)} g/kWh on average · ` : ""}${r.intensity.noZone ? "world average (no --zone)" : r.intensity.description}`;
  const cards: [string, string, string][] = [];
  if (one) {
    cards.push(["Job energy (IT)", formatEnergy(one.energyJoules.total), `${formatEnergy(one.facilityEnergyJoules)} facility (PUE ${formatPlain(r.pue.value)}) · ${energyHow}`]);
    cards.push(["Job emissions", `${formatGrams(one.emissionsGrams)} CO2e`, emissionsHow]);
    cards.push(["Duration", formatDuration(one.durationSeconds ?? r.durationSeconds), `${formatDuration(one.cpuSeconds)} CPU${failedJob(one) ? ` · FAILED (exit ${one.exitCode})` : ""}`]);
    if (one.averagePowerWatts) cards.push(["Average power", formatWatts(one.averagePowerWatts.total), kinds.map((k) => `${k} ${formatWatts(one.averagePowerWatts![k])}`).join(" · ")]);
    const units = [
      one.joulesPerSample ? `${formatSi(one.joulesPerSample, "J")}/sample` : "",
      one.joulesPerToken ? `${formatSi(one.joulesPerToken, "J")}/token` : "",
      !one.joulesPerSample && !one.joulesPerToken && one.joulesPerStep ? `${formatSi(one.joulesPerStep, "J")}/step` : "",
    ].filter(Boolean);
    if (units.length) {
      const more = [
        ...units.slice(1),
        one.emissionsGramsPerMillionTokens ? `${formatGrams(one.emissionsGramsPerMillionTokens)} CO2e per million tokens` : "",
        ...([[one.samples, "samples"], [one.tokens, "tokens"], [one.steps, "steps"]] as const).filter(([n]) => n !== null && n !== undefined).map(([n, u]) => `${formatCount(n!)} ${u}`),
      ].filter(Boolean);
      cards.push(["Per unit (IT energy)", units[0], more.join(" · ")]);
    }
  } else {
    const failed = r.jobs.filter(failedJob).length;
    const what = r.runs && r.runs.length > 1 ? `${r.runs.length} runs, ` : "";
    cards.push([`Jobs' energy (IT)`, formatEnergy(jobs?.energyJoules ?? 0), `${what}${formatCount(r.jobs.length)} job(s)${failed ? `, ${failed} failed` : ""} · ${energyHow}`]);
    cards.push([`Jobs' emissions`, `${formatGrams(jobs?.emissionsGrams ?? 0)} CO2e`, emissionsHow]);
    cards.push([r.runs && r.runs.length > 1 ? "Time span" : "Duration", formatDuration(r.durationSeconds), `${r.startedAt} → ${r.endedAt}`]);
  }
  cards.push(["Host energy (IT)", formatEnergy(r.totals.energyJoules), `jobs + system ${formatEnergy(r.buckets.system.energyJoules.total)} + idle ${formatEnergy(r.buckets.idle.energyJoules.total)}`]);
  cards.push([one ? "Job water" : "Jobs' water", formatLiters(one ? one.waterLiters : (jobs?.waterLiters ?? 0)), `${formatPlain(r.water.wueLitersPerKwh)} L/kWh on site + ${formatPlain(r.water.waterIntensityLitersPerKwh)} L/kWh of electricity`]);
  cards.push([one ? "Job cost" : "Jobs' cost", costText(r, one ? one.cost : jobs?.cost), noPrice(r) ? "set --price-per-kwh (and --currency)" : `facility kWh × ${formatPlain(r.cost.pricePerKwh)} ${r.cost.currency}`]);
  return `<section class="headline" aria-label="headline figures">${cards
    .map(([label, value, how]) => `<div class="card"><div class="label">${esc(label)}</div><div class="value">${esc(value)}</div><div class="how">${esc(how)}</div></div>`)
    .join("")}</section>`;
}

/** A table cell; `num` cells (figures) never wrap. */
const td = (text: string, cls = "") => `<td${cls ? ` class="${cls}"` : ""}>${esc(text)}</td>`;
const num = (text: string) => td(text, "num");
const table = (id: string, head: string[], rows: string[]) =>
  `<div class="scroll"><table data-table="${id}"><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join("")}</tr></thead><tbody>${rows.join("")}</tbody></table></div>`;

function jobsTable(r: ReportV1): string {
  const rows = r.jobs.map(
    (j) =>
      `<tr${failedJob(j) ? ' class="failed"' : ""}>` +
      td(j.id, "id") + td(j.name) + num(formatEnergy(j.energyJoules.total)) + num(formatEnergy(j.facilityEnergyJoules)) + num(formatGrams(j.emissionsGrams)) +
      num(formatDuration(j.durationSeconds ?? r.durationSeconds)) + num(j.averagePowerWatts ? formatWatts(j.averagePowerWatts.total) : "") + num(formatDuration(j.cpuSeconds)) +
      num(j.joulesPerSample ? `${formatSi(j.joulesPerSample, "J")}/sample` : j.joulesPerToken ? `${formatSi(j.joulesPerToken, "J")}/token` : "") +
      num(j.exitCode === undefined ? "" : failedJob(j) ? `exit ${j.exitCode} FAILED` : `exit ${j.exitCode}`) +
      td(Object.entries(j.attributes).map(([k, v]) => `${k}=${v}`).join(" ")) +
      "</tr>",
  );
  return `<h2>Jobs</h2>` + table("jobs", ["job", "name", "IT energy", "facility", "CO2e", "duration", "avg power", "CPU", "per unit", "exit", "tags"], rows);
}

function phasesTable(r: ReportV1): string {
  const rows = r.jobs.flatMap((j) =>
    (j.phases ?? []).map(
      (p) =>
        "<tr>" + td(j.id, "id") + td(p.name) + num(formatEnergy(p.energyJoules)) + num(p.energyShare !== null && p.energyShare !== undefined ? `${formatPlain(100 * p.energyShare)}%` : "") +
        num(formatGrams(p.emissionsGrams)) + num(formatDuration(p.durationSeconds)) + num(p.averagePowerWatts !== null && p.averagePowerWatts !== undefined ? formatWatts(p.averagePowerWatts) : "") +
        num(p.samples !== null ? formatCount(p.samples) : "") + num(p.tokens !== null ? formatCount(p.tokens) : "") + num(p.steps !== null ? formatCount(p.steps) : "") +
        num(p.joulesPerSample ? formatSi(p.joulesPerSample, "J") : "") + "</tr>",
    ),
  );
  if (rows.length === 0) return "";
  return `<h2>Phases</h2><p class="note">An interval that spans marks is split between the phases by the marks' times (time-weighted); phases sum to the job.</p>` +
    table("phases", ["job", "phase", "IT energy", "share", "CO2e", "time", "avg power", "samples", "tokens", "steps", "per sample"], rows);
}

function runsTable(r: ReportV1): string {
  if (!r.runs || r.runs.length < 2) return "";
  const rows = r.runs.map(
    (x: Run) =>
      `<tr${x.exitCode !== undefined && x.exitCode !== 0 ? ' class="failed"' : ""}>` +
      td(x.file, "id") + td(x.mode) + td(x.command?.join(" ") ?? x.scenario ?? "") + num(x.exitCode === undefined ? "" : x.exitCode !== 0 ? `exit ${x.exitCode} FAILED` : "exit 0") +
      num(x.startedAt) + num(formatDuration(x.durationSeconds)) + td(x.jobs.join(" ")) + "</tr>",
  );
  return `<h2>Runs merged</h2>` + table("runs", ["file", "mode", "command", "exit", "started", "duration", "jobs"], rows);
}

function groupsTable(r: ReportV1): string {
  if (!r.groups?.length) return "";
  const money = !noPrice(r);
  const rows = r.groups.map(
    (g) =>
      "<tr>" + td(`${g.tag}=${g.value}`, "id") + num(formatCount(g.jobs.length)) + num(formatEnergy(g.energyJoules)) + num(formatEnergy(g.facilityEnergyJoules)) + num(formatGrams(g.emissionsGrams)) +
      num(formatLiters(g.waterLiters)) + num(formatDuration(g.cpuSeconds)) + (money ? num(`${formatPlain(g.cost)} ${r.cost.currency}`) : "") + td(g.failedJobs?.length ? g.failedJobs.join(" ") : "") + "</tr>",
  );
  return `<h2>Totals per ${esc(r.groups[0].tag)}</h2>` + table("groups", ["value", "jobs", "IT energy", "facility", "CO2e", "water", "CPU", ...(money ? ["cost"] : []), "failed jobs"], rows);
}

/** --work-from jobs: one row per model (docs/serving.md), formatted by exporters/serving.ts. */
function servingTable(r: ReportV1): string {
  const rows = servingTableRows(r.jobs);
  if (rows.length === 0) return "";
  // Plain cells (no class): the serving table's whole row never wraps (CSS on data-table="serving").
  return `<h2>Serving</h2>` + table("serving", [...SERVING_TABLE_HEADER], rows.map((cells) => `<tr>${cells.map((c) => td(c)).join("")}</tr>`));
}

function devicesTable(r: ReportV1): string {
  const rows = r.devices.map(
    (d) => "<tr>" + td(d.id, "id") + td(d.kind) + td(d.model ?? "") + num(formatEnergy(d.energyJoules)) + td(`${d.method} (${d.source})`) + td(`idle: ${d.idleOrigin}${d.status === "lost" ? "; LOST" : ""}${d.notes.length ? `; ${d.notes.join("; ")}` : ""}`) + "</tr>",
  );
  return `<h2>Devices</h2>` + table("devices", ["device", "kind", "model", "energy", "method", "notes"], rows);
}

/** How each host figure was obtained, and from which source. */
function methodsTable(r: ReportV1): string {
  const t = r.totals;
  const kinds = (["cpu", "gpu", "memory"] as const).filter((k) => r.devices.some((d) => d.kind === k));
  const rows: string[][] = [
    ["duration", formatDuration(r.durationSeconds), r.runs && r.runs.length > 1 ? "span of the runs merged" : "monotonic clock", `${r.startedAt} → ${r.endedAt}`],
    ...kinds.map((k) => [`host energy, ${k}`, formatEnergy(t.energyByKindJoules?.[k] ?? 0), methodsOf(r, k), r.devices.filter((d) => d.kind === k).map((d) => `${d.id}: idle ${d.idleOrigin}`).join("; ")]),
    ["host energy (IT)", formatEnergy(t.energyJoules), "sum of devices", "jobs + system + idle"],
    ["host facility energy", formatEnergy(t.facilityEnergyJoules), `IT × PUE ${formatPlain(r.pue.value)}`, `PUE: ${r.pue.origin}`],
    ["host emissions", `${formatGrams(t.emissionsGrams)} CO2e`, "per interval: facility kWh × intensity", r.intensity.noZone ? `no --zone: world average ${formatPlain(r.intensity.lastGramsPerKwh)} g/kWh (set --zone or a provider)` : r.intensity.description],
    ["host water", formatLiters(t.waterLiters ?? 0), `WUE ${formatPlain(r.water.wueLitersPerKwh)} L/kWh + ${formatPlain(r.water.waterIntensityLitersPerKwh)} L/kWh of electricity`, r.water.origin],
    ["host embodied", `${formatGrams(t.embodiedEmissionsGrams ?? 0)} CO2e`, "device embodied × time held / lifetime", "SCI M"],
    ["host cost", costText(r, t.cost), noPrice(r) ? "no price per kWh was set" : `facility kWh × ${formatPlain(r.cost.pricePerKwh)}`, noPrice(r) ? "--price-per-kwh, --currency" : "--price-per-kwh"],
  ];
  return `<h2>How each figure was obtained</h2>` + table("methods", ["figure", "value", "method", "source"], rows.map(([a, b, c, d]) => `<tr>${td(a)}${num(b)}${td(c)}${td(d)}</tr>`));
}

const CSS = `*{box-sizing:border-box}body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d1d1f;background:#fafafa}
main{max-width:1280px;margin:0 auto;padding:24px 28px 48px}h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:32px 0 8px}
.sub{color:#555;margin:0 0 18px;overflow-wrap:anywhere}code{font-size:13px;background:#f0f0f0;padding:1px 4px;border-radius:3px}
.headline{display:grid;grid-template-columns:repeat(auto-fill,minmax(210px,1fr));gap:12px;margin:8px 0 20px}
.card{background:#fff;border:1px solid #ddd;border-radius:8px;padding:12px 14px;min-width:0}.card .label{font-size:12px;color:#666;text-transform:uppercase;letter-spacing:.04em}
.card .value{font-size:24px;font-weight:600;margin:2px 0 4px;white-space:nowrap}.card .how{font-size:12px;color:#555;overflow-wrap:anywhere}
.charts{display:grid;grid-template-columns:1fr;gap:8px}.grid2{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,520px),1fr));gap:0 12px}.charts h2{margin:16px 0 4px}figure.chart{margin:0 0 12px;background:#fff;border:1px solid #e3e3e3;border-radius:8px;padding:10px 12px;min-width:0}
figcaption{font-weight:600;margin-bottom:4px;overflow-wrap:anywhere}svg{display:block;width:100%;height:auto}svg text{font-size:12px;fill:#444}svg .grid{stroke:#e8e8e8}
.legend{display:flex;flex-wrap:wrap;gap:4px 16px;font-size:12px;margin-top:4px}.legend i{display:inline-block;width:10px;height:10px;margin-right:5px;vertical-align:middle;border-radius:2px}
.scroll{overflow-x:auto;max-width:100%}table{border-collapse:collapse;margin:4px 0;background:#fff}td,th{border:1px solid #ddd;padding:4px 10px;text-align:left;vertical-align:top}
th{background:#f3f3f3;white-space:nowrap}td.num{white-space:nowrap;text-align:right;font-variant-numeric:tabular-nums}td.id{white-space:nowrap;font-family:ui-monospace,monospace;font-size:13px}
table[data-table="serving"] td{white-space:nowrap}tr.failed td{background:#fdecee}tr.failed td.num{color:#b00020;font-weight:600}.note{color:#555;font-size:13px}ul.warnings{padding-left:20px}`;

/** The whole HTML document of a report. */
export function renderHtmlReport(r: ReportV1): string {
  const merged = r.runs && r.runs.length > 1;
  const title = merged ? `powerprint report — ${r.runs!.length} runs, ${r.jobs.length} job(s)` : `powerprint report — ${r.jobs.map((j) => j.name).join(", ") || r.mode}`;
  const sub = [
    merged ? `merged from ${r.runs!.map((x) => x.file).join(", ")}` : `${r.mode}${r.scenario ? ` of scenario ${r.scenario}` : ""}`,
    r.command ? `<code>${esc(r.command.join(" "))}</code>` : "",
    `${r.startedAt} → ${r.endedAt}`,
    `powerprint ${r.tool.version}`,
    r.complete === false ? "<strong>incomplete: a checkpoint written during the run</strong>" : "",
  ].filter(Boolean);
  const charts = [
    ...(r.timeSeries && r.timeSeries.pointCount > 0 ? timeCharts(r, r.timeSeries) : []),
    ...(merged ? jobCharts(r) : []),
    jobsChart(r),
    phaseChart(r),
    groupsChart(r),
  ].filter((x): x is string => x !== undefined);
  const budget = r.budget?.crossed.length
    ? `<h2>Budgets crossed</h2>` + table("budget", ["budget", "limit", "value", "at", "action"], r.budget.crossed.map((c) => {
        const f = c.quantity === "facilityEnergyJoules" ? formatEnergy : formatGrams;
        return `<tr>${td(c.budget)}${num(f(c.limit))}${num(f(c.value))}${num(c.at)}${td(c.action)}</tr>`;
      }))
    : "";
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>${esc(title)}</title><style>${CSS}</style></head><body><main>
<h1>${esc(title)}</h1>
<p class="sub">${sub.map((x) => (x.startsWith("<") ? x : esc(x))).join(" · ")}</p>
${headline(r)}
<section class="charts">${charts.join("\n")}</section>
${runsTable(r)}${groupsTable(r)}${jobsTable(r)}${phasesTable(r)}${servingTable(r)}${devicesTable(r)}${methodsTable(r)}${budget}
${r.warnings.length ? `<h2>Warnings</h2><ul class="warnings">${r.warnings.map((w) => `<li>${esc(w)}</li>`).join("")}</ul>` : ""}
</main></body></html>
`;
}

/** Writes the HTML report atomically (as the JSON report: temporary file, fsync, rename). */
export function writeHtmlReport(path: string, r: ReportV1): void {
  writeTextAtomic(path, renderHtmlReport(r));
}
