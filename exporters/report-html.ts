/**
 * `--html FILE`: one self-contained HTML file (no script, no font, no request at view time) with
 * charts drawn as inline SVG when the file is written: power per device over time, cumulative
 * energy and CO2e, grid intensity over time, energy per phase, and the summary's figures as a table
 * with how each was obtained and its source.
 *
 * The time series is the report's `timeSeries` (TimeSeriesRecorder); a report without one (older
 * runs) gets the tables and the phase chart only. Written atomically (writeJsonAtomic's rename).
 */
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { resolve } from "node:path";
import { formatDuration, formatEnergy, formatGrams, formatLiters, formatPlain, formatSi, formatWatts, joulesToKwh, joulesToWh } from "../src/units.js";
import type { ReportV1 } from "./report-json.js";
import type { TimeSeries } from "./timeseries.js";
import { SERVING_TABLE_HEADER, servingTableRows } from "./serving.js";

const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
const W = 720;
const H = 220;
const PAD = { left: 64, right: 16, top: 16, bottom: 36 };

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

interface Line {
  name: string;
  values: number[];
}

/** A line chart of series over `xs` (seconds since start) with labelled axes. */
function lineChart(id: string, title: string, xs: number[], lines: Line[], yFormat: (v: number) => string): string {
  const xMax = Math.max(1e-9, ...xs);
  const all = lines.flatMap((l) => l.values).filter((v) => !Number.isNaN(v));
  const yMax = Math.max(1e-12, ...all) * 1.05;
  const x = (v: number) => PAD.left + (v / xMax) * (W - PAD.left - PAD.right);
  const y = (v: number) => H - PAD.bottom - (v / yMax) * (H - PAD.top - PAD.bottom);
  const paths = lines
    .map((l, i) => {
      // A series of one point is drawn as a flat segment from 0 so it is visible.
      const pts = l.values.length === 1 ? [[0, l.values[0]], [xs[0], l.values[0]]] : l.values.map((v, k) => [xs[k], v]);
      // A point without a value (NaN: e.g. no token in it) breaks the line.
      const d = pts.map(([a, b], k) => (Number.isNaN(b) ? "" : `${k === 0 || Number.isNaN(pts[k - 1][1]) ? "M" : "L"}${x(a).toFixed(1)},${y(b).toFixed(1)}`)).filter(Boolean).join(" ");
      return `<path class="series" data-name="${esc(l.name)}" d="${d}" fill="none" stroke="${PALETTE[i % PALETTE.length]}" stroke-width="1.6"/>`;
    })
    .join("");
  const ticks = [0, 0.5, 1]
    .map((f) => `<text x="${PAD.left - 6}" y="${y(yMax * f) + 4}" text-anchor="end">${esc(yFormat(yMax * f))}</text>` + `<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${y(yMax * f)}" y2="${y(yMax * f)}" class="grid"/>`)
    .join("");
  const xTicks = [0, 0.5, 1].map((f) => `<text x="${x(xMax * f)}" y="${H - PAD.bottom + 16}" text-anchor="middle">${esc(formatDuration(xMax * f))}</text>`).join("");
  const legend = lines.map((l, i) => `<span><i style="background:${PALETTE[i % PALETTE.length]}"></i>${esc(l.name)}</span>`).join("");
  return figure(id, title, `${ticks}${xTicks}${paths}`, legend);
}

/** A horizontal bar chart (bars drawn as paths, like the lines, so every chart is countable). */
function barChart(id: string, title: string, bars: { name: string; value: number; note?: string }[], format: (v: number) => string): string {
  const max = Math.max(1e-12, ...bars.map((b) => b.value));
  const rowH = 28;
  const left = 160;
  const height = PAD.top * 2 + bars.length * rowH;
  const body = bars
    .map((b, i) => {
      const y0 = PAD.top + i * rowH + 4;
      const w = Math.max(1, (b.value / max) * (W - left - 260));
      return (
        `<path class="series" data-name="${esc(b.name)}" d="M${left},${y0} L${left + w},${y0} L${left + w},${y0 + rowH - 8} L${left},${y0 + rowH - 8} Z" fill="${PALETTE[i % PALETTE.length]}"/>` +
        `<text x="${left - 6}" y="${y0 + rowH / 2}" text-anchor="end">${esc(b.name)}</text>` +
        `<text x="${left + w + 6}" y="${y0 + rowH / 2}">${esc(format(b.value) + (b.note ? ` · ${b.note}` : ""))}</text>`
      );
    })
    .join("");
  return figure(id, title, body, "", height);
}

function figure(id: string, title: string, body: string, legend: string, height = H): string {
  return `<figure><figcaption>${esc(title)}</figcaption><svg data-chart="${id}" viewBox="0 0 ${W} ${height}" width="${W}" height="${height}" role="img" aria-label="${esc(title)}">${body}</svg><div class="legend">${legend}</div></figure>`;
}

/** Energy per phase of every job: the ledger's `phases` when present, else `phaseEnergyJoules`. */
function phaseBars(r: ReportV1): { name: string; value: number; note?: string }[] {
  const bars: { name: string; value: number; note?: string }[] = [];
  for (const j of r.jobs) {
    const phases = (j as { phases?: { name: string; energyJoules: number; joulesPerSample?: number | null }[] }).phases;
    const prefix = r.jobs.length > 1 ? `${j.id}: ` : "";
    if (phases?.length) {
      for (const p of phases) bars.push({ name: prefix + p.name, value: p.energyJoules, note: p.joulesPerSample ? `${formatSi(p.joulesPerSample, "J")}/sample` : undefined });
    } else if (Object.keys(j.phaseEnergyJoules).length) {
      for (const [name, e] of Object.entries(j.phaseEnergyJoules)) bars.push({ name: prefix + name, value: e });
    } else {
      bars.push({ name: `${prefix}whole job`, value: j.energyJoules.total, note: "no phase marks" });
    }
  }
  return bars;
}

function charts(r: ReportV1, t: TimeSeries | undefined): string {
  const out: string[] = [];
  if (t && t.pointCount > 0) {
    const xs = t.endSeconds;
    out.push(lineChart("power", "Power per device (W)", xs, Object.entries(t.devicePowerWatts).map(([name, values]) => ({ name, values })), formatWatts));
    out.push(lineChart("job-power", "Power attributed per job (W, IT)", xs, Object.entries(t.jobPowerWatts).map(([name, values]) => ({ name, values })), formatWatts));
    out.push(lineChart("energy", "Cumulative energy (Wh): IT and facility", xs, [
      { name: "IT energy", values: t.cumulativeEnergyJoules.map(joulesToWh) },
      { name: "facility energy (× PUE)", values: t.cumulativeFacilityEnergyJoules.map(joulesToWh) },
    ], (v) => formatSi(v, "Wh")));
    out.push(lineChart("emissions", "Cumulative operational emissions (CO2e)", xs, [{ name: "CO2e", values: t.cumulativeEmissionsGrams }], formatGrams));
    const serving = Object.entries(t.servingCumulative ?? {});
    if (serving.length) {
      // --work-from (docs/serving.md): J per generated token within each point; a point without tokens has none.
      out.push(lineChart("serving-joules-per-token", "J per generated token over time (within each point; --work-from)", xs, serving.map(([name, s]) => ({ name, values: s.joulesPerGeneratedToken.map((v) => v ?? NaN) })), (v) => formatSi(v, "J")));
    }
    out.push(lineChart("intensity", `Grid intensity (gCO2e/kWh) — ${r.intensity.description}`, xs, [{ name: `${r.intensity.zone} (${r.intensity.source})`, values: t.intensityGramsPerKwh }], (v) => formatPlain(v)));
  }
  out.push(barChart("phases", "Energy per phase (IT)", phaseBars(r), formatEnergy));
  return out.join("\n");
}

function row(cells: string[]): string {
  return `<tr>${cells.map((c) => `<td>${esc(c)}</td>`).join("")}</tr>`;
}

/** The summary's figures with their method and source. */
function summaryTable(r: ReportV1): string {
  const kinds = (["cpu", "gpu", "memory"] as const).filter((k) => r.devices.some((d) => d.kind === k));
  const all = [...r.jobs, r.buckets.system, r.buckets.idle];
  const methods = (k: string) => [...new Set(r.devices.filter((d) => d.kind === k).map((d) => `${d.method} (${d.source})`))].join(", ");
  const facilityKwh = joulesToKwh(r.totals.facilityEnergyJoules);
  const rows = [
    ["duration", formatDuration(r.durationSeconds), "wall clock", `${r.startedAt} → ${r.endedAt}`],
    ...kinds.map((k) => [`energy ${k}`, formatEnergy(all.reduce((a, t) => a + t.energyJoules[k], 0)), methods(k), r.devices.filter((d) => d.kind === k).map((d) => `${d.id}: idle ${d.idleOrigin}`).join("; ")]),
    ["energy (IT)", formatEnergy(r.totals.energyJoules), "sum of devices", "jobs + system + idle"],
    ["facility energy", formatEnergy(r.totals.facilityEnergyJoules), `IT × PUE ${r.pue.value}`, `PUE: ${r.pue.origin}`],
    ["emissions", `${formatGrams(r.totals.emissionsGrams)} CO2e`, "per interval: facility kWh × intensity", `${r.intensity.description}; average ${facilityKwh > 0 ? formatPlain(r.totals.emissionsGrams / facilityKwh) : "n/a"} g/kWh`],
    ["water", formatLiters(all.reduce((a, t) => a + t.waterLiters, 0)), `WUE ${r.water.wueLitersPerKwh} L/kWh + ${r.water.waterIntensityLitersPerKwh} L/kWh of electricity`, r.water.origin],
    ["embodied", `${formatGrams(all.reduce((a, t) => a + t.embodiedEmissionsGrams, 0))} CO2e`, "device embodied × time held / lifetime", "SCI M"],
    ["cost", `${formatPlain(all.reduce((a, t) => a + t.cost, 0))} ${r.cost.currency}`, `facility kWh × ${r.cost.pricePerKwh}`, "price flag/config"],
  ];
  const jobs = r.jobs.map((j) =>
    row([j.id, j.name, formatEnergy(j.energyJoules.total), formatEnergy(j.facilityEnergyJoules), `${formatGrams(j.emissionsGrams)}`, `${formatSi(j.cpuSeconds, "s")} CPU`, Object.entries(j.attributes).map(([k, v]) => `${k}=${v}`).join(" ")]),
  );
  const devices = r.devices.map((d) => row([d.id, d.kind, d.model ?? "", formatEnergy(d.energyJoules), `${d.method} (${d.source})`, `idle: ${d.idleOrigin}${d.notes.length ? `; ${d.notes.join("; ")}` : ""}`]));
  const servingRows = servingTableRows(r.jobs);
  const budget = r.budget?.crossed.map((c) => row([c.budget, c.quantity === "facilityEnergyJoules" ? formatEnergy(c.limit) : formatGrams(c.limit), c.quantity === "facilityEnergyJoules" ? formatEnergy(c.value) : formatGrams(c.value), c.at, c.action])) ?? [];
  return (
    `<h2>Summary</h2><table><tr><th>figure</th><th>value</th><th>method</th><th>source</th></tr>${rows.map(row).join("")}</table>` +
    `<h2>Jobs</h2><table><tr><th>id</th><th>name</th><th>IT energy</th><th>facility</th><th>CO2e</th><th>CPU</th><th>tags</th></tr>${jobs.join("")}</table>` +
    `<h2>Devices</h2><table><tr><th>id</th><th>kind</th><th>model</th><th>energy</th><th>method</th><th>notes</th></tr>${devices.join("")}</table>` +
    (servingRows.length ? `<h2>Serving</h2><table><tr>${SERVING_TABLE_HEADER.map((h) => `<th>${esc(h)}</th>`).join("")}</tr>${servingRows.map(row).join("")}</table>` : "") +
    (budget.length ? `<h2>Budgets crossed</h2><table><tr><th>budget</th><th>limit</th><th>value</th><th>at</th><th>action</th></tr>${budget.join("")}</table>` : "") +
    (r.warnings.length ? `<h2>Warnings</h2><ul>${r.warnings.map((w) => `<li>${esc(w)}</li>`).join("")}</ul>` : "")
  );
}

const CSS = `body{font:14px system-ui,sans-serif;margin:24px;color:#222;max-width:1000px}h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}th{background:#f3f3f3}
figure{margin:16px 0}figcaption{font-weight:600;margin-bottom:4px}svg text{font-size:11px;fill:#444}svg .grid{stroke:#e5e5e5}
.legend span{margin-right:14px;font-size:12px}.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:middle}`;

/** The whole HTML document of a report. */
export function renderHtmlReport(r: ReportV1): string {
  const title = `powerprint report — ${r.jobs.map((j) => j.name).join(", ") || r.mode}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>${esc(title)}</title><style>${CSS}</style></head><body>
<h1>${esc(title)}</h1>
<p>${esc(r.mode)}${r.scenario ? ` of scenario ${esc(r.scenario)}` : ""}${r.command ? ` · <code>${esc(r.command.join(" "))}</code>` : ""} · powerprint ${esc(r.tool.version)} · ${esc(r.startedAt)}</p>
${charts(r, r.timeSeries)}
${summaryTable(r)}
</body></html>
`;
}

/** Writes the HTML report atomically (temporary file, fsync, rename). */
export function writeHtmlReport(path: string, r: ReportV1): void {
  const full = resolve(path);
  const tmp = `${full}.tmp-${process.pid}-${Date.now()}`;
  const fd = openSync(tmp, "w", 0o644);
  try {
    writeSync(fd, renderHtmlReport(r));
    fsyncSync(fd);
    closeSync(fd);
  } catch (err) {
    closeSync(fd);
    unlinkSync(tmp);
    throw err;
  }
  renameSync(tmp, full);
}
