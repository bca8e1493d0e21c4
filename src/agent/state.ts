/**
 * The agent's state file (--state-file): every ledger total, checkpointed atomically and restored
 * at start, so cumulative counters go on after a restart or a crash and nothing is counted twice
 * (a restored ledger starts from the checkpoint; the first tick after start is a baseline only).
 * SIGKILL loses what was measured since the last checkpoint; jobs restored from a checkpoint that
 * was not written at a clean stop say so with the attribute powerprint.restored=true.
 *
 * Writes: a temp file created exclusively (O_CREAT|O_EXCL, so never through a planted symlink) in
 * the same directory, fsync, rename over the target (rename replaces a symlink, never writes
 * through it), fsync of the directory. A file that is garbage, of another schema or version, or
 * of another host is set aside (renamed `<file>.corrupt-<time>`) with a warning: never fatal.
 */
import { closeSync, constants, fsyncSync, lstatSync, openSync, readFileSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { randomBytes } from "node:crypto";
import { z } from "zod";
import type { LedgerState } from "../core/ledger.js";
import { errorMessage } from "../errors.js";

export const STATE_SCHEMA = "powerprint.agent-state";
export const STATE_VERSION = 1;
/** Attribute a job restored from a checkpoint carries (its energy since the checkpoint, up to the restart, is lost). */
export const RESTORED_ATTRIBUTE = "powerprint.restored";

const finite = z.number().finite();
const byKind = z.object({ cpu: finite, gpu: finite, memory: finite, total: finite });
const totals = z.object({
  id: z.string().min(1),
  name: z.string(),
  attributes: z.record(z.string(), z.string()),
  energyJoules: byKind,
  facilityEnergyJoules: finite,
  emissionsGrams: finite,
  embodiedEmissionsGrams: finite,
  waterLiters: finite,
  cost: finite,
  lastPowerWatts: byKind,
  phaseEnergyJoules: z.record(z.string(), finite),
  phases: z
    .array(
      z.object({
        name: z.string(),
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
  deviceEnergyJoules: z.record(z.string(), finite),
  firstSeenMillis: finite,
  lastSeenMillis: finite,
  cpuSeconds: finite.optional(),
});
const device = z.object({
  id: z.string().min(1),
  kind: z.enum(["gpu", "cpu", "memory"]),
  model: z.string().optional(),
  source: z.string(),
  method: z.enum(["counter", "power", "model"]),
  energyJoules: finite,
  lastPowerWatts: finite,
  idleOrigin: z.string(),
  processUsageMethod: z.enum(["utilization", "equal", "device-assignment", "engine-time", "estimate"]).optional(),
  processUsageIntervals: z.record(z.string(), finite).optional(),
  status: z.enum(["ok", "lost"]),
  notes: z.array(z.string()),
  parent: z.string().optional(),
  shared: z.boolean().optional(),
  partitionMethod: z.enum(["activity", "slices"]).optional(),
});

/** What the state file holds. `host` guards against a file of another node (a shared hostPath). */
const stateSchema = z.object({
  schema: z.literal(STATE_SCHEMA),
  version: z.literal(STATE_VERSION),
  host: z.string(),
  mode: z.string(),
  savedMillis: finite,
  /** Written at a clean stop (SIGTERM): nothing measured after it was lost. */
  final: z.boolean().optional(),
  ledger: z.object({
    startMillis: finite,
    timeMillis: finite,
    jobs: z.array(totals),
    buckets: z.object({ system: totals, idle: totals }),
    devices: z.array(device),
    phases: z.record(z.string(), z.string()),
    finished: z.record(z.string(), finite),
  }),
});

export type AgentState = z.infer<typeof stateSchema>;

/** Outcome of loading the state file. */
export type LoadResult =
  | { status: "restored"; state: AgentState }
  | { status: "absent" }
  | { status: "set-aside"; reason: string; movedTo?: string };

/** Builds the state document from a ledger's serialization. */
export function buildState(ledger: LedgerState, o: { host: string; mode: string; savedMillis: number; final?: boolean }): AgentState {
  return { schema: STATE_SCHEMA, version: STATE_VERSION, host: o.host, mode: o.mode, savedMillis: o.savedMillis, ...(o.final ? { final: true } : {}), ledger } as AgentState;
}

/** The state in `text`, or why it is not ours to restore (garbage, another schema, version or host). */
function rejectReason(text: string, host: string): { reason: string } | { state: AgentState } {
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
  if (parsed.data.host !== host) return { reason: `written by host '${parsed.data.host}', this is '${host}'` };
  return { state: parsed.data };
}

/**
 * Loads the state file: restored, absent, or set aside (renamed `.corrupt-<epoch ms>`) with the
 * reason. Never throws. A symlink is not followed (set aside as foreign).
 */
export function loadState(path: string, o: { host: string; nowMillis: number }): LoadResult {
  let text: string;
  try {
    const st = lstatSync(path);
    if (st.isSymbolicLink()) return setAside(path, "is a symbolic link (never followed)", o.nowMillis);
    if (!st.isFile()) return { status: "set-aside", reason: "is not a regular file (left as it is)" };
    text = readFileSync(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return { status: "absent" };
    return { status: "set-aside", reason: `unreadable (${code ?? errorMessage(err)})` };
  }
  const r = rejectReason(text, o.host);
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
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    writeFileSync(fd, JSON.stringify(state));
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, path);
  } catch (err) {
    try {
      closeSync(fd);
    } catch {
      /* closed already */
    }
    try {
      unlinkSync(tmp);
    } catch {
      /* gone */
    }
    throw err;
  }
  // The rename is durable only once the directory entry is.
  try {
    const dfd = openSync(dirname(path), constants.O_RDONLY);
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    /* some filesystems refuse fsync on directories: the data itself is synced */
  }
}
