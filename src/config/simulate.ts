/**
 * `powerprint simulate`'s typed config: its flags (declared here) and the scenario, validated with
 * the environment into a SimulateConfig (UsageError naming the flag or field).
 */
import type { Command } from "commander";
import { checkReportPath } from "../../exporters/report-json.js";
import type { Scenario } from "../sim/scenario.js";
import { readEnvironment, type EnvSource } from "./env.js";
import { declareGridFlags, gridConfig, withScenarioZone, type GridConfig, type GridFlags } from "./grid.js";
import { declareMeasureFlags, measureConfig, type MeasureConfig, type MeasureFlags } from "./measure.js";
import { declareFileOutputFlags, outputsConfig, type OutputFlags, type OutputsConfig } from "./outputs.js";
import { declareStartFlags, refuseStartFlags, type StartFlags } from "./start.js";

/** simulate's flags as commander parses them. */
export interface SimulateFlags extends MeasureFlags, GridFlags, StartFlags, OutputFlags {}

/** Everything `simulate` needs, validated. */
export interface SimulateConfig {
  scenario: Scenario;
  measure: MeasureConfig;
  grid: GridConfig;
  outputs: OutputsConfig;
  reportPath?: string;
  verbose: boolean;
}

/** Registers simulate's flags (the measure, grid and file-output flags; carbon-aware start hidden). */
export function declareSimulateFlags(cmd: Command): Command {
  declareMeasureFlags(cmd);
  declareGridFlags(cmd);
  // Carbon-aware start waits in wall time for a real command: declared to be refused in one line, not offered.
  declareStartFlags(cmd, { hidden: true });
  return declareFileOutputFlags(cmd);
}

/** Validates simulate's scenario file, flags and environment (UsageError naming the flag or field). */
export async function simulateConfig(file: string, flags: SimulateFlags, source: EnvSource): Promise<SimulateConfig> {
  refuseStartFlags(flags, "simulate runs in virtual time");
  const env = readEnvironment(source);
  const measure = measureConfig(flags);
  const reportPath = flags.report !== undefined ? checkReportPath(flags.report) : undefined;
  const outputs = await outputsConfig(flags);
  // The scenario parser (zod, yaml) loads only when this command runs.
  const scenario = (await import("../sim/scenario.js")).loadScenario(file);
  const grid = gridConfig(withScenarioZone(flags, scenario, file), env);
  return { scenario, measure, grid, outputs, reportPath, verbose: flags.verbose === true };
}
