/**
 * The real hardware of a pipeline: every registered collector probed (collectors/index.ts), the
 * ones to measure with chosen, and each fallback said once (one short line; the details with
 * --verbose, in the report's device notes and in `powerprint probe`).
 */
import type { Collector, Logger } from "../core/contracts.js";
import type { CollectorOptions, ProbeEntry } from "../../collectors/index.js";

/** Probes the hardware and returns the collectors to measure with, with every probe outcome. */
export async function detectDevices(options: CollectorOptions, log: Logger): Promise<{ collectors: Collector[]; entries: ProbeEntry[] }> {
  // Loaded here, not before: `run` probes after its spawn.
  const { detectCollectors } = await import("../../collectors/index.js");
  const entries = await detectCollectors(options);
  reportProbe(entries, log);
  return { collectors: entries.filter((e) => e.used).map((e) => e.collector), entries };
}

/** One line per fallback collector (what is unavailable and why, what is used instead); the rest in --verbose. */
export function reportProbe(entries: readonly ProbeEntry[], log: Logger): void {
  const unavailableReason = (id: string): string | undefined => {
    const e = entries.find((x) => x.collector.id === id);
    return e && e.result.status === "unavailable" ? `${id}: ${e.result.reason}` : undefined;
  };
  for (const e of entries) {
    if (e.used && e.result.status === "ok") {
      const methods = [...new Set(e.result.devices.map((d) => d.method))].join("/");
      log.debug(`${e.collector.id}: ${e.result.devices.length} device(s), ${methods} — ${e.role}${e.result.note ? `; ${e.result.note}` : ""}`);
      if (e.role.includes("fallback") || e.result.devices.some((d) => d.method === "model")) {
        const why = e.fallbackFor !== undefined ? unavailableReason(e.fallbackFor) : undefined;
        log.warn(`${e.role}: using ${e.collector.id} (${methods}); details with --verbose`);
        log.debug(`${e.collector.id}${why ? ` (${why})` : ""}${e.result.note ? `: ${e.result.note}` : ""}`);
      }
    } else if (!e.used && e.result.status === "unavailable" && !e.result.reason.startsWith("not needed")) {
      log.debug(`${e.collector.id} unavailable: ${e.result.reason}`);
    }
  }
}
