import type { LedgerOptions } from "../core/ledger.js";
import { embodiedDefaultFor, MILLIS_PER_YEAR } from "../core/footprint.js";
import type { GridConfig } from "../grid/config.js";

/**
 * Water, cost and embodied-carbon constants for the ledger, from the validated grid config, and the
 * matching report fields (each value with its origin).
 */
export function footprintFromGrid(grid: GridConfig): {
  ledger: Omit<LedgerOptions, "pue">;
  report: { wueLitersPerKwh: number; waterIntensityLitersPerKwh: number; waterOrigin: string; pricePerKwh: number; currency: string };
} {
  return {
    ledger: {
      wueLitersPerKwh: grid.wueLitersPerKwh,
      waterIntensityLitersPerKwh: grid.waterIntensityLitersPerKwh,
      pricePerKwh: grid.pricePerKwh ?? 0,
      embodiedFor: (device) => {
        try {
          const d = embodiedDefaultFor(device.kind, device.model);
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
