import { existsSync, readFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import type { Command } from "commander";
import { buildReport, writeJsonAtomic } from "../../exporters/report-json.js";
import { Agent } from "../agent/agent.js";
import { agentConfig, declareAgentFlags, type AgentConfig, type AgentFlags } from "../config/agent.js";
import type { LedgerSnapshot } from "../core/types.js";
import { errorMessage } from "../errors.js";
import { createStderrLogger } from "../log.js";
import { openExporters } from "../pipeline/exporters.js";
import { createPipeline, type Pipeline } from "../pipeline/index.js";
import { version } from "../version.js";
import { removeStaleTempFiles } from "../files.js";
import { exitAfterStderr } from "./exit.js";
import { addCommand, type CommandSpec } from "./command.js";
import { SelfMetrics } from "../core/self-metrics.js";
import { openHealthEndpoint } from "../agent/health.js";

const EXAMPLES = `
Examples:
  $ powerprint agent --mode pod --listen :8080 --prometheus 0.0.0.0:9464 --state-file /var/lib/powerprint/state.json
  $ powerprint agent --mode node --proc-root /host --sys-root /host --otlp http://collector:4318
  $ powerprint agent --mode selector --match-env TORCHELASTIC_RUN_ID --prometheus
  $ powerprint agent --sim scenario.json --prometheus 127.0.0.1:0 --retention 30s

Runs until SIGTERM or SIGINT, then takes a final sample, writes the checkpoint, flushes the
exporters (bounded by --flush-timeout) and exits 0. See docs/kubernetes.md.`;

/** `powerprint agent`: the sidecar (pod), node agent (node) or selector agent, long-running. */
export function registerAgentCommand(program: Command): void {
  const spec = {
    name: "agent",
    summary: "run as a long-lived agent: discover jobs (pod sidecar, node DaemonSet, process selector) and export their footprint",
    description:
      "Measure continuously and attribute energy to discovered jobs: the pod's processes (--mode pod, a sidecar), the node's pods (--mode node, a DaemonSet), or processes matching a selector (--mode selector).",
    helpAfter: EXAMPLES,
  } satisfies CommandSpec;
  const cmd = addCommand(program, spec, declareAgentFlags);
  cmd.action(async (opts: AgentFlags) => {
    const config = agentConfig(opts, process.env, (key) => cmd.getOptionValueSource(key) === "default" || cmd.getOptionValueSource(key) === undefined);
    const log = createStderrLogger({ verbose: config.verbose, quiet: config.quiet });
    // From here a signal stops the agent cleanly (a signal during probing waits for the start).
    const until = new Promise<string>((resolveSignal) => {
      for (const sig of ["SIGTERM", "SIGINT"] as const) process.once(sig, () => resolveSignal(sig));
    });
    await runAgent(config, { log, until });
    exitAfterStderr(0);
  });
}

/**
 * The OTel SDK's series limit per instrument for `maxJobs` jobs held: room for 64 series per job
 * and instrument (device kinds, devices, phases, models), twice over (a push exporter's provider
 * keeps dropped jobs' series until it is rebuilt after max(256, live) drops), so no job held is
 * ever folded into an overflow series.
 */
function seriesLimit(maxJobs: number): number {
  return 64 * (2 * maxJobs + 256);
}

/** This boot's id from <procRoot>/proc/sys/kernel/random/boot_id (undefined when unreadable). */
function readBootId(procRoot: string): string | undefined {
  try {
    return readFileSync(join(procRoot, "proc", "sys", "kernel", "random", "boot_id"), "utf8").trim().slice(0, 64) || undefined;
  } catch {
    return undefined;
  }
}

/** The JSON report at shutdown (--report); a failure to write it is a warning. */
function writeAgentReport(c: AgentConfig, final: LedgerSnapshot, o: { agent: Agent; log: ReturnType<typeof createStderrLogger>; pipeline: Pipeline }): void {
  const stats = o.agent.monitor.stats;
  try {
    writeJsonAtomic(
      c.reportPath!,
      buildReport(final, {
        version: version(),
        mode: "agent",
        ...o.pipeline.reportFields(),
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
 * Runs the agent of a validated config until `until` resolves (the CLI: SIGTERM or SIGINT), then
 * takes the final sample, checkpoints, flushes and writes the report. Returns the final snapshot.
 */
export async function runAgent(c: AgentConfig, o: { log: ReturnType<typeof createStderrLogger>; until: Promise<string> }): Promise<LedgerSnapshot> {
  const { log } = o;
  // Temp files of a report write a SIGKILL interrupted (the state file's: at restore).
  if (c.reportPath) removeStaleTempFiles(c.reportPath);
  const selfMetrics = new SelfMetrics();
  const exporters = await openExporters(c.export, {
    log,
    hostName: hostname(),
    job: { id: "agent", name: "agent", attributes: {}, origin: "generated" },
    self: selfMetrics,
    cardinalityLimit: seriesLimit(c.maxJobs),
  });
  // Listening before the hardware is probed: a probe that takes long (a wedged driver: every read
  // is bounded) still gets /healthz answered.
  const health = c.listen ? await openHealthEndpoint(c.listen, { strict: c.export.strictEndpoints, log }) : undefined;
  // A live intensity provider is asked in the background, as for run: the tick never waits on the network.
  const pipeline = await createPipeline(c, { log, time: { kind: "real", startMillis: Date.now() } });
  let collectors = await pipeline.devices();
  const mode = c.realJobs
    ? await c.mode.mode.create(c.mode.config, { procRoot: c.procRoot, sysRoot: c.sysRoot, log, hostName: hostname(), identity: c.identity, devRoot: c.collectors.devRoot ?? "/" })
    : undefined;
  if (mode?.collectors) collectors = mode.collectors(collectors);
  const agent = new Agent({
    mode: c.realJobs ? c.mode.mode.name : "sim",
    collectors,
    real: mode?.source,
    sim: pipeline.scenario?.jobs(),
    intensity: pipeline.intensity.intensity,
    ledgerOptions: pipeline.ledgerOptions,
    exporters,
    intervalMillis: c.intervalMillis,
    idlePolicy: c.measure.idlePolicy,
    idle: c.measure.idle,
    log,
    clock: pipeline.clock,
    isVisiblePid: (pid) => existsSync(join(c.procRoot, "proc", String(pid))),
    host: c.nodeName ?? hostname(),
    stateFile: c.stateFile,
    checkpointIntervalMillis: c.checkpointIntervalMillis,
    retentionMillis: c.retentionMillis,
    maxTerminated: c.maxFinishedJobs,
    maxJobs: c.maxJobs,
    selfMetrics,
    bootId: readBootId(c.procRoot),
    health,
    finalExportDeadlineMillis: c.flushTimeoutMillis,
    strictEndpoints: c.export.strictEndpoints,
    extraAttributes: c.tags,
    marks: mode?.marks,
    work: c.work && mode ? { config: c.work, jobId: mode.jobId } : mode?.workUrls ? { urlOf: mode.workUrls } : undefined,
  });
  await mode?.start?.();
  pipeline.intensity.prefetch();
  await agent.start();
  log.info(`agent: mode ${c.realJobs ? c.mode.mode.name : "sim"}, sampling every ${c.intervalMillis} ms${c.stateFile ? `, state in ${c.stateFile}` : ""}`);
  const signal = await o.until;
  log.info(`${signal}: final sample, checkpoint and export`);
  mode?.stop?.();
  const final = await agent.stop();
  pipeline.intensity.stop();
  if (c.reportPath) writeAgentReport(c, final, { agent, log, pipeline });
  return final;
}
