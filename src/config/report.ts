/**
 * `powerprint report`'s typed config: the merge and output flags (--group-by, --json, --csv,
 * --html) and the disclosure flags (--model-card, --model-card-readme, --training-type, --sci,
 * --per, --impact-manifest, --job; docs/plan-and-disclose.md), validated into a ReportConfig
 * before any report is read or anything written (UsageError naming the flag). The reports
 * themselves are the command's input, read by src/cli/report.ts.
 */
import { lstatSync } from "node:fs";
import type { Command } from "commander";
import { checkCsvPath } from "../../exporters/report-csv.js";
import { checkReportPath } from "../../exporters/report-json.js";
import { TRAINING_TYPES, type TrainingType } from "../disclose/modelcard.js";
import { SCI_UNITS, type SciUnit } from "../disclose/sci.js";
import { UsageError } from "../errors.js";

/** Largest README edited (a model card is a few KiB; the Hub's own limit is far below this). */
export const MAX_README_BYTES = 1 << 20;

/** The disclosure flags as commander parses them. */
export interface DisclosureFlags {
  modelCard?: boolean;
  modelCardReadme?: string;
  trainingType?: string;
  sci?: boolean;
  per?: string;
  impactManifest?: string;
  job?: string;
}

/** report's flags as commander parses them. */
export interface ReportFlags extends DisclosureFlags {
  groupBy?: string;
  html?: string;
  csv?: string;
  json?: string;
}

/** A validated disclosure request (src/cli/report-disclose.ts computes and writes it). */
export interface Disclosure {
  modelCard: boolean;
  /** --model-card-readme: the README whose front matter gets the block. */
  readme?: string;
  trainingType?: TrainingType;
  sci: boolean;
  per: SciUnit;
  /** --impact-manifest: where the manifest goes. */
  manifest?: string;
  job?: string;
}

/** Everything `report` needs, validated. */
export interface ReportConfig {
  /** The reports to merge, as given. */
  files: string[];
  groupBy?: string;
  jsonPath?: string;
  csvPath?: string;
  htmlPath?: string;
  /** Undefined when no disclosure flag was given (the summary is printed instead). */
  disclosure?: Disclosure;
}

/** Registers the disclosure flags (model card, SCI, Impact Framework manifest). */
function declareDisclosureFlags(cmd: Command): Command {
  return cmd
    .option("--model-card", "print the Hugging Face model card co2_eq_emissions block of all the reports (the whole experiment, failed runs counted)")
    .option("--model-card-readme <file>", "write that block into FILE's YAML front matter (a model card README.md), keeping every other byte")
    .option("--training-type <type>", `the model card's training_type: ${TRAINING_TYPES.join(" or ")}`)
    .option("--sci", "print the Software Carbon Intensity of each job: E, I, M = TE × TS × RS, R and the score (ISO/IEC 21031:2024)")
    .option("--per <unit>", `the SCI's functional unit R: ${SCI_UNITS.slice(0, -1).join(", ")} or ${SCI_UNITS[SCI_UNITS.length - 1]}`, "run")
    .option("--impact-manifest <file>", "write an Impact Framework manifest (if-run --manifest FILE recomputes carbon and SCI with its built-in plugins)")
    .option("--job <id>", "the job for --sci and --impact-manifest (default: every job)");
}

/** Registers report's flags: the merge outputs, then the disclosure flags. */
export function declareReportFlags(cmd: Command): Command {
  cmd
    .option("--group-by <tag>", "totals per value of this job tag, e.g. experiment (set with --tag experiment=NAME)")
    .option("--json <file>", "write the merged report (with `groups`) to FILE")
    .option("--csv <file>", "append the merged jobs to FILE (CodeCarbon columns first)")
    .option("--html <file>", "write the merged HTML report to FILE");
  return declareDisclosureFlags(cmd);
}

/** --per: one of SCI_UNITS. */
function parseSciUnit(text: string): SciUnit {
  if ((SCI_UNITS as readonly string[]).includes(text)) return text as SciUnit;
  throw new UsageError("--per", `must be one of ${SCI_UNITS.join(", ")}, got '${text}'`);
}

/** The disclosure flags (exit 2 on bad input, before anything is read); undefined when none was given. */
export function disclosureConfig(flags: DisclosureFlags): Disclosure | undefined {
  const per = parseSciUnit(String(flags.per ?? "run"));
  let trainingType: TrainingType | undefined;
  if (flags.trainingType !== undefined) {
    if (!(TRAINING_TYPES as readonly string[]).includes(flags.trainingType)) throw new UsageError("--training-type", `must be ${TRAINING_TYPES.join(" or ")}, got '${flags.trainingType}'`);
    trainingType = flags.trainingType as TrainingType;
  }
  if (flags.modelCardReadme !== undefined) {
    const st = lstatSync(flags.modelCardReadme, { throwIfNoEntry: false });
    if (!st?.isFile()) throw new UsageError("--model-card-readme", `'${flags.modelCardReadme}' is not an existing regular file (the model card's README.md)`);
    if (st.size > MAX_README_BYTES) throw new UsageError("--model-card-readme", `'${flags.modelCardReadme}' is larger than ${MAX_README_BYTES} bytes: not a model card README`);
    checkReportPath(flags.modelCardReadme, "--model-card-readme");
  }
  if (flags.impactManifest !== undefined) checkReportPath(flags.impactManifest, "--impact-manifest");
  const modelCard = flags.modelCard === true || flags.modelCardReadme !== undefined;
  if (!modelCard && !flags.sci && flags.impactManifest === undefined) {
    if (trainingType) throw new UsageError("--training-type", "goes with --model-card");
    return undefined;
  }
  return { modelCard, readme: flags.modelCardReadme, trainingType, sci: flags.sci === true, per, manifest: flags.impactManifest, job: flags.job };
}

/** Validates report's arguments and flags (UsageError naming the flag; nothing read or written yet). */
export function reportConfig(files: string[], flags: ReportFlags): ReportConfig {
  for (const [flag, path] of [["--json", flags.json], ["--csv", flags.csv], ["--html", flags.html]] as const) if (path !== undefined) checkReportPath(path, flag);
  if (flags.csv !== undefined) checkCsvPath(flags.csv);
  if (flags.groupBy !== undefined && flags.groupBy.trim() === "") throw new UsageError("--group-by", "give a tag name, e.g. --group-by experiment");
  const disclosure = disclosureConfig(flags);
  return { files, groupBy: flags.groupBy, jsonPath: flags.json, csvPath: flags.csv, htmlPath: flags.html, disclosure };
}
