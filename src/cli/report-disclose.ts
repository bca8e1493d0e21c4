/**
 * The disclosure options of `powerprint report`: --model-card (Hugging Face `co2_eq_emissions`),
 * --sci --per UNIT (Software Carbon Intensity), --impact-manifest FILE (Impact Framework). Flags
 * are checked before anything is read or written; the figures come from src/disclose.
 */
import { loadEmbodiedTable } from "../pipeline/footprint.js";
import { readFileSync, lstatSync } from "node:fs";
import type { Command } from "commander";
import { checkReportPath, writeTextAtomic } from "../../exporters/report-json.js";
import type { ReportV1 } from "../../exporters/report-schema.js";
import { embodiedDefaultFor, MILLIS_PER_YEAR } from "../core/footprint.js";
import { impactManifest, impactManifestYaml } from "../disclose/impact.js";
import { modelCardEmissions, modelCardYaml, TRAINING_TYPES, writeIntoFrontMatter, type NamedReport, type TrainingType } from "../disclose/modelcard.js";
import { computeSci, formatSci, parseSciUnit, type DeviceEmbodied, type SciResult, type SciUnit } from "../disclose/sci.js";
import { UsageError } from "../errors.js";
import { lookupZone } from "../grid/static.js";
import { version } from "../version.js";

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

/** Validated disclosure request. */
export interface Disclosure {
  modelCard: boolean;
  readme?: string;
  trainingType?: TrainingType;
  sci: boolean;
  per: SciUnit;
  manifest?: string;
  job?: string;
}

/** Registers the options on `report`. */
export function addDisclosureOptions(cmd: Command): Command {
  return cmd
    .option("--model-card", "print the Hugging Face model card co2_eq_emissions block of all the reports (the whole experiment, failed runs counted)")
    .option("--model-card-readme <file>", "write that block into FILE's YAML front matter (a model card README.md), keeping every other byte")
    .option("--training-type <type>", `the model card's training_type: ${TRAINING_TYPES.join(" or ")}`)
    .option("--sci", "print the Software Carbon Intensity of each job: E, I, M = TE × TS × RS, R and the score (ISO/IEC 21031:2024)")
    .option("--per <unit>", "the SCI's functional unit R: tokens, samples, requests, steps or run", "run")
    .option("--impact-manifest <file>", "write an Impact Framework manifest (if-run --manifest FILE recomputes carbon and SCI with its built-in plugins)")
    .option("--job <id>", "the job for --sci and --impact-manifest (default: every job)");
}

/** Checks the flags (exit 2 on bad input, before anything is read); undefined when none was given. */
export function checkDisclosure(flags: DisclosureFlags): Disclosure | undefined {
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

/** The device table the run used (data/embodied.json), as SCI's TE. */
function embodiedOf(kind: string, model?: string): DeviceEmbodied | undefined {
  try {
    const d = embodiedDefaultFor(loadEmbodiedTable(), kind, model);
    return { totalGrams: d.totalGrams, lifetimeSeconds: (d.lifetimeYears * MILLIS_PER_YEAR) / 1000, source: d.source.split(":")[0] };
  } catch {
    return undefined;
  }
}

/** "Germany (DE)", "US-CAL-CISO (United States)", or what is known of the zone. */
function locationOf(zone: string): string {
  if (zone === "WORLD" || zone === "") return "unknown (no --zone: world-average intensity)";
  return zone
    .split("+")
    .map((z) => {
      const found = lookupZone(z);
      return found && found.row.zone !== "WORLD" ? `${found.row.country} (${z})` : z;
    })
    .join("; ");
}

/** What a disclosure prints and writes, computed before anything is written. */
export interface DisclosureOutput {
  text: string;
  sci: SciResult[];
  files: { path: string; text: string }[];
}

/**
 * Computes the disclosure: the model card block (or the README with it), the SCI of each job, the
 * manifest. Pure but for reading the README; the caller writes `files` once everything else is ready.
 */
export function prepareDisclosure(d: Disclosure, named: NamedReport[], merged: ReportV1): DisclosureOutput {
  const out: string[] = [];
  const files: { path: string; text: string }[] = [];
  const jobs = d.job === undefined ? merged.jobs : merged.jobs.filter((j) => j.id === d.job);
  if (jobs.length === 0) throw new UsageError("--job", `no job '${d.job}' in the reports (they have ${merged.jobs.map((j) => j.id).join(", ")})`);
  const sci = d.sci || d.manifest !== undefined ? jobs.map((job) => computeSci({ report: merged, job: job as typeof job & Record<string, unknown>, per: d.per, embodiedOf })) : [];
  if (d.modelCard) {
    const m = modelCardEmissions({ reports: named, version: version(), trainingType: d.trainingType, locationOf });
    if (d.readme !== undefined) {
      files.push({ path: d.readme, text: writeIntoFrontMatter(d.readme, readFileSync(d.readme, "utf8"), m) });
      out.push(`model card: co2_eq_emissions written into ${d.readme}`);
    } else out.push(modelCardYaml(m).trimEnd());
  }
  if (d.sci) out.push(...sci.map(formatSci));
  if (d.manifest !== undefined) {
    let manifest: Record<string, unknown>;
    try {
      manifest = impactManifest({ report: merged, jobs: jobs.map((job, i) => ({ job, sci: sci[i] })), version: version() });
    } catch (err) {
      throw err instanceof RangeError ? new UsageError("--impact-manifest", err.message) : err;
    }
    files.push({ path: d.manifest, text: impactManifestYaml(manifest) });
    out.push(`impact manifest: ${d.manifest} (recompute: npx --package @grnsft/if if-run --manifest ${d.manifest} --output out)`);
  }
  return { text: out.join("\n"), sci, files };
}

/** Writes the disclosure's files (atomically, each). */
export function writeDisclosure(o: DisclosureOutput): void {
  for (const f of o.files) writeTextAtomic(f.path, f.text);
}
