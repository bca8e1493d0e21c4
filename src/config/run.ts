/**
 * `powerprint run`'s typed config: its flags (declared here), validated with the environment into
 * a RunConfig before anything runs (exit 2 naming the flag or variable, nothing spawned or
 * written). Part of run's small pre-spawn bundle chunk (scripts/postbuild.mjs): it imports only
 * what validation needs; the scenario parser loads only for --sim.
 */
import type { Command } from "commander";
import type { CollectorOptions } from "../../collectors/index.js";
import { UsageError } from "../errors.js";
import type { Scenario } from "../sim/scenario.js";
import { collectorConfig } from "./collectors.js";
import { readEnvironment, type EnvSource } from "./env.js";
import { declareExportFlags, exportConfig, type ExportConfig, type ExportFlags } from "./export.js";
import { declareGridFlags, gridConfig, withScenarioZone, type GridConfig, type GridFlags } from "./grid.js";
import { resolveJobIdentity, type JobIdentity } from "./identity.js";
import { declareMeasureFlags, measureConfig, type MeasureConfig, type MeasureFlags } from "./measure.js";
import { declareBudgetFlags, declareFileOutputFlags, outputsConfig, type OutputFlags, type OutputsConfig } from "./outputs.js";
import { declareWorkFlags, workConfig, type WorkConfig, type WorkFlags } from "./serving.js";
import { declareStartFlags, startConfig, type StartConfig, type StartFlags } from "./start.js";
import { parseDurationFlag } from "./values.js";

/** `--tracking`: auto (cgroup where possible, else /proc), cgroup (required), procfs. */
export type TrackingMode = "auto" | "cgroup" | "procfs";
/** Which cgroup hierarchy to try (POWERPRINT_CGROUP_VERSION: auto, v2, v1). */
export type CgroupPrefer = "auto" | "v2" | "v1";

/** run's flags as commander parses them. */
export interface RunFlags extends MeasureFlags, GridFlags, StartFlags, ExportFlags, OutputFlags, WorkFlags {
  sim?: string;
  interval: string;
  grace: string;
  checkpointInterval: string;
  flushTimeout: string;
  tracking?: string;
}

/** Everything `run` needs, validated. */
export interface RunConfig {
  /** The command and its arguments. */
  command: string[];
  measure: MeasureConfig;
  grid: GridConfig;
  /** Carbon-aware start (--start-within, --below, --profile), when asked. */
  start?: StartConfig;
  export: ExportConfig;
  outputs: OutputsConfig;
  /** The real hardware's options (environment). */
  collectors: CollectorOptions;
  job: JobIdentity;
  /** --sim: the scenario, loaded and validated. */
  scenario?: Scenario;
  intervalMillis: number;
  graceMillis: number;
  /** Report checkpoints while running, ms. */
  checkpointMillis: number;
  /** Final exporter flush deadline after the command exits, ms. */
  flushTimeoutMillis: number;
  /** --report, resolved. */
  reportPath?: string;
  /** --work-from / --work-metric: the served units of work (docs/serving.md). */
  work?: WorkConfig;
  tracking: TrackingMode;
  cgroupPrefer: CgroupPrefer;
  quiet: boolean;
  verbose: boolean;
}

/** Registers run's own flags, then the shared ones (measure, grid, carbon-aware start, export, outputs, budget, serving). */
export function declareRunFlags(cmd: Command): Command {
  cmd
    .option("--sim <scenario>", "measure on the simulated devices of SCENARIO (JSON or YAML) instead of the real hardware")
    .option("--interval <duration>", "sampling interval, e.g. 500ms, 1s, 5s", "1s")
    .option("--grace <duration>", "after relaying SIGINT/SIGTERM/SIGHUP, SIGKILL every process of the job still alive after this time", "10s")
    .option("--checkpoint-interval <duration>", "with --report: rewrite the report (marked \"complete\": false) this often while the command runs", "30s")
    .option("--flush-timeout <duration>", "after the command exits, give up on exporters that have not flushed within this time (counted and said)", "2s")
    // No commander default: its "(default: ...)" tail would follow "procfs" and read as its default.
    .option("--tracking <how>", "how the job's processes are found: auto, the default (a cgroup of its own where powerprint can create one, else /proc); cgroup (required: exit 2 when impossible); or procfs (/proc only)");
  declareMeasureFlags(cmd);
  declareGridFlags(cmd);
  declareStartFlags(cmd);
  declareExportFlags(cmd);
  declareFileOutputFlags(cmd);
  declareBudgetFlags(cmd);
  declareWorkFlags(cmd);
  return cmd;
}

/** Validates `--tracking` (exit 2 naming the flag). */
export function parseTracking(value: unknown): TrackingMode {
  const v = value === undefined ? "auto" : String(value);
  if (v === "auto" || v === "cgroup" || v === "procfs") return v;
  throw new UsageError("--tracking", `'${v}' is not one of auto, cgroup, procfs (auto: a cgroup of the job's own where powerprint can create one, else /proc)`);
}

/** Validates POWERPRINT_CGROUP_VERSION (exit 2 naming the variable). */
export function parseCgroupPrefer(value: string | undefined): CgroupPrefer {
  if (value === undefined || value === "auto") return "auto";
  if (value === "v2" || value === "v1") return value;
  throw new UsageError("POWERPRINT_CGROUP_VERSION", `'${value}' is not one of auto, v2, v1`);
}

/** Validates run's command line and environment into a RunConfig (UsageError naming the flag or variable). */
export async function runConfig(command: string[], flags: RunFlags, source: EnvSource): Promise<RunConfig> {
  if (command.length === 0) throw new UsageError("command", "missing: put the command after --, e.g. powerprint run -- python train.py");
  if (command[0].trim() === "") throw new UsageError("command", "the command name is empty: put the command after --, e.g. powerprint run -- python train.py");
  const env = readEnvironment(source);
  const measure = measureConfig(flags);
  const tracking = parseTracking(flags.tracking);
  const cgroupPrefer = parseCgroupPrefer(env.POWERPRINT_CGROUP_VERSION);
  const intervalMillis = parseDurationFlag(flags.interval, "--interval", 10);
  const graceMillis = parseDurationFlag(flags.grace, "--grace", 0);
  const checkpointMillis = parseDurationFlag(flags.checkpointInterval, "--checkpoint-interval", 10);
  const flushTimeoutMillis = parseDurationFlag(flags.flushTimeout, "--flush-timeout", 0);
  const collectors = collectorConfig(env);
  const work = workConfig(flags);
  // The report module loads only for --report (run's pre-spawn chunk stays small).
  const reportPath = flags.report !== undefined ? (await import("../../exporters/report-json.js")).checkReportPath(flags.report) : undefined;
  let scenario: Scenario | undefined;
  let gridFlags: GridFlags = flags;
  if (flags.sim !== undefined) {
    scenario = (await import("../sim/scenario.js")).loadScenario(flags.sim);
    gridFlags = withScenarioZone(flags, scenario, flags.sim);
  }
  const grid = gridConfig(gridFlags, env);
  const start = await startConfig(flags, grid);
  const job = resolveJobIdentity({ jobId: flags.jobId, jobName: flags.jobName, tags: flags.tag ?? [], env, command });
  const outputs = await outputsConfig(flags);
  const exports = exportConfig(flags, env);
  return {
    command,
    measure,
    grid,
    start,
    export: exports,
    outputs,
    collectors,
    job,
    scenario,
    intervalMillis,
    graceMillis,
    checkpointMillis,
    flushTimeoutMillis,
    reportPath,
    work,
    tracking,
    cgroupPrefer,
    quiet: flags.quiet === true,
    verbose: flags.verbose === true,
  };
}
