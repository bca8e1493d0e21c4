/**
 * An Impact Framework manifest (Green Software Foundation, `@grnsft/if`, `if-run --manifest`)
 * that lets others recompute a job's carbon and SCI from its observations with IF's own built-in
 * plugins only:
 *
 *   Sum (cpu/energy + gpu/energy + memory/energy → energy, IT kWh) → Coefficient (× PUE →
 *   energy-facility) → Multiply (× grid/carbon-intensity → carbon-operational) → SciEmbodied per
 *   device group (baseline-emissions TE, lifespan, usage-ratio RS, each observation's duration →
 *   embodied-carbon-a, -b, ...) → Sum (→ carbon) → Sci (carbon / R → sci)
 *
 * Observations are the report's time-series points: each one's IT energy per device kind is the
 * job's own (the ledger's cumulative totals, differenced) and its intensity is the one the ledger
 * applied (the point's emissions / its facility kWh), so IF's sums equal powerprint's totals to
 * float rounding. IF's Sci takes `duration` >= 1 s, so shorter points join the next. A report
 * without per-job series gives one observation for the whole run. Each observation carries the
 * run's R: its `sci` is its carbon per unit of the run's work, and their sum (the manifest's
 * time aggregation) is the job's SCI.
 */
import { stringify } from "yaml";
import type { ReportV1 } from "../../exporters/report-schema.js";
import { formatDuration, joulesToKwh } from "../units.js";
import { reservedSeconds, type SciResult } from "./sci.js";

type Job = ReportV1["jobs"][number];

/** One observation's own figures (before the constant inputs are added). */
export interface Observation {
  timestamp: string;
  durationSeconds: number;
  cpuKwh: number;
  gpuKwh: number;
  memoryKwh: number;
  intensityGramsPerKwh: number;
}

/** IF's Sci plugin refuses a duration under 1 s. */
const MIN_DURATION_SECONDS = 1;

/** Sums of consecutive points being joined into one observation. */
interface Acc {
  beginSeconds: number;
  endSeconds: number;
  cpuJoules: number;
  gpuJoules: number;
  memoryJoules: number;
  facilityJoules: number;
  grams: number;
  /** The grid's intensity at the last point (shown for an observation without energy). */
  gridGramsPerKwh: number;
}

function toObservation(startMillis: number, a: Acc): Observation {
  const fac = joulesToKwh(a.facilityJoules);
  return {
    timestamp: new Date(startMillis + a.beginSeconds * 1000).toISOString(),
    durationSeconds: a.endSeconds - a.beginSeconds,
    cpuKwh: joulesToKwh(a.cpuJoules),
    gpuKwh: joulesToKwh(a.gpuJoules),
    memoryKwh: joulesToKwh(a.memoryJoules),
    // The intensity the ledger applied to this energy (its emissions / facility kWh).
    intensityGramsPerKwh: fac > 0 ? a.grams / fac : a.gridGramsPerKwh,
  };
}

/** The job's observations from the report (see the module comment). */
export function observations(report: ReportV1, job: Job): Observation[] {
  const t = report.timeSeries;
  const c = t?.jobCumulative?.[job.id];
  const start = Date.parse(report.startedAt);
  if (!t || !c || t.pointCount === 0) {
    const whole: Acc = {
      beginSeconds: 0,
      endSeconds: reservedSeconds(report, job),
      cpuJoules: job.energyJoules.cpu,
      gpuJoules: job.energyJoules.gpu,
      memoryJoules: job.energyJoules.memory,
      facilityJoules: job.facilityEnergyJoules,
      grams: job.emissionsGrams,
      gridGramsPerKwh: report.intensity.lastGramsPerKwh,
    };
    return [toObservation(start, whole)];
  }
  const accs: Acc[] = [];
  let open: Acc | undefined;
  for (let i = 0; i < t.pointCount; i++) {
    const d = (xs: number[]) => xs[i] - (i > 0 ? xs[i - 1] : 0);
    open ??= { beginSeconds: t.endSeconds[i] - t.spanSeconds[i], endSeconds: 0, cpuJoules: 0, gpuJoules: 0, memoryJoules: 0, facilityJoules: 0, grams: 0, gridGramsPerKwh: 0 };
    open.endSeconds = t.endSeconds[i];
    open.cpuJoules += d(c.cpuEnergyJoules);
    open.gpuJoules += d(c.gpuEnergyJoules);
    open.memoryJoules += d(c.memoryEnergyJoules);
    open.facilityJoules += d(c.facilityEnergyJoules);
    open.grams += d(c.emissionsGrams);
    open.gridGramsPerKwh = t.intensityGramsPerKwh[i];
    if (open.endSeconds - open.beginSeconds >= MIN_DURATION_SECONDS) {
      accs.push(open);
      open = undefined;
    }
  }
  // A tail under 1 s joins the observation before it.
  const last = accs[accs.length - 1];
  if (open && last) {
    accs[accs.length - 1] = {
      ...last,
      endSeconds: open.endSeconds,
      cpuJoules: last.cpuJoules + open.cpuJoules,
      gpuJoules: last.gpuJoules + open.gpuJoules,
      memoryJoules: last.memoryJoules + open.memoryJoules,
      facilityJoules: last.facilityJoules + open.facilityJoules,
      grams: last.grams + open.grams,
    };
  } else if (open) accs.push(open);
  return accs.map((a) => toObservation(start, a));
}

/** Parameter metadata that makes IF sum a metric over time (and over components). */
const summed = (unit: string, description: string) => ({ unit, description, "aggregation-method": { time: "sum", component: "sum" } });

/** One job's plugins (prefixed so several jobs share a manifest) and its observations. */
function jobPart(report: ReportV1, job: Job, sci: SciResult, prefix: string) {
  const unit = sci.per === "run" ? "runs" : sci.per;
  const embodied = sci.resourceShare !== undefined && sci.resourceShare > 0 ? sci.groups : [];
  // IF reads an output name with a digit as an arithmetic expression: groups are lettered a, b, ...
  if (embodied.length > 26) throw new RangeError(`job ${job.id} used ${embodied.length} kinds of device; a manifest holds at most 26`);
  const name = (i: number) => `embodied-carbon-${String.fromCharCode(97 + i)}`;
  const plugins: Record<string, unknown> = {
    [`${prefix}sum-energy`]: { method: "Sum", path: "builtin", config: { "input-parameters": ["cpu/energy", "gpu/energy", "memory/energy"], "output-parameter": "energy" } },
    [`${prefix}facility-energy`]: { method: "Coefficient", path: "builtin", config: { "input-parameter": "energy", coefficient: report.pue.value, "output-parameter": "energy-facility" } },
    [`${prefix}operational-carbon`]: {
      method: "Multiply",
      path: "builtin",
      config: { "input-parameters": ["energy-facility", "grid/carbon-intensity"], "output-parameter": "carbon-operational" },
      "parameter-metadata": { outputs: { "carbon-operational": summed("gCO2e", "facility kWh × the intensity the ledger applied") } },
    },
  };
  embodied.forEach((g, i) => {
    plugins[`${prefix}embodied-${i}`] = {
      method: "SciEmbodied",
      path: "builtin",
      // The device group itself as the "baseline server": its TE, no other component.
      config: { "baseline-emissions": g.totalGrams, lifespan: g.lifetimeSeconds, "output-parameter": name(i) },
      "parameter-metadata": { outputs: { [name(i)]: summed("gCO2e", `${g.count} × ${g.model ?? g.kind}: TE × (duration / lifespan) × usage-ratio`) } },
    };
  });
  plugins[`${prefix}sum-carbon`] = {
    method: "Sum",
    path: "builtin",
    config: { "input-parameters": ["carbon-operational", ...embodied.map((_, i) => name(i))], "output-parameter": "carbon" },
    "parameter-metadata": { outputs: { carbon: summed("gCO2e", "operational + embodied") } },
  };
  plugins[`${prefix}sci`] = {
    method: "Sci",
    path: "builtin",
    config: { "functional-unit": unit },
    "parameter-metadata": { outputs: { sci: summed("gCO2e", `carbon per ${unit} of the whole run: summed over time it is the job's SCI`) } },
  };
  const obs = observations(report, job);
  const covered = obs.reduce((a, o) => a + o.durationSeconds, 0);
  if (covered < MIN_DURATION_SECONDS) throw new RangeError(`job ${job.id} covers ${formatDuration(covered)}: the Impact Framework's Sci plugin needs observations of at least ${MIN_DURATION_SECONDS} s`);
  const inputs = obs.map((o) => ({
    timestamp: o.timestamp,
    duration: o.durationSeconds,
    "cpu/energy": o.cpuKwh,
    "gpu/energy": o.gpuKwh,
    "memory/energy": o.memoryKwh,
    "grid/carbon-intensity": o.intensityGramsPerKwh,
    ...(embodied.length ? { "usage-ratio": sci.resourceShare } : {}),
    [unit]: sci.functionalUnits,
  }));
  return { plugins, node: { pipeline: { compute: Object.keys(plugins) }, inputs } };
}

/** The manifest (as a plain object): one tree child per job, each with its own pipeline. */
export function impactManifest(args: { report: ReportV1; jobs: { job: Job; sci: SciResult }[]; version: string }): Record<string, unknown> {
  const { report } = args;
  const plugins: Record<string, unknown> = {};
  const children: Record<string, unknown> = {};
  args.jobs.forEach(({ job, sci }, i) => {
    const part = jobPart(report, job, sci, args.jobs.length > 1 ? `job${i}-` : "");
    Object.assign(plugins, part.plugins);
    children[job.id] = part.node;
  });
  const per = args.jobs[0]?.sci.per ?? "run";
  return {
    name: `powerprint ${args.jobs.map((j) => j.job.id).join(", ")}`,
    description: `measured by powerprint ${args.version} from ${report.startedAt} to ${report.endedAt}; carbon (operational + embodied) and SCI per ${per}; each job's aggregated carbon and sci are its totals`,
    tags: { kind: "powerprint", complexity: "simple", category: "ml" },
    aggregation: { metrics: ["carbon-operational", "carbon", "sci"], type: "time" },
    initialize: { plugins },
    tree: { children },
  };
}

/** The manifest as YAML, with a header saying how to recompute it. */
export function impactManifestYaml(manifest: Record<string, unknown>): string {
  return `# Recompute with the Impact Framework: npx --package @grnsft/if if-run --manifest THIS_FILE --output out\n${stringify(manifest, { lineWidth: 0 })}`;
}
