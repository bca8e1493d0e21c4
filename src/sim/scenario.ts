import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { z } from "zod";

// yaml (~100 ms and several MiB to load) is required only when a YAML scenario is read: `run`
// imports this module for --sim, and most runs have no scenario at all.
const requireYaml = (): typeof import("yaml") => createRequire(import.meta.url)("yaml") as typeof import("yaml");
import { oneLine, UsageError } from "../errors.js";
import { parseTags } from "../config/identity.js";
import type { KnownJob, LedgerOptions, ScheduledMark } from "../core/ledger.js";

/**
 * Bounds of a scenario (docs/scenarios.md): a scenario is replayed in memory, tick by tick,
 * so its size is capped where a run would take hours or gigabytes rather than failing later.
 */
export const SCENARIO_LIMITS = {
  /** 31 days. */
  maxDurationSeconds: 31 * 86_400,
  minIntervalMillis: 10,
  /** durationSeconds × 1000 / intervalMillis: a month at 1 s ticks fits, a month at 10 ms does not. */
  maxTicks: 3_000_000,
  maxDevices: 1_024,
  maxProcesses: 100_000,
  /** Points per series. */
  maxSeriesPoints: 100_000,
  /** Points of all series together (grid, cpu and gpu series of every process). */
  maxTotalSeriesPoints: 2_000_000,
  /** Linux's largest pid_max (2^22). */
  maxPid: 4_194_304,
  maxNameChars: 256,
  /** Marks (`marks`) in all. */
  maxMarks: 100_000,
  /** Tags of one job (`jobs[].tags`). */
  maxTagsPerJob: 64,
} as const;
const L = SCENARIO_LIMITS;

const point = z.tuple([z.number().min(0, "time must be >= 0 seconds").max(L.maxDurationSeconds, `time must be <= ${L.maxDurationSeconds} seconds`), z.number()]);
const series = z
  .array(point)
  .min(1, "needs at least one [seconds, value] point")
  .max(L.maxSeriesPoints, `at most ${L.maxSeriesPoints} points per series`)
  .superRefine((pts, ctx) => {
    for (let i = 1; i < pts.length; i++) {
      if (pts[i][0] < pts[i - 1][0]) ctx.addIssue({ code: "custom", message: "points must be sorted by time", path: [i, 0] });
    }
  });
const nonNegativeSeries = series.superRefine((pts, ctx) => {
  pts.forEach((p, i) => {
    if (p[1] < 0) ctx.addIssue({ code: "custom", message: "values must be >= 0", path: [i, 1] });
  });
});

/**
 * `gpu: {deviceId: series}` of a process, parsed into a prototype-free object: a device id such as
 * `constructor` or `__proto__` is an ordinary key (z.record would drop `__proto__` and a lookup of
 * a missing `constructor` would find Object.prototype's).
 */
const gpuUsage = z
  .custom<Record<string, unknown>>((v) => typeof v === "object" && v !== null && !Array.isArray(v), "must be an object of gpu device id → [seconds, value] series")
  .transform((v, ctx) => {
    const out = Object.create(null) as Record<string, z.output<typeof nonNegativeSeries>>;
    for (const key of Object.keys(v)) {
      // The descriptor, not v[key]: JSON.parse makes "__proto__" an own property, which v[key] would skip.
      const r = nonNegativeSeries.safeParse(Object.getOwnPropertyDescriptor(v, key)?.value);
      if (!r.success) {
        for (const issue of r.error.issues) ctx.addIssue({ code: "custom", message: issue.message, path: [key, ...issue.path] });
        return z.NEVER;
      }
      out[key] = r.data;
    }
    return out;
  });

const device = z
  .object({
    id: z.string().min(1).max(L.maxNameChars),
    kind: z.enum(["gpu", "cpu", "memory"], { message: "must be one of gpu, cpu, memory" }),
    model: z.string().max(L.maxNameChars).optional(),
    idleWatts: z.number().min(0, "must be >= 0 watts"),
    maxWatts: z.number().min(0, "must be >= 0 watts"),
    cores: z.number().int().positive("must be a positive number of cores").optional(),
    counter: z.boolean().default(true),
    /** Index as CUDA_VISIBLE_DEVICES names it (GPUs). */
    index: z.number().int().min(0).optional(),
    uuid: z.string().optional(),
    /** Memory devices: installed bytes. With it, the static part of memory energy is split by processes' rssBytes. */
    memoryBytes: z.number().positive("must be > 0 bytes").optional(),
  })
  .strict()
  .superRefine((d, ctx) => {
    if (d.maxWatts < d.idleWatts) ctx.addIssue({ code: "custom", message: `must be >= idleWatts (${d.idleWatts})`, path: ["maxWatts"] });
  });

const processSpec = z
  .object({
    pid: z.number().int().positive().max(L.maxPid, `must be <= ${L.maxPid} (Linux pid_max)`),
    ppid: z.number().int().min(0).max(L.maxPid, `must be <= ${L.maxPid} (Linux pid_max)`).default(1),
    name: z.string().max(L.maxNameChars).optional(),
    job: z.string().min(1).max(L.maxNameChars).optional(),
    startSeconds: z.number().min(0).default(0),
    endSeconds: z.number().min(0).optional(),
    cpu: nonNegativeSeries.optional(),
    gpu: gpuUsage.optional(),
    /** Resident memory over time, bytes (default 0). */
    rssBytes: nonNegativeSeries.optional(),
  })
  .strict();

/** A job's name and tags (attributes), as `--job-name` and `--tag` give them to a run's job. */
const jobSpec = z
  .object({
    id: z.string().min(1).max(L.maxNameChars),
    name: z.string().min(1).max(L.maxNameChars).optional(),
    tags: z
      .custom<Record<string, unknown>>((v) => typeof v === "object" && v !== null && !Array.isArray(v), "must be an object of tag → value")
      .transform((v, ctx) => {
        // Keys are user text: a prototype-free object, the --tag rules (src/config/identity.ts).
        const entries = Object.keys(v).map((k) => [k, Object.getOwnPropertyDescriptor(v, k)?.value] as const);
        if (entries.length > L.maxTagsPerJob) ctx.addIssue({ code: "custom", message: `at most ${L.maxTagsPerJob} tags` });
        for (const [k, value] of entries) if (typeof value !== "string") ctx.addIssue({ code: "custom", message: "tag values must be strings", path: [k] });
        try {
          return parseTags(entries.map(([k, value]) => `${k}=${String(value)}`));
        } catch (err) {
          ctx.addIssue({ code: "custom", message: (err as Error).message.replace(/^--tag: /, "") });
          return z.NEVER;
        }
      })
      .optional(),
  })
  .strict();

/** A training-loop mark of a scenario job at a scenario time (as a marks-file line with `timeMillis`). */
const markSpec = z
  .object({
    job: z.string().min(1).max(L.maxNameChars),
    atSeconds: z.number().min(0, "must be >= 0 seconds").max(L.maxDurationSeconds, `must be <= ${L.maxDurationSeconds} seconds`),
    phase: z.string().min(1).max(64, "at most 64 characters"),
    step: z.number().int().nonnegative().optional(),
    samples: z.number().int().nonnegative().optional(),
    tokens: z.number().int().nonnegative().optional(),
  })
  .strict();

/** Zod schema of a scenario file (DESIGN.md "Simulated hardware"). */
export const scenarioSchema = z
  .object({
    name: z.string().default("scenario"),
    /** `simulate`'s virtual start (ISO 8601; default 2026-01-01T00:00:00Z); run/agent --sim start when they start. */
    startTime: z
      .string()
      .max(64)
      .refine((t) => /^\d{4}-\d{2}-\d{2}T/.test(t) && Number.isFinite(Date.parse(t)), "must be an ISO 8601 date-time, e.g. 2026-01-01T00:00:00Z")
      .optional(),
    durationSeconds: z.number().positive("must be > 0 seconds").max(L.maxDurationSeconds, `must be <= ${L.maxDurationSeconds} seconds (31 days)`),
    intervalMillis: z.number().int().min(L.minIntervalMillis, `must be >= ${L.minIntervalMillis} ms`).max(3_600_000, "must be <= 3600000 ms (1 h)").default(1000),
    pue: z.number().min(1, "must be >= 1 (facility energy cannot be below IT energy)").optional(),
    grid: z
      .object({ zone: z.string().optional(), intensity: nonNegativeSeries.optional() })
      .strict()
      .optional(),
    devices: z.array(device).min(1, "needs at least one device").max(L.maxDevices, `at most ${L.maxDevices} devices`),
    processes: z.array(processSpec).max(L.maxProcesses, `at most ${L.maxProcesses} processes`).default([]),
    /** Names and tags of the scenario's jobs (as --job-name and --tag give a run's). */
    jobs: z.array(jobSpec).max(L.maxProcesses, `at most ${L.maxProcesses} jobs`).default([]),
    /** Training-loop marks of the scenario's jobs, each at its scenario time. */
    marks: z.array(markSpec).max(L.maxMarks, `at most ${L.maxMarks} marks`).default([]),
  })
  .strict()
  .superRefine((s, ctx) => {
    const ticks = Math.ceil((s.durationSeconds * 1000) / s.intervalMillis);
    if (ticks > L.maxTicks) {
      ctx.addIssue({
        code: "custom",
        message: `${s.durationSeconds} s at ${s.intervalMillis} ms is ${ticks} ticks; at most ${L.maxTicks} (raise intervalMillis or shorten the scenario)`,
        path: ["intervalMillis"],
      });
    }
    let points = s.grid?.intensity?.length ?? 0;
    for (const p of s.processes) {
      points += p.cpu?.length ?? 0;
      for (const k of Object.keys(p.gpu ?? {})) points += p.gpu![k].length;
    }
    if (points > L.maxTotalSeriesPoints) {
      ctx.addIssue({ code: "custom", message: `${points} series points in all; at most ${L.maxTotalSeriesPoints}`, path: ["processes"] });
    }
    const ids = new Set<string>();
    s.devices.forEach((d, i) => {
      if (ids.has(d.id)) ctx.addIssue({ code: "custom", message: `duplicate device id '${d.id}'`, path: ["devices", i, "id"] });
      ids.add(d.id);
      if (d.kind === "cpu" && d.cores === undefined) ctx.addIssue({ code: "custom", message: "cpu devices need 'cores'", path: ["devices", i, "cores"] });
      if (d.kind !== "memory" && d.memoryBytes !== undefined) ctx.addIssue({ code: "custom", message: "applies to memory devices only", path: ["devices", i, "memoryBytes"] });
    });
    const jobIds = new Set(s.processes.map((p) => p.job).filter((j): j is string => j !== undefined));
    const described = new Set<string>();
    s.jobs.forEach((j, i) => {
      if (described.has(j.id)) ctx.addIssue({ code: "custom", message: `job '${j.id}' is described twice`, path: ["jobs", i, "id"] });
      described.add(j.id);
      if (!jobIds.has(j.id)) ctx.addIssue({ code: "custom", message: `no process starts job '${j.id}'`, path: ["jobs", i, "id"] });
    });
    s.marks.forEach((m, i) => {
      if (!jobIds.has(m.job)) ctx.addIssue({ code: "custom", message: `no process starts job '${m.job}'`, path: ["marks", i, "job"] });
      if (/[\u0000-\u001f\u007f]/.test(m.phase)) ctx.addIssue({ code: "custom", message: "no control characters", path: ["marks", i, "phase"] });
    });
    const pids = new Set<number>();
    s.processes.forEach((p, i) => {
      if (pids.has(p.pid)) ctx.addIssue({ code: "custom", message: `duplicate pid ${p.pid}`, path: ["processes", i, "pid"] });
      pids.add(p.pid);
      if (p.endSeconds !== undefined && p.endSeconds < p.startSeconds)
        ctx.addIssue({ code: "custom", message: "must be >= startSeconds", path: ["processes", i, "endSeconds"] });
      for (const gpuId of Object.keys(p.gpu ?? {})) {
        const d = s.devices.find((x) => x.id === gpuId);
        if (!d || d.kind !== "gpu")
          ctx.addIssue({ code: "custom", message: `names '${gpuId}', which is not a gpu device of this scenario`, path: ["processes", i, "gpu", gpuId] });
      }
    });
  });

export type Scenario = z.output<typeof scenarioSchema>;
export type ScenarioDevice = Scenario["devices"][number];
export type ScenarioProcess = Scenario["processes"][number];

/** Formats a zod path as `devices[1].idleWatts`. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = "";
  for (const p of path) out += typeof p === "number" ? `[${p}]` : out === "" ? String(p) : `.${String(p)}`;
  return out || "(scenario)";
}

/** Validates a parsed scenario object; throws UsageError naming the first bad field. */
export function validateScenario(data: unknown, origin = "scenario"): Scenario {
  // Refuse a huge process list before zod parses every element of it (10^6 objects take seconds and
  // hundreds of MB to parse only to be refused).
  const processes = typeof data === "object" && data !== null ? (data as { processes?: unknown }).processes : undefined;
  if (Array.isArray(processes) && processes.length > L.maxProcesses) {
    throw new UsageError(`${origin}: processes`, `${processes.length} processes; at most ${L.maxProcesses} (see docs/scenarios.md)`);
  }
  const r = scenarioSchema.safeParse(data);
  if (!r.success) {
    const issue = r.error.issues[0];
    const field = formatPath(issue.path);
    throw new UsageError(`${origin}: ${field}`, `${issue.message}${issue.code === "unrecognized_keys" ? "" : ""} (see docs/scenarios.md)`);
  }
  return r.data;
}

/** Reads and validates a scenario file (JSON, or YAML for .yaml/.yml). */
export function loadScenario(path: string): Scenario {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new UsageError("scenario", `cannot read '${path}': ${(err as NodeJS.ErrnoException).code ?? String(err)}; give the path of a scenario file`, { cause: err });
  }
  let data: unknown;
  try {
    data = /\.ya?ml$/i.test(path) ? requireYaml().parse(text) : JSON.parse(text);
  } catch (err) {
    // YAML's message carries a code frame after its first line; JSON's quotes the text, which may
    // hold a newline: escaped, so the message stays whole on one line.
    const yaml = /\.ya?ml$/i.test(path);
    const message = (err as Error).message;
    throw new UsageError(`scenario ${path}`, `malformed ${yaml ? "YAML" : "JSON"}: ${yaml ? message.split("\n")[0] : oneLine(message)}`, { cause: err });
  }
  return validateScenario(data, path);
}
/**
 * What a scenario tells the ledger beyond its devices and processes: its jobs' names and tags, and
 * its marks at their times on the scenario's clock (`epochMillis`: simulate's virtual epoch, or the
 * start of `run --sim` / `agent --sim`). Every path that runs a scenario gives these to its ledger,
 * so a scenario job has the same attributes and phases whichever path measured it.
 */
export function scenarioLedgerOptions(scenario: Scenario, epochMillis: number): Pick<LedgerOptions, "knownJobs" | "scheduledMarks"> {
  const knownJobs = new Map<string, KnownJob>(scenario.jobs.map((j) => [j.id, { ...(j.name !== undefined ? { name: j.name } : {}), attributes: j.tags ?? {} }]));
  const scheduledMarks: ScheduledMark[] = scenario.marks.map((m) => ({
    jobId: m.job,
    phase: m.phase,
    atMillis: epochMillis + m.atSeconds * 1000,
    ...(m.step !== undefined ? { step: m.step } : {}),
    ...(m.samples !== undefined ? { samples: m.samples } : {}),
    ...(m.tokens !== undefined ? { tokens: m.tokens } : {}),
  }));
  return { ...(knownJobs.size ? { knownJobs } : {}), ...(scheduledMarks.length ? { scheduledMarks } : {}) };
}
