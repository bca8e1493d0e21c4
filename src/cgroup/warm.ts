/**
 * The cgroup migration warm-up of `powerprint run` (issue 10: start the command at once), in a
 * module of its own with node built-ins and the mountinfo parser only: the CLI's entry starts it
 * as its first act, before the rest of the CLI is even loaded, and run.ts takes it over
 * (cgroupWarming()) to renew it just before the spawn and stop it after the move.
 */
import { promises as fsp, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readCgroupMounts, relativeTo } from "./mounts.js";
import { parseProcCgroup } from "./path.js";

/** A warm-up in progress. */
export interface CgroupWarming {
  /** One synchronous write now (just before the spawn). */
  refresh(): void;
  /** No more writes (idempotent). */
  stop(): void;
}

let current: CgroupWarming | undefined;

/**
 * Starts the warm-up when `argv` (process.argv) runs `powerprint run` without `--tracking procfs`
 * (the CLI entry calls this first). A no-op for every other command.
 */
export function warmForArgv(argv: readonly string[]): void {
  const args = argv.slice(2);
  const command = args.findIndex((a) => !a.startsWith("-"));
  if (command < 0 || args[command] !== "run") return;
  const end = args.indexOf("--", command);
  const runArgs = args.slice(command + 1, end < 0 ? undefined : end);
  const i = runArgs.lastIndexOf("--tracking");
  const tracking = runArgs.find((a) => a.startsWith("--tracking="))?.slice("--tracking=".length) ?? (i >= 0 ? runArgs[i + 1] : undefined);
  current ??= startWarming(tracking);
}

/** The warm-up started by the entry, else one started now for `mode` (--tracking's value). */
export function cgroupWarming(mode: unknown): CgroupWarming {
  current ??= startWarming(mode);
  return current;
}

/** Between two warming writes, ms: well under one RCU grace period, so the semaphore never goes back to its fast-path state. */
const WARM_PERIOD_MILLIS = 4;
/** Warming gives up after this long, ms (a carbon-aware wait, a slow exporter start). */
const WARM_MAX_MILLIS = 2_000;

/**
 * Takes the kernel's first-migration wait off the spawn's path. Moving a process between cgroups
 * takes cgroup_threadgroup_rwsem for writing; after a quiet spell that waits for an RCU grace
 * period (10–20 ms measured on the 2-core dev VM; bench/RESULTS.md), and the semaphore stays in
 * its writer-ready state for only about one more grace period after a writer. `run` moves its
 * command into the job cgroup while the command waits to exec, so that wait would delay the
 * command's first instruction. This migrates powerprint to the cgroup it is already in (a write of
 * its own PID to that cgroup.procs: it changes nothing; a refused write has taken the semaphore
 * too) on libuv's threadpool as `run` begins, and again every WARM_PERIOD_MILLIS until stop() (call
 * it once the job's move is done): the first wait elapses while flags are validated, and the
 * move finds the semaphore ready (refresh() just before the spawn renews it once more). Best effort: nothing is awaited, every error is ignored, it
 * stops by itself after WARM_MAX_MILLIS. Nothing is done for --tracking procfs or without cgroup2.
 */
function startWarming(mode: unknown): CgroupWarming {
  let target: string | undefined;
  if (mode !== "procfs") {
    try {
      const v2 = readCgroupMounts().v2;
      const own = parseProcCgroup(readFileSync("/proc/self/cgroup", "utf8")).find((l) => l.version === 2);
      if (v2 && own) target = join(v2.mountPoint, relativeTo(v2.root, own.path), "cgroup.procs");
    } catch {
      /* no cgroup2: the move pays the wait, nothing else changes */
    }
  }
  if (!target) return { refresh: () => undefined, stop: () => undefined };
  const file = target;
  const deadline = performance.now() + WARM_MAX_MILLIS;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const write = (): void => {
    if (stopped || performance.now() > deadline) return;
    void fsp.writeFile(file, String(process.pid)).then(
      () => {
        if (!stopped) (timer = setTimeout(write, WARM_PERIOD_MILLIS)).unref();
      },
      () => undefined, // refused or gone: give up (a refused write still took the semaphore once)
    );
  };
  write();
  return {
    // Synchronous, just before the spawn: the moments between the last timed write and the move
    // (making the cgroup, the spawn itself: a fork of this process) can outlast the window.
    refresh() {
      if (stopped) return;
      try {
        writeFileSync(file, String(process.pid));
      } catch {
        /* best effort */
      }
    },
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}

