/**
 * What every metric observes, in one place: for each metric of src/semconv.ts METRICS, the values
 * and attributes read from a ledger snapshot (and the export failures and the agent's own
 * figures). The OTel exporters feed these to asynchronous instruments (exporters/otel.ts); the
 * Prometheus endpoint writes them straight out as text (exporters/prometheus.ts), so the two can
 * never disagree on a figure or an attribute.
 *
 * Counters observe cumulative ledger totals; gauges the last interval. Jobs, devices and phases
 * absent from the snapshot are not observed (their series end). Job attributes are bounded again
 * here (src/core/bounds.ts): whatever a source let through, no exported label is unbounded.
 */
import type { DeviceKind } from "../src/core/contracts.js";
import type { EnergyByKind, JobTotals, LedgerSnapshot } from "../src/core/types.js";
import { boundAttributes, boundText, MAX_JOB_ID_CHARS, MAX_JOB_NAME_CHARS } from "../src/core/bounds.js";
import type { SelfStats } from "../src/core/self-metrics.js";
import { ATTR, METRIC, METRICS, type MetricSpec } from "../src/semconv.js";

/** Instrumentation scope name of every powerprint metric. */
export const METER_NAME = "powerprint";

/** Attributes of one data point (string values only). */
export type Labels = Record<string, string>;

/**
 * One data point: `base` is shared by many points (a job's attributes, the same object for all of
 * that job's points of one collection), `extra` the point's own (hw.type...). The point's
 * attributes are `{ ...base, ...extra }`.
 */
export interface Point {
  value: number;
  base: Labels;
  extra?: Labels;
}

const point = (value: number, base: Labels, extra?: Labels): Point => ({ value, base, extra });

/** One failure count of the FailureTracker. */
export interface FailureEntry {
  exporter: string;
  kind: string;
  count: number;
}

/** What one collection reads. */
export interface ObservationSources {
  snapshot: LedgerSnapshot | undefined;
  failures: Iterable<FailureEntry>;
  /** The agent's own figures (absent in run and simulate). */
  self: SelfStats | undefined;
}

const KINDS: readonly DeviceKind[] = ["cpu", "gpu", "memory"];
const NONE: Labels = Object.freeze({}) as Labels;

/** A job's attributes on its data points: its own (bounded), then id and name, which always win. */
export function jobAttributes(job: JobTotals): Labels {
  // User tags first: powerprint's own keys always win (parseTags also refuses reserved keys).
  return { ...boundAttributes(job.attributes), [ATTR.jobId]: boundText(job.id, MAX_JOB_ID_CHARS), [ATTR.jobName]: boundText(job.name, MAX_JOB_NAME_CHARS) };
}

type Device = LedgerSnapshot["devices"][number];

/** hw.parent of a MIG instance, powerprint.gpu.shared of a GPU a sidecar counts a share of. */
function partAttributes(device: Device): Labels {
  const attrs: Labels = {};
  if (device.parent !== undefined) attrs[ATTR.hwParent] = device.parent;
  if (device.shared) attrs[ATTR.gpuShared] = "true";
  return attrs;
}

function deviceAttributes(device: Device): Labels {
  const attrs: Labels = { [ATTR.hwId]: device.id, [ATTR.hwType]: device.kind, [ATTR.method]: device.method, [ATTR.source]: device.source };
  if (device.model) attrs[ATTR.hwName] = device.model;
  return Object.assign(attrs, partAttributes(device));
}

/** Device kinds present on this host: job energy is reported for these kinds (zeros included) and any non-zero one. */
function kindsToReport(present: ReadonlySet<DeviceKind>, energy: EnergyByKind): DeviceKind[] {
  return KINDS.filter((kind) => energy[kind] !== 0 || present.has(kind));
}

/**
 * A collection's view of the sources: job attributes built once per job and shared by all its
 * points (one object per job, however many metrics and series it has), the device lookups once.
 */
export class Collection {
  private readonly bases = new Map<JobTotals, Labels>();
  private kindOfDevice?: Map<string, DeviceKind>;
  private partOfDevice?: Map<string, Labels>;
  private present?: Set<DeviceKind>;

  constructor(readonly sources: ObservationSources) {}

  base(job: JobTotals): Labels {
    let b = this.bases.get(job);
    if (!b) this.bases.set(job, (b = jobAttributes(job)));
    return b;
  }

  /** The kinds of `energy` to report (see kindsToReport). */
  kinds(energy: EnergyByKind): DeviceKind[] {
    this.present ??= new Set((this.sources.snapshot?.devices ?? []).map((d) => d.kind));
    return kindsToReport(this.present, energy);
  }

  kindOf(deviceId: string): DeviceKind | undefined {
    this.kindOfDevice ??= new Map((this.sources.snapshot?.devices ?? []).map((d) => [d.id, d.kind]));
    return this.kindOfDevice.get(deviceId);
  }

  partOf(deviceId: string): Labels | undefined {
    this.partOfDevice ??= new Map((this.sources.snapshot?.devices ?? []).filter((d) => d.parent !== undefined || d.shared).map((d) => [d.id, partAttributes(d)]));
    return this.partOfDevice.get(deviceId);
  }
}

type ServingModel = NonNullable<JobTotals["serving"]>["models"][number];

/** `f`'s points for every model of every serving job (--work-from), with the job's attributes and the model's. */
function* eachServingModel(c: Collection, f: (m: ServingModel, model: Labels) => Point[]): Generator<Point> {
  for (const job of c.sources.snapshot?.jobs ?? []) {
    if (!job.serving) continue;
    const base = c.base(job);
    for (const m of job.serving.models) yield* f(m, m.model === "" ? base : { ...base, [ATTR.genAiRequestModel]: m.model });
  }
}

/** A metric's points of one collection, lazily (a consumer may pause between points: streaming). */
type Observer = (c: Collection) => Iterable<Point>;

/** `f`'s points for every job of the snapshot, with the job's shared attributes. */
function* eachJob(c: Collection, f: (job: JobTotals, base: Labels) => Iterable<Point> | Point | false): Generator<Point> {
  for (const job of c.sources.snapshot?.jobs ?? []) {
    const r = f(job, c.base(job));
    if (r === false) continue;
    if ("value" in r) yield r;
    else yield* r;
  }
}

const OBSERVE: Record<string, Observer> = {
  *[METRIC.hwEnergy](c) {
    for (const d of c.sources.snapshot?.devices ?? []) yield point(d.energyJoules, deviceAttributes(d));
  },
  *[METRIC.hwPower](c) {
    for (const d of c.sources.snapshot?.devices ?? []) yield point(d.lastPowerWatts, deviceAttributes(d));
  },
  [METRIC.jobEnergy]: (c) => eachJob(c, (job, base) => c.kinds(job.energyJoules).map((kind) => point(job.energyJoules[kind], base, { [ATTR.hwType]: kind }))),
  [METRIC.jobFacilityEnergy]: (c) => eachJob(c, (job, base) => point(job.facilityEnergyJoules, base)),
  [METRIC.jobPower]: (c) => eachJob(c, (job, base) => c.kinds(job.energyJoules).map((kind) => point(job.lastPowerWatts[kind], base, { [ATTR.hwType]: kind }))),
  [METRIC.jobEmissions]: (c) => eachJob(c, (job, base) => point(job.emissionsGrams, base)),
  [METRIC.jobEmbodiedEmissions]: (c) => eachJob(c, (job, base) => point(job.embodiedEmissionsGrams, base)),
  [METRIC.jobWater]: (c) => eachJob(c, (job, base) => point(job.waterLiters, base)),
  [METRIC.jobPhaseEnergy]: (c) => eachJob(c, (job, base) => Object.entries(job.phaseEnergyJoules).map(([phase, energyJoules]) => point(energyJoules, base, { [ATTR.phase]: phase }))),
  [METRIC.jobCpuTime]: (c) => eachJob(c, (job, base) => point(job.cpuSeconds ?? 0, base)),
  // Per job and device (issue 8: GPU series with pod labels). Bounded: only the devices the job has
  // energy on (its ledger entries), never jobs × all devices.
  [METRIC.jobDeviceEnergy]: (c) =>
    eachJob(c, (job, base) => {
      const out: Point[] = [];
      for (const [deviceId, energyJoules] of Object.entries(job.deviceEnergyJoules)) {
        const kind = c.kindOf(deviceId);
        if (kind !== undefined) out.push(point(energyJoules, base, { [ATTR.hwId]: deviceId, [ATTR.hwType]: kind, ...c.partOf(deviceId) }));
      }
      return out;
    }),
  // Only the counters the job marks (no zeros for jobs that never mark work).
  [METRIC.jobSamples]: (c) => eachJob(c, (job, base) => job.work?.samples !== undefined && point(job.work.samples, base)),
  [METRIC.jobTokens]: (c) => eachJob(c, (job, base) => job.work?.tokens !== undefined && point(job.work.tokens, base)),
  [METRIC.jobSteps]: (c) => eachJob(c, (job, base) => job.work?.step !== undefined && point(job.work.step, base)),
  // --work-from: per model (no gen_ai.request.model for an engine without model labels).
  [METRIC.servingTokens]: (c) =>
    eachServingModel(c, (m, model) => [
      ...(m.promptTokens !== null ? [point(m.promptTokens, model, { [ATTR.genAiTokenType]: "input" })] : []),
      ...(m.generatedTokens !== null ? [point(m.generatedTokens, model, { [ATTR.genAiTokenType]: "output" })] : []),
    ]),
  [METRIC.servingRequests]: (c) => eachServingModel(c, (m, model) => (m.requests !== null ? [point(m.requests, model)] : [])),
  [METRIC.servingEnergy]: (c) =>
    eachServingModel(c, (m, model) => [point(m.activeEnergyJoules, model, { [ATTR.servingState]: "active" }), point(m.idleEnergyJoules, model, { [ATTR.servingState]: "idle" })]),
  [METRIC.servingEmissions]: (c) => eachServingModel(c, (m, model) => [point(m.emissionsGrams, model)]),
  *[METRIC.bucketEnergy](c) {
    const snapshot = c.sources.snapshot;
    if (!snapshot) return;
    for (const bucket of [snapshot.buckets.system, snapshot.buckets.idle]) {
      for (const kind of c.kinds(bucket.energyJoules)) yield point(bucket.energyJoules[kind], { [ATTR.bucket]: bucket.id, [ATTR.hwType]: kind });
    }
  },
  *[METRIC.gridIntensity](c) {
    const grid = c.sources.snapshot?.grid;
    if (grid) yield point(grid.intensityGramsPerKwh, { [ATTR.gridZone]: grid.zone, [ATTR.gridSource]: grid.source, [ATTR.gridFallback]: grid.fallback ?? "none" });
  },
  *[METRIC.exportFailures](c) {
    for (const e of c.sources.failures) yield point(e.count, { [ATTR.exporter]: e.exporter, [ATTR.errorType]: e.kind });
  },
  *[METRIC.agentTickDuration](c) {
    const s = c.sources.self?.tickDurationSeconds;
    if (s !== undefined) yield point(s, NONE);
  },
  *[METRIC.agentTicksSkipped](c) {
    if (c.sources.self) yield point(c.sources.self.ticksSkipped, NONE);
  },
  *[METRIC.agentSourceFailures](c) {
    for (const f of c.sources.self?.sourceFailures ?? []) yield point(f.count, { [ATTR.source]: f.source, [ATTR.errorType]: f.kind });
  },
  *[METRIC.agentSourceHung](c) {
    for (const s of c.sources.self?.sourceHung ?? []) yield point(s.hung ? 1 : 0, { [ATTR.source]: s.source });
  },
  *[METRIC.agentJobs](c) {
    const jobs = c.sources.self?.jobs;
    if (!jobs) return;
    yield point(jobs.live, { [ATTR.jobState]: "live" });
    yield point(jobs.finished, { [ATTR.jobState]: "finished" });
  },
  *[METRIC.agentJobsDropped](c) {
    for (const d of c.sources.self?.jobsDropped ?? []) yield point(d.count, { [ATTR.reason]: d.reason });
  },
  *[METRIC.processCpuTime](c) {
    const self = c.sources.self;
    if (!self) return;
    yield point(self.cpuUserSeconds, { [ATTR.cpuMode]: "user" });
    yield point(self.cpuSystemSeconds, { [ATTR.cpuMode]: "system" });
  },
  *[METRIC.processMemoryUsage](c) {
    if (c.sources.self) yield point(c.sources.self.rssBytes, NONE);
  },
};

/** Every metric with its observer, in METRICS order (the order exporters register and write them). */
export const OBSERVERS: readonly { spec: MetricSpec; observe: Observer }[] = METRICS.map((spec) => {
  const observe = OBSERVE[spec.name];
  if (!observe) throw new Error(`exporters/observations: no observer for ${spec.name}`);
  return { spec, observe };
});
