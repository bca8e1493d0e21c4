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
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { groupByTag, mergeReports, type MergedReport } from "./report-merge.js";
import { checkReportPath, writeJsonAtomic, type ReportV1 } from "../../exporters/report-json.js";
import { reportSchemaV1 } from "../../exporters/report-schema.js";
import { appendCsv, checkCsvPath } from "../../exporters/report-csv.js";
import { detailsFileOf, formatSummary } from "../../exporters/summary.js";
import { UsageError, errorMessage } from "../errors.js";
import { addDisclosureOptions, checkDisclosure, prepareDisclosure, writeDisclosure, type DisclosureFlags } from "./report-disclose.js";

interface ReportFlags extends DisclosureFlags {
  groupBy?: string;
  html?: string;
  csv?: string;
  json?: string;
}

/** Reads and validates one report file (UsageError naming the file). */
export function readReportFile(file: string): ReportV1 & Record<string, unknown> {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new UsageError(file, `not a readable JSON report: ${errorMessage(err).split("\n")[0]}`, { cause: err });
  }
  const parsed = reportSchemaV1.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new UsageError(file, `not a powerprint v1 report: ${issue.path.join(".") || "(top)"}: ${issue.message}`);
  }
  // Keep fields newer than this schema (per-phase stats) for merging; the schema checked the rest.
  const jobsRaw = (raw as { jobs: Record<string, unknown>[] }).jobs;
  return { ...parsed.data, jobs: parsed.data.jobs.map((j, i) => ({ ...jobsRaw[i], ...j })) } as ReportV1 & Record<string, unknown>;
}

/** `powerprint report` */
export function registerReportCommand(program: Command): void {
  const cmd = program
    .command("report")
    .summary("merge reports of one job from several nodes, and total a sweep per tag")
    .argument("<files...>", "JSON reports (powerprint run/simulate --report)")
    .option("--group-by <tag>", "totals per value of this job tag, e.g. experiment (set with --tag experiment=NAME)")
    .option("--json <file>", "write the merged report (with `groups`) to FILE")
    .option("--csv <file>", "append the merged jobs to FILE (CodeCarbon columns first)")
    .option("--html <file>", "write the merged HTML report to FILE");
  // Model card, SCI and Impact Framework manifest (docs/plan-and-disclose.md).
  addDisclosureOptions(cmd)
    .addHelpText(
      "after",
      `
Examples:
  $ powerprint report node0.json node1.json --json job.json
  $ powerprint report runs/*.json --group-by experiment --csv sweep.csv`,
    )
    .action(async (files: string[], flags: ReportFlags) => {
      for (const [flag, path] of [["--json", flags.json], ["--csv", flags.csv], ["--html", flags.html]] as const) if (path !== undefined) checkReportPath(path, flag);
      if (flags.csv !== undefined) checkCsvPath(flags.csv);
      if (flags.groupBy !== undefined && flags.groupBy.trim() === "") throw new UsageError("--group-by", "give a tag name, e.g. --group-by experiment");
      const disclosure = checkDisclosure(flags);
      const named = files.map((file) => ({ file, report: readReportFile(file) }));
      const merged = mergeReports(named);
      const groups = flags.groupBy !== undefined ? groupByTag(merged, flags.groupBy) : undefined;
      const disclosed = disclosure && prepareDisclosure(disclosure, named, merged);
      const out: MergedReport = { ...merged, ...(groups ? { groups } : {}), ...(disclosed?.sci.length ? { sci: disclosed.sci } : {}) };
      if (flags.json !== undefined) writeJsonAtomic(flags.json, out);
      if (flags.csv !== undefined) appendCsv(flags.csv, out);
      if (flags.html !== undefined) {
        const { writeHtmlReport } = await import("../../exporters/report-html.js");
        writeHtmlReport(flags.html, out);
      }
      if (disclosed) {
        writeDisclosure(disclosed);
        process.stdout.write(`${disclosed.text}\n`);
        return;
      }
      // The summary names what was merged, the failed runs and the totals per tag (exporters/summary.ts).
      process.stdout.write(formatSummary(out, { detailsFile: detailsFileOf({ reportPath: flags.json, htmlPath: flags.html }) }) + "\n");
    });
}
