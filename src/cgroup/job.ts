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
 *
 * Memory: the job's resident memory is one memory.stat read when its memory is in a cgroup of its
 * own too (JobCgroup.memory): the job cgroup itself on cgroup2 when the memory controller is enabled
 * there; else, on a hybrid or v1 machine (memory bound to the v1 `memory` hierarchy, as on this
 * project's dev machines), a second cgroup of the same name in the v1 `memory` hierarchy, made as a
 * child of powerprint's own memory cgroup (so the job stays under whatever memory limit powerprint
 * runs under). add(), wrapCommand(), kill() and remove() handle both; where neither is possible,
 * `memory` is undefined and `memoryNote` says why (the job source then reads the members' RSS).
 */
import { accessSync, constants, existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { dirname, join, posix } from "node:path";
import { errorMessage } from "../errors.js";
import { CgroupReader } from "./fs.js";
import { readCgroupMounts, relativeTo, type CgroupMounts } from "./mounts.js";
import { parseProcCgroup, type CgroupVersion, type ProcCgroupLine } from "./path.js";

/** One job cgroup. Methods never throw for a vanished cgroup or process. */
export interface JobCgroup {
  readonly version: CgroupVersion;
  /** Directory of the cgroup on this machine, e.g. "/sys/fs/cgroup/unified/powerprint-42-1". */
  readonly dir: string;
  /**
   * Where the job's memory is accounted (its memory.stat): `dir` itself (cgroup2 with the memory
   * controller on), or the job's cgroup in the v1 `memory` hierarchy. undefined when neither (see
   * memoryNote), or once a member could not be moved there (its figure would then miss that member).
   */
  readonly memory: { version: CgroupVersion; dir: string } | undefined;
  /** Why `memory` is undefined (for a debug line); undefined when it is set. */
  readonly memoryNote: string | undefined;
  /**
   * Moves a process (and so all it will fork) into the cgroup, and into the job's v1 memory cgroup
   * when there is one. One answer for both: "error" only when the process could not be moved into
   * the job cgroup (`dir`; then it was moved nowhere). A refused move into the memory cgroup alone
   * does not fail the job's tracking: `memory` becomes undefined from then on (memoryNote says why)
   * and the process is in the job cgroup as asked.
   */
  add(pid: number): { status: "ok" } | { status: "error"; reason: string };
  /**
   * argv that enters the cgroup (and the v1 memory cgroup, when there is one) before exec'ing `argv`
   * (`sh -c 'echo $$ > cgroup.procs && exec "$@"'`), so not even the command's first fork happens
   * outside it; a refused move stops the command (the shell exits 1, nothing runs). Use instead of
   * add() after spawning.
   */
  wrapCommand(argv: readonly string[]): string[];
  /** Cumulative CPU seconds of everything that ran in the cgroup (exited processes included). */
  cpuSeconds(): number | undefined;
  /** PIDs in the cgroup now. */
  pids(): number[];
  /** Memory charged to the job, bytes (memory.current / v1 memory.usage_in_bytes of `memory`); undefined without `memory`. */
  memoryBytes(): number | undefined;
  /**
   * Kills every member: `cgroup.kill` on cgroup2 (kernel ≥ 5.14), else SIGKILL to each PID in
   * cgroup.procs, repeated until the cgroup is empty (a member forking meanwhile is caught on the
   * next pass) or `timeoutMillis` (default 5 s) passes. Returns how many remain (0: all gone).
   */
  kill(opts?: { timeoutMillis?: number }): Promise<{ remaining: number; method: "cgroup.kill" | "signal" }>;
  /** Removes the cgroup, and the v1 memory cgroup, once empty (rmdir, retried while members exit). true when both are gone. */
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
  /**
   * Whether to give the job's memory a cgroup too where cgroup2 lacks the memory controller (a
   * cgroup in the v1 `memory` hierarchy, see the module comment). Default true.
   */
  memory?: boolean;
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
    const name = `powerprint-${selfPid}-${++sequence}`;
    const dir = join(c.parent, name);
    const made = makeCgroupDir(dir);
    if (made !== undefined) {
      failures.push(made);
      continue;
    }
    const memory = opts.memory === false ? { note: "not asked for (memory: false)" } : memoryCgroup(c.version, dir, name, mounts, own);
    return { status: "ok", cgroup: makeJobCgroup(c.version, dir, memory) };
  }
  return { status: "unavailable", reason: `cannot create a cgroup (${failures.join("; ")})` };
}

/** mkdir of a cgroup whose cgroup.procs we may write; undefined when made, else why not (nothing left behind). */
function makeCgroupDir(dir: string): string | undefined {
  try {
    mkdirSync(dir);
    accessSync(join(dir, "cgroup.procs"), constants.W_OK);
    return undefined;
  } catch (err) {
    try {
      rmdirSync(dir);
    } catch {
      // never made
    }
    return `${dir}: ${errorMessage(err)}`;
  }
}

type MemoryPlace = { version: CgroupVersion; dir: string; own: boolean } | { note: string };

/**
 * Where the job's memory is accounted: the job cgroup itself when it has memory.stat (cgroup2 with
 * the memory controller enabled by the parent), else a same-named child of our own cgroup in the
 * v1 `memory` hierarchy (made here: `own`), else nowhere, with the reason.
 */
function memoryCgroup(version: CgroupVersion, dir: string, name: string, mounts: CgroupMounts, own: ProcCgroupLine[]): MemoryPlace {
  if (version === 2 && existsSync(join(dir, "memory.stat"))) return { version: 2, dir, own: false };
  const v1 = mounts.v1.get("memory");
  if (!v1) return { note: version === 2 ? "no memory controller on the job's cgroup2 and no v1 memory hierarchy mounted" : "no v1 memory hierarchy mounted" };
  const line = own.find((l) => l.version === 1 && l.controllers.includes("memory"));
  const memDir = join(v1.mountPoint, relativeTo(v1.root, line?.path ?? "/"), name);
  const failed = makeCgroupDir(memDir);
  return failed === undefined ? { version: 1, dir: memDir, own: true } : { note: `cannot create a v1 memory cgroup (${failed})` };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** rmdir of a cgroup, retried while it is busy (members still exiting) until `deadline`; true when gone. */
async function rmdirWait(path: string, deadline: number): Promise<boolean> {
  for (let pass = 0; ; pass++) {
    try {
      rmdirSync(path);
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return true;
      if (code !== "EBUSY" || Date.now() >= deadline) return false;
    }
    await sleep(Math.min(50, 2 + pass * 5));
  }
}

function makeJobCgroup(version: CgroupVersion, dir: string, place: MemoryPlace): JobCgroup {
  const reader = new CgroupReader();
  const procsFile = join(dir, "cgroup.procs");
  const pids = (): number[] => reader.procs(dir, version) ?? [];
  // The v1 memory cgroup made for the job (removed with it), and whether it still holds every member.
  const ownMemoryDir = "own" in place && place.own ? place.dir : undefined;
  let memory = "dir" in place ? { version: place.version, dir: place.dir } : undefined;
  let memoryNote = "note" in place ? place.note : undefined;
  return {
    version,
    dir,
    get memory() {
      return memory;
    },
    get memoryNote() {
      return memoryNote;
    },
    add(pid) {
      try {
        writeFileSync(procsFile, String(pid));
      } catch (err) {
        return { status: "error", reason: `moving PID ${pid} into ${dir}: ${errorMessage(err)}` };
      }
      if (ownMemoryDir !== undefined && memory !== undefined) {
        try {
          writeFileSync(join(ownMemoryDir, "cgroup.procs"), String(pid));
        } catch (err) {
          // Its memory would be missing from the cgroup's figure: no cgroup memory figure from now on.
          memory = undefined;
          memoryNote = `moving PID ${pid} into the v1 memory cgroup ${ownMemoryDir}: ${errorMessage(err)}`;
        }
      }
      return { status: "ok" };
    },
    wrapCommand(argv) {
      if (ownMemoryDir === undefined || memory === undefined) return ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', procsFile, ...argv];
      return ["/bin/sh", "-c", 'echo $$ > "$0" && echo $$ > "$1" && shift && exec "$@"', procsFile, join(ownMemoryDir, "cgroup.procs"), ...argv];
    },
    cpuSeconds: () => reader.cpuSeconds(dir, version),
    pids,
    memoryBytes: () => (memory === undefined ? undefined : reader.memoryBytes(memory.dir, memory.version)),
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
      // Both, even when the first fails (a member that never entered the job cgroup but sits in the
      // memory one is impossible through add/wrapCommand; rmdir only ever removes an empty cgroup).
      const main = await rmdirWait(dir, deadline);
      const mem = ownMemoryDir === undefined ? true : await rmdirWait(ownMemoryDir, deadline);
      return main && mem;
    },
  };
}

/** The directory that holds a job cgroup (for diagnostics). */
export const jobCgroupParent = (cgroup: JobCgroup): string => dirname(cgroup.dir);

/**
 * Every directory that holds a cgroup of this job: the job cgroup's parent, and the v1 memory
 * cgroup's when there is one (where a killed powerprint's leftovers are swept).
 */
export const jobCgroupParents = (cgroup: JobCgroup): string[] => {
  const out = [dirname(cgroup.dir)];
  if (cgroup.memory && cgroup.memory.dir !== cgroup.dir) out.push(dirname(cgroup.memory.dir));
  return out;
};
