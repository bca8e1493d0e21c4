import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { constants as osConstants } from "node:os";
import type { Command } from "commander";
import type { Exporter, Logger } from "../core/contracts.js";
import { cgroupWarming } from "../cgroup/warm.js";
import { declareRunFlags, runConfig, type RunConfig, type RunFlags } from "../config/run.js";
import { errorMessage } from "../errors.js";
import type { GridConfig } from "../config/grid.js";
import type { StartConfig } from "../config/start.js";
import { createStderrLogger, type StderrLogger } from "../log.js";
import { openExporters } from "../pipeline/exporters.js";
import type { RunMeasureInput, RunMeasurement } from "./run-measure.js";
import { createMarksFolder, ownChildPids, ownChildrenCpuSeconds, readSpawnBaseline, removeMarksFolder } from "./run-spawn.js";
import { checkCgroupTracking, chooseTracking, handshakeArgv, releaseJobCgroup, resolveExecutable } from "./run-cgroup.js";
import { prepareOutputs } from "./outputs.js";
import { exitAfterStderr } from "./exit.js";
import { addCommand, type CommandSpec } from "./command.js";
import { removeStaleTempFiles } from "../files.js";

const EXAMPLES = `
Examples:
  $ powerprint run -- python train.py --epochs 3
  $ powerprint run --zone DE --pue 1.2 --report run.json -- python train.py
  $ powerprint run --otlp http://collector:4318 --job-name resnet50 --tag team=vision -- torchrun train.py
  $ powerprint run --sim scenario.json --report out.json -- sleep 5
  $ powerprint run --intensity-provider uk-carbon-intensity --zone GB --start-within 6h --below 150 -- python train.py
  $ powerprint run --max-energy 2kWh --on-budget stop --csv emissions.csv --html run.html -- python train.py`;

/** The closing paragraph of run's help, wrapped to the help's width when shown (helpText). */
const BEHAVIOUR =
  "powerprint writes only to stderr; the command keeps stdin, stdout and stderr. It exits with the " +
  "command's exit code (128 + signal number when the command was killed by a signal, 127 when it " +
  "cannot be found), or 86 when --on-budget stop stopped it (a budget was crossed). If measuring " +
  "fails, powerprint warns once and the command runs on untouched. With --report, the report is " +
  'checkpointed every --checkpoint-interval ("complete": false) so a powerprint killed by SIGKILL ' +
  "loses at most that much; the command itself is left running.";

/** Examples as written (command lines do not wrap), then the paragraph wrapped as commander wraps option text. */
function helpText(context: { command: Command }): string {
  // Commander's own width: the terminal's columns, else 80.
  const width = process.stdout.isTTY ? process.stdout.columns : 80;
  return `${EXAMPLES}\n\n${context.command.createHelp().boxWrap(BEHAVIOUR, width)}`;
}

/** `powerprint run [options] -- <command...>` */
export function registerRunCommand(program: Command): void {
  const spec = {
    name: "run",
    summary: "run a command and measure the energy, carbon, water and cost of its process tree",
    description: "Run COMMAND (no shell) and measure the energy its process tree uses on this host's GPUs, CPUs and memory.",
    usage: "[options] -- <command...>",
    argument: ["[command...]", "the command to run and its arguments (put them after --)"],
    helpAfter: helpText,
    passThrough: true,
  } satisfies CommandSpec;
  addCommand(program, spec, declareRunFlags).action(async (command: string[], opts: RunFlags) => exitAfterStderr(await runCommand(command, opts, process.env)));
}

/** Signal numbers for the exit code (128 + n). */
function signalNumber(signal: NodeJS.Signals): number {
  return (osConstants.signals as Record<string, number>)[signal] ?? 0;
}

/** Carbon-aware start: waits for a low-intensity slot (--start-within), never fatal at run time. */
async function carbonAwareStart(start: StartConfig | undefined, grid: GridConfig, log: Logger): Promise<void> {
  if (start === undefined) return;
  try {
    const { createProviderFromConfig } = await import("../grid/config.js");
    const provider = createProviderFromConfig(grid, {});
    // startConfig took only a live provider with a zone: a provider is there.
    if (!provider) throw new Error("no forecast provider");
    const { waitForStart } = await import("../grid/schedule.js");
    await waitForStart({
      provider,
      zone: grid.zone ?? "",
      withinMillis: start.withinMillis,
      below: start.belowGramsPerKwh,
      profile: start.profile,
      log,
      // A ref'd timer: while waiting, nothing else keeps the process alive.
      sleep: (ms) => new Promise<void>((resolve) => setTimeout(resolve, ms)),
    });
  } catch (err) {
    log.warn(`carbon-aware start failed (${errorMessage(err)}); starting now`);
  }
}

/**
 * Runs the command and measures it. Returns the exit code: the command's, or 128 + signal, or 127
 * when it cannot be started. Usage errors throw before anything is spawned. The command is spawned
 * before the hardware is probed: probing and the first readings run while it starts.
 */
export async function runCommand(command: string[], opts: RunFlags, env: NodeJS.ProcessEnv, hooks: RunHooks = {}): Promise<number> {
  // Started by the CLI's entry (src/cli/main.ts), else now: the kernel's first-migration wait
  // elapses while the CLI loads and flags are validated.
  const warming = cgroupWarming(opts.tracking);
  try {
    // Every flag and variable validated before anything runs (exit 2, nothing spawned or written).
    return await runWarmed(await runConfig(command, opts, env), env, warming, hooks);
  } finally {
    warming.stop();
  }
}

/** Runs a command of a config validated already (bench-serving's server); as runCommand. */
export async function runValidated(config: RunConfig, env: NodeJS.ProcessEnv, hooks: RunHooks = {}): Promise<number> {
  const warming = cgroupWarming(config.tracking);
  try {
    return await runWarmed(config, env, warming, hooks);
  } finally {
    warming.stop();
  }
}

/**
 * What a command built on run adds (bench-serving): exporters that read the run's snapshots, and a
 * handle to stop the job as a relayed signal would (grace period and all).
 */
export interface RunHooks {
  exporters?: Exporter[];
  onStarted?: (control: { stop: (signal: NodeJS.Signals) => void }) => void;
}

async function runWarmed(v: RunConfig, env: NodeJS.ProcessEnv, warming: { refresh(): void; stop(): void }, hooks: RunHooks): Promise<number> {
  const { command } = v;
  const log = createStderrLogger({ verbose: v.verbose, quiet: v.quiet });
  // The probe cgroup is made and removed last, only for a run that goes ahead.
  await checkCgroupTracking(v.tracking, v.cgroupPrefer);
  // Temp files of report checkpoints a SIGKILL interrupted in an earlier run.
  if (v.reportPath) removeStaleTempFiles(v.reportPath);
  let stopJob: ((signal: NodeJS.Signals) => void) | undefined;
  const outputs = prepareOutputs(v.outputs, { log, jobId: v.job.id, onStop: () => stopJob?.("SIGTERM"), liveStream: process.stderr });
  const exporters = await openExporters(v.export, { log, hostName: hostname(), job: v.job });
  exporters.push(...outputs.exporters, ...(hooks.exporters ?? []));
  await carbonAwareStart(v.start, v.grid, log);

  // From here to the signal relay installed after the spawn everything is synchronous: a SIGINT/
  // SIGTERM/SIGHUP arriving meanwhile must not kill powerprint by its default action (a command
  // started and left unsupervised, a cgroup left behind). This guard only keeps the process alive;
  // node runs signal listeners from the event loop, so the signal is dispatched once the relay is
  // in place and reaches the command. (One that arrives while a --sim world is set up, the only
  // wait in between, is relayed to the command as soon as it runs.)
  let pendingSignal: NodeJS.Signals | undefined;
  const guard = (sig: NodeJS.Signals) => void (pendingSignal ??= sig);
  const earlySignals: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
  for (const sig of earlySignals) process.on(sig, guard);

  // Made after any carbon-aware wait and with the guard in place: every path from here on either
  // hands it to the measurement (which removes it) or removes it.
  const choice = chooseTracking(v.tracking, v.cgroupPrefer, log);
  const cgroup = choice.tracking === "cgroup" ? choice.cgroup : undefined;
  const marks = createMarksFolder(log);
  const input: RunMeasureInput = { config: v, log, exporters, reportContext: outputs.context, onReport: (r) => outputs.write(r), cgroup, marks };
  // A simulated world (--sim) is set up before the spawn, its devices read at once, so its run is
  // covered edge to edge; real hardware is probed after the spawn, while the command starts.
  const early = v.scenario ? await prepareMeasurement(input) : undefined;

  // The final CPU correction is powerprint's own cutime growth: only sound when the command is its
  // only child from here on (helpers of the probe are accounted by RunMeasurement).
  const otherChildren = ownChildPids();
  // (With cgroup tracking the final figure is the cgroup's counter: helpers do not matter.)
  if (!cgroup && (otherChildren === undefined || otherChildren.length > 0)) {
    log.debug(`final CPU correction off: ${otherChildren === undefined ? "own children unreadable" : `helper process(es) ${otherChildren.join(", ")} still running`}`);
  }
  const childCpuBaseline = otherChildren?.length === 0 ? ownChildrenCpuSeconds() : undefined;
  const childEnv = marks ? { ...env, POWERPRINT_MARKS: marks.path } : env;
  // Into the job's cgroup through the handshake of run-cgroup.ts; a command that does not resolve
  // is spawned as is, so its ENOENT/EACCES keeps run's own message and exit code.
  const wrap = cgroup !== undefined && resolveExecutable(command[0], childEnv.PATH) !== undefined;
  // The command starts before the measuring pipeline is even loaded (issue 10: start at once);
  // what the first interval needs is read here, just before the spawn.
  const baseline = readSpawnBaseline(cgroup, v.collectors.root);
  if (wrap) warming.refresh();
  const argv = wrap ? handshakeArgv(command) : command;
  const child = spawn(argv[0], argv.slice(1), { stdio: wrap ? ["inherit", "inherit", "inherit", "pipe"] : "inherit", shell: false, env: childEnv });
  // The shell waits on fd 3: it is moved into the cgroup before the command can run (or fork).
  const cgroupMove = wrap && child.pid !== undefined ? cgroup.add(child.pid) : undefined;
  warming.stop();
  // Whatever happened above, fd 3 is closed here, so the command always runs.
  if (wrap) (child.stdio[3] as import("node:stream").Duplex | null)?.destroy();
  let measuring: RunMeasurement | undefined = early;
  const supervisor = superviseChild(child, command, v.graceMillis, log, {
    jobPids: () => {
      if (child.pid === undefined) return [];
      if (measuring) return measuring.jobPids(child.pid);
      return [...new Set([child.pid, ...(cgroupMove?.status === "ok" ? cgroup?.pids() ?? [] : [])])];
    },
    killTree: () => {
      if (measuring) return measuring.killJob();
      if (cgroupMove?.status !== "ok" || !cgroup) return false;
      void cgroup.kill().catch(() => undefined);
      return true;
    },
  });
  // A budget crossed with --on-budget stop: the job is stopped as a relayed signal would (SIGKILL after the grace).
  stopJob = (signal) => supervisor.stop(signal);
  hooks.onStarted?.({ stop: (signal) => supervisor.stop(signal) });
  // superviseChild's relay is installed synchronously above; the guard can go.
  for (const sig of earlySignals) process.off(sig, guard);
  if (pendingSignal) supervisor.stop(pendingSignal);

  // ---- measurement, set up while the command starts (fail-open: a failure only disables it) ----
  if (!v.scenario) measuring = await prepareMeasurement({ ...input, baseline });
  if (measuring && child.pid !== undefined) {
    try {
      measuring.onSpawn(child.pid, childCpuBaseline, cgroupMove);
    } catch (err) {
      log.warn(`measurement disabled: ${errorMessage(err)}; the command runs unmeasured`);
      measuring = undefined;
    }
  }
  const outcome = await supervisor.outcome;
  // Measuring was disabled after the cgroup and the marks folder were made: nobody else removes them.
  if (!measuring) await releaseUnmeasured(cgroup, marks, log);

  if (measuring) {
    try {
      measuring.noteExit();
      measuring.setFinalCpu(childCpuBaseline);
      await measuring.finish({ exitCode: outcome.exitCode, started: outcome.started });
    } catch (err) {
      log.warn(`could not finish measuring: ${errorMessage(err)}`);
    }
  }
  return outputs.exitCode(outcome.exitCode);
}

/**
 * The measuring side, loaded and set up (run-measure.ts and the pipeline it imports load here,
 * after the spawn). undefined, warned, when it cannot be: the command runs unmeasured.
 */
async function prepareMeasurement(input: RunMeasureInput): Promise<RunMeasurement | undefined> {
  try {
    const { RunMeasurement } = await import("./run-measure.js");
    return await RunMeasurement.prepare(input);
  } catch (err) {
    input.log.warn(`measurement disabled: ${errorMessage(err)}; the command runs unmeasured`);
    return undefined;
  }
}

/** Removes the job cgroup and the marks folder when no measurement owns them. */
async function releaseUnmeasured(cgroup: import("../cgroup/job.js").JobCgroup | undefined, marks: ReturnType<typeof createMarksFolder>, log: Logger): Promise<void> {
  removeMarksFolder(marks, log);
  if (cgroup) await releaseJobCgroup(cgroup, log).catch(() => undefined);
}

/** Whether `pid` is a live (not zombie) process. */
function isLive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/**
 * Relays signals; after the grace period SIGKILLs every live member of the job (the tracker's
 * membership: children that ignore SIGTERM, and those left when the root exited, included).
 * `outcome` resolves with the exit code to use; `stop(signal)` stops the job the same way from
 * inside powerprint (e.g. a budget crossed with --on-budget stop).
 */
function superviseChild(
  child: ChildProcess,
  command: string[],
  graceMillis: number,
  log: StderrLogger,
  hooks: { jobPids: () => number[]; killTree: () => boolean },
): { outcome: Promise<{ exitCode: number; started: boolean }>; stop: (signal: NodeJS.Signals) => void } {
  let stop: (signal: NodeJS.Signals) => void = () => undefined;
  const outcome = new Promise<{ exitCode: number; started: boolean }>((resolve) => {
    let settled = false;
    let exitCode: number | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    let members: number[] = [];
    let graceOver = false;
    const killAll = (signal: NodeJS.Signals) => {
      // Membership refreshed now (new descendants found), and as it was at the signal.
      const pids = [...new Set([...hooks.jobPids(), ...members])].filter(isLive);
      if (pids.length > 0) log.warn(`${command[0]}: ${pids.length} process(es) of the job still alive ${graceMillis / 1000} s after ${signal}: sending SIGKILL to all`);
      // Its own cgroup reaches every member, also those that left the tree (setsid, double fork).
      if (pids.length > 0 && hooks.killTree()) return;
      for (const pid of pids) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          /* already gone */
        }
      }
    };
    const relay = (signal: NodeJS.Signals) => {
      if (exitCode === undefined && child.exitCode === null && child.signalCode === null) {
        try {
          child.kill(signal);
        } catch {
          /* already gone */
        }
      }
      if (!killTimer) {
        // Membership as of the signal: the root may exit and leave its children (reparented) running.
        members = hooks.jobPids();
        killTimer = setTimeout(() => {
          graceOver = true;
          killAll(signal);
          if (exitCode !== undefined) done(exitCode);
        }, graceMillis);
      }
    };
    const signals: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
    for (const s of signals) process.on(s, relay);
    // Stopping the job from inside (a budget crossed): as for a relayed signal, grace and all.
    stop = relay;
    let started = false;
    const done = (code: number) => {
      if (settled) return;
      settled = true;
      if (killTimer) clearTimeout(killTimer);
      for (const s of signals) process.off(s, relay);
      resolve({ exitCode: code, started });
    };
    child.once("spawn", () => {
      started = true;
    });
    child.once("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") {
        log.error(`command not found: ${command[0]} (check the name and your PATH)`);
        done(127);
      } else if (err.code === "EACCES") {
        log.error(`permission denied: ${command[0]} is not executable`);
        done(126);
      } else {
        log.error(`cannot run ${command[0]}: ${err.message}`);
        done(127);
      }
    });
    child.once("exit", (code, signal) => {
      exitCode = code !== null ? code : signal ? 128 + signalNumber(signal) : 1;
      // After a relayed signal, members the root left behind get the rest of the grace period.
      if (killTimer && !graceOver && hooks.jobPids().some((p) => p !== child.pid && isLive(p))) return;
      done(exitCode);
    });
  });
  return { outcome, stop: (signal) => stop(signal) };
}
