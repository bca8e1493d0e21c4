/**
 * The disclosures of `powerprint report`: --model-card (Hugging Face `co2_eq_emissions`),
 * --sci --per UNIT (Software Carbon Intensity), --impact-manifest FILE (Impact Framework). Their
 * flags are validated by src/config/report.ts before anything is read or written; the figures come
 * from src/disclose.
 */
import { loadEmbodiedTable } from "../pipeline/footprint.js";
import { readFileSync } from "node:fs";
import { writeTextAtomic } from "../../exporters/report-json.js";
import type { ReportV1 } from "../../exporters/report-schema.js";
import { embodiedDefaultFor, MILLIS_PER_YEAR } from "../core/footprint.js";
import { impactManifest, impactManifestYaml } from "../disclose/impact.js";
import { modelCardEmissions, modelCardYaml, writeIntoFrontMatter, type NamedReport } from "../disclose/modelcard.js";
import { computeSci, formatSci, type DeviceEmbodied, type SciResult } from "../disclose/sci.js";
import type { Disclosure } from "../config/report.js";
import { UsageError } from "../errors.js";
import { lookupZone } from "../grid/static.js";
import { version } from "../version.js";

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
