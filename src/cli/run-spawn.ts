/**
 * What `powerprint run` does before and at the spawn, kept apart from the measuring pipeline
 * (run-measure.ts, loaded only once the command runs) so the command starts at once (issue 10,
 * item 1): powerprint's own reaped-children CPU, its live children, the marks folder handed to
 * the command in POWERPRINT_MARKS, and the process figures read at the spawn (the first
 * interval's baseline). Only node: built-ins and the small /proc reader are imported here.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Logger } from "../core/contracts.js";
import { errorMessage } from "../errors.js";
import { readHostCpu } from "../procfs/reader.js";
import { readRaplCountersNow } from "../../collectors/rapl-counters.js";

/**
 * Powerprint's own reaped-children CPU seconds (cutime + cstime of /proc/self/stat): the
 * kernel's figure for the wrapped command once reaped.
 */
export function ownChildrenCpuSeconds(): number | undefined {
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
 * PIDs of powerprint's own live (or unreaped) children: from /proc/self/task/TID/children, else
 * (kernel without CONFIG_PROC_CHILDREN) by scanning /proc for our PID as parent; undefined when
 * /proc is unreadable.
 */
export function ownChildPids(): number[] | undefined {
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

/** The process figures at the spawn: the first interval's baseline (the measurement is set up after). */
export interface SpawnBaseline {
  /** performance.now() just before the spawn, ms. */
  monotonicMillis: number;
  /** Date.now() just before the spawn, ms (the job's start in the ledger). */
  wallMillis: number;
  /** Host busy/total CPU seconds from /proc/stat just before the spawn (undefined: unreadable). */
  hostBusyCpuSeconds?: number;
  hostTotalCpuSeconds?: number;
  /** The job cgroup's CPU counter just before the spawn, s (0 for a fresh cgroup; undefined without one). */
  cgroupCpuSeconds?: number;
  /**
   * RAPL energy counters just before the spawn (energy_uj path → µJ; empty without RAPL): the
   * collector, set up after the spawn, counts the run's head from them (issue 10: edge to edge).
   */
  raplMicrojoules: Map<string, number>;
}

/**
 * Reads the spawn baseline: one /proc/stat read, one cgroup counter read, one read per RAPL zone
 * under `sysRoot` (POWERPRINT_SYSFS_ROOT; none on a host without powercap). Call just before spawn().
 */
export function readSpawnBaseline(cgroup?: { cpuSeconds(): number | undefined }, sysRoot = "/"): SpawnBaseline {
  const host = readHostCpu("/");
  const raplMicrojoules = readRaplCountersNow(sysRoot);
  return {
    raplMicrojoules,
    monotonicMillis: performance.now(),
    wallMillis: Date.now(),
    ...(host && { hostBusyCpuSeconds: host.busyCpuSeconds, hostTotalCpuSeconds: host.totalCpuSeconds }),
    ...(cgroup && { cgroupCpuSeconds: cgroup.cpuSeconds() ?? 0 }),
  };
}

/** A marks folder left by a killed powerprint is removed once idle this long, ms. */
const STALE_MARKS_MILLIS = 60 * 60_000;
const MARKS_PREFIX = "powerprint-marks-";

/** The training-loop marks file of one run (POWERPRINT_MARKS) and its private folder. */
export interface MarksFolder {
  dir: string;
  path: string;
}

/**
 * Creates the run's marks folder and empty marks file (before the spawn: the command gets the path
 * in its environment). undefined, warned, when the temp folder is not writable (the run goes on
 * without phases).
 */
export function createMarksFolder(log: Logger): MarksFolder | undefined {
  try {
    // The PID in the name lets a later run tell a folder whose powerprint was killed (SIGKILL).
    const dir = mkdtempSync(join(tmpdir(), `${MARKS_PREFIX}${process.pid}-`));
    const path = join(dir, "marks.jsonl");
    writeFileSync(path, "");
    return { dir, path };
  } catch (err) {
    log.warn(`training-loop marks disabled: ${errorMessage(err)}`);
    return undefined;
  }
}

/** Removes the run's marks folder (best effort). */
export function removeMarksFolder(marks: MarksFolder | undefined, log: Logger): void {
  if (!marks) return;
  try {
    rmSync(marks.dir, { recursive: true, force: true });
  } catch (err) {
    log.debug(`could not remove ${marks.dir}: ${errorMessage(err)}`);
  }
}

/**
 * Removes marks folders that killed powerprints left behind (SIGKILL runs no cleanup): those whose
 * owner PID is gone and whose marks file has not changed for STALE_MARKS_MILLIS (an orphaned job
 * may still be writing to a fresher one). Best effort, never fatal; run after the spawn.
 */
export function sweepStaleMarks(log: Logger): void {
  let names: string[];
  try {
    names = readdirSync(tmpdir());
  } catch {
    return;
  }
  const now = Date.now();
  for (const name of names) {
    const m = /^powerprint-marks-(\d+)-/.exec(name);
    if (!m || existsSync(`/proc/${m[1]}`)) continue;
    const dir = join(tmpdir(), name);
    try {
      const file = join(dir, "marks.jsonl");
      const mtime = statSync(existsSync(file) ? file : dir).mtimeMs;
      if (now - mtime < STALE_MARKS_MILLIS) continue;
      rmSync(dir, { recursive: true, force: true });
      log.debug(`removed ${dir}, left by a powerprint (pid ${m[1]}) that was killed`);
    } catch {
      /* someone else's, or already gone */
    }
  }
}
