/**
 * The footprint constants of the ledger and the report, from the validated grid config and the
 * tables loaded here, at the edge (the core's estimators take them as arguments, as Cloud Carbon
 * Footprint's do): data/embodied.json for embodied carbon; the water and cost figures are the
 * config's (each with its origin).
 */
import { readFileSync } from "node:fs";
import type { GridConfig } from "../config/grid.js";
import { embodiedDefaultFor, MILLIS_PER_YEAR, type EmbodiedTable } from "../core/footprint.js";
import type { LedgerOptions } from "../core/ledger.js";
import { dataPath } from "../paths.js";

let embodiedTable: EmbodiedTable | undefined;

/** The shipped embodied-carbon table (data/embodied.json), read once per process. */
export function loadEmbodiedTable(path = dataPath("embodied.json")): EmbodiedTable {
  if (path !== dataPath("embodied.json")) return JSON.parse(readFileSync(path, "utf8")) as EmbodiedTable;
  embodiedTable ??= JSON.parse(readFileSync(path, "utf8")) as EmbodiedTable;
  return embodiedTable;
}

/** The footprint constants of a ledger (all but the PUE) and the report fields that say where each came from. */
export interface FootprintParts {
  ledger: Omit<LedgerOptions, "pue">;
  report: { wueLitersPerKwh: number; waterIntensityLitersPerKwh: number; waterOrigin: string; pricePerKwh: number; currency: string };
}

/**
 * Water, cost and embodied-carbon constants for the ledger, from the validated grid config and the
 * embodied table, and the matching report fields (each value with its origin).
 */
export function footprintParts(grid: GridConfig, embodied: EmbodiedTable = loadEmbodiedTable()): FootprintParts {
  return {
    ledger: {
      wueLitersPerKwh: grid.wueLitersPerKwh,
      waterIntensityLitersPerKwh: grid.waterIntensityLitersPerKwh,
      pricePerKwh: grid.pricePerKwh ?? 0,
      embodiedFor: (device) => {
        try {
          const d = embodiedDefaultFor(embodied, device.kind, device.model);
          return { totalGrams: d.totalGrams, lifetimeMillis: d.lifetimeYears * MILLIS_PER_YEAR, source: d.source };
        } catch {
          return undefined;
        }
      },
    },
    report: {
      wueLitersPerKwh: grid.wueLitersPerKwh,
      waterIntensityLitersPerKwh: grid.waterIntensityLitersPerKwh,
      waterOrigin: `WUE: ${grid.wueSource}; water intensity: ${grid.waterIntensitySource}`,
      pricePerKwh: grid.pricePerKwh ?? 0,
      currency: grid.currency ?? "USD",
    },
  };
}
