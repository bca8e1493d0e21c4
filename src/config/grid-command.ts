/**
 * `powerprint grid`'s typed config: where intensity comes from (the shared intensity flags of
 * src/config/grid.ts: --zone, --intensity, --intensity-provider) and what to print (--forecast,
 * --hours, --json), validated with the environment into a GridCommandConfig (UsageError naming the
 * flag or variable) before any provider is asked.
 */
import type { Command } from "commander";
import { UsageError } from "../errors.js";
import { declareIntensityFlags, gridConfig, type GridConfig } from "./grid.js";
import type { EnvSource } from "./env.js";

/** Longest forecast horizon --hours takes, h (providers forecast 24 to 72 h ahead). */
export const MAX_FORECAST_HOURS = 72;

/** grid's flags as commander parses them. */
export interface GridCommandFlags {
  zone?: string;
  intensity?: string;
  intensityProvider?: string;
  forecast?: boolean;
  hours: string;
  json?: boolean;
}

/** Everything `grid` needs, validated. */
export interface GridCommandConfig {
  grid: GridConfig;
  /** --forecast: the horizon asked for, h (--hours); undefined without --forecast. */
  forecastHours?: number;
  json: boolean;
}

/** Registers grid's flags. */
export function declareGridCommandFlags(cmd: Command): Command {
  return declareIntensityFlags(cmd)
    .option("--forecast", "also print the forecast (live providers only)")
    .option("--hours <n>", `forecast horizon in hours, at most ${MAX_FORECAST_HOURS}`, "24")
    .option("--json", "print JSON instead of text");
}

/** Validates grid's flags and environment (UsageError naming the flag or variable). */
export function gridCommandConfig(flags: GridCommandFlags, source: EnvSource): GridCommandConfig {
  const grid = gridConfig({ zone: flags.zone, intensityProvider: flags.intensityProvider, intensity: flags.intensity }, source);
  const hours = Number(flags.hours);
  if (!Number.isFinite(hours) || hours <= 0 || hours > MAX_FORECAST_HOURS) throw new UsageError("--hours", `must be a number of hours in (0, ${MAX_FORECAST_HOURS}], got '${String(flags.hours)}'`);
  return { grid, forecastHours: flags.forecast ? hours : undefined, json: flags.json === true };
}
