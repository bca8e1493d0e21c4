import type { ReportV1 } from "./report-json.js";
import { formatEnergy, formatGrams, joulesToKwh } from "../src/units.js";

/**
 * The end-of-run summary printed on stderr: duration, energy per device kind, facility energy,
 * PUE (and whether it is the default), intensity and its source (named as a fallback when it is
 * one), CO2e, water, cost, and the method of every device.
 */
export function formatSummary(r: ReportV1): string {
  const lines: string[] = [];
  const all = [...r.jobs, r.buckets.system, r.buckets.idle];
  const kindTotal = (k: "cpu" | "gpu" | "memory") => all.reduce((a, t) => a + t.energyJoules[k], 0);
  // Only the kinds this host (or scenario) has: no "gpu 0.000 Wh" on a machine without a GPU.
  const kinds = (["cpu", "gpu", "memory"] as const).filter((k) => r.devices.some((d) => d.kind === k));
  const byKind = (e: (k: "cpu" | "gpu" | "memory") => number) => (kinds.length ? `[${kinds.map((k) => `${k} ${formatEnergy(e(k))}`).join(", ")}]` : "");
  lines.push(`── powerprint summary (${r.mode}${r.scenario ? `: ${r.scenario}` : ""}) ──`);
  lines.push(`duration            ${r.durationSeconds.toFixed(1)} s`);
  lines.push(
    `energy (IT)         ${formatEnergy(r.totals.energyJoules)}  ${byKind(kindTotal)}`,
  );
  lines.push(`PUE                 ${r.pue.value}${r.pue.origin === "default" ? " (default: pass --pue for your facility)" : ` (${r.pue.origin})`}`);
  lines.push(`facility energy     ${formatEnergy(r.totals.facilityEnergyJoules)}`);
  const fb = Object.entries(r.intensity.fallbacks).filter(([, n]) => n > 0);
  // Emissions are summed interval by interval: with a time-varying intensity the last interval's
  // value says little about them, so the run's average (emissions / facility kWh) leads.
  const facilityKwh = joulesToKwh(r.totals.facilityEnergyJoules);
  const intensityText =
    facilityKwh > 0
      ? `${(r.totals.emissionsGrams / facilityKwh).toFixed(1)} gCO2e/kWh on average (last interval ${r.intensity.lastGramsPerKwh.toFixed(1)})`
      : r.intensity.source === "none"
        ? "none applied (no interval was recorded)"
        : `${r.intensity.lastGramsPerKwh.toFixed(1)} gCO2e/kWh (last interval)`;
  lines.push(
    `grid intensity      ${intensityText} — ${r.intensity.description}${fb.length ? ` [intervals on a fallback: ${fb.map(([k, n]) => `${k}×${n}`).join(", ")}]` : ""}`,
  );
  lines.push(`emissions           ${formatGrams(r.totals.emissionsGrams)} CO2e (operational)`);
  for (const j of r.jobs) {
    lines.push(
      `job ${oneLine(j.id)}${j.name !== j.id ? ` (${oneLine(j.name)})` : ""}: ${formatEnergy(j.energyJoules.total)} IT ${byKind((k) => j.energyJoules[k])}, ` +
        `${formatEnergy(j.facilityEnergyJoules)} facility, ${formatGrams(j.emissionsGrams)} CO2e` +
        (j.embodiedEmissionsGrams > 0 ? `, ${formatGrams(j.embodiedEmissionsGrams)} embodied` : "") +
        (j.waterLiters > 0 ? `, ${j.waterLiters.toPrecision(3)} L water` : "") +
        (r.cost.pricePerKwh > 0 ? `, ${j.cost.toPrecision(3)} ${r.cost.currency}` : ""),
    );
    for (const p of j.phases ?? []) lines.push(phaseLine(p));
  }
  lines.push(`system bucket ${formatEnergy(r.buckets.system.energyJoules.total)}, idle bucket ${formatEnergy(r.buckets.idle.energyJoules.total)} (idle policy: ${r.idlePolicy})`);
  for (const d of r.devices) {
    lines.push(
      `device ${d.id}${d.model ? ` (${d.model})` : ""}: ${formatEnergy(d.energyJoules)} by ${d.method} from ${d.source}; idle baseline ${d.idleOrigin}` +
        (d.processUsageMethod ? `; per-process split ${splitText(d)}` : "") +
        (d.status === "lost" ? "; LOST during the run" : "") +
        (d.notes.length ? `; ${d.notes.join("; ")}` : ""),
    );
  }
  if (r.devices.length === 0) lines.push("no device could be read: energy is 0 (see `powerprint probe`)");
  const ef = Object.entries(r.exportFailures);
  if (ef.length) lines.push(`export failures: ${ef.map(([k, n]) => `${k}×${n}`).join(", ")}`);
  const sf = Object.entries(r.sampler.failures);
  if (sf.length) lines.push(`sampling failures: ${sf.map(([k, n]) => `${k}×${n}`).join(", ")}`);
  return lines.join("\n");
}

/** One phase of a job: energy, emissions, time, and per-unit figures where the marks carried counts. */
function phaseLine(p: NonNullable<ReportV1["jobs"][number]["phases"]>[number]): string {
  const units = [
    p.samples !== null ? `${p.samples} samples${p.joulesPerSample !== null ? ` (${p.joulesPerSample.toPrecision(3)} J/sample)` : ""}` : undefined,
    p.tokens !== null ? `${p.tokens} tokens${p.joulesPerToken !== null ? ` (${p.joulesPerToken.toPrecision(3)} J/token)` : ""}` : undefined,
    p.steps !== null ? `${p.steps} steps` : undefined,
  ].filter(Boolean);
  return `  phase ${oneLine(p.name)}: ${formatEnergy(p.energyJoules)}, ${formatGrams(p.emissionsGrams)} CO2e, ${p.durationSeconds.toFixed(1)} s${units.length ? `, ${units.join(", ")}` : ""}`;
}

/** User text on one summary line: control characters (a newline in a command line) escaped. */
export function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f]/g, (c) => (c === "\n" ? "\\n" : c === "\r" ? "\\r" : c === "\t" ? "\\t" : `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`));
}

/** "utilization" or, when a device changed method during the run, "utilization (48 intervals), equal (2)". */
function splitText(d: ReportV1["devices"][number]): string {
  const counts = Object.entries(d.processUsageIntervals ?? {}).sort((a, b) => b[1] - a[1]);
  if (counts.length <= 1) return d.processUsageMethod ?? "";
  return counts.map(([m, n]) => `${m} (${n} interval${n === 1 ? "" : "s"})`).join(", ");
}
