/**
 * How `powerprint run` tracks the wrapped job (issue 10, item 2): in a cgroup of its own where
 * powerprint can create one (root, or a delegated cgroup2 subtree), else by walking /proc as before.
 *
 * The command enters the cgroup through a handshake, not `JobCgroup.wrapCommand`: powerprint
 * spawns `/bin/sh -c 'read _ <&3; exec 3<&- "$@"' sh COMMAND...`, moves the shell's PID into the
 * cgroup (JobCgroup.add, a synchronous write whose result we see) and then closes fd 3, which lets
 * the shell exec the command. So (a) not even the command's first instruction, let alone its first
 * fork, runs outside the cgroup (adding the PID after a plain spawn would race the command's own
 * forks: libuv's spawn returns after exec); (b) unlike `echo $$ > cgroup.procs && exec`, a move the
 * kernel refuses (a delegated subtree without write access to the common ancestor) is seen by
 * powerprint, which then tracks by /proc from the first instruction on, and it never stops the
 * command from running (powerprint dying closes fd 3 too, and `read` failing still execs). A command
 * that does not resolve on PATH is spawned directly, unwrapped: the shell would turn ENOENT/EACCES
 * into its own exit 127 and message, and the user keeps run's "command not found" line and 127/126.
 */
import { accessSync, constants, existsSync, readdirSync, rmdirSync, statSync } from "node:fs";
import { delimiter, join } from "node:path";
import type { Logger } from "../core/contracts.js";
import { createJobCgroup, jobCgroupParents, type JobCgroup } from "../cgroup/job.js";
import type { CgroupPrefer, TrackingMode } from "../config/run.js";
import { UsageError } from "../errors.js";

/** What a run tracks its job with. */
export type TrackingChoice = { tracking: "cgroup"; cgroup: JobCgroup } | { tracking: "procfs"; reason: string };

const required = (reason: string): UsageError =>
  new UsageError("--tracking", `cgroup: ${reason}; run as root or in a delegated cgroup2 subtree, or use --tracking auto or procfs`);

/**
 * Checks, before anything runs, that `--tracking cgroup` can be honoured: creates a job cgroup and
 * removes it at once (an empty cgroup's rmdir is immediate). The real one is made just before the
 * spawn (after any carbon-aware wait, so a powerprint interrupted meanwhile leaves none behind).
 */
export async function checkCgroupTracking(mode: TrackingMode, prefer: CgroupPrefer): Promise<void> {
  if (mode !== "cgroup") return;
  const r = createJobCgroup({ prefer });
  if (r.status !== "ok") throw required(r.reason);
  await r.cgroup.remove({ timeoutMillis: 1000 });
}

/** The job's tracking, decided just before the spawn. `--tracking cgroup` impossible: UsageError. */
export function chooseTracking(mode: TrackingMode, prefer: CgroupPrefer, log: Logger): TrackingChoice {
  if (mode === "procfs") return { tracking: "procfs", reason: "--tracking procfs" };
  const r = createJobCgroup({ prefer });
  if (r.status === "ok") {
    log.debug(`job tracking: cgroup v${r.cgroup.version} ${r.cgroup.dir}; memory: ${r.cgroup.memory ? `v${r.cgroup.memory.version} ${r.cgroup.memory.dir}` : r.cgroup.memoryNote}`);
    for (const parent of jobCgroupParents(r.cgroup)) sweepStaleJobCgroups(parent, log);
    return { tracking: "cgroup", cgroup: r.cgroup };
  }
  if (mode === "cgroup") throw required(r.reason);
  // Said once, briefly (not a warning: /proc tracking is the normal case for a non-root user); the
  // whole reason (every place tried) in --verbose.
  const brief = /EACCES|EPERM|EROFS/.test(r.reason) ? "no permission to create a cgroup" : r.reason;
  log.info(`job tracked by /proc (${brief}): a daemon it double-forks between two ticks can be missed`);
  log.debug(`job cgroup: ${r.reason}`);
  return { tracking: "procfs", reason: r.reason };
}

/**
 * Removes the job cgroups that powerprints killed by SIGKILL left behind (no cleanup ran): named
 * `powerprint-<pid>-<n>`, their PID gone, and empty. rmdir only ever removes an empty cgroup, so a
 * cgroup still holding a job's processes is left alone (never harms a job). Best effort.
 */
export function sweepStaleJobCgroups(parent: string, log: Logger): void {
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^powerprint-(\d+)-\d+$/.exec(name);
    if (!m || Number(m[1]) === process.pid || existsSync(`/proc/${m[1]}`)) continue;
    try {
      rmdirSync(join(parent, name));
      log.debug(`removed ${join(parent, name)}, left by a powerprint (pid ${m[1]}) that was killed`);
    } catch {
      // still populated (its job runs on), or someone else removed it first
    }
  }
}

/**
 * The executable `name` resolves to as the spawn would find it (PATH of the child's environment;
 * a name with a slash as is), or undefined when nothing executable is there.
 */
export function resolveExecutable(name: string, pathVariable: string | undefined): string | undefined {
  const candidates = name.includes("/") ? [name] : (pathVariable ?? "").split(delimiter).map((d) => join(d === "" ? "." : d, name));
  for (const c of candidates) {
    try {
      if (!statSync(c).isFile()) continue;
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // not there or not executable: the next directory
    }
  }
  return undefined;
}

/** argv of the handshake wrapper (see the module comment); fd 3 must be a pipe powerprint closes. */
export function handshakeArgv(command: readonly string[]): string[] {
  return ["/bin/sh", "-c", 'read _ <&3; exec 3<&- "$@"', "sh", ...command];
}

/**
 * The end of a cgroup-tracked job (after the final sample): removes the cgroup once its members are
 * gone. Members left without a grace kill (the job started a daemon and exited) are the user's
 * processes: powerprint never kills them unasked; it says so once and leaves the cgroup to them.
 */
export async function releaseJobCgroup(cgroup: JobCgroup, log: Logger): Promise<void> {
  const left = cgroup.pids();
  if (left.length > 0) {
    log.warn(
      `the command left ${left.length} process(es) running (PID ${left.slice(0, 5).join(", ")}${left.length > 5 ? ", ..." : ""}): not killed; ` +
        `their CPU after the exit is not measured, and their cgroup ${cgroup.dir} stays until they exit (then: rmdir ${cgroup.dir})`,
    );
    return;
  }
  // Members that just exited leave the cgroup as the kernel releases them: remove() retries a moment.
  if (!(await cgroup.remove({ timeoutMillis: 5000 }))) log.warn(`could not remove the job's cgroup ${cgroup.dir} (remove it with rmdir)`);
}
