/**
 * The outputs an ML engineer reads besides the JSON report: `--csv`, `--html`, budgets
 * (`--max-energy`, `--max-emissions`, `--on-budget`) and the live status line. Declared and
 * validated here, before anything runs (exit 2 naming the flag, nothing written); src/cli/outputs.ts
 * builds what they need from the result.
 */
import { Option, type Command } from "commander";
import { BUDGET_EXIT_CODE, type BudgetConfig } from "../jobs/budget.js";
import { UsageError } from "../errors.js";
import { parseEnergyJoules, parseMassGrams } from "../units.js";

/** The output flags as commander parses them. */
export interface OutputFlags {
  csv?: string;
  html?: string;
  report?: string;
  maxEnergy?: string;
  maxEmissions?: string;
  onBudget?: string;
  quiet?: boolean;
  live?: boolean;
}

/** Validated outputs. */
export interface OutputsConfig {
  /** --csv: append one row per job here. */
  csvPath?: string;
  /** --html: write the HTML report here. */
  htmlPath?: string;
  /** --report, as given (named in the CSV's warning: only outputs that were asked for are named). */
  reportPath?: string;
  /** A time series is recorded (the HTML charts, the JSON report): any file output asked for. */
  timeSeries: boolean;
  budget?: BudgetConfig;
  /** The live status line (--no-live turns it off; -q too; shown only on a terminal). */
  live: boolean;
}

/** Registers --csv and --html (run, simulate). */
export function declareFileOutputFlags(cmd: Command): Command {
  return cmd
    .option("--csv <file>", "append one row per job to FILE: CodeCarbon's emissions.csv columns (kg, kWh, W, s) first, then powerprint's")
    .option("--html <file>", "write a self-contained HTML report with charts to FILE");
}

/** Registers the budget flags and --no-live (run only). */
export function declareBudgetFlags(cmd: Command): Command {
  return cmd
    .option("--max-energy <energy>", "energy budget of the job (facility energy, IT × PUE), e.g. 5kWh, 500Wh, 2MJ")
    .option("--max-emissions <mass>", "emissions budget of the job (operational CO2e), e.g. 2kg, 500g")
    .addOption(
      new Option("--on-budget <action>", `when a budget is crossed: warn (the default), or stop the job (SIGTERM, SIGKILL after --grace; powerprint exits ${BUDGET_EXIT_CODE})`).choices(["warn", "stop"]),
    )
    .option("--no-live", "no live status line on stderr (it is shown only when stderr is a terminal)");
}

/** Validates the budget flags once (UsageError naming the flag). Undefined: no budget set. */
export function budgetConfig(f: Pick<OutputFlags, "maxEnergy" | "maxEmissions" | "onBudget">): BudgetConfig | undefined {
  const onBudget = f.onBudget ?? "warn";
  if (onBudget !== "warn" && onBudget !== "stop") throw new UsageError("--on-budget", `'${onBudget}' is not a choice: use warn or stop`);
  let maxFacilityEnergyJoules: number | undefined;
  let maxEmissionsGrams: number | undefined;
  if (f.maxEnergy !== undefined) {
    maxFacilityEnergyJoules = parseEnergyJoules(f.maxEnergy);
    if (maxFacilityEnergyJoules === undefined) throw new UsageError("--max-energy", `'${f.maxEnergy}' is not an energy: give a positive number with its unit, e.g. 5kWh, 500Wh, 2MJ`);
  }
  if (f.maxEmissions !== undefined) {
    maxEmissionsGrams = parseMassGrams(f.maxEmissions);
    if (maxEmissionsGrams === undefined) throw new UsageError("--max-emissions", `'${f.maxEmissions}' is not a mass of CO2e: give a positive number with its unit, e.g. 2kg, 500g, 1t`);
  }
  if (maxFacilityEnergyJoules === undefined && maxEmissionsGrams === undefined) {
    if (f.onBudget !== undefined) throw new UsageError("--on-budget", "needs a budget: add --max-energy or --max-emissions");
    return undefined;
  }
  return { maxFacilityEnergyJoules, maxEmissionsGrams, onBudget };
}

/**
 * Validates the output flags (UsageError naming the flag, nothing written). The report modules are
 * loaded only for a file output (run's pre-spawn chunk stays small), the CSV one (csv-parse,
 * csv-stringify) only for --csv.
 */
export async function outputsConfig(flags: OutputFlags): Promise<OutputsConfig> {
  if (flags.csv !== undefined) {
    (await import("../../exporters/report-json.js")).checkReportPath(flags.csv, "--csv");
    (await import("../../exporters/report-csv.js")).checkCsvPath(flags.csv);
  }
  if (flags.html !== undefined) (await import("../../exporters/report-json.js")).checkReportPath(flags.html, "--html");
  return {
    csvPath: flags.csv,
    htmlPath: flags.html,
    reportPath: flags.report,
    timeSeries: flags.html !== undefined || flags.csv !== undefined || flags.report !== undefined,
    budget: budgetConfig(flags),
    live: flags.quiet !== true && flags.live !== false,
  };
}
