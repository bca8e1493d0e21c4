/**
 * The outputs an ML engineer reads besides the JSON report: `--csv`, `--html`, budgets
 * (`--max-energy`, `--max-emissions`, `--on-budget`) and the live status line. One place registers
 * the flags, validates them before anything runs (exit 2 naming the flag), builds the exporters
 * `run` and `simulate` add to their list, and writes the files at the end, so the commands only
 * need a few lines each.
 */
import { Option, type Command } from "commander";
import type { Exporter, Logger } from "../core/contracts.js";
import type { ReportContext, ReportV1 } from "../../exporters/report-json.js";
import { TimeSeriesRecorder } from "../../exporters/timeseries.js";
import { LiveLine } from "../../exporters/live.js";
import { BUDGET_EXIT_CODE, BudgetWatcher, parseBudgetFlags, type BudgetReport } from "../jobs/budget.js";
import { errorMessage } from "../errors.js";

/** Flags as commander parses them. */
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

/** Registers --csv and --html (run, simulate, report). */
export function addFileOutputOptions(cmd: Command): Command {
  return cmd
    .option("--csv <file>", "append one row per job to FILE: CodeCarbon's emissions.csv columns (kg, kWh, W, s) first, then powerprint's")
    .option("--html <file>", "write a self-contained HTML report with charts to FILE");
}

/** Registers the budget flags and --no-live (run only). */
export function addBudgetOptions(cmd: Command): Command {
  return cmd
    .option("--max-energy <energy>", "energy budget of the job (facility energy, IT × PUE), e.g. 5kWh, 500Wh, 2MJ")
    .option("--max-emissions <mass>", "emissions budget of the job (operational CO2e), e.g. 2kg, 500g")
    .addOption(
      new Option("--on-budget <action>", `when a budget is crossed: warn (the default), or stop the job (SIGTERM, SIGKILL after --grace; powerprint exits ${BUDGET_EXIT_CODE})`).choices(["warn", "stop"]),
    )
    .option("--no-live", "no live status line on stderr (it is shown only when stderr is a terminal)");
}

/** What the command adds to its pipeline and calls at the end. */
export interface Outputs {
  /** Add these to the command's exporters (they read snapshots). */
  exporters: Exporter[];
  budget?: BudgetWatcher;
  /** The report context fields of these outputs (timeSeries, budget). */
  context(): Pick<ReportContext, "timeSeries" | "budget">;
  /** Writes --csv and --html; failures warn, never throw (the measured data stays in the report). */
  write(report: ReportV1): Promise<void>;
  /** The exit code: BUDGET_EXIT_CODE when a budget stopped the job, else the command's. */
  exitCode(commandExitCode: number): number;
}

/**
 * Validates the output flags (UsageError naming the flag, nothing written) and builds the outputs.
 * `onStop` is called once when a budget with --on-budget stop is crossed.
 */
export async function prepareOutputs(
  flags: OutputFlags,
  o: { log: Logger; jobId?: string; onStop?: (crossing: BudgetReport["crossed"][number]) => void; liveStream?: NodeJS.WriteStream },
): Promise<Outputs> {
  // The CSV module (and its csv-parse/csv-stringify) is loaded only when --csv is given.
  const csv = flags.csv !== undefined ? await import("../../exporters/report-csv.js") : undefined;
  // Loaded only for a file output: run's pre-spawn chunk stays small (and the module is not both
  // static and lazy, which the bundler warns about: INEFFECTIVE_DYNAMIC_IMPORT).
  const files = flags.csv !== undefined || flags.html !== undefined ? await import("../../exporters/report-json.js") : undefined;
  if (flags.csv !== undefined) {
    files!.checkReportPath(flags.csv, "--csv");
    csv!.checkCsvPath(flags.csv);
  }
  if (flags.html !== undefined) files!.checkReportPath(flags.html, "--html");
  const budgetConfig = parseBudgetFlags(flags);
  const exporters: Exporter[] = [];
  // The series feeds the HTML charts and the JSON report; recorded whenever a file is written.
  const series = flags.html !== undefined || flags.csv !== undefined || flags.report !== undefined ? new TimeSeriesRecorder() : undefined;
  if (series) exporters.push(series);
  const budget = budgetConfig ? new BudgetWatcher(budgetConfig, { jobId: o.jobId, log: o.log, onStop: o.onStop }) : undefined;
  if (budget) exporters.push(budget);
  if (o.liveStream && flags.live !== false) exporters.push(new LiveLine({ stream: o.liveStream, jobId: o.jobId }));
  return {
    exporters,
    budget,
    context: () => ({ ...(series ? { timeSeries: series.series() } : {}), ...(budget ? { budget: budget.report() } : {}) }),
    async write(report) {
      if (flags.csv !== undefined) {
        try {
          const r = csv!.appendCsv(flags.csv, report);
          if (r.status === "diverted") o.log.warn(`--csv: ${r.reason} now: wrote the row(s) to ${r.path} instead`);
        } catch (err) {
          // Only outputs that were asked for are named.
          o.log.warn(`--csv: could not append to ${flags.csv}: ${errorMessage(err)}${flags.report !== undefined ? ` (the JSON report ${flags.report} has the figures)` : ""}`);
        }
      }
      if (flags.html !== undefined) {
        try {
          const { writeHtmlReport } = await import("../../exporters/report-html.js");
          writeHtmlReport(flags.html, report);
        } catch (err) {
          o.log.warn(`--html: could not write ${flags.html}: ${errorMessage(err)}`);
        }
      }
    },
    exitCode: (code) => (budget?.stopped ? BUDGET_EXIT_CODE : code),
  };
}
