/**
 * `powerprint agent`'s typed config: its own flags, the flags of every registered mode
 * (src/agent/modes), and the shared measure/grid/export flags, validated with the environment into
 * an AgentConfig before anything starts (exit 2 naming the flag or variable). `probe --agent`
 * declares and parses the modes' flags the same way (declareModeFlags, modeConfigs).
 */
import { accessSync, constants as fsConstants, existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { Option, type Command } from "commander";
import type { CollectorOptions } from "../../collectors/index.js";
import { checkReportPath } from "../../exporters/report-json.js";
import { agentMode, agentModes, flagKey, flagName, modeNames, type AgentMode, type ModeParseContext } from "../agent/modes/index.js";
import { DEFAULT_MAX_JOBS } from "../agent/lifecycle.js";
import { errorMessage, UsageError } from "../errors.js";
import type { Scenario } from "../sim/scenario.js";
import { loadScenario } from "../sim/scenario.js";
import { collectorConfig } from "./collectors.js";
import { readEnvironment, type EnvSource, type Environment } from "./env.js";
import { declareExportFlags, exportConfig, type ExportConfig, type ExportFlags } from "./export.js";
import { declareGridFlags, gridConfig, withScenarioZone, type GridConfig, type GridFlags } from "./grid.js";
import { parseTags } from "./identity.js";
import { declareMeasureFlags, measureConfig, type MeasureConfig, type MeasureFlags } from "./measure.js";
import { declareWorkFlags, workConfig, type WorkConfig, type WorkFlags } from "./serving.js";
import { declareStartFlags, refuseStartFlags, type StartFlags } from "./start.js";
import { nonBlank, parseCount, parseDurationFlag, parseListenAddress, type ListenAddress } from "./values.js";

/** agent's flags as commander parses them (the modes' own flags are read by their parse()). */
export interface AgentFlags extends MeasureFlags, GridFlags, StartFlags, ExportFlags, WorkFlags {
  mode: string;
  sim?: string;
  interval: string;
  procRoot: string;
  sysRoot: string;
  nodeName?: string;
  listen?: string;
  stateFile?: string;
  checkpointInterval: string;
  retention: string;
  maxFinishedJobs: string;
  maxJobs: string;
  flushTimeout: string;
  [modeFlag: string]: unknown;
}

/** A mode and its validated config. */
export interface ModeChoice {
  mode: AgentMode;
  config: unknown;
}

/** Everything `agent` needs, validated. */
export interface AgentConfig {
  /** The job-discovery mode (--mode) and its config. */
  mode: ModeChoice;
  /** Real job discovery is on (off with --sim and no explicit --mode). */
  realJobs: boolean;
  scenario?: Scenario;
  measure: MeasureConfig;
  grid: GridConfig;
  export: ExportConfig;
  /** The real hardware's options (environment; --sys-root unless POWERPRINT_SYSFS_ROOT). */
  collectors: CollectorOptions;
  intervalMillis: number;
  procRoot: string;
  sysRoot: string;
  /** --node-name, else NODE_NAME: the state file's host (else the hostname) and node mode's kubelet. */
  nodeName?: string;
  listen?: ListenAddress;
  stateFile?: string;
  checkpointIntervalMillis: number;
  retentionMillis: number;
  maxFinishedJobs: number;
  /** --max-jobs: jobs held at most, live and finished (src/agent/lifecycle.ts). */
  maxJobs: number;
  flushTimeoutMillis: number;
  reportPath?: string;
  /** --tag attributes, on every discovered job. */
  tags: Record<string, string>;
  /** --job-id / --job-name (pod mode names its job with them). */
  identity: { jobId?: string; jobName?: string };
  /** --work-from / --work-metric (modes that take it): the served units of work (docs/serving.md). */
  work?: WorkConfig;
  quiet: boolean;
  verbose: boolean;
}

/** The flags of `agent` and `probe` that say where to look: --proc-root, --sys-root, --node-name. */
export function declareRootFlags(cmd: Command, o: { probe?: boolean } = {}): Command {
  return cmd
    .option("--proc-root <dir>", o.probe ? "agent modes: directory holding proc/" : "directory holding the proc/ to read (a DaemonSet mounts the host's /proc at /host/proc: --proc-root /host)", "/")
    .option("--sys-root <dir>", o.probe ? "agent modes: directory holding sys/" : "directory holding the sys/ to read (RAPL, hwmon, cgroups; e.g. /host)", "/")
    .option("--node-name <name>", "this node's name (default NODE_NAME): node mode's kubelet, the state file's host");
}

/** Declares every registered mode's flags (`probe`: only those marked for it). */
export function declareModeFlags(cmd: Command, o: { probe?: boolean } = {}): Command {
  for (const mode of agentModes()) {
    for (const flag of mode.flags) {
      if (o.probe && !flag.probe) continue;
      cmd.addOption(new Option(flag.flags, flag.description).default(flag.default));
    }
  }
  return cmd;
}

/** Registers agent's flags: its own, the modes', then the shared ones (measure, grid, export, serving). */
export function declareAgentFlags(cmd: Command): Command {
  cmd
    .addOption(new Option("--mode <mode>", `job discovery: ${agentModes().map((m) => `${m.name} (${m.summary})`).join(", ")}`).default("pod"))
    .option("--sim <scenario>", "simulated devices, grid and process table of SCENARIO (its jobs are discovered like real ones)")
    .option("--interval <duration>", "sampling interval, e.g. 500ms, 1s, 5s", "1s");
  declareRootFlags(cmd);
  cmd
    .option("--listen <host:port>", "serve /healthz, /readyz and /jobs here (e.g. :8080; default: not served)")
    .option("--state-file <path>", "checkpoint every ledger here and restore it at start (an emptyDir or hostPath file)")
    .option("--checkpoint-interval <duration>", "how often the state file is written", "30s")
    .option("--retention <duration>", "how long a finished job's final totals keep being exported before it is dropped", "5m")
    .option("--max-finished-jobs <n>", "at most this many finished jobs are retained (the oldest go first)", "10000")
    .option("--max-jobs <n>", "at most this many jobs held, live and finished: past it the oldest finished go first; new jobs beyond it are not tracked (said, counted)", String(DEFAULT_MAX_JOBS))
    .option("--flush-timeout <duration>", "at SIGTERM, give up on exporters that have not flushed within this time (counted and said; as run's)", "10s");
  declareModeFlags(cmd);
  declareMeasureFlags(cmd);
  declareGridFlags(cmd);
  // Declared to be refused in one line, not offered: the agent delays no start.
  declareStartFlags(cmd, { hidden: true });
  declareExportFlags(cmd);
  declareWorkFlags(cmd);
  return cmd;
}

/** --proc-root: a directory holding a readable proc/ (resolved). */
export function checkProcRoot(dir: string): string {
  const root = resolve(dir);
  try {
    readdirSync(join(root, "proc"));
    accessSync(join(root, "proc", "stat"), fsConstants.R_OK);
  } catch (err) {
    throw new UsageError("--proc-root", `cannot read ${join(root, "proc")} (${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}): give the directory holding proc/, e.g. --proc-root /host for the host's /proc mounted at /host/proc`);
  }
  return root;
}

function checkStateFile(path: string): string {
  const full = resolve(path);
  const dir = dirname(full);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError("--state-file", `directory ${dir} does not exist (mount an emptyDir or hostPath there)`);
  try {
    accessSync(dir, fsConstants.W_OK);
  } catch {
    throw new UsageError("--state-file", `directory ${dir} is not writable`);
  }
  return full;
}

/** The registered mode called `name` (UsageError naming --mode otherwise). */
export function modeNamed(name: string): AgentMode {
  const mode = agentMode(name);
  if (!mode) throw new UsageError("--mode", `'${name}' is not a mode: use ${modeNames()}`);
  return mode;
}

/**
 * A mode's config from the flags. `exclusive` (agent): another mode's exclusive flag given is a
 * UsageError naming it (`probe --agent` tries every mode with the same flags).
 */
export function modeChoice(mode: AgentMode, flags: Readonly<Record<string, unknown>>, ctx: ModeParseContext, exclusive = true): ModeChoice {
  if (exclusive && flags.workFrom !== undefined && mode.noWorkFrom !== undefined) {
    const taking = agentModes().filter((m) => m.noWorkFrom === undefined).map((m) => m.name);
    throw new UsageError("--work-from", `${mode.noWorkFrom}; --work-from applies to --mode ${taking.join(" and ")}`);
  }
  for (const other of exclusive ? agentModes() : []) {
    if (other === mode) continue;
    for (const flag of other.flags) {
      if (!flag.exclusive || flags[flagKey(flag)] === undefined) continue;
      throw new UsageError(flagName(flag), `only applies to --mode ${other.name}${typeof flag.exclusive === "string" ? ` (${flag.exclusive})` : ""}`);
    }
  }
  return { mode, config: mode.parse(flags, ctx) };
}

/** --node-name, else NODE_NAME. */
export function nodeNameOf(flags: { nodeName?: string }, env: Environment): string | undefined {
  return nonBlank(flags.nodeName) ?? env.NODE_NAME;
}

/**
 * Validates agent's flags and environment into an AgentConfig. `isDefault(key)`: whether a flag was
 * left at its default (commander's value source; --mode left at its default with --sim: only the
 * scenario's jobs are discovered).
 */
export function agentConfig(flags: AgentFlags, source: EnvSource, isDefault: (key: string) => boolean = (key) => flags[key] === undefined): AgentConfig {
  refuseStartFlags(flags, "the agent measures jobs that are already running");
  const env = readEnvironment(source);
  const mode = modeNamed(flags.mode);
  const modeDefaulted = isDefault("mode");
  const measure = measureConfig(flags);
  const intervalMillis = parseDurationFlag(flags.interval, "--interval", 10);
  const scenario = flags.sim !== undefined ? loadScenario(flags.sim) : undefined;
  const realJobs = !(scenario && modeDefaulted);
  const procRoot = checkProcRoot(flags.procRoot);
  const sysRoot = resolve(flags.sysRoot);
  const nodeName = nodeNameOf(flags, env);
  const work = workConfig(flags);
  const choice = modeChoice(mode, flags, { env, realJobs, nodeName, isDefault });
  const grid = gridConfig(scenario ? withScenarioZone(flags, scenario, flags.sim!) : flags, env);
  const collectors = collectorConfig(env);
  if (sysRoot !== "/" && collectors.root === undefined) collectors.root = sysRoot;
  // DRM fdinfo (AMD/Intel GPUs per process) is read where the jobs' processes are.
  collectors.procRoot ??= procRoot;
  const config: AgentConfig = {
    mode: choice,
    realJobs,
    scenario,
    measure,
    grid,
    export: exportConfig(flags, env),
    collectors,
    intervalMillis,
    procRoot,
    sysRoot,
    nodeName,
    listen: flags.listen !== undefined ? parseListenAddress(flags.listen, "--listen", { host: "0.0.0.0", port: 8080 }) : undefined,
    stateFile: flags.stateFile !== undefined ? checkStateFile(flags.stateFile) : undefined,
    checkpointIntervalMillis: parseDurationFlag(flags.checkpointInterval, "--checkpoint-interval", 100),
    retentionMillis: parseDurationFlag(flags.retention, "--retention", 0),
    maxFinishedJobs: parseCount(flags.maxFinishedJobs, "--max-finished-jobs"),
    maxJobs: parseCount(flags.maxJobs, "--max-jobs"),
    flushTimeoutMillis: parseDurationFlag(flags.flushTimeout, "--flush-timeout", 0),
    reportPath: flags.report !== undefined ? checkReportPath(flags.report) : undefined,
    tags: parseTags(flags.tag ?? []),
    identity: { jobId: flags.jobId, jobName: flags.jobName },
    work,
    quiet: flags.quiet === true,
    verbose: flags.verbose === true,
  };
  // At SIGTERM the agent exits within --flush-timeout (a pod's grace period is counted on it), so
  // the final scrape's wait is part of that time, never added to it as run does.
  if (config.export.prometheusLingerMillis > config.flushTimeoutMillis)
    throw new UsageError(
      "--prometheus-linger",
      `${flags.prometheusLinger} is longer than --flush-timeout (${config.flushTimeoutMillis / 1000} s): the agent exits within --flush-timeout at SIGTERM, so raise --flush-timeout or shorten the linger`,
    );
  // Last, every flag being valid (pod mode refuses a PID namespace that is not a pod's).
  if (realJobs) choice.mode.precheck?.(choice.config, { procRoot, env });
  return config;
}
