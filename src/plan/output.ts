/**
 * What `powerprint plan` prints: the short table (best start per zone, saving against starting now
 * here, intensity kind, provider and forecast horizon), the JSON document (--json) and the HTML
 * chart (--html: expected gCO2e by start time per zone, inline SVG, no script). Formatting only:
 * every figure comes from the Plan.
 */
import { formatDuration, formatEnergy, formatGrams, formatPlain } from "../units.js";
import { formatKind } from "./kind.js";
import type { Plan, ZoneOutcome } from "./plan.js";

/** Exact time for JSON. */
const iso = (ms: number) => new Date(ms).toISOString().replace(":00.000Z", "Z").replace(".000Z", "Z");
/** Time for people: to the minute (a start "now" carries seconds nobody plans by). */
const minute = (ms: number) => `${new Date(ms).toISOString().slice(0, 16)}Z`;

/** JSON document of a plan (schema version 1, documented in docs). */
export function planJson(plan: Plan, version: string) {
  const c = (x?: { startMillis: number; expectedGrams: number }) => (x ? { start: iso(x.startMillis), expectedGrams: x.expectedGrams } : null);
  return {
    schemaVersion: 1,
    tool: { name: "powerprint", version },
    profile: {
      source: plan.profile.source,
      method: plan.profile.method,
      durationSeconds: plan.profile.durationSeconds,
      facilityEnergyJoules: plan.profile.facilityEnergyJoules,
      segmentCount: plan.profile.segments.length,
    },
    window: { start: iso(plan.windowStartMillis), end: iso(plan.windowEndMillis) },
    here: plan.here,
    nowHere: c(plan.nowHere),
    best: plan.best ? { zone: plan.best.zone, start: iso(plan.best.startMillis), expectedGrams: plan.best.expectedGrams } : null,
    mixedKinds: plan.mixedKinds,
    zones: plan.zones.map((z) => ({
      zone: z.series.zone,
      provider: z.series.provider,
      basis: z.series.basis,
      kind: z.series.kind.kind,
      kindDetail: z.series.kind.detail ?? null,
      note: z.series.note,
      horizonUntil: z.series.horizonUntilMillis !== undefined ? iso(z.series.horizonUntilMillis) : null,
      stepSeconds: z.stepMillis / 1000,
      comparable: z.comparable,
      best: c(z.best),
      now: c(z.now),
      savingGrams: z.savingGrams ?? null,
      savingFraction: z.savingFraction ?? null,
      candidates: z.candidates.map((x) => ({ start: iso(x.startMillis), expectedGrams: x.expectedGrams })),
    })),
  };
}

/** The best start as the table shows it: a time, "any" for a zone without a forecast, or why none. */
function bestStart(z: ZoneOutcome): string {
  if (!z.best) return "no start fits";
  return z.series.basis === "forecast" ? minute(z.best.startMillis) : "any (no forecast)";
}

function savingText(plan: Plan, z: ZoneOutcome): string {
  if (!z.comparable) return `not compared (${formatKind(z.series.kind)} vs ${formatKind(plan.zones[0].series.kind)} in ${plan.here})`;
  if (z.savingGrams === undefined) return "—";
  const pct = z.savingFraction !== undefined ? ` (${formatPlain(Math.abs(z.savingFraction) * 100)}%)` : "";
  return z.savingGrams >= 0 ? `${formatGrams(z.savingGrams)}${pct}` : `none: ${formatGrams(-z.savingGrams)} more${pct}`;
}

/** The short table, one line per zone, then each zone's provenance. */
export function planTable(plan: Plan): string {
  const p = plan.profile;
  const lines = [
    `plan: a ${formatDuration(p.durationSeconds)} job, ${formatEnergy(p.facilityEnergyJoules)} facility energy (${p.method}; ${p.source})`,
    `window ${minute(plan.windowStartMillis)} → ${minute(plan.windowEndMillis)}; now in ${plan.here}: ${plan.nowHere ? `${formatGrams(plan.nowHere.expectedGrams)} CO2e` : "not covered by its data"}`,
  ];
  const rows = plan.zones.map((z) => [
    z.series.zone,
    formatKind(z.series.kind),
    z.series.provider,
    z.series.basis === "forecast" ? `forecast to ${minute(z.series.horizonUntilMillis!)}` : z.series.basis,
    bestStart(z),
    z.best ? formatGrams(z.best.expectedGrams) : "—",
    savingText(plan, z),
  ]);
  const header = ["zone", "kind", "provider", "data", "best start", "expected CO2e", `saving vs now in ${plan.here}`];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmt = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join("  ");
  lines.push(fmt(header), ...rows.map(fmt));
  if (plan.best) lines.push(`best: ${plan.best.zone} at ${minute(plan.best.startMillis)}, ${formatGrams(plan.best.expectedGrams)} CO2e (${formatKind(plan.zones[0].series.kind)} intensity)`);
  if (plan.mixedKinds) lines.push("note: the zones mix intensity kinds; only zones of the same kind as the first are ranked against it");
  for (const z of plan.zones) lines.push(`  ${z.series.zone}: ${z.series.note}`);
  return lines.join("\n");
}

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

/** The chart: expected gCO2e (y) by start time (x), one line per zone; a dot on each zone's best. */
function chart(plan: Plan): string {
  const W = 900;
  const H = 320;
  const pad = { left: 72, right: 16, top: 16, bottom: 40 };
  const all = plan.zones.flatMap((z) => z.candidates);
  if (all.length === 0) return "<p>No start time fits the window and the data.</p>";
  const x0 = plan.windowStartMillis;
  const x1 = Math.max(x0 + 1, ...all.map((c) => c.startMillis));
  const yMax = Math.max(1e-12, ...all.map((c) => c.expectedGrams)) * 1.05;
  const x = (t: number) => pad.left + ((t - x0) / (x1 - x0)) * (W - pad.left - pad.right);
  const y = (g: number) => H - pad.bottom - (g / yMax) * (H - pad.top - pad.bottom);
  const body = plan.zones
    .map((z, i) => {
      const color = PALETTE[i % PALETTE.length];
      // A zone without a forecast has one candidate that holds for every start: a flat line.
      const pts = z.candidates.length === 1 ? [z.candidates[0], { ...z.candidates[0], startMillis: x1 }] : z.candidates;
      const d = pts.map((c, k) => `${k ? "L" : "M"}${x(c.startMillis).toFixed(1)},${y(c.expectedGrams).toFixed(1)}`).join(" ");
      const dot = z.best ? `<circle cx="${x(z.best.startMillis).toFixed(1)}" cy="${y(z.best.expectedGrams).toFixed(1)}" r="4" fill="${color}"/>` : "";
      return `<path class="series" data-zone="${esc(z.series.zone)}" d="${d}" fill="none" stroke="${color}" stroke-width="1.8"${z.series.basis === "forecast" ? "" : ' stroke-dasharray="6 4"'}/>${dot}`;
    })
    .join("");
  const yTicks = [0, 0.5, 1].map((f) => `<text x="${pad.left - 6}" y="${y(yMax * f) + 4}" text-anchor="end">${esc(formatGrams(yMax * f))}</text><line x1="${pad.left}" x2="${W - pad.right}" y1="${y(yMax * f)}" y2="${y(yMax * f)}" class="grid"/>`).join("");
  const anchor = ["start", "middle", "end"];
  const xTicks = [0, 0.5, 1].map((f, k) => `<text x="${x(x0 + (x1 - x0) * f)}" y="${H - pad.bottom + 18}" text-anchor="${anchor[k]}">${esc(minute(x0 + (x1 - x0) * f))}</text>`).join("");
  const legend = plan.zones
    .map((z, i) => `<span><i style="background:${PALETTE[i % PALETTE.length]}"></i>${esc(`${z.series.zone} — ${formatKind(z.series.kind)}, ${z.series.provider}, ${z.series.basis}`)}</span>`)
    .join("");
  return `<figure><figcaption>Expected operational CO2e by start time (UTC)</figcaption><svg data-chart="plan" viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="expected CO2e by start time">${yTicks}${xTicks}${body}</svg><div class="legend">${legend}</div></figure>`;
}

/** The whole HTML page of a plan: the chart, then the table's figures. */
export function planHtml(plan: Plan): string {
  const rows = plan.zones
    .map((z) => `<tr><td>${esc(z.series.zone)}</td><td>${esc(formatKind(z.series.kind))}</td><td>${esc(z.series.provider)}</td><td>${esc(z.series.basis)}</td><td>${esc(bestStart(z))}</td><td>${z.best ? esc(formatGrams(z.best.expectedGrams)) : "—"}</td><td>${esc(savingText(plan, z))}</td><td>${esc(z.series.note)}</td></tr>`)
    .join("");
  const css = `body{font:14px system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}th{background:#f3f3f3}svg text{font-size:11px;fill:#444}svg .grid{stroke:#e5e5e5}.legend span{margin-right:14px;font-size:12px}.legend i{display:inline-block;width:10px;height:10px;margin-right:4px}`;
  const p = plan.profile;
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>powerprint plan</title><style>${css}</style></head><body>
<h1>powerprint plan</h1>
<p>A ${esc(formatDuration(p.durationSeconds))} job using ${esc(formatEnergy(p.facilityEnergyJoules))} of facility energy (${esc(p.method)}; ${esc(p.source)}), window ${esc(minute(plan.windowStartMillis))} → ${esc(minute(plan.windowEndMillis))}. Dashed lines: zones without a forecast (the same figure for every start).</p>
${chart(plan)}
<table><tr><th>zone</th><th>kind</th><th>provider</th><th>data</th><th>best start</th><th>expected CO2e</th><th>saving vs now in ${esc(plan.here)}</th><th>note</th></tr>${rows}</table>
</body></html>
`;
}
