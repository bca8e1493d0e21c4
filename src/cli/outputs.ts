/**
 * What `run` and `simulate` add to their pipeline for the outputs of src/config/outputs.ts: the
 * time-series recorder, the budget watcher and the live line (exporters reading snapshots), and the
 * writing of --csv and --html at the end.
 */
import type { Exporter, Logger } from "../core/contracts.js";
import type { ReportContext, ReportV1 } from "../../exporters/report-json.js";
import { TimeSeriesRecorder } from "../../exporters/timeseries.js";
import { LiveLine } from "../../exporters/live.js";
import { BUDGET_EXIT_CODE, BudgetWatcher, type BudgetReport } from "../jobs/budget.js";
import type { OutputsConfig } from "../config/outputs.js";
import { errorMessage } from "../errors.js";

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
 * Builds the outputs of a validated config. `onStop` is called once when a budget with
 * --on-budget stop is crossed; the live line goes to `liveStream` (none: no live line).
 */
export function prepareOutputs(
  config: OutputsConfig,
  o: { log: Logger; jobId?: string; onStop?: (crossing: BudgetReport["crossed"][number]) => void; liveStream?: NodeJS.WriteStream },
): Outputs {
  const exporters: Exporter[] = [];
  // The series feeds the HTML charts and the JSON report; recorded whenever a file is written.
  const series = config.timeSeries ? new TimeSeriesRecorder() : undefined;
  if (series) exporters.push(series);
  const budget = config.budget ? new BudgetWatcher(config.budget, { jobId: o.jobId, log: o.log, onStop: o.onStop }) : undefined;
  if (budget) exporters.push(budget);
  if (o.liveStream && config.live) exporters.push(new LiveLine({ stream: o.liveStream, jobId: o.jobId }));
  return {
    exporters,
    budget,
    context: () => ({ ...(series ? { timeSeries: series.series() } : {}), ...(budget ? { budget: budget.report() } : {}) }),
    async write(report) {
      if (config.csvPath !== undefined) {
        try {
          const r = (await import("../../exporters/report-csv.js")).appendCsv(config.csvPath, report);
          if (r.status === "diverted") o.log.warn(`--csv: ${r.reason} now: wrote the row(s) to ${r.path} instead`);
        } catch (err) {
          // Only outputs that were asked for are named.
          o.log.warn(`--csv: could not append to ${config.csvPath}: ${errorMessage(err)}${config.reportPath !== undefined ? ` (the JSON report ${config.reportPath} has the figures)` : ""}`);
        }
      }
      if (config.htmlPath !== undefined) {
        try {
          const { writeHtmlReport } = await import("../../exporters/report-html.js");
          writeHtmlReport(config.htmlPath, report);
        } catch (err) {
          o.log.warn(`--html: could not write ${config.htmlPath}: ${errorMessage(err)}`);
        }
      }
    },
    exitCode: (code) => (budget?.stopped ? BUDGET_EXIT_CODE : code),
  };
}
