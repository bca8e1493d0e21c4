/**
 * A cgroup of powerprint's own for one wrapped job (issue 10, item 2): every descendant of the job
 * stays in it whatever it does (double fork, setsid), its CPU time is one kernel counter read, and
 * killing it reaches the whole tree.
 *
 * Where it is made, in order: cgroup2 under `base` (a delegated subtree, e.g. a systemd user
 * scope's), else next to powerprint's own cgroup (under its parent; under the root when powerprint
 * sits in the root); else the v1 `cpuacct` hierarchy under powerprint's own cpuacct cgroup. The
 * name is `powerprint-<pid>-<n>`. Creating needs write access there (root, or a delegated
 * subtree); anything else is `{ status: "unavailable", reason }` and the caller tracks by /proc.
 */
import { accessSync, constants, existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { dirname, join, posix } from "node:path";
import { errorMessage } from "../errors.js";
import { CgroupReader } from "./fs.js";
import { readCgroupMounts } from "./mounts.js";
import { parseProcCgroup, type CgroupVersion } from "./path.js";

/** One job cgroup. Methods never throw for a vanished cgroup or process. */
export interface JobCgroup {
  readonly version: CgroupVersion;
  /** Directory of the cgroup on this machine, e.g. "/sys/fs/cgroup/unified/powerprint-42-1". */
  readonly dir: string;
  /** Moves a process (and so all it will fork) into the cgroup. */
  add(pid: number): { status: "ok" } | { status: "error"; reason: string };
  /**
   * argv that enters the cgroup before exec'ing `argv` (`sh -c 'echo $$ > cgroup.procs && exec "$@"'`),
   * so not even the command's first fork happens outside it. Use instead of add() after spawning.
   */
  wrapCommand(argv: readonly string[]): string[];
  /** Cumulative CPU seconds of everything that ran in the cgroup (exited processes included). */
  cpuSeconds(): number | undefined;
  /** PIDs in the cgroup now. */
  pids(): number[];
  /** Memory charged, bytes (cgroup2 only: the v1 job cgroup lives in cpuacct alone). */
  memoryBytes(): number | undefined;
  /**
   * Kills every member: `cgroup.kill` on cgroup2 (kernel ≥ 5.14), else SIGKILL to each PID in
   * cgroup.procs, repeated until the cgroup is empty (a member forking meanwhile is caught on the
   * next pass) or `timeoutMillis` (default 5 s) passes. Returns how many remain (0: all gone).
   */
  kill(opts?: { timeoutMillis?: number }): Promise<{ remaining: number; method: "cgroup.kill" | "signal" }>;
  /** Removes the cgroup once empty (rmdir, retried while members exit). true when removed. */
  remove(opts?: { timeoutMillis?: number }): Promise<boolean>;
}

/** Result of createJobCgroup. */
export type JobCgroupResult = { status: "ok"; cgroup: JobCgroup } | { status: "unavailable"; reason: string };

/** Options of createJobCgroup. */
export interface CreateJobCgroupOptions {
  /** Filesystem root holding proc/ (for mountinfo and /proc/self/cgroup). Default "/". */
  root?: string;
  /** Which hierarchy to try first; "auto" (default) is v2 then v1. "v2"/"v1" try only that one. */
  prefer?: "auto" | "v2" | "v1";
  /** A delegated cgroup2 directory to create under (tried first). */
  base?: string;
  /** PID whose own cgroup the new one is placed next to. Default process.pid. */
  selfPid?: number;
}

let sequence = 0;

/** Creates a job cgroup, or says why it cannot. Never throws. */
export function createJobCgroup(opts: CreateJobCgroupOptions = {}): JobCgroupResult {
  const root = opts.root ?? "/";
  const selfPid = opts.selfPid ?? process.pid;
  const prefer = opts.prefer ?? "auto";
  const mounts = readCgroupMounts({ procRoot: root });
  let own: ReturnType<typeof parseProcCgroup> = [];
  try {
    own = parseProcCgroup(readFileSync(join(root, "proc", String(selfPid), "cgroup"), "utf8"));
  } catch {
    // no /proc/PID/cgroup: no cgroups at all, said below
  }
  const candidates: { version: CgroupVersion; parent: string }[] = [];
  if (prefer !== "v1") {
    if (opts.base) candidates.push({ version: 2, parent: opts.base });
    const v2 = mounts.v2;
    const line = own.find((l) => l.version === 2);
    if (v2 && line) {
      const rel = relativeTo(v2.root, line.path);
      candidates.push({ version: 2, parent: join(v2.mountPoint, rel === "/" ? "/" : posix.dirname(rel)) });
    }
  }
  if (prefer !== "v2") {
    const v1 = mounts.v1.get("cpuacct");
    const line = own.find((l) => l.version === 1 && l.controllers.includes("cpuacct"));
    if (v1) candidates.push({ version: 1, parent: join(v1.mountPoint, relativeTo(v1.root, line?.path ?? "/")) });
  }
  if (candidates.length === 0) {
    return { status: "unavailable", reason: `no ${prefer === "v1" ? "cgroup v1 cpuacct" : prefer === "v2" ? "cgroup2" : "cgroup2 or v1 cpuacct"} hierarchy mounted` };
  }
  const failures: string[] = [];
  for (const c of candidates) {
    const dir = join(c.parent, `powerprint-${selfPid}-${++sequence}`);
    try {
      mkdirSync(dir);
      accessSync(join(dir, "cgroup.procs"), constants.W_OK);
      return { status: "ok", cgroup: makeJobCgroup(c.version, dir) };
    } catch (err) {
      failures.push(`${dir}: ${errorMessage(err)}`);
      try {
        rmdirSync(dir);
      } catch {
        // never made
      }
    }
  }
  return { status: "unavailable", reason: `cannot create a cgroup (${failures.join("; ")})` };
}

/** `path` (as /proc/PID/cgroup shows it) relative to a mount whose root is `mountRoot`. */
function relativeTo(mountRoot: string, path: string): string {
  if (mountRoot === "/" || mountRoot === "") return path;
  return path.startsWith(mountRoot) ? path.slice(mountRoot.length) || "/" : path;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function makeJobCgroup(version: CgroupVersion, dir: string): JobCgroup {
  const reader = new CgroupReader();
  const procsFile = join(dir, "cgroup.procs");
  const pids = (): number[] => reader.procs(dir, version) ?? [];
  return {
    version,
    dir,
    add(pid) {
      try {
        writeFileSync(procsFile, String(pid));
        return { status: "ok" };
      } catch (err) {
        return { status: "error", reason: `moving PID ${pid} into ${dir}: ${errorMessage(err)}` };
      }
    },
    wrapCommand(argv) {
      return ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', procsFile, ...argv];
    },
    cpuSeconds: () => reader.cpuSeconds(dir, version),
    pids,
    memoryBytes: () => (version === 2 ? reader.memoryBytes(dir, 2) : undefined),
    async kill(opts = {}) {
      const deadline = Date.now() + (opts.timeoutMillis ?? 5000);
      const killFile = join(dir, "cgroup.kill");
      const method = version === 2 && existsSync(killFile) ? "cgroup.kill" : "signal";
      for (let pass = 0; ; pass++) {
        const members = pids();
        if (members.length === 0) return { remaining: 0, method };
        if (method === "cgroup.kill") {
          try {
            writeFileSync(killFile, "1");
          } catch {
            // the cgroup went away meanwhile: the next read says so
          }
        } else {
          for (const pid of members) {
            try {
              process.kill(pid, "SIGKILL");
            } catch {
              // already gone (ESRCH)
            }
          }
        }
        if (Date.now() >= deadline) return { remaining: pids().length, method };
        // Members leave the cgroup as the kernel reaps their exit: give it a moment, then look again.
        await sleep(Math.min(50, 2 + pass * 5));
      }
    },
    async remove(opts = {}) {
      const deadline = Date.now() + (opts.timeoutMillis ?? 5000);
      for (let pass = 0; ; pass++) {
        try {
          rmdirSync(dir);
          return true;
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === "ENOENT") return true;
          if (code !== "EBUSY" || Date.now() >= deadline) return false;
        }
        await sleep(Math.min(50, 2 + pass * 5));
      }
    },
  };
}

/** The directory that holds a job cgroup (for diagnostics). */
export const jobCgroupParent = (cgroup: JobCgroup): string => dirname(cgroup.dir);
