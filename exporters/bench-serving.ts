/**
 * The outputs of `powerprint bench-serving`: the table on stdout, the JSON file and the HTML page
 * with a chart of J per generated token against concurrency. Formatting only: the figures are
 * computed once in src/serving/bench.ts.
 */
import type { BenchResult } from "../src/serving/bench.js";
import { formatDuration, formatGrams, formatPlain, formatSi } from "../src/units.js";
import { writeJsonAtomic, writeTextAtomic } from "./report-json.js";

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

/** Column headers and each level's cells (shared by the text table and the HTML table). */
export function benchRows(r: BenchResult): { header: string[]; rows: string[][] } {
  const n = (v: number | null, unit: string) => (v === null ? "—" : formatSi(v, unit));
  const ms = (v: number | null) => (v === null ? "—" : formatSi(v / 1000, "s"));
  const plain = (v: number | null) => (v === null ? "—" : formatPlain(v));
  return {
    header: ["concurrency", "tokens/s", "requests/s", "p50", "p95", "J/token", "J/request", "CO2e/1k tok", "power", "window", "failed"],
    rows: r.levels.map((l) => [
      String(l.concurrency),
      plain(l.generatedTokensPerSecond),
      plain(l.requestsPerSecond),
      ms(l.latencyP50Millis),
      ms(l.latencyP95Millis),
      n(l.joulesPerGeneratedToken, "J"),
      n(l.joulesPerRequest, "J"),
      l.emissionsGramsPerThousandTokens === null ? "—" : formatGrams(l.emissionsGramsPerThousandTokens),
      n(l.meanPowerWatts, "W"),
      l.windowSeconds === null ? "—" : formatDuration(l.windowSeconds),
      String(l.failedRequests),
    ]),
  };
}

/** The table printed on stdout. */
export function benchTable(r: BenchResult): string {
  const { header, rows } = benchRows(r);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i])).join("  ");
  const idle = r.idlePowerWatts === null ? "not measured" : formatSi(r.idlePowerWatts, "W");
  const notes = r.levels.filter((l) => l.note).map((l) => `concurrency ${l.concurrency}: ${l.note}`);
  return [
    `bench-serving ${r.base}${r.model ? ` (${r.model})` : ""}: ${r.requestsPerLevel} requests per level, ${r.maxTokens} tokens each; idle power ${idle}`,
    line(header),
    ...rows.map(line),
    "steady-state window only; window tokens are each request's tokens pro rata of its time inside the window (an estimate)",
    ...notes,
  ].join("\n");
}

/** The JSON file (atomic). */
export function writeBenchJson(path: string, r: BenchResult): void {
  writeJsonAtomic(path, { tool: "powerprint bench-serving", ...r });
}

/** A self-contained HTML page: the table and a chart of J per generated token against concurrency (inline SVG). */
export function renderBenchHtml(r: BenchResult): string {
  const { header, rows } = benchRows(r);
  const pts = r.levels.filter((l) => l.joulesPerGeneratedToken !== null).map((l) => [l.concurrency, l.joulesPerGeneratedToken!] as const);
  const W = 640;
  const H = 240;
  const pad = { l: 70, r: 16, t: 16, b: 36 };
  const xs = r.levels.map((l) => l.concurrency);
  // Concurrency on a log scale (1, 4, 16, ... are even steps).
  const lx = (c: number) => Math.log2(c);
  const xMin = Math.min(...xs.map(lx));
  const xMax = Math.max(xMin + 1, ...xs.map(lx));
  const yMax = Math.max(1e-12, ...pts.map(([, y]) => y)) * 1.1;
  const x = (c: number) => pad.l + ((lx(c) - xMin) / (xMax - xMin)) * (W - pad.l - pad.r);
  const y = (v: number) => H - pad.b - (v / yMax) * (H - pad.t - pad.b);
  const path = pts.map(([c, v], i) => `${i === 0 ? "M" : "L"}${x(c).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
  const dots = pts.map(([c, v]) => `<circle cx="${x(c).toFixed(1)}" cy="${y(v).toFixed(1)}" r="3" data-concurrency="${c}" data-joules-per-token="${v}"/>`).join("");
  const xTicks = xs.map((c) => `<text x="${x(c).toFixed(1)}" y="${H - pad.b + 16}" text-anchor="middle">${c}</text>`).join("");
  const yTicks = [0, 0.5, 1].map((f) => `<text x="${pad.l - 6}" y="${y(yMax * f) + 4}" text-anchor="end">${esc(formatSi(yMax * f, "J"))}</text>`).join("");
  const svg = `<svg data-chart="joules-per-token-vs-concurrency" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="J per generated token against concurrency">${yTicks}${xTicks}<path class="series" d="${path}" fill="none" stroke="#1f77b4" stroke-width="1.8"/>${dots}</svg>`;
  const table = `<table><tr>${header.map((h) => `<th>${esc(h)}</th>`).join("")}</tr>${rows.map((row) => `<tr>${row.map((c) => `<td>${esc(c)}</td>`).join("")}</tr>`).join("")}</table>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>powerprint bench-serving — ${esc(r.base)}</title><style>body{font:14px system-ui,sans-serif;margin:24px}td,th{border:1px solid #ccc;padding:3px 8px}table{border-collapse:collapse}svg text{font-size:11px}</style></head><body>
<h1>bench-serving ${esc(r.base)}${r.model ? ` (${esc(r.model)})` : ""}</h1>
<p>${r.requestsPerLevel} measured requests per level, ${r.maxTokens} generated tokens each; idle power ${r.idlePowerWatts === null ? "not measured" : esc(formatSi(r.idlePowerWatts, "W"))}. Figures over each level's steady-state window only.</p>
<figure><figcaption>J per generated token against concurrency</figcaption>${svg}</figure>
${table}
</body></html>
`;
}

/** Writes the HTML page atomically (as the reports are). */
export function writeBenchHtml(path: string, r: BenchResult): void {
  writeTextAtomic(path, renderBenchHtml(r));
}
