/**
 * The zod schemas of the JSON report (version 1, docs/reports.md), apart from the code that
 * builds and writes reports so that `powerprint run` loads zod only where a report is read back
 * (`powerprint report`, tests): zod alone is about 14 MiB of a wrapped job's RSS.
 */
import { readFileSync } from "node:fs";
import { z } from "zod";
import { UsageError, errorMessage, oneLine } from "../src/errors.js";

/** The budget part of the JSON report. */
export const budgetReportSchema = z.object({
  onBudget: z.enum(["warn", "stop"]),
  limits: z.object({ facilityEnergyJoules: z.number().optional(), emissionsGrams: z.number().optional() }),
  crossed: z.array(
    z.object({
      budget: z.enum(["max-energy", "max-emissions"]),
      /** The limit, in the unit of `quantity` (joules of facility energy or grams CO2e). */
      limit: z.number(),
      /** The job's value at the first tick at or over the limit. */
      value: z.number(),
      quantity: z.enum(["facilityEnergyJoules", "emissionsGrams"]),
      at: z.string(),
      afterSeconds: z.number(),
      action: z.enum(["warned", "stopped"]),
    }),
  ),
});
export type BudgetReport = z.infer<typeof budgetReportSchema>;

const series = z.array(z.number());
/** Zod schema of TimeSeries (the JSON report's `timeSeries`). */
export const timeSeriesSchema = z.object({
  pointCount: z.number().int(),
  maxPoints: z.number().int(),
  endSeconds: series,
  spanSeconds: series,
  devicePowerWatts: z.record(z.string(), series),
  jobPowerWatts: z.record(z.string(), series),
  intensityGramsPerKwh: series,
  cumulativeEnergyJoules: series,
  cumulativeFacilityEnergyJoules: series,
  cumulativeEmissionsGrams: series,
  jobCumulative: z
    .record(
      z.string(),
      z.object({ cpuEnergyJoules: series, gpuEnergyJoules: series, memoryEnergyJoules: series, facilityEnergyJoules: series, emissionsGrams: series }),
    )
    .optional(),
  // --work-from jobs (exporters/timeseries.ts ServingSeries).
  servingCumulative: z
    .record(z.string(), z.object({ generatedTokens: series, energyJoules: series, idleEnergyJoules: series, joulesPerGeneratedToken: z.array(z.number().nullable()) }))
    .optional(),
});

const byKind = z.object({ cpu: z.number(), gpu: z.number(), memory: z.number(), total: z.number() });

const nullableCount = z.number().nonnegative().nullable();
/** Serving figures of one model or of the whole job (src/core/serving.ts ServingFigures; docs/serving.md). */
const servingFigures = z.object({
  promptTokens: nullableCount,
  generatedTokens: nullableCount,
  requests: nullableCount,
  inferences: nullableCount.optional(),
  energyJoules: z.number(),
  activeEnergyJoules: z.number(),
  idleEnergyJoules: z.number(),
  prefillEnergyJoules: z.number().nullable(),
  decodeEnergyJoules: z.number().nullable(),
  emissionsGrams: z.number(),
  joulesPerGeneratedToken: z.number().nullable(),
  joulesPerRequest: z.number().nullable(),
  emissionsGramsPerThousandTokens: z.number().nullable(),
  // null in reports written before it existed; `powerprint report` recomputes it.
  idleEnergyShare: z.number().min(0).nullable().default(null),
});
/** `jobs[].serving` (--work-from): energy per token and per request, per model. */
export const servingReportSchema = z.object({
  engine: z.string(),
  source: z.string(),
  activeFrom: z.enum(["running-gauge", "counter-increases"]),
  prefillDecode: z.enum(["engine-times", "none"]),
  restarts: z.number().int(),
  inconsistentReadings: z.number().int(),
  total: servingFigures,
  models: z.array(servingFigures.extend({ model: z.string() })),
});
const count = z.number().int().nonnegative().nullable();
const orNull = z.number().nullable();
/** The additive totals of a job or a bucket. */
const totalsFields = {
  id: z.string(),
  name: z.string(),
  attributes: z.record(z.string(), z.string()),
  energyJoules: byKind,
  facilityEnergyJoules: z.number(),
  emissionsGrams: z.number(),
  embodiedEmissionsGrams: z.number(),
  waterLiters: z.number(),
  cost: z.number(),
  phaseEnergyJoules: z.record(z.string(), z.number()),
  deviceEnergyJoules: z.record(z.string(), z.number()),
  cpuSeconds: z.number(),
};
const totals = z.object(totalsFields);

/** One phase of a job: measured totals and the figures derived from them (src/core/figures.ts). */
export const phaseSchema = z.object({
  name: z.string(),
  energyJoules: z.number(),
  emissionsGrams: z.number(),
  durationSeconds: z.number(),
  samples: count,
  tokens: count,
  steps: count,
  // Derived (optional: reports written before powerprint computed them in the model).
  energyShare: orNull.optional(),
  averagePowerWatts: orNull.optional(),
  joulesPerSample: orNull,
  joulesPerToken: orNull,
  joulesPerStep: orNull,
});

/**
 * A job: its totals, its own window and duration, its work counts and phases, and the figures
 * derived from them by the report model (README "Report format"). Fields marked optional are absent
 * from reports written before they existed; `powerprint report` fills them in with the same code.
 */
export const jobSchema = z.object({
  ...totalsFields,
  /** When the job was first measured / last measured (ISO 8601), and how long it was measured, s. */
  startedAt: z.string().optional(),
  endedAt: z.string().optional(),
  durationSeconds: z.number().optional(),
  /** run: the command's exit code (a merged report keeps each run's). */
  exitCode: z.number().int().optional(),
  samples: count.optional(),
  tokens: count.optional(),
  steps: count.optional(),
  averagePowerWatts: byKind.optional(),
  emissionsRateGramsPerSecond: orNull.optional(),
  intensityAverageGramsPerKwh: orNull.optional(),
  joulesPerSample: orNull.optional(),
  joulesPerToken: orNull.optional(),
  joulesPerStep: orNull.optional(),
  emissionsGramsPerMillionTokens: orNull.optional(),
  /** --work-from: the serving figures as the ledger computed them (src/core/serving.ts). */
  serving: servingReportSchema.optional(),
  /** Per training phase, once the job wrote a mark; the first is "(before first mark)"; they sum to the job. */
  phases: z.array(phaseSchema).optional(),
});

/** What a report says about its run (a merged report's `runs[]` say it of each file). */
const runFields = {
  mode: z.enum(["run", "simulate", "agent"]),
  scenario: z.string().optional(),
  command: z.array(z.string()).optional(),
  exitCode: z.number().int().optional(),
  startedAt: z.string(),
  endedAt: z.string(),
  durationSeconds: z.number(),
};

/** One run of a merged report (`powerprint report`): where its jobs came from. */
export const mergedRunSchema = z.object({
  file: z.string(),
  ...runFields,
  jobs: z.array(z.string()),
  /** Its devices' ids in the merged report (prefixed with its node label). */
  devices: z.array(z.string()),
  logicalCpus: z.number().int().positive().optional(),
  zone: z.string(),
  timeSeries: timeSeriesSchema.optional(),
});

/** Totals per value of a tag (`powerprint report --group-by TAG`). */
export const tagGroupSchema = z.object({
  tag: z.string(),
  value: z.string(),
  jobs: z.array(z.string()),
  energyJoules: z.number(),
  facilityEnergyJoules: z.number(),
  emissionsGrams: z.number(),
  embodiedEmissionsGrams: z.number(),
  waterLiters: z.number(),
  cost: z.number(),
  cpuSeconds: z.number(),
  /** Jobs of the group whose run failed (exit code ≠ 0). */
  failedJobs: z.array(z.string()).optional(),
  /** --work-from jobs of the group (replicas of a server): their serving totals summed, ratios recomputed. */
  serving: servingFigures.optional(),
});

/** JSON report, schema version 1 (documented in docs/reports.md). */
export const reportSchemaV1 = z.object({
  schemaVersion: z.literal(1),
  tool: z.object({ name: z.literal("powerprint"), version: z.string() }),
  ...runFields,
  /** false: a checkpoint written during the run (powerprint may have been killed after it); true: the final report. */
  complete: z.boolean().optional(),
  /** run: how the job's processes were found, its own cgroup (kernel counter) or /proc walks. */
  tracking: z.enum(["cgroup", "procfs"]).optional(),
  idlePolicy: z.enum(["attribute", "separate"]),
  pue: z.object({ value: z.number(), origin: z.string() }),
  intensity: z.object({
    zone: z.string(),
    source: z.string(),
    lastGramsPerKwh: z.number(),
    description: z.string(),
    fallbacks: z.record(z.string(), z.number()),
    /** No --zone, provider or fixed value was given: the world average applied (information, not a fallback). */
    noZone: z.boolean().optional(),
  }),
  water: z.object({ wueLitersPerKwh: z.number(), waterIntensityLitersPerKwh: z.number(), origin: z.string() }),
  cost: z.object({ pricePerKwh: z.number(), currency: z.string() }),
  jobs: z.array(jobSchema),
  buckets: z.object({ system: totals, idle: totals }),
  /** The host: its logical CPUs (CodeCarbon's cpu_count); a simulation's are its scenario's cores. */
  host: z.object({ logicalCpus: z.number().int().positive() }).optional(),
  devices: z.array(
    z.object({
      id: z.string(),
      kind: z.enum(["cpu", "gpu", "memory"]),
      model: z.string().optional(),
      source: z.string(),
      method: z.enum(["counter", "power", "model"]),
      energyJoules: z.number(),
      idleOrigin: z.string(),
      processUsageMethod: z.string().optional(),
      processUsageIntervals: z.record(z.string(), z.number()).optional(),
      status: z.enum(["ok", "lost"]),
      notes: z.array(z.string()),
      /** A MIG instance's GPU (hw.parent). */
      parent: z.string().optional(),
      /** Pod mode: only the pod's estimated share of a GPU shared with other pods (processUsageMethod "estimate"). */
      shared: z.boolean().optional(),
      /** A MIG instance's share of its GPU: by GPM "activity" or by "slices". */
      partitionMethod: z.enum(["activity", "slices"]).optional(),
    }),
  ),
  /** The host's totals (every job, `system` and `idle`); the fields after the first three are absent from older reports. */
  totals: z.object({
    energyJoules: z.number(),
    facilityEnergyJoules: z.number(),
    emissionsGrams: z.number(),
    energyByKindJoules: z.object({ cpu: z.number(), gpu: z.number(), memory: z.number() }).optional(),
    embodiedEmissionsGrams: z.number().optional(),
    waterLiters: z.number().optional(),
    cost: z.number().optional(),
    cpuSeconds: z.number().optional(),
    averagePowerWatts: orNull.optional(),
    intensityAverageGramsPerKwh: orNull.optional(),
    /** The jobs' part of the host's totals (the rest is `system` and `idle`). */
    jobs: z
      .object({ count: z.number().int(), energyJoules: z.number(), facilityEnergyJoules: z.number(), emissionsGrams: z.number(), waterLiters: z.number(), cost: z.number() })
      .optional(),
  }),
  warnings: z.array(z.string()),
  sampler: z.object({ ticks: z.number(), skippedTicks: z.number(), failures: z.record(z.string(), z.number()), intervalMillis: z.number() }),
  exportFailures: z.record(z.string(), z.number()),
  // Added by the reports work (optional: older reports and runs without --html/--csv lack them).
  timeSeries: timeSeriesSchema.optional(),
  budget: budgetReportSchema.optional(),
  // A merged report (`powerprint report`): how many files, which runs, totals per tag.
  mergedFrom: z.number().int().optional(),
  runs: z.array(mergedRunSchema).optional(),
  groups: z.array(tagGroupSchema).optional(),
});
export type ReportV1 = z.infer<typeof reportSchemaV1>;

/**
 * Reads and validates one report file (`report`, `plan`, `run --profile`): UsageError naming the
 * file when it is not a readable v1 report. Fields newer than this schema (per-phase stats) are
 * kept, for merging; the schema checked the rest.
 */
export function readReportFile(file: string): ReportV1 & Record<string, unknown> {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new UsageError(file, `not a readable JSON report: ${oneLine(errorMessage(err))}`, { cause: err });
  }
  const parsed = reportSchemaV1.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new UsageError(file, `not a powerprint v1 report: ${issue.path.join(".") || "(top)"}: ${issue.message}`);
  }
  const jobsRaw = (raw as { jobs: Record<string, unknown>[] }).jobs;
  return { ...parsed.data, jobs: parsed.data.jobs.map((j, i) => ({ ...jobsRaw[i], ...j })) } as ReportV1 & Record<string, unknown>;
}
