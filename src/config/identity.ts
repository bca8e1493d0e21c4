/**
 * Who a job is: its id, name and user attributes, from flags, else from the scheduler that
 * launched powerprint, else generated. Every node of a multi-node job must resolve the same id
 * (a flag or a scheduler variable), so the backend can sum their series by job id.
 */
import { randomBytes } from "node:crypto";
import { basename } from "node:path";
import { UsageError } from "../errors.js";
import { RESERVED_JOB_ATTRIBUTE_KEYS } from "../semconv.js";
import { readEnvironment, type EnvSource } from "./env.js";
import { nonBlank } from "./values.js";

/** Where a job's id came from. */
export type JobIdentityOrigin = "flag" | "SLURM_JOB_ID" | "TORCHELASTIC_RUN_ID" | "k8s-downward-api" | "generated";

/** A job's identity as exporters and reports see it. */
export interface JobIdentity {
  id: string;
  name: string;
  /** User attributes from --tag key=value (exported on every per-job data point). */
  attributes: Record<string, string>;
  origin: JobIdentityOrigin;
}

/** Inputs to resolveJobIdentity. */
export interface JobIdentityInput {
  jobId?: string;
  jobName?: string;
  /** Raw --tag values, "key=value" each. */
  tags: string[];
  /** The environment (schedulers' variables); read through src/config/env.ts. */
  env: EnvSource;
  /** The wrapped command (run mode): names a generated job. */
  command?: string[];
  /** Random id source (tests); default 6 random bytes as hex. */
  randomId?: () => string;
}

/** Attribute keys: OTel-style (letters, digits, `_`, `.`, `-`; starting with a letter or `_`). */
const TAG_KEY = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
const MAX_TAG_VALUE_LENGTH = 256;
const MAX_NAME_LENGTH = 64;

/**
 * Parses repeated `--tag key=value` flags into attributes.
 * Throws UsageError("--tag") for a missing `=`, a bad or reserved key, a duplicate key, or an
 * over-long value. Values may contain `=` (only the first one splits).
 */
export function parseTags(tags: readonly string[]): Record<string, string> {
  // Keys are user text: prototype-free, so --tag constructor=x or __proto__=x is an ordinary key.
  const attributes = Object.create(null) as Record<string, string>;
  for (const tag of tags) {
    const eq = tag.indexOf("=");
    if (eq < 0) throw new UsageError("--tag", `'${tag}' is not key=value (e.g. --tag team=nlp)`);
    const key = tag.slice(0, eq).trim();
    const value = tag.slice(eq + 1).trim();
    if (!TAG_KEY.test(key)) {
      throw new UsageError("--tag", `key '${key}' must start with a letter or _ and hold only letters, digits, _ . -`);
    }
    if (RESERVED_JOB_ATTRIBUTE_KEYS.has(key)) {
      throw new UsageError("--tag", `key '${key}' is set by powerprint itself; use --job-id/--job-name or another key`);
    }
    if (Object.hasOwn(attributes, key)) throw new UsageError("--tag", `key '${key}' is given twice`);
    if (value.length > MAX_TAG_VALUE_LENGTH) {
      throw new UsageError("--tag", `value of '${key}' is longer than ${MAX_TAG_VALUE_LENGTH} characters`);
    }
    attributes[key] = value;
  }
  return attributes;
}

/** "python train.py --lr 3e-4" from ["/usr/bin/python", "train.py", "--lr", "3e-4"], at most 64 characters. */
function nameFromCommand(command: readonly string[] | undefined): string | undefined {
  if (!command || command.length === 0) return undefined;
  const [head, ...rest] = command;
  const text = [basename(head), ...rest].join(" ");
  return text.length > MAX_NAME_LENGTH ? `${text.slice(0, MAX_NAME_LENGTH - 1)}…` : text;
}

interface SchedulerIdentity {
  id: string;
  name?: string;
  origin: JobIdentityOrigin;
}

/**
 * The job a scheduler launched us in, from its environment:
 * - Slurm: SLURM_JOB_ID (array tasks: SLURM_ARRAY_JOB_ID_SLURM_ARRAY_TASK_ID, Slurm's notation), SLURM_JOB_NAME;
 * - torchelastic/torchrun: TORCHELASTIC_RUN_ID (the rendezvous id; "none" is ignored);
 * - Kubernetes downward API (env set in the pod spec): K8S_NAMESPACE_NAME (or K8S_POD_NAMESPACE),
 *   K8S_JOB_NAME (label batch.kubernetes.io/job-name: shared by the Job's pods), K8S_POD_NAME.
 *   id = namespace/job-name, else namespace/pod-name.
 */
export function schedulerIdentity(source: EnvSource): SchedulerIdentity | undefined {
  const env = readEnvironment(source);
  const slurmJob = env.SLURM_JOB_ID;
  if (slurmJob) {
    const arrayJob = env.SLURM_ARRAY_JOB_ID;
    const arrayTask = env.SLURM_ARRAY_TASK_ID;
    const id = arrayJob && arrayTask ? `${arrayJob}_${arrayTask}` : slurmJob;
    return { id, name: env.SLURM_JOB_NAME, origin: "SLURM_JOB_ID" };
  }
  const runId = env.TORCHELASTIC_RUN_ID;
  if (runId && runId !== "none") return { id: runId, origin: "TORCHELASTIC_RUN_ID" };
  const pod = env.K8S_POD_NAME;
  const k8sJob = env.K8S_JOB_NAME;
  if (pod || k8sJob) {
    const namespace = env.K8S_NAMESPACE_NAME ?? env.K8S_POD_NAMESPACE ?? "default";
    const name = (k8sJob ?? pod) as string;
    return { id: `${namespace}/${name}`, name, origin: "k8s-downward-api" };
  }
  return undefined;
}

/**
 * Resolves the job identity: --job-id, else a scheduler's id (see schedulerIdentity), else a
 * generated "pp-<12 hex>" (unique per run: multi-node jobs must pass --job-id or run under a
 * scheduler). The name: --job-name, else the scheduler's, else the wrapped command, else the id.
 * Tags become attributes (parseTags). Throws UsageError for an empty --job-id/--job-name or a bad tag.
 */
export function resolveJobIdentity(input: JobIdentityInput): JobIdentity {
  if (input.jobId !== undefined && !nonBlank(input.jobId)) throw new UsageError("--job-id", "must not be empty");
  if (input.jobName !== undefined && !nonBlank(input.jobName)) throw new UsageError("--job-name", "must not be empty");
  const attributes = parseTags(input.tags);
  const scheduler = schedulerIdentity(input.env);
  const flagId = nonBlank(input.jobId);
  let id: string;
  let origin: JobIdentityOrigin;
  if (flagId) {
    id = flagId;
    origin = "flag";
  } else if (scheduler) {
    id = scheduler.id;
    origin = scheduler.origin;
  } else {
    id = `pp-${(input.randomId ?? (() => randomBytes(6).toString("hex")))()}`;
    origin = "generated";
  }
  const name =
    nonBlank(input.jobName) ?? (origin === "flag" ? undefined : scheduler?.name) ?? nameFromCommand(input.command) ?? id;
  return { id, name, attributes, origin };
}
