import { accessSync, constants as fsConstants, existsSync, readdirSync, statSync } from "node:fs";
import { hostname } from "node:os";
import { dirname, join, resolve } from "node:path";
import { Option, type Command } from "commander";
import { collectorOptionsFromEnv, detectCollectors } from "../../collectors/index.js";
import { addExportOptions, type ExportOptions } from "../../exporters/index.js";
import { parseListenAddress, type ListenAddress } from "../../exporters/prometheus.js";
import { buildReport, checkReportPath, writeJsonAtomic } from "../../exporters/report-json.js";
import { Agent } from "../agent/agent.js";
import { PodGpuFilter, VISIBLE_DEVICE_VARIABLES } from "../agent/gpu-filter.js";
import type { DiscoveringSource } from "../agent/lifecycle.js";
import { NodeJobSource, createNodeJobSource } from "../agent/node-source.js";
import { PodJobSource, podJobIdentity } from "../agent/pod-source.js";
import { SelectorJobSource, parseSelector, type Selector } from "../agent/selector-source.js";
import { SimJobSource } from "../agent/sim-source.js";
import { systemClock, type MonitorClock } from "../core/clock.js";
import type { Collector, Logger } from "../core/contracts.js";
import type { IntensityAt } from "../core/sampler.js";
import type { LedgerSnapshot } from "../core/types.js";
import { errorMessage, UsageError } from "../errors.js";
import { addGridOptions, createResolverFromConfig, gridConfigFromOptions, type GridConfig } from "../grid/config.js";
import { PodMetadataCache } from "../k8s/cache.js";
import { fetchPods, kubeletPodsUrl } from "../k8s/client.js";
import { readDownwardApi } from "../k8s/downward.js";
import { createStderrLogger } from "../log.js";
import { gridOptionsWithScenarioZone, loadScenario } from "../sim/scenario.js";
import { SimCollector, SimWorld, scenarioIntensity } from "../sim/world.js";
import { version } from "../version.js";
import { parseTags } from "../config/identity.js";
import { addMeasureOptions, parseDurationFlag, parseMeasureOptions, type MeasureOptions } from "./common.js";
import { footprintFromGrid } from "./footprint.js";
import { addServingOptions, workConfigFromOptions, type WorkConfig } from "../serving/flags.js";
import { nodeWorkUrls } from "../serving/agent-work.js";
import { addStrictEndpointsOption, createExportersFailOpen } from "./endpoints.js";
import { removeStaleTempFiles } from "../agent/temp-files.js";

export const AGENT_MODES = ["pod", "node", "selector"] as const;
export type AgentMode = (typeof AGENT_MODES)[number];
const SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token";

const EXAMPLES = `
Examples:
  $ powerprint agent --mode pod --listen :8080 --prometheus 0.0.0.0:9464 --state-file /var/lib/powerprint/state.json
  $ powerprint agent --mode node --proc-root /host --sys-root /host --otlp http://collector:4318
  $ powerprint agent --mode selector --match-env TORCHELASTIC_RUN_ID --prometheus
  $ powerprint agent --sim scenario.json --prometheus 127.0.0.1:0 --retention 30s

Runs until SIGTERM or SIGINT, then takes a final sample, writes the checkpoint, flushes the
exporters (bounded by --flush-timeout) and exits 0. See docs/kubernetes.md.`;

interface AgentFlags extends MeasureOptions, ExportOptions {
  mode: string;
  sim?: string;
  interval: string;
  procRoot: string;
  sysRoot: string;
  listen?: string;
  stateFile?: string;
  checkpointInterval: string;
  retention: string;
  maxFinishedJobs: string;
  flushTimeout: string;
  groupByLabel?: string;
  matchCmdline?: string;
  matchEnv?: string;
  podinfoDir: string;
  marks?: string;
  kubeletUrl?: string;
  kubeletTokenFile?: string;
  kubeletCaFile?: string;
  kubeletInsecureSkipTlsVerify?: boolean;
  nodeName?: string;
  strictEndpoints?: boolean;
  [key: string]: unknown;
}

/** `powerprint agent`: the sidecar (pod), node agent (node) or selector agent, long-running. */
export function registerAgentCommand(program: Command): void {
  const cmd = program
    .command("agent")
    .summary("run as a long-lived agent: discover jobs (pod sidecar, node DaemonSet, process selector) and export their footprint")
    .description("Measure continuously and attribute energy to discovered jobs: the pod's processes (--mode pod, a sidecar), the node's pods (--mode node, a DaemonSet), or processes matching a selector (--mode selector).")
    .addOption(new Option("--mode <mode>", "job discovery: pod (sidecar with shareProcessNamespace), node (DaemonSet, by cgroup) or selector (--match-cmdline/--match-env)").default("pod"))
    .option("--sim <scenario>", "simulated devices, grid and process table of SCENARIO (its jobs are discovered like real ones)")
    .option("--interval <duration>", "sampling interval, e.g. 500ms, 1s, 5s", "1s")
    .option("--proc-root <dir>", "directory holding the proc/ to read (a DaemonSet mounts the host's /proc at /host/proc: --proc-root /host)", "/")
    .option("--sys-root <dir>", "directory holding the sys/ to read (RAPL, hwmon, cgroups; e.g. /host)", "/")
    .option("--listen <host:port>", "serve /healthz, /readyz and /jobs here (e.g. :8080; default: not served)")
    .option("--state-file <path>", "checkpoint every ledger here and restore it at start (an emptyDir or hostPath file)")
    .option("--checkpoint-interval <duration>", "how often the state file is written", "30s")
    .option("--retention <duration>", "how long a finished job's final totals keep being exported before it is dropped", "5m")
    .option("--max-finished-jobs <n>", "at most this many finished jobs are retained (the oldest go first)", "10000")
    .option("--flush-timeout <duration>", "at SIGTERM, give up on exporters that have not flushed within this time (counted and said; as run's)", "10s")
    .option("--group-by-label <key>", "node mode: one job per value of this pod label (e.g. training.kubeflow.org/job-name)")
    .option("--match-cmdline <regex>", "selector mode: processes whose command line matches (first capture group, if any, names the job)")
    .option("--match-env <key[=value]>", "selector mode: processes whose environment has KEY (with VALUE); the value names the job")
    .option("--podinfo-dir <dir>", "pod mode: the downward API volume (files name, namespace, uid, labels)", "/etc/podinfo")
    .option("--marks <file>", "pod mode: training-loop marks file the training container appends to (its POWERPRINT_MARKS, on a shared emptyDir)")
    .option("--kubelet-url <url>", "node mode: pod list URL (default https://$NODE_NAME:10250/pods when the node name is known)")
    .option("--kubelet-token-file <file>", `node mode: bearer token file (default ${SERVICE_ACCOUNT_TOKEN} when present)`)
    .option("--kubelet-ca-file <file>", "node mode: CA of the kubelet's serving certificate")
    .option("--kubelet-insecure-skip-tls-verify", "node mode: accept the kubelet's self-signed certificate")
    .option("--node-name <name>", "node mode: this node's name (default NODE_NAME)");
  addMeasureOptions(cmd);
  addGridOptions(cmd);
  addStrictEndpointsOption(cmd);
  addExportOptions(cmd);
  addServingOptions(cmd);
  cmd.addHelpText("after", EXAMPLES);
  cmd.action(async (opts: AgentFlags) => {
    const defaulted = (name: string) => cmd.getOptionValueSource(name) === "default";
    const code = await runAgent(opts, process.env, { modeDefaulted: defaulted("mode"), podinfoDirDefaulted: defaulted("podinfoDir") });
    process.exitCode = code;
    process.stderr.write("", () => process.exit(code));
  });
}

/** Everything validated from the flags (UsageError naming the flag otherwise). */
interface AgentConfig {
  mode: AgentMode;
  scenario?: ReturnType<typeof loadScenario>;
  measure: ReturnType<typeof parseMeasureOptions>;
  grid: GridConfig;
  intervalMillis: number;
  procRoot: string;
  sysRoot: string;
  listen?: ListenAddress;
  stateFile?: string;
  checkpointIntervalMillis: number;
  retentionMillis: number;
  maxFinishedJobs: number;
  flushTimeoutMillis: number;
  selector: Selector;
  reportPath?: string;
  nodeName?: string;
  /** Real job discovery is on (off with --sim and no explicit --mode). */
  realJobs: boolean;
  /** --tag attributes, on every discovered job. */
  tags: Record<string, string>;
  /** --work-from / --work-metric (pod and selector modes): the served units of work (docs/serving.md). */
  work?: WorkConfig;
}

function checkProcRoot(dir: string): string {
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

function parseCount(value: string, flag: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new UsageError(flag, `must be a whole number >= 1, got '${value}'`);
  return Number(value);
}

/** --kubelet-url: an http(s) URL (the kubelet's /pods or the API server's pod list). */
function checkKubeletUrl(text: string | undefined): void {
  if (text === undefined) return;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError("--kubelet-url", `'${text}' is not a URL (e.g. https://$NODE_NAME:10250/pods)`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") throw new UsageError("--kubelet-url", `'${text}': only https:// and http:// are supported (e.g. https://$NODE_NAME:10250/pods)`);
}

/** --podinfo-dir given explicitly must be a directory; the default may be absent (said at start). */
function checkPodinfoDir(dir: string, defaulted: boolean): void {
  if (defaulted) return;
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError("--podinfo-dir", `${dir} is not a directory (mount the downward API volume there, or leave the flag out)`);
}

/** Which flags were left at their defaults (commander's value sources). */
export interface AgentFlagSources {
  modeDefaulted?: boolean;
  podinfoDirDefaulted?: boolean;
}

function parseAgentConfig(opts: AgentFlags, env: NodeJS.ProcessEnv, sources: AgentFlagSources): AgentConfig {
  const modeDefaulted = sources.modeDefaulted ?? false;
  if (!(AGENT_MODES as readonly string[]).includes(opts.mode)) throw new UsageError("--mode", `'${opts.mode}' is not a mode: use pod, node or selector`);
  const mode = opts.mode as AgentMode;
  const measure = parseMeasureOptions(opts);
  const intervalMillis = parseDurationFlag(opts.interval, "--interval", 10);
  const scenario = opts.sim !== undefined ? loadScenario(opts.sim) : undefined;
  const realJobs = !(scenario && modeDefaulted);
  const procRoot = checkProcRoot(opts.procRoot);
  const sysRoot = resolve(opts.sysRoot);
  const selector = parseSelector({ matchCmdline: opts.matchCmdline, matchEnv: opts.matchEnv });
  if (mode === "selector" && realJobs && !selector.cmdline && !selector.env) throw new UsageError("--mode", "selector needs --match-cmdline REGEX or --match-env KEY[=VALUE]");
  if (mode !== "selector" && (selector.cmdline || selector.env)) throw new UsageError(selector.cmdline ? "--match-cmdline" : "--match-env", "only applies to --mode selector");
  if (opts.marks !== undefined && mode !== "pod") throw new UsageError("--marks", "only applies to --mode pod (run sets POWERPRINT_MARKS itself)");
  const work = workConfigFromOptions(opts);
  if (work && mode === "node") throw new UsageError("--work-from", "node mode reads each pod's endpoint from its powerprint.io/work-from annotation (docs/serving.md); --work-from applies to --mode pod and selector");
  if (opts.groupByLabel !== undefined && mode !== "node") throw new UsageError("--group-by-label", "only applies to --mode node");
  if (opts.groupByLabel !== undefined && opts.groupByLabel.trim() === "") throw new UsageError("--group-by-label", "must not be empty (e.g. training.kubeflow.org/job-name)");
  checkKubeletUrl(opts.kubeletUrl);
  if (mode === "pod" && realJobs) checkPodinfoDir(opts.podinfoDir, sources.podinfoDirDefaulted ?? true);
  const grid = gridConfigFromOptions(scenario ? gridOptionsWithScenarioZone(opts, scenario, opts.sim!) : opts, env);
  return {
    mode,
    scenario,
    measure,
    grid,
    intervalMillis,
    procRoot,
    sysRoot,
    listen: opts.listen !== undefined ? parseListenAddress(opts.listen, "--listen", { host: "0.0.0.0", port: 8080 }) : undefined,
    stateFile: opts.stateFile !== undefined ? checkStateFile(opts.stateFile) : undefined,
    checkpointIntervalMillis: parseDurationFlag(opts.checkpointInterval, "--checkpoint-interval", 100),
    retentionMillis: parseDurationFlag(opts.retention, "--retention", 0),
    maxFinishedJobs: parseCount(opts.maxFinishedJobs, "--max-finished-jobs"),
    flushTimeoutMillis: parseDurationFlag(opts.flushTimeout, "--flush-timeout", 0),
    selector,
    reportPath: opts.report !== undefined ? checkReportPath(opts.report) : undefined,
    nodeName: (opts.nodeName ?? env.NODE_NAME)?.trim() || undefined,
    realJobs,
    tags: parseTags((opts.tag as string[] | undefined) ?? []),
    work,
  };
}

/** Collectors of the real hardware under --sys-root (fallbacks said once, as in run). */
async function realCollectors(c: AgentConfig, env: NodeJS.ProcessEnv, log: Logger): Promise<Collector[]> {
  const options = collectorOptionsFromEnv(env);
  if (c.sysRoot !== "/" && options.root === undefined) options.root = c.sysRoot;
  const entries = await detectCollectors(options);
  for (const e of entries) {
    if (e.used && e.result.status === "ok" && (e.role.includes("fallback") || e.result.devices.some((d) => d.method === "model"))) {
      log.warn(`${e.role}: using ${e.collector.id}${e.result.note ? `: ${e.result.note}` : ""}. See 'powerprint probe'.`);
    }
  }
  return entries.filter((e) => e.used).map((e) => e.collector);
}

/** The node mode source: kubelet hierarchy and the pod metadata cache (failures said once; UIDs then). */
function nodeSource(c: AgentConfig, opts: AgentFlags, log: Logger): { source?: NodeJobSource; cache?: PodMetadataCache } {
  const url = opts.kubeletUrl ?? (c.nodeName ? kubeletPodsUrl(c.nodeName) : undefined);
  let cache: PodMetadataCache | undefined;
  if (url) {
    const tokenFile = opts.kubeletTokenFile ?? (existsSync(SERVICE_ACCOUNT_TOKEN) ? SERVICE_ACCOUNT_TOKEN : undefined);
    cache = new PodMetadataCache({
      fetch: () => fetchPods({ url, tokenFile, caFile: opts.kubeletCaFile, insecureSkipTlsVerify: opts.kubeletInsecureSkipTlsVerify }),
      log,
    });
  } else {
    log.warnOnce("node:no-kubelet", "node mode: no --kubelet-url and no --node-name/NODE_NAME: pods are named by their UID");
  }
  const setup = createNodeJobSource({ procRoot: c.procRoot, sysRoot: join(c.sysRoot, "sys"), log, pods: cache, groupByLabel: opts.groupByLabel });
  if (setup.status !== "ok") {
    log.warn(`node mode: ${setup.reason}; no pods will be found (everything is counted as system)`);
    return { cache };
  }
  log.info(`node mode: pods under ${setup.kubepods.join(", ")} (cgroup v${setup.hierarchy.version}${setup.driver ? `, ${setup.driver} driver` : ""})`);
  return { source: setup.source, cache };
}

function podSource(c: AgentConfig, opts: AgentFlags, log: Logger): PodJobSource {
  const info = readDownwardApi(opts.podinfoDir);
  if (!info.name) log.warnOnce("pod:no-downward-api", `pod mode: no downward API files in ${opts.podinfoDir} (name, namespace, uid, labels): the pod is named by the hostname`);
  const job = podJobIdentity(info, hostname());
  if (typeof opts.jobId === "string" && opts.jobId.trim() !== "") job.id = opts.jobId.trim();
  if (typeof opts.jobName === "string" && opts.jobName.trim() !== "") job.name = opts.jobName.trim();
  log.info(`pod mode: job ${job.id} (${Object.entries(job.attributes).map(([k, v]) => `${k}=${v}`).join(", ")})`);
  return new PodJobSource({ procRoot: c.procRoot, job });
}

/** The JSON report at shutdown (--report); a failure to write it is a warning. */
function writeAgentReport(
  c: AgentConfig,
  final: LedgerSnapshot,
  o: { agent: Agent; log: ReturnType<typeof createStderrLogger>; pueOrigin: string; fp: ReturnType<typeof footprintFromGrid> },
): void {
  const stats = o.agent.monitor.stats;
  try {
    writeJsonAtomic(
      c.reportPath!,
      buildReport(final, {
        version: version(),
        mode: "agent",
        scenario: c.scenario?.name,
        idlePolicy: c.measure.idlePolicy,
        pueOrigin: o.pueOrigin,
        intensityDescription: c.scenario ? "scenario series" : `zone ${c.grid.zone ?? "none"}`,
        intensityZone: c.grid.zone ?? "none",
        intensitySource: c.scenario ? "scenario" : "none",
        fallbacks: {},
        ...o.fp.report,
        warnings: o.log.warnings,
        sampler: { ticks: stats.ticks, skippedTicks: stats.skippedTicks, failures: stats.collectorFailures, intervalMillis: c.intervalMillis },
        exportFailures: {},
      }),
    );
  } catch (err) {
    o.log.warn(`report: cannot write ${c.reportPath}: ${errorMessage(err)}`);
  }
}

/**
 * Runs the agent until SIGTERM/SIGINT. Returns the exit code (0 after a clean stop). Usage errors
 * throw before anything is started.
 */
export async function runAgent(opts: AgentFlags, env: NodeJS.ProcessEnv, sources: AgentFlagSources = {}): Promise<number> {
  const log = createStderrLogger({ verbose: opts.verbose, quiet: opts.quiet });
  const c = parseAgentConfig(opts, env, sources);
  // Temp files of a report write a SIGKILL interrupted (the state file's: at restore).
  if (c.reportPath) removeStaleTempFiles(c.reportPath);
  // From here a signal stops the agent cleanly (a signal during probing waits for the start).
  const stopped = new Promise<NodeJS.Signals>((resolveSignal) => {
    for (const sig of ["SIGTERM", "SIGINT"] as const) process.once(sig, () => resolveSignal(sig));
  });
  const host = c.nodeName ?? hostname();
  const exporters = await createExportersFailOpen(opts, { env, log, hostName: hostname(), job: { id: "agent", name: "agent", attributes: {}, origin: "generated" } }, opts.strictEndpoints === true);
  const startMillis = Date.now();
  let clock: MonitorClock = systemClock;
  let collectors: Collector[];
  let sim: DiscoveringSource | undefined;
  let intensity: IntensityAt = createResolverFromConfig(c.grid, { log });
  let pue = c.measure.pue;
  let pueOrigin: string = c.measure.pueOrigin;
  if (c.scenario) {
    const world = new SimWorld(c.scenario, startMillis);
    const t0 = performance.now();
    const simNow = () => startMillis + (performance.now() - t0);
    clock = { monotonicMillis: () => performance.now(), wallMillis: simNow };
    collectors = [new SimCollector(world)];
    sim = new SimJobSource(world, simNow);
    intensity = scenarioIntensity(world) ?? intensity;
    if (c.scenario.pue !== undefined && c.measure.pueOrigin === "default") {
      pue = c.scenario.pue;
      pueOrigin = "scenario";
    }
    log.info(`simulated devices and jobs from scenario '${c.scenario.name}'`);
  } else {
    collectors = await realCollectors(c, env, log);
  }
  let real: DiscoveringSource | undefined;
  let cache: PodMetadataCache | undefined;
  let marks: { path: string; jobId: string } | undefined;
  let work: { config?: WorkConfig; jobId?: string; urlOf?: (jobId: string) => URL | undefined } | undefined;
  if (c.realJobs) {
    if (c.mode === "pod") {
      const pod = podSource(c, opts, log);
      real = pod;
      if (opts.marks !== undefined) marks = { path: resolve(opts.marks), jobId: pod.job.id };
      if (c.work) work = { config: c.work, jobId: pod.job.id };
      // Shared GPUs: the pod's processes holding a GPU's /dev/nvidia<minor> are counted against NVML's list.
      const view = { procRoot: c.procRoot, devRoot: collectorOptionsFromEnv(env).devRoot ?? "/", podPids: () => pod.memberPids() };
      collectors = collectors.map((col) => new PodGpuFilter(col, () => pod.trainingEnvironment(VISIBLE_DEVICE_VARIABLES), log, view));
    } else if (c.mode === "selector") {
      real = new SelectorJobSource({ procRoot: c.procRoot, selector: c.selector });
      if (c.work) work = { config: c.work };
    } else {
      let node: NodeJobSource | undefined;
      ({ source: node, cache } = nodeSource(c, opts, log));
      real = node;
      // Each pod may name its inference server's metrics endpoint (powerprint.io/work-from, docs/serving.md).
      if (node && cache) work = { urlOf: nodeWorkUrls(node, cache, log) };
    }
  }
  const fp = footprintFromGrid(c.grid);
  const agent = new Agent({
    mode: c.scenario && !c.realJobs ? "sim" : c.mode,
    collectors,
    real,
    sim,
    intensity,
    ledgerOptions: { pue, ...fp.ledger },
    exporters,
    intervalMillis: c.intervalMillis,
    idlePolicy: c.measure.idlePolicy,
    idle: c.measure.idle,
    log,
    clock,
    isVisiblePid: (pid) => existsSync(join(c.procRoot, "proc", String(pid))),
    host,
    stateFile: c.stateFile,
    checkpointIntervalMillis: c.checkpointIntervalMillis,
    retentionMillis: c.retentionMillis,
    maxTerminated: c.maxFinishedJobs,
    listen: c.listen,
    finalExportDeadlineMillis: c.flushTimeoutMillis,
    strictEndpoints: opts.strictEndpoints === true,
    extraAttributes: c.tags,
    marks,
    work,
  });
  // The first pod list (bounded: the client has its own deadline) before the first sample, so pods
  // are named from the start; later ones refresh in the background.
  if (cache) await Promise.race([cache.start(), new Promise((r) => setTimeout(r, 5000).unref())]);
  await agent.start();
  log.info(`agent: mode ${c.realJobs ? c.mode : "sim"}, sampling every ${c.intervalMillis} ms${c.stateFile ? `, state in ${c.stateFile}` : ""}`);
  const signal = await stopped;
  log.info(`${signal}: final sample, checkpoint and export`);
  cache?.stop();
  const final = await agent.stop();
  if (c.reportPath) writeAgentReport(c, final, { agent, log, pueOrigin, fp });
  return 0;
}
