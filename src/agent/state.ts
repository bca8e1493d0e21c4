/**
 * The agent's state file (--state-file): every ledger total, checkpointed atomically and restored
 * at start, so cumulative counters go on after a restart or a crash and nothing is counted twice
 * (a restored ledger starts from the checkpoint; the first tick after start is a baseline only).
 * SIGKILL loses what was measured since the last checkpoint; jobs restored from a checkpoint that
 * was not written at a clean stop say so with the attribute powerprint.restored=true.
 *
 * Writes: atomic (src/files.ts writeFileAtomic: a temp file created exclusively beside it, never
 * through a planted symlink, fsync, rename over the target, fsync of the directory). A file that is garbage, of another schema or version, or
 * of another host is set aside (renamed `<file>.corrupt-<time>`) with a warning: never fatal.
 */
import { lstatSync, readFileSync, renameSync } from "node:fs";
import { z } from "zod";
import type { LedgerState } from "../core/ledger.js";
import { errorMessage } from "../errors.js";
import { writeFileAtomic } from "../files.js";
import { MAX_ATTRIBUTE_KEY_CHARS, MAX_ATTRIBUTE_VALUE_CHARS, MAX_ATTRIBUTES_PER_JOB, MAX_JOB_ID_CHARS, MAX_JOB_NAME_CHARS } from "../core/bounds.js";

export const STATE_SCHEMA = "powerprint.agent-state";
export const STATE_VERSION = 1;
/** Attribute a job restored from a checkpoint carries (its energy since the checkpoint, up to the restart, is lost). */
export const RESTORED_ATTRIBUTE = "powerprint.restored";

/**
 * Restored figures are checked against what a real agent can have counted: every total is ≥ 0 and
 * below MAX_TOTAL (10^15: a 10 kW node for 3,000 years in joules; far beyond any real total);
 * times are epoch milliseconds before the year 5000. A value outside (a hand edit, a bug) sets the
 * whole file aside as corrupt: a counter that goes back or jumps to 1e308 would poison every rate.
 */
export const MAX_TOTAL = 1e15;
const MAX_EPOCH_MILLIS = 95_617_584_000_000;
/** Text bounds of the file: those of src/core/bounds.ts (the agent writes nothing longer). */
const id = z.string().min(1).max(MAX_JOB_ID_CHARS);
const text = (max: number) => z.string().max(max);
const finite = z.number().finite().min(0).max(MAX_TOTAL);
const epochMillis = z.number().finite().min(0).max(MAX_EPOCH_MILLIS);
const attributes = z
  .record(text(MAX_ATTRIBUTE_KEY_CHARS), text(MAX_ATTRIBUTE_VALUE_CHARS))
  .refine((a) => Object.keys(a).length <= MAX_ATTRIBUTES_PER_JOB, { message: `more than ${MAX_ATTRIBUTES_PER_JOB} attributes` });
/** Phase names are at most 64 characters (marks), device ids are short; 256 leaves room. */
const key = text(256);
const byKind = z.object({ cpu: finite, gpu: finite, memory: finite, total: finite });
/** A job's serving figures (--work-from, src/core/serving.ts): counts and joules bounded like every total. */
const nullableFinite = finite.nullable();
const servingFigures = z.object({
  promptTokens: nullableFinite,
  generatedTokens: nullableFinite,
  requests: nullableFinite,
  inferences: nullableFinite.optional(),
  energyJoules: finite,
  activeEnergyJoules: finite,
  idleEnergyJoules: finite,
  prefillEnergyJoules: nullableFinite,
  decodeEnergyJoules: nullableFinite,
  emissionsGrams: finite,
  joulesPerGeneratedToken: nullableFinite,
  joulesPerRequest: nullableFinite,
  emissionsGramsPerThousandTokens: nullableFinite,
  // A derived ratio (recomputed on restore); absent from state files written before it existed.
  idleEnergyShare: nullableFinite.default(null),
});
const serving = z.object({
  engine: text(64),
  source: text(2048),
  activeFrom: z.enum(["running-gauge", "counter-increases"]),
  prefillDecode: z.enum(["engine-times", "none"]),
  restarts: finite,
  inconsistentReadings: finite,
  total: servingFigures,
  models: z.array(servingFigures.extend({ model: text(256) })).max(64),
});
const totals = z.object({
  id,
  name: text(MAX_JOB_NAME_CHARS),
  attributes,
  energyJoules: byKind,
  facilityEnergyJoules: finite,
  emissionsGrams: finite,
  embodiedEmissionsGrams: finite,
  waterLiters: finite,
  cost: finite,
  lastPowerWatts: byKind,
  phaseEnergyJoules: z.record(key, finite),
  phases: z
    .array(
      z.object({
        name: key,
        energyJoules: finite,
        emissionsGrams: finite,
        durationSeconds: finite,
        steps: finite.optional(),
        samples: finite.optional(),
        tokens: finite.optional(),
      }),
    )
    .optional(),
  work: z.object({ step: finite.optional(), samples: finite.optional(), tokens: finite.optional() }).optional(),
  deviceEnergyJoules: z.record(key, finite),
  firstSeenMillis: epochMillis,
  lastSeenMillis: epochMillis,
  durationMillis: finite.optional(),
  cpuSeconds: finite.optional(),
  serving: serving.optional(),
});
const device = z.object({
  id: key.min(1),
  kind: z.enum(["gpu", "cpu", "memory"]),
  model: key.optional(),
  source: key,
  method: z.enum(["counter", "power", "model"]),
  energyJoules: finite,
  lastPowerWatts: finite,
  idleOrigin: key,
  processUsageMethod: z.enum(["utilization", "equal", "device-assignment", "engine-time", "estimate"]).optional(),
  processUsageIntervals: z.record(key, finite).optional(),
  status: z.enum(["ok", "lost"]),
  notes: z.array(text(1024)).max(64),
  parent: key.optional(),
  shared: z.boolean().optional(),
  partitionMethod: z.enum(["activity", "slices"]).optional(),
});

/**
 * Where accounting stood at the checkpoint, for counting the downtime after a restart (Agent):
 * the boot it was read in (counters restart with the kernel), when (the wall clock of the last
 * sample), the host's CPU counters, each energy counter's value, and each pod cgroup's CPU
 * counter with its job (node mode).
 */
const resume = z.object({
  bootId: key.optional(),
  wallMillis: epochMillis,
  hostBusyCpuSeconds: finite,
  hostTotalCpuSeconds: finite,
  deviceCounters: z.record(key, z.object({ energyJoules: finite, counterRangeJoules: finite.optional() })),
  podCpuSeconds: z
    .record(key, z.object({ jobId: id, seconds: finite }))
    .refine((r) => Object.keys(r).length <= 100_000, { message: "more than 100,000 pods" })
    .optional(),
});

/** What the state file holds. `host` guards against a file of another node (a shared hostPath). */
const stateSchema = z.object({
  schema: z.literal(STATE_SCHEMA),
  version: z.literal(STATE_VERSION),
  host: key,
  mode: key,
  savedMillis: epochMillis,
  /** Written at a clean stop (SIGTERM): nothing measured after it was lost. */
  final: z.boolean().optional(),
  /** Where accounting stood (the downtime after a restart is counted from it where counters allow). */
  resume: resume.optional(),
  ledger: z.object({
    startMillis: epochMillis,
    timeMillis: epochMillis,
    jobs: z.array(totals),
    buckets: z.object({ system: totals, idle: totals }),
    devices: z.array(device).max(1024),
    phases: z.record(id, key),
    finished: z.record(id, epochMillis),
  }),
});

export type AgentState = z.infer<typeof stateSchema>;

/** Outcome of loading the state file. */
export type LoadResult =
  | { status: "restored"; state: AgentState }
  | { status: "absent" }
  | { status: "set-aside"; reason: string; movedTo?: string };

/** Builds the state document from a ledger's serialization. */
export function buildState(ledger: LedgerState, o: { host: string; mode: string; savedMillis: number; final?: boolean; resume?: ResumeState }): AgentState {
  return { schema: STATE_SCHEMA, version: STATE_VERSION, host: o.host, mode: o.mode, savedMillis: o.savedMillis, ...(o.final ? { final: true } : {}), ...(o.resume && { resume: o.resume }), ledger } as AgentState;
}

/** AgentState's resume point. */
export type ResumeState = z.infer<typeof resume>;

/** Who reads the file: a file of another host or --mode is not restored. */
export interface StateOwner {
  host: string;
  /** The agent's mode (pod, node, selector, sim); absent: any. */
  mode?: string;
}

/**
 * The largest state file read, bytes (32 MiB): 20,000 jobs of bounded text take ~15 MiB; parsing
 * a larger file would take the agent past its memory limit before the first sample.
 */
export const MAX_STATE_FILE_BYTES = 32 * 1024 * 1024;

/** The state in `text`, or why it is not ours to restore (garbage, another schema, version, host or mode). */
function rejectReason(text: string, owner: StateOwner): { reason: string } | { state: AgentState } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return { reason: `not JSON (${errorMessage(err).split("\n")[0]})` };
  }
  const head = json as { schema?: unknown; version?: unknown; host?: unknown } | null;
  if (!head || typeof head !== "object") return { reason: "not a powerprint state document" };
  if (head.schema !== STATE_SCHEMA) return { reason: `schema ${JSON.stringify(head.schema)} is not ${STATE_SCHEMA}` };
  if (head.version !== STATE_VERSION) return { reason: `version ${JSON.stringify(head.version)} is not ${STATE_VERSION}` };
  const parsed = stateSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { reason: `invalid at ${issue.path.join(".") || "(root)"}: ${issue.message}` };
  }
  if (parsed.data.host !== owner.host) return { reason: `written by host '${parsed.data.host}', this is '${owner.host}'` };
  if (owner.mode !== undefined && parsed.data.mode !== owner.mode) return { reason: `written by --mode ${parsed.data.mode}, this agent runs --mode ${owner.mode}` };
  return { state: parsed.data };
}

/**
 * Loads the state file: restored, absent, or set aside (renamed `.corrupt-<epoch ms>`) with the
 * reason. Never throws. A symlink is not followed (set aside as foreign).
 */
export function loadState(path: string, o: StateOwner & { nowMillis: number }): LoadResult {
  let text: string;
  try {
    const st = lstatSync(path);
    if (st.isSymbolicLink()) return setAside(path, "is a symbolic link (never followed)", o.nowMillis);
    if (!st.isFile()) return { status: "set-aside", reason: "is not a regular file (left as it is)" };
    if (st.size > MAX_STATE_FILE_BYTES) return setAside(path, `is ${st.size} bytes, more than the ${MAX_STATE_FILE_BYTES} a state file can hold`, o.nowMillis);
    text = readFileSync(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return { status: "absent" };
    return { status: "set-aside", reason: `unreadable (${code ?? errorMessage(err)})` };
  }
  const r = rejectReason(text, o);
  if ("state" in r) return { status: "restored", state: r.state };
  return setAside(path, r.reason, o.nowMillis);
}

function setAside(path: string, reason: string, nowMillis: number): LoadResult {
  const movedTo = `${path}.corrupt-${Math.floor(nowMillis)}`;
  try {
    renameSync(path, movedTo);
    return { status: "set-aside", reason, movedTo };
  } catch (err) {
    return { status: "set-aside", reason: `${reason}; could not rename it (${errorMessage(err)})` };
  }
}

/**
 * Writes the state atomically (see the file comment). Throws on I/O errors (disk full, read-only):
 * the caller warns and measures on; the previous checkpoint stays intact.
 */
export function writeStateAtomic(path: string, state: AgentState): void {
  writeFileAtomic(path, JSON.stringify(state), { mode: 0o600 });
}
