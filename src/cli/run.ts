import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hostname } from "node:os";
import { constants as osConstants } from "node:os";
import type { Command } from "commander";
import type { Collector } from "../core/contracts.js";
import { collectorOptionsFromEnv, detectCollectors, type CollectorOptions } from "../../collectors/index.js";
import type { Exporter, Logger } from "../core/contracts.js";
import { buildReport, checkReportPath, writeJsonAtomic } from "../../exporters/report-json.js";
import { formatSummary } from "../../exporters/summary.js";
import { addExportOptions, createExporters, type ExportOptions } from "../../exporters/index.js";
import { resolveJobIdentity, type JobIdentity } from "../config/identity.js";
import { Ledger } from "../core/ledger.js";
import { Sampler, type IntensityAt } from "../core/sampler.js";
import { errorMessage, UsageError } from "../errors.js";
import { addGridOptions, gridConfigFromOptions, createResolverFromConfig, createProviderFromConfig, type GridConfig } from "../grid/config.js";
import { waitForStart } from "../grid/schedule.js";
import { ProcessTracker } from "../jobs/tracker.js";
import { MarksReader } from "../jobs/marks.js";
import { CompositeSource, FinalCpuSource } from "../jobs/run-sources.js";
import { createStderrLogger } from "../log.js";
import type { ProcessSource } from "../core/contracts.js";
import { gridOptionsWithScenarioZone, loadScenario } from "../sim/scenario.js";
import { SimCollector, SimProcessSource, SimWorld, scenarioIntensity } from "../sim/world.js";
import { version } from "../version.js";
import { addMeasureOptions, parseDurationFlag, parseMeasureOptions, type MeasureOptions } from "./common.js";
import { footprintFromGrid } from "./footprint.js";
import { addBudgetOptions, addFileOutputOptions, prepareOutputs, type Outputs } from "./outputs.js";

const EXAMPLES = `
Examples:
  $ powerprint run -- python train.py --epochs 3
  $ powerprint run --zone DE --pue 1.2 --report run.json -- python train.py
  $ powerprint run --otlp http://collector:4318 --job-name resnet50 --tag team=vision -- torchrun train.py
  $ powerprint run --sim scenario.json --report out.json -- sleep 5
  $ powerprint run --start-within 6h --below 150 --zone GB -- python train.py
  $ powerprint run --max-energy 2kWh --on-budget stop --csv emissions.csv --html run.html -- python train.py

powerprint writes only to stderr; the command keeps stdin, stdout and stderr. It exits with the
command's exit code (128 + signal number when the command was killed by a signal, 127 when it
cannot be found), or 86 when --on-budget stop stopped it (a budget was crossed). If measuring
fails, powerprint warns once and the command runs on untouched.`;

interface RunOptions extends MeasureOptions {
  sim?: string;
  interval: string;
  grace: string;
  [key: string]: unknown;
}

/** `powerprint run [options] -- <command...>` */
export function registerRunCommand(program: Command): void {
  const cmd = program
    .command("run")
    .summary("run a command and measure the energy, carbon, water and cost of its process tree")
    .description("Run COMMAND (no shell) and measure the energy its process tree uses on this host's GPUs, CPUs and memory.")
    .usage("[options] -- <command...>")
    .argument("[command...]", "the command to run and its arguments (put them after --)")
    .option("--sim <scenario>", "measure on the simulated devices of SCENARIO (JSON or YAML) instead of the real hardware")
    .option("--interval <duration>", "sampling interval, e.g. 500ms, 1s, 5s", "1s")
    .option("--grace <duration>", "after relaying SIGINT/SIGTERM/SIGHUP, SIGKILL the command if it has not exited within this time", "10s");
  addMeasureOptions(cmd);
  addGridOptions(cmd);
  addExportOptions(cmd);
  addFileOutputOptions(cmd);
  addBudgetOptions(cmd);
  cmd.passThroughOptions().addHelpText("after", EXAMPLES);
  cmd.action(async (command: string[], opts: RunOptions) => {
    const code = await runCommand(command, opts, process.env);
    // Exit now: a stray handle (a socket of a receiver that never answered) must not keep the
    // user's pipeline waiting after the command is done and everything was flushed.
    process.exitCode = code;
    process.stderr.write("", () => process.exit(code));
  });
}

/** Signal numbers for the exit code (128 + n). */
function signalNumber(signal: NodeJS.Signals): number {
  return (osConstants.signals as Record<string, number>)[signal] ?? 0;
}

/**
 * PIDs of powerprint's own live (or unreaped) children: from /proc/self/task/TID/children, else
 * (kernel without CONFIG_PROC_CHILDREN) by scanning /proc for our PID as parent; undefined when
 * /proc is unreadable.
 */
function ownChildPids(): number[] | undefined {
  try {
    const pids: number[] = [];
    for (const tid of readdirSync("/proc/self/task")) {
      const text = readFileSync(`/proc/self/task/${tid}/children`, "utf8").trim();
      if (text !== "") pids.push(...text.split(/\s+/).map(Number));
    }
    return pids;
  } catch {
    /* no children files: scan */
  }
  try {
    const pids: number[] = [];
    for (const name of readdirSync("/proc")) {
      if (!/^\d+$/.test(name)) continue;
      try {
        const stat = readFileSync(`/proc/${name}/stat`, "utf8");
        if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === process.pid) pids.push(Number(name));
      } catch {
        /* gone */
      }
    }
    return pids;
  } catch {
    return undefined;
  }
}

/** Own reaped-children CPU seconds (cutime + cstime of powerprint itself). */
function ownChildrenCpuSeconds(): number | undefined {
  try {
    const text = readFileSync("/proc/self/stat", "utf8");
    const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
    // Fields after comm start at index 3 (state); cutime is field 16, cstime 17 (1-based).
    return (Number(f[13]) + Number(f[14])) / 100;
  } catch {
    return undefined;
  }
}

/**
 * Runs the command and measures it. Returns the exit code: the command's, or 128 + signal, or 127
 * when it cannot be started. Usage errors throw before anything is spawned.
 */
export async function runCommand(command: string[], opts: RunOptions, env: NodeJS.ProcessEnv): Promise<number> {
  const log = createStderrLogger({ verbose: opts.verbose, quiet: opts.quiet });
  // ---- validate everything first: exit 2, nothing spawned, nothing written ----
  if (command.length === 0) throw new UsageError("command", "missing: put the command after --, e.g. powerprint run -- python train.py");
  if (command[0].trim() === "") throw new UsageError("command", "the command name is empty: put the command after --, e.g. powerprint run -- python train.py");
  const measure = parseMeasureOptions(opts);
  const intervalMillis = parseDurationFlag(opts.interval, "--interval", 10);
  const graceMillis = parseDurationFlag(opts.grace, "--grace", 0);
  const collectorOptions = collectorOptionsFromEnv(env);
  const reportPath = opts.report !== undefined ? checkReportPath(opts.report) : undefined;
  const scenario = opts.sim !== undefined ? loadScenario(opts.sim) : undefined;
  const grid: GridConfig = gridConfigFromOptions(scenario ? gridOptionsWithScenarioZone(opts, scenario, opts.sim!) : opts, env);
  const job: JobIdentity = resolveJobIdentity({
    jobId: opts.jobId as string | undefined,
    jobName: opts.jobName as string | undefined,
    tags: (opts.tag as string[] | undefined) ?? [],
    env,
    command,
  });
  let stopJob: (() => void) | undefined;
  const outputs = prepareOutputs(opts, { log, jobId: job.id, onStop: () => stopJob?.(), liveStream: opts.quiet ? undefined : process.stderr });
  const exporters: Exporter[] = await createExporters(opts as ExportOptions, { env, log, hostName: hostname(), job });
  exporters.push(...outputs.exporters);

  // ---- carbon-aware start ----
  if (grid.startWithinMillis !== undefined) {
    try {
      const provider = createProviderFromConfig(grid, {});
      if (!provider) throw new UsageError("--start-within", "needs a forecast: choose --intensity-provider (electricitymaps, watttime, uk-carbon-intensity or carbon-aware-sdk) and --zone");
      await waitForStart({
        provider,
        zone: grid.zone ?? "",
        withinMillis: grid.startWithinMillis,
        below: grid.belowGramsPerKwh,
        log,
        // A ref'd timer: while waiting, nothing else keeps the process alive.
        sleep: (ms) => new Promise<void>((resolve) => setTimeout(resolve, ms)),
      });
    } catch (err) {
      if (err instanceof UsageError) throw err;
      log.warn(`carbon-aware start failed (${errorMessage(err)}); starting now`);
    }
  }

  // A signal during setup (probing hardware can take a moment) stops us before the command starts.
  let pendingSignal: NodeJS.Signals | undefined;
  const early = (sig: NodeJS.Signals) => (pendingSignal = sig);
  const earlySignals: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
  for (const sig of earlySignals) process.on(sig, early);

  // ---- measurement (fail-open: any failure here only disables measuring) ----
  let measuring: Measuring | undefined;
  try {
    measuring = await startMeasuring({ scenario, measure, grid, intervalMillis, job, log, env, collectorOptions, exporters, quiet: opts.quiet, verbose: opts.verbose, outputs });
  } catch (err) {
    if (err instanceof UsageError) throw err;
    log.warn(`measurement disabled: ${errorMessage(err)}; the command runs unmeasured`);
  }

  // ---- the command ----
  if (pendingSignal) {
    for (const sig of earlySignals) process.off(sig, early);
    log.warn(`${pendingSignal} received before the command started: not starting it`);
    await measuring?.abandon();
    return 128 + signalNumber(pendingSignal);
  }
  // The correction is powerprint's own cutime growth: only sound when the command is its only
  // child from here on. A helper still running now (an nvidia-smi probe that timed out is left to
  // finish) would be reaped later and its CPU counted as the job's.
  const otherChildren = ownChildPids();
  if (otherChildren === undefined || otherChildren.length > 0) {
    log.debug(`final CPU correction off: ${otherChildren === undefined ? "own children unreadable" : `helper process(es) ${otherChildren.join(", ")} still running`}`);
  }
  const childCpuBaseline = otherChildren?.length === 0 ? ownChildrenCpuSeconds() : undefined;
  const childEnv = measuring?.marksPath ? { ...env, POWERPRINT_MARKS: measuring.marksPath } : env;
  const child = spawnCommand(command, childEnv);
  // A budget crossed with --on-budget stop: SIGTERM, then SIGKILL after the grace (as for a relayed signal).
  stopJob = () => {
    child.kill("SIGTERM");
    setTimeout(() => child.exitCode === null && child.signalCode === null && child.kill("SIGKILL"), graceMillis).unref();
  };
  const outcomePromise = superviseChild(child, command, graceMillis, log, () => {
    if (measuring && child.pid !== undefined) {
      try {
        measuring.addJob(child.pid);
      } catch (err) {
        log.warn(`measurement disabled: ${errorMessage(err)}; the command runs unmeasured`);
        measuring = undefined;
      }
    }
  });
  // superviseChild's relay is installed synchronously above; the early handler can go.
  for (const sig of earlySignals) process.off(sig, early);
  const outcome = await outcomePromise;

  if (measuring) {
    try {
      const after = ownChildrenCpuSeconds();
      if (!measuring.spawnsHelpers && after !== undefined && childCpuBaseline !== undefined) measuring.setFinalCpu(after - childCpuBaseline);
      await measuring.finish({ command, exitCode: outcome.exitCode, reportPath, started: outcome.started });
    } catch (err) {
      log.warn(`could not finish measuring: ${errorMessage(err)}`);
    }
  }
  return outputs.exitCode(outcome.exitCode);
}

function spawnCommand(command: string[], env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(command[0], command.slice(1), { stdio: "inherit", shell: false, env });
}

/** Relays signals, SIGKILLs after the grace period, and resolves with the exit code to use. */
function superviseChild(
  child: ChildProcess,
  command: string[],
  graceMillis: number,
  log: Logger,
  onSpawn: () => void,
): Promise<{ exitCode: number; started: boolean }> {
  return new Promise((resolve) => {
    let settled = false;
    let killTimer: NodeJS.Timeout | undefined;
    const relay = (signal: NodeJS.Signals) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      try {
        child.kill(signal);
      } catch {
        /* already gone */
      }
      if (!killTimer) {
        killTimer = setTimeout(() => {
          if (child.exitCode === null && child.signalCode === null) {
            log.warn(`${command[0]} did not exit within the grace period after ${signal}: sending SIGKILL`);
            child.kill("SIGKILL");
          }
        }, graceMillis);
      }
    };
    const signals: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
    for (const s of signals) process.on(s, relay);
    let started = false;
    const done = (exitCode: number) => {
      if (settled) return;
      settled = true;
      if (killTimer) clearTimeout(killTimer);
      for (const s of signals) process.off(s, relay);
      resolve({ exitCode, started });
    };
    child.once("spawn", () => {
      started = true;
      onSpawn();
    });
    child.once("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") {
        log.warn(`command not found: ${command[0]} (check the name and your PATH)`);
        done(127);
      } else if (err.code === "EACCES") {
        log.warn(`permission denied: ${command[0]} is not executable`);
        done(126);
      } else {
        log.warn(`cannot run ${command[0]}: ${err.message}`);
        done(127);
      }
    });
    child.once("exit", (code, signal) => {
      done(code !== null ? code : signal ? 128 + signalNumber(signal) : 1);
    });
  });
}

/** How long the end of a run waits for an in-flight sample, and then for the final one, ms. */
const FINAL_TICK_WAIT_MILLIS = 30_000;

/**
 * Whether `p` settles within `millis`. The timer is ref'd on purpose: a promise that can never
 * settle (nothing left in the event loop) must still end in the warning, not in Node's exit 13.
 */
async function settlesWithin(p: Promise<unknown>, millis: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), millis);
  });
  try {
    return await Promise.race([p.then(() => true, () => true), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** The reason a collector is unavailable, as probe said it. */
function unavailableReason(entries: { collector: { id: string }; result: { status: string; reason?: string } }[], id: string): string | undefined {
  const e = entries.find((x) => x.collector.id === id);
  return e && e.result.status === "unavailable" ? `${id}: ${e.result.reason}` : undefined;
}

interface Measuring {
  /** File the command may append training-loop marks to (POWERPRINT_MARKS). */
  marksPath?: string;
  addJob(pid: number): void;
  setFinalCpu(seconds: number): void;
  /** True when a collector spawns helper processes (nvidia-smi): own cutime is then not the job's alone. */
  spawnsHelpers: boolean;
  /** `started` false: the command could not be spawned (the report is still written; no summary of nothing). */
  finish(o: { command: string[]; exitCode: number; reportPath?: string; started: boolean }): Promise<void>;
  /** Stops exporters and collectors without a report (the command never started). */
  abandon(): Promise<void>;
}

async function startMeasuring(o: {
  scenario?: ReturnType<typeof loadScenario>;
  measure: ReturnType<typeof parseMeasureOptions>;
  grid: GridConfig;
  intervalMillis: number;
  job: JobIdentity;
  log: ReturnType<typeof createStderrLogger>;
  env: NodeJS.ProcessEnv;
  collectorOptions: CollectorOptions;
  exporters: Exporter[];
  quiet?: boolean;
  verbose?: boolean;
  outputs: Outputs;
}): Promise<Measuring> {
  const { log } = o;
  const startMillis = Date.now();
  const tracker = new ProcessTracker({ root: "/" });
  const finalSource = new FinalCpuSource(tracker, o.job.id);
  let collectors: Collector[];
  let processSource: ProcessSource;
  let intensity: IntensityAt;
  const resolver = createResolverFromConfig(o.grid, { log });
  let pue = o.measure.pue;
  let pueOrigin: string = o.measure.pueOrigin;
  let spawnsHelpers = false;
  if (o.scenario) {
    const world = new SimWorld(o.scenario, startMillis);
    collectors = [new SimCollector(world)];
    // The final-CPU correction sits below the merge, so the simulated host's busy CPU gets it too.
    processSource = new CompositeSource(finalSource, new SimProcessSource(world, () => Date.now()));
    intensity = scenarioIntensity(world) ?? resolver;
    if (o.scenario.pue !== undefined && o.measure.pueOrigin === "default") {
      pue = o.scenario.pue;
      pueOrigin = "scenario";
    }
    log.info(`simulated devices from scenario '${o.scenario.name}' (${o.scenario.devices.map((d) => d.id).join(", ")})`);
  } else {
    const entries = await detectCollectors(o.collectorOptions);
    collectors = entries.filter((e) => e.used).map((e) => e.collector);
    spawnsHelpers = collectors.some((c) => c.id === "nvidia-smi");
    for (const e of entries) {
      if (e.used && e.result.status === "ok") {
        const methods = [...new Set(e.result.devices.map((d) => d.method))].join("/");
        log.debug(`${e.collector.id}: ${e.result.devices.length} device(s), ${methods} — ${e.role}`);
        if (e.role.includes("fallback") || e.result.devices.some((d) => d.method === "model")) {
          // One line per fallback: what is unavailable and why, what is used instead, and how.
          const why = e.collector.id === "cpu-model" ? unavailableReason(entries, "rapl") : e.collector.id === "nvidia-smi" ? unavailableReason(entries, "nvml") : undefined;
          // The details (why, TDP lookups, coefficients) with --verbose, in the devices' notes and in 'powerprint probe'.
          log.warn(`${e.role}: using ${e.collector.id} (${methods}); details: --verbose or 'powerprint probe'`);
          log.debug(`${e.collector.id}${why ? ` (${why})` : ""}${e.result.note ? `: ${e.result.note}` : ""}`);
        }
      } else if (!e.used && e.result.status === "unavailable" && !e.result.reason.startsWith("not needed")) {
        log.debug(`${e.collector.id} unavailable: ${e.result.reason}`);
      }
    }
    processSource = finalSource;
    intensity = resolver;
  }
  const fp = footprintFromGrid(o.grid);
  const ledger = new Ledger({ pue, ...fp.ledger }, startMillis);
  ledger.registerJob(o.job.id, o.job.name, o.job.attributes, startMillis);
  const sampler = new Sampler({
    collectors,
    processes: processSource,
    intensity,
    ledger,
    nowMillis: () => Date.now(),
    idlePolicy: o.measure.idlePolicy,
    idle: o.measure.idle,
    log,
    isVisiblePid: (pid) => existsSync(`/proc/${pid}`),
  });
  for (const e of o.exporters) await e.start?.();
  let marks: MarksReader | undefined;
  let marksDir: string | undefined;
  try {
    marksDir = mkdtempSync(join(tmpdir(), "powerprint-marks-"));
    const marksPath = join(marksDir, "marks.jsonl");
    writeFileSync(marksPath, "");
    marks = new MarksReader(marksPath);
  } catch (err) {
    log.warn(`training-loop marks disabled: ${errorMessage(err)}`);
  }
  let timer: NodeJS.Timeout | undefined;
  // Fail-open: nothing a tick does may reject (an unhandled rejection would kill powerprint and
  // orphan the command), so every step is guarded and a failure is warned about once.
  const tickOnce = async () => {
    try {
      for (const m of marks?.poll() ?? []) ledger.setPhase(o.job.id, m.phase);
    } catch (err) {
      log.warnOnce("marks:read", `training-loop marks unreadable (${errorMessage(err)}): phases are no longer recorded; measuring goes on`);
      marks = undefined;
    }
    await sampler.tick();
    // A snapshot copies every job's totals: only take it when someone reads it.
    if (o.exporters.length === 0) return;
    const snap = ledger.snapshot();
    for (const e of o.exporters) {
      try {
        e.update?.(snap);
      } catch (err) {
        log.warnOnce(`export:${e.id}:update`, `${e.id}: update failed: ${errorMessage(err)} (measuring goes on)`);
      }
    }
  };
  // Ticks still running; the final tick waits for them, or it would be skipped as overlapping and
  // the last interval (up to the command's exit) lost.
  const pending = new Set<Promise<void>>();
  const tick = (): Promise<void> => {
    const p = tickOnce().catch((err: unknown) => log.warnOnce("tick", `measuring failed: ${errorMessage(err)}; the command runs on`));
    pending.add(p);
    void p.finally(() => pending.delete(p));
    return p;
  };
  const removeMarks = () => {
    if (marksDir) rmSync(marksDir, { recursive: true, force: true });
  };
  return {
    marksPath: marks?.path,
    spawnsHelpers,
    addJob(pid: number) {
      processSource.addJob(o.job.id, pid);
      sampler.noteJobDevices(o.job.id);
      void tick();
      timer = setInterval(() => void tick(), o.intervalMillis);
      timer.unref();
    },
    async abandon() {
      removeMarks();
      const snap = ledger.snapshot();
      for (const e of o.exporters) await e.shutdown(snap).catch(() => undefined);
      for (const c of collectors) await c.close().catch(() => undefined);
    },
    setFinalCpu(seconds: number) {
      finalSource.finalCpuSeconds = seconds;
    },
    async finish({ command, exitCode, reportPath, started }) {
      if (timer) clearInterval(timer);
      // Let an in-flight tick finish (its sources have their own timeouts; this bound is the safety
      // net), then take the final one, which covers the time up to the command's exit.
      if (!(await settlesWithin(Promise.all([...pending]), FINAL_TICK_WAIT_MILLIS))) {
        log.warn(`a sample still running ${FINAL_TICK_WAIT_MILLIS / 1000} s after the command exited: the figures end at the previous sample`);
      } else if (!(await settlesWithin(tick(), FINAL_TICK_WAIT_MILLIS))) {
        log.warn(`the final sample did not finish within ${FINAL_TICK_WAIT_MILLIS / 1000} s: the figures end at the previous sample`);
      }
      const final = ledger.snapshot();
      const exportFailures: Record<string, number> = {};
      await Promise.all(
        o.exporters.map(async (e) => {
          try {
            await e.shutdown(final);
          } catch (err) {
            log.warn(`${e.id}: final export failed: ${errorMessage(err)}`);
            exportFailures[`${e.id}:shutdown`] = 1;
          }
          for (const [k, n] of Object.entries(e.failures?.() ?? {})) exportFailures[k] = (exportFailures[k] ?? 0) + n;
        }),
      );
      for (const c of collectors) await c.close().catch(() => undefined);
      if (marks && (marks.malformed > 0 || marks.oversized > 0)) {
        log.warn(`training-loop marks: skipped ${marks.malformed} malformed and ${marks.oversized} oversized line(s) (expected JSON lines like {"phase": "train", "step": 1})`);
      }
      removeMarks();
      const report = buildReport(final, {
        version: version(),
        mode: "run",
        scenario: o.scenario?.name,
        command,
        exitCode,
        idlePolicy: o.measure.idlePolicy,
        pueOrigin,
        intensityDescription: intensity === resolver ? resolver.describe() : `scenario series (zone ${o.scenario?.grid?.zone ?? "scenario"})`,
        intensityZone: o.grid.zone ?? "none",
        intensitySource: intensity === resolver ? "none" : "scenario",
        fallbacks: intensity === resolver ? resolver.fallbackCounts() : {},
        ...fp.report,
        warnings: log.warnings,
        sampler: { ticks: sampler.stats.ticks, skippedTicks: sampler.stats.skippedTicks, failures: sampler.stats.collectorFailures, intervalMillis: o.intervalMillis },
        exportFailures,
        ...o.outputs.context(),
      });
      if (reportPath) writeJsonAtomic(reportPath, report);
      await o.outputs.write(report);
      // A command that never started used no energy: its summary would only show zeros next to
      // "no device could be read"; the not-found/not-executable line already said what happened.
      // -q keeps the summary (and warnings): it drops the progress messages and the live line.
      if (started) process.stderr.write(formatSummary(report, { verbose: o.verbose }) + "\n");
    },
  };
}
