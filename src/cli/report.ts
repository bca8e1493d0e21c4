/**
 * `powerprint report FILES... [--group-by TAG] [--html F] [--csv F] [--json F]`: reads JSON reports
 * (schema v1) and
 * - merges the reports of one job id from several nodes (a multi-node job): energy, facility
 *   energy, emissions, embodied, water, cost, CPU seconds and per-phase energy are summed; the
 *   window is the union (earliest start to latest end); devices keep their ids prefixed with the
 *   node (`n1:gpu0`);
 * - with --group-by TAG, totals per value of that tag over all jobs (`--tag experiment=lr-sweep` on
 *   every run of a sweep: `--group-by experiment` gives the sweep's whole footprint, failed runs
 *   included).
 * A file that is not a v1 report: exit 2 naming it. The time series of several files is not merged
 * (their clocks and devices differ): each run keeps its own, under `runs[]`, for the HTML's
 * per-job charts. Every job keeps its own window and duration (a CSV row carries its run's).
 */
import type { Command } from "commander";
import { groupByTag, mergeReports, type MergedReport } from "./report-merge.js";
import { writeJsonAtomic } from "../../exporters/report-json.js";
import { readReportFile } from "../../exporters/report-schema.js";
import { appendCsv } from "../../exporters/report-csv.js";
import { detailsFileOf, formatSummary } from "../../exporters/summary.js";
import { declareReportFlags, reportConfig, type ReportFlags } from "../config/report.js";
import { prepareDisclosure, writeDisclosure } from "./report-disclose.js";
import { addCommand, type CommandSpec } from "./command.js";

const EXAMPLES = `
Examples:
  $ powerprint report node0.json node1.json --json job.json
  $ powerprint report runs/*.json --group-by experiment --csv sweep.csv`;

/** `powerprint report` */
export function registerReportCommand(program: Command): void {
  const spec = { name: "report", summary: "merge reports of one job from several nodes, and total a sweep per tag", argument: ["<files...>", "JSON reports (powerprint run/simulate --report)"], helpAfter: EXAMPLES } satisfies CommandSpec;
  // Model card, SCI and Impact Framework manifest among its flags (docs/plan-and-disclose.md).
  addCommand(program, spec, declareReportFlags).action(async (files: string[], flags: ReportFlags) => {
    const c = reportConfig(files, flags);
    const named = c.files.map((file) => ({ file, report: readReportFile(file) }));
    const merged = mergeReports(named);
    const groups = c.groupBy !== undefined ? groupByTag(merged, c.groupBy) : undefined;
    const disclosed = c.disclosure && prepareDisclosure(c.disclosure, named, merged);
    const out: MergedReport = { ...merged, ...(groups ? { groups } : {}), ...(disclosed?.sci.length ? { sci: disclosed.sci } : {}) };
    if (c.jsonPath !== undefined) writeJsonAtomic(c.jsonPath, out);
    if (c.csvPath !== undefined) appendCsv(c.csvPath, out);
    if (c.htmlPath !== undefined) {
      const { writeHtmlReport } = await import("../../exporters/report-html.js");
      writeHtmlReport(c.htmlPath, out);
    }
    if (disclosed) {
      writeDisclosure(disclosed);
      process.stdout.write(`${disclosed.text}\n`);
      return;
    }
    // The summary names what was merged, the failed runs and the totals per tag (exporters/summary.ts).
    process.stdout.write(formatSummary(out, { detailsFile: detailsFileOf({ reportPath: c.jsonPath, htmlPath: c.htmlPath }) }) + "\n");
  });
}
