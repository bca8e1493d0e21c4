/**
 * Pure footprint arithmetic (the DESIGN "Accounting" section) with every constant passed in, plus
 * the lookups of documented defaults in tables passed in (the embodied-carbon table is loaded from
 * data/embodied.json at the edge, src/pipeline/footprint.ts; the core reads no file).
 *
 *   facility energy   = IT energy × PUE
 *   operational CO2e  = facility kWh × grid intensity (gCO2e/kWh)
 *   water             = IT kWh × WUE (on-site, L/kWh) + facility kWh × water intensity of electricity (off-site, L/kWh)
 *                       (Li et al. 2023, "Making AI Less Thirsty", operational water = scope 1 + scope 2)
 *   embodied (SCI M)  = total embodied × time held / lifetime × share of the device
 *   cost              = facility kWh × price per kWh
 */
import { joulesToKwh } from "../units.js";

/** Facility energy (J): IT energy (J) × PUE (dimensionless, ≥ 1 for a real facility). */
export function facilityEnergyJoules(itEnergyJoules: number, pue: number): number {
  return itEnergyJoules * pue;
}

/** Operational emissions (gCO2e): facility energy (J → kWh) × intensity (gCO2e/kWh). */
export function operationalEmissionsGrams(facilityEnergyJoules: number, intensityGramsPerKwh: number): number {
  return joulesToKwh(facilityEnergyJoules) * intensityGramsPerKwh;
}

/** On-site and off-site water (L), as Li et al. 2023 define them. */
export interface WaterLiters {
  /** Scope 1: IT kWh × WUE (L per IT kWh). */
  onSiteLiters: number;
  /** Scope 2: facility kWh × water intensity of the electricity (L per kWh generated). */
  offSiteLiters: number;
  totalLiters: number;
}

/** Water breakdown (L) from IT and facility energy (J), on-site WUE and off-site water intensity (L/kWh). */
export function waterBreakdown(
  itEnergyJoules: number,
  facilityEnergyJoules: number,
  wueLitersPerKwh: number,
  waterIntensityLitersPerKwh: number,
): WaterLiters {
  const onSiteLiters = joulesToKwh(itEnergyJoules) * wueLitersPerKwh;
  const offSiteLiters = joulesToKwh(facilityEnergyJoules) * waterIntensityLitersPerKwh;
  return { onSiteLiters, offSiteLiters, totalLiters: onSiteLiters + offSiteLiters };
}

/** Total water (L) = IT kWh × WUE + facility kWh × water intensity of electricity. */
export function waterLiters(
  itEnergyJoules: number,
  facilityEnergyJoules: number,
  wueLitersPerKwh: number,
  waterIntensityLitersPerKwh: number,
): number {
  return waterBreakdown(itEnergyJoules, facilityEnergyJoules, wueLitersPerKwh, waterIntensityLitersPerKwh).totalLiters;
}

/**
 * Embodied emissions (gCO2e) attributed to a job, SCI's M = TE × (time reserved / lifetime) × share.
 * `share` is the job's share of the device while held (1 for a whole device, 0..1). 0 for a zero lifetime.
 */
export function embodiedEmissionsGrams(args: {
  totalEmbodiedGrams: number;
  lifetimeMillis: number;
  heldMillis: number;
  share: number;
}): number {
  if (args.lifetimeMillis <= 0) return 0;
  return (args.totalEmbodiedGrams * args.heldMillis * args.share) / args.lifetimeMillis;
}

/** Energy cost in the user's currency: facility kWh × price per kWh. */
export function costAmount(facilityEnergyJoules: number, pricePerKwh: number): number {
  return joulesToKwh(facilityEnergyJoules) * pricePerKwh;
}

/** Milliseconds in a (365.25-day) year, for lifetimes given in years. */
export const MILLIS_PER_YEAR = 365.25 * 24 * 3_600_000;

/** An embodied-carbon default for one device. */
export interface EmbodiedDefault {
  /** Embodied emissions of the device, gCO2e (0 when no public source gives one). */
  totalGrams: number;
  lifetimeYears: number;
  /** Where the figure comes from (or why there is none). */
  source: string;
  /** "model" when matched on the model name, "kind" for the per-kind default. */
  matchedBy: "model" | "kind";
}

/** The embodied-carbon table (data/embodied.json's shape): per-kind defaults and per-model entries, kg CO2e. */
export interface EmbodiedTable {
  defaults: Record<string, { totalKgCo2e: number; lifetimeYears: number; source: string }>;
  models: { kind: string; match: string; totalKgCo2e: number; lifetimeYears: number; source: string }[];
}

/**
 * Embodied default for a device kind ("gpu", "cpu", "memory", "host") and optional model name, from
 * `table`: the first model entry whose `match` occurs in the model name (case-insensitive), else
 * the kind's default. Throws for a kind the table does not know.
 */
export function embodiedDefaultFor(table: EmbodiedTable, kind: string, model?: string): EmbodiedDefault {
  const m = model?.toLowerCase();
  const byModel = m ? table.models.find((e) => e.kind === kind && m.includes(e.match.toLowerCase())) : undefined;
  const entry = byModel ?? table.defaults[kind];
  if (!entry) throw new Error(`no embodied-carbon default for device kind '${kind}'`);
  return {
    totalGrams: entry.totalKgCo2e * 1000,
    lifetimeYears: entry.lifetimeYears,
    source: entry.source,
    matchedBy: byModel ? "model" : "kind",
  };
}

/** A water-intensity default (off-site water of electricity generation). */
export interface WaterIntensityDefault {
  litersPerKwh: number;
  source: string;
}

/**
 * U.S. average water consumption factor of electricity generation (EWIF) used by Li et al. 2023
 * ("Making AI Less Thirsty", arXiv 2304.03271, Table 1, citing Reig et al. 2020, WRI), L/kWh.
 */
export const US_AVERAGE_EWIF_LITERS_PER_KWH = 3.14;
/** U.S. average on-site WUE of Microsoft data centres used by Li et al. 2023 (Table 1), L per IT kWh. */
export const US_AVERAGE_WUE_LITERS_PER_KWH = 0.55;

/**
 * Off-site water intensity default for a zone. powerprint ships no per-country table (no public
 * per-country dataset was at hand), so every zone gets the U.S. average of Li et al. 2023 and the
 * source says so; give --water-intensity for a better value.
 */
export function waterIntensityDefaultFor(zone?: string): WaterIntensityDefault {
  const where = zone ? `used for zone ${zone}: no per-country table shipped` : "no zone given";
  return {
    litersPerKwh: US_AVERAGE_EWIF_LITERS_PER_KWH,
    source: `U.S. average EWIF ${US_AVERAGE_EWIF_LITERS_PER_KWH} L/kWh (Li et al. 2023, Making AI Less Thirsty, after Reig et al. 2020 WRI), ${where}`,
  };
}

/** On-site WUE default (L per IT kWh): Li et al. 2023's U.S. average for Microsoft data centres, labelled as a default. */
export function wueDefault(): { litersPerKwh: number; source: string } {
  return {
    litersPerKwh: US_AVERAGE_WUE_LITERS_PER_KWH,
    source: `U.S. average on-site WUE ${US_AVERAGE_WUE_LITERS_PER_KWH} L/kWh of Microsoft data centres (Li et al. 2023); give --wue for your site`,
  };
}
