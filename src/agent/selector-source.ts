/**
 * SelectorJobSource: `powerprint agent --mode selector`. Processes matched by `--match-cmdline
 * REGEX` (against /proc/PID/cmdline, arguments joined by spaces) or `--match-env KEY[=VALUE]`
 * (against /proc/PID/environ as at exec), either one matching (the agent and its own helpers never);
 * one job per matching process tree:
 * the tree of the topmost matching process (its matching descendants, which inherit the
 * environment, are in that tree already).
 *
 * Identity, so a job that comes back continues its counters: for an env match `KEY=value` (the
 * process's value: all trees with the same value are one job, e.g. every rank of one
 * TORCHELASTIC_RUN_ID); for a cmdline match the regex's first capture group when it has one, else
 * the root process (`cmdline:PID@START`, never reused).
 *
 * Cost: a listing of <procRoot>/proc only when the host's fork counter moved; each PID is read
 * (stat, cmdline, environ) once and remembered by (pid, start time).
 *
 * Off the loop (the agent: `offLoop`): another process's cmdline and environ can block in the
 * kernel (it takes the target's mmap lock: a process stuck in D state holding it hangs `ps`), so
 * prepare() reads them on the thread pool before each sample, each within
 * TEXT_READ_DEADLINE_MILLIS, and sample() matches from what it found: a process whose read is
 * late is left unmatched until it returns (said once), the others are matched on; at most
 * MAX_STUCK_TEXT_READS stuck reads at once (each holds a pool thread), then no new read starts
 * until one returns. Without it (probe, tests) the reads are synchronous, as they always were.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { DiscoveredJob, Logger, ProcessSample } from "../core/contracts.js";
import { DEVICE_ASSIGNMENT_VARIABLES } from "../core/sampler.js";
import { readRegularBytes, withinMillis } from "../guarded-read.js";
import { MAX_PROCESS_TEXT_BYTES, listPids, parseEnviron, parseHostStat, readEnviron, readRegularFile, uptimeTicks } from "../procfs/reader.js";
import { boundText, MAX_JOB_ID_CHARS, MAX_JOB_NAME_CHARS } from "../core/bounds.js";
import { UsageError } from "../errors.js";
import { RootedSource } from "./rooted.js";

/** What selects a process. */
export interface Selector {
  cmdline?: RegExp;
  env?: { key: string; value?: string };
}

/** Parses --match-cmdline and --match-env (UsageError naming the flag). */
export function parseSelector(o: { matchCmdline?: string; matchEnv?: string }): Selector {
  const s: Selector = {};
  if (o.matchCmdline !== undefined) {
    if (o.matchCmdline === "") throw new UsageError("--match-cmdline", "must not be empty (e.g. --match-cmdline 'python .*train\\.py')");
    try {
      s.cmdline = new RegExp(o.matchCmdline);
    } catch (err) {
      throw new UsageError("--match-cmdline", `'${o.matchCmdline}' is not a regular expression (${(err as Error).message})`);
    }
  }
  if (o.matchEnv !== undefined) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?$/s.exec(o.matchEnv);
    if (!m) throw new UsageError("--match-env", `'${o.matchEnv}' is not KEY or KEY=VALUE (e.g. --match-env TORCHELASTIC_RUN_ID)`);
    s.env = { key: m[1], ...(m[2] !== undefined ? { value: m[2] } : {}) };
  }
  return s;
}

interface Seen {
  startTicks: number;
  ppid: number;
  /** The job this process would root, null when it does not match, undefined while its texts are unread (off the loop). */
  job: DiscoveredJob | null | undefined;
  /** Looks left before a non-match is final: a fork seen before its exec shows the parent's cmdline. */
  recheck: number;
}

/** Discoveries a non-matching new process is matched again in (covers the fork → exec gap). */
const RECHECKS = 2;

const MAX_NAME_LENGTH = 64;

/** How long prepare() waits for one process's cmdline and environ, ms: past it the process stays unmatched until the read returns. */
export const TEXT_READ_DEADLINE_MILLIS = 1_000;
/** Reads past their deadline (stuck in the kernel, each holding a pool thread) beyond which no new read starts. */
export const MAX_STUCK_TEXT_READS = 2;

/** What prepare() found for one process: its match and, for a match, its device variables, by (pid, start time). */
interface Matched {
  startTicks: number;
  job: DiscoveredJob | null;
  /** DEVICE_ASSIGNMENT_VARIABLES of a matching process (a job's root): the sampler asks them when the job goes live. */
  deviceEnv?: Record<string, string>;
}

export class SelectorJobSource extends RootedSource {
  private readonly seen = new Map<number, Seen>();
  private lastForkCount: number | undefined;
  private looked = false;
  private pendingRechecks = 0;
  private firstLookTicks = Infinity;
  /** Off the loop: each listed process's match as prepare() read it, by PID. */
  private readonly matched = new Map<number, Matched>();
  /** Off the loop: processes whose read is past its deadline and has not returned (PID → start time). */
  private readonly stuck = new Map<number, number>();
  /** Matching processes not added yet: an ancestor's texts were unread then. */
  private readonly deferred = new Set<number>();
  /** Off the loop: roots of the trees added, with their job (for jobEnvironment). */
  private readonly roots = new Map<number, string>();
  /** Members of the last sample (prepare() reads no member's texts). */
  private lastMembers: { has(pid: number): boolean } = new Set<number>();

  constructor(
    private readonly o: {
      procRoot: string;
      selector: Selector;
      selfPid?: number;
      /** Read cmdline and environ on the thread pool in prepare() (the agent); absent: synchronously in sample(). */
      offLoop?: { log: Logger };
    },
  ) {
    super(o.procRoot);
  }

  /**
   * Off the loop: reads the command line and environment of each process the next sample() will
   * match (new ones, and non-matches still rechecked), on the thread pool, each within
   * TEXT_READ_DEADLINE_MILLIS. Only when the next sample() will look (the fork counter moved, or
   * a process is still pending).
   */
  async prepare(): Promise<void> {
    if (!this.o.offLoop) return;
    const forkCount = parseHostStat(this.reader.readText("stat") ?? "")?.forkCount;
    if (this.looked && forkCount !== undefined && forkCount === this.lastForkCount && this.pendingRechecks === 0) return;
    const self = this.o.selfPid ?? process.pid;
    const wanted: { pid: number; startTicks: number }[] = [];
    for (const pid of listPids(this.o.procRoot)) {
      if (pid === self || this.lastMembers.has(pid) || this.stuck.has(pid)) continue;
      const st = this.reader.readStat(pid, false);
      if (!st || st.exitSignal === -1) continue;
      const known = this.seen.get(pid);
      const rechecked = known?.startTicks === st.startTicks && known.job === null && known.recheck > 0;
      if (!rechecked && this.matched.get(pid)?.startTicks === st.startTicks) continue;
      wanted.push({ pid, startTicks: st.startTicks });
    }
    const log = this.o.offLoop.log;
    // Two reads at a time (a first look at a host of thousands of processes), in PID order; never
    // more than MAX_STUCK_TEXT_READS stuck and running together.
    let reading = 0;
    const next = async (): Promise<void> => {
      for (;;) {
        if (this.stuck.size >= MAX_STUCK_TEXT_READS) {
          log.warnOnce(
            "selector:stuck-reads",
            `selector: ${this.stuck.size} reads of processes' command lines or environments are stuck in the kernel: no new process is matched until one returns`,
          );
          wanted.length = 0;
          return;
        }
        if (this.stuck.size + reading >= MAX_STUCK_TEXT_READS) return; // the other reader goes on alone
        const w = wanted.shift();
        if (w === undefined) return;
        reading++;
        try {
          await this.readTexts(w.pid, w.startTicks, log);
        } finally {
          reading--;
        }
      }
    };
    await Promise.all([next(), next()]);
  }

  /** One process's texts on the pool, within the deadline; a late read is matched once it returns. */
  private async readTexts(pid: number, startTicks: number, log: Logger): Promise<void> {
    const { cmdline, env } = this.o.selector;
    const dir = join(this.o.procRoot, "proc", String(pid));
    const read = (async (): Promise<Omit<Matched, "startTicks">> => {
      const environ = env ? await readRegularBytes(join(dir, "environ"), MAX_PROCESS_TEXT_BYTES) : undefined;
      const text = cmdline ? await readRegularBytes(join(dir, "cmdline"), MAX_PROCESS_TEXT_BYTES) : undefined;
      const key = env?.key;
      const job = this.matchTexts(
        pid,
        startTicks,
        () => (text?.status === "ok" ? cmdlineText(text.bytes) : ""),
        () => (key !== undefined && environ?.status === "ok" ? parseEnviron(environ.bytes, [key]) : {}),
      );
      if (!job) return { job };
      // A job's root: its device variables too (read now, off the loop, not when the job goes live).
      const rootEnviron = environ ?? (await readRegularBytes(join(dir, "environ"), MAX_PROCESS_TEXT_BYTES));
      return { job, deviceEnv: rootEnviron.status === "ok" ? parseEnviron(rootEnviron.bytes, DEVICE_ASSIGNMENT_VARIABLES) : {} };
    })();
    const r = await withinMillis(read, TEXT_READ_DEADLINE_MILLIS);
    if (r !== "timeout") return void this.matched.set(pid, { startTicks, ...r });
    this.stuck.set(pid, startTicks);
    // Said once (the first such process named): the logger keeps one key, not one per PID.
    log.warnOnce(
      "selector:stuck",
      `selector: /proc/${pid}'s command line or environment did not come within ${TEXT_READ_DEADLINE_MILLIS / 1000} s (a process stuck in the kernel): it is matched once the read returns; sampling goes on`,
    );
    read.then(
      (late) => {
        if (this.stuck.get(pid) === startTicks) this.stuck.delete(pid);
        this.matched.set(pid, { startTicks, ...late });
      },
      () => {
        if (this.stuck.get(pid) === startTicks) this.stuck.delete(pid);
      },
    );
  }

  /**
   * Selected variables of the job's first root that has any. Off the loop, the device variables
   * come from what prepare() read of each root (a name beyond them is read in place).
   */
  override jobEnvironmentAsync(jobId: string, names: readonly string[]): Promise<Record<string, string>> {
    if (!this.o.offLoop || names.some((n) => !DEVICE_ASSIGNMENT_VARIABLES.includes(n))) return super.jobEnvironmentAsync(jobId, names);
    return Promise.resolve(this.jobEnvironment(jobId, names));
  }

  override jobEnvironment(jobId: string, names: readonly string[]): Record<string, string> {
    if (!this.o.offLoop || names.some((n) => !DEVICE_ASSIGNMENT_VARIABLES.includes(n))) return super.jobEnvironment(jobId, names);
    for (const [pid, job] of this.roots) {
      if (job !== jobId) continue;
      const env = this.matched.get(pid)?.deviceEnv ?? {};
      const picked = Object.fromEntries(names.filter((n) => env[n] !== undefined).map((n) => [n, env[n]]));
      if (Object.keys(picked).length > 0) return picked;
    }
    return {};
  }

  sample(): ProcessSample {
    const s = this.trees.sample();
    this.lastMembers = s.rawMembers;
    const forkCount = parseHostStat(this.reader.readText("stat") ?? "")?.forkCount;
    if (!this.looked || forkCount === undefined || forkCount !== this.lastForkCount || this.pendingRechecks > 0) {
      this.discover(new Set(s.rawMembers.keys()));
      this.lastForkCount = forkCount;
    }
    const { rawMembers: _raw, ...sample } = s;
    return sample;
  }

  private discover(members: ReadonlySet<number>): void {
    const first = !this.looked;
    this.looked = true;
    if (first) this.firstLookTicks = uptimeTicks(this.o.procRoot, this.trees.tracker.ticksPerSecond);
    const listed = new Set<number>();
    const fresh: number[] = [];
    for (const pid of listPids(this.o.procRoot)) {
      listed.add(pid);
      if (members.has(pid) || pid === (this.o.selfPid ?? process.pid)) continue;
      const st = this.reader.readStat(pid, false);
      if (!st || st.exitSignal === -1) continue;
      const known = this.seen.get(pid);
      if (known && known.startTicks === st.startTicks) {
        known.ppid = st.ppid;
        if (known.job === undefined || (known.job === null && known.recheck > 0)) {
          if (known.job === null) known.recheck--;
          known.job = this.match(pid, st.startTicks);
          if (known.job) fresh.push(pid);
        }
        continue;
      }
      this.seen.set(pid, { startTicks: st.startTicks, ppid: st.ppid, job: this.match(pid, st.startTicks), recheck: first ? 0 : RECHECKS });
      fresh.push(pid);
    }
    let pending = 0;
    for (const e of this.seen.values()) if (e.job === undefined || (e.job === null && e.recheck > 0)) pending++;
    this.pendingRechecks = pending;
    for (const pid of this.seen.keys()) if (!listed.has(pid)) this.seen.delete(pid);
    for (const pid of this.matched.keys()) if (!listed.has(pid)) this.matched.delete(pid);
    for (const pid of this.roots.keys()) if (!listed.has(pid)) this.roots.delete(pid);
    const candidates = [...new Set([...fresh, ...this.deferred])];
    this.deferred.clear();
    for (const pid of candidates) {
      const me = this.seen.get(pid);
      if (!me?.job || members.has(pid) || members.has(me.ppid) || this.hasMatchingAncestor(me.ppid) || this.isAgentDescendant(me.ppid)) continue;
      // An ancestor not read yet may match: its tree would hold this one; wait for it.
      if (this.hasUnreadAncestor(me.ppid)) {
        this.deferred.add(pid);
        continue;
      }
      // A tree started in the clock tick of the first look (10 ms) counts from its start: counting it
      // from now would lose everything it burned until it was found (it started after the look, or
      // at most one tick before it).
      this.trees.addTree(me.job, pid, me.startTicks, !first && me.startTicks >= this.firstLookTicks);
      if (this.o.offLoop) this.roots.set(pid, me.job.id);
    }
  }

  /** Whether `pid` or one of its ancestors among the processes seen (at most 256 up) is `found`. */
  private someAncestor(pid: number, found: (e: Seen) => boolean): boolean {
    for (let p = pid, guard = 0; p > 1 && guard < 256; guard++) {
      const e = this.seen.get(p);
      if (!e) return false;
      if (found(e)) return true;
      p = e.ppid;
    }
    return false;
  }

  /** The agent's own helpers (nvidia-smi) inherit its environment: never a job. */
  private isAgentDescendant(pid: number): boolean {
    const self = this.o.selfPid ?? process.pid;
    // An agent that is PID 1 (a container's init) is every process's ancestor there: not a helper test.
    if (self <= 1) return false;
    return pid === self || this.someAncestor(pid, (e) => e.ppid === self);
  }

  private hasUnreadAncestor(pid: number): boolean {
    return this.someAncestor(pid, (e) => e.job === undefined);
  }

  private hasMatchingAncestor(pid: number): boolean {
    return this.someAncestor(pid, (e) => Boolean(e.job));
  }

  /** The process's match: read in place, or (off the loop) what prepare() found; undefined: not read yet. */
  private match(pid: number, startTicks: number): DiscoveredJob | null | undefined {
    if (this.o.offLoop) {
      const m = this.matched.get(pid);
      return m?.startTicks === startTicks ? m.job : undefined;
    }
    const key = this.o.selector.env?.key;
    return this.matchTexts(
      pid,
      startTicks,
      () => this.cmdline(pid),
      () => (key !== undefined ? readEnviron(this.o.procRoot, pid, [key]) : {}),
    );
  }

  /** The job a process roots by its texts (asked lazily: the command line only when the environment did not match). */
  private matchTexts(pid: number, startTicks: number, cmdlineOf: () => string, environOf: () => Record<string, string>): DiscoveredJob | null {
    const { cmdline, env } = this.o.selector;
    if (env) {
      const value = environOf()[env.key];
      if (value !== undefined && (env.value === undefined || env.value === value)) {
        return { id: boundText(`${env.key}=${value}`, MAX_JOB_ID_CHARS), name: boundText(value || env.key, MAX_JOB_NAME_CHARS), attributes: { "powerprint.selector": "env" } };
      }
    }
    if (cmdline) {
      const text = cmdlineOf();
      const m = text === "" ? null : cmdline.exec(text);
      if (m) {
        const name = text.length > MAX_NAME_LENGTH ? `${text.slice(0, MAX_NAME_LENGTH - 1)}…` : text;
        // A capture of a 1.4 MB command line is cut, its hash kept: one bounded id per distinct text.
        if (m[1] !== undefined && m[1] !== "") return { id: boundText(m[1], MAX_JOB_ID_CHARS), name: boundText(m[1], MAX_JOB_NAME_CHARS), attributes: { "powerprint.selector": "cmdline" } };
        return { id: `cmdline:${pid}@${startTicks}`, name, attributes: { "powerprint.selector": "cmdline", "process.pid": String(pid) } };
      }
    }
    return null;
  }

  /** The command line, arguments joined by spaces ("" when unreadable; bounded: readRegularFile). */
  private cmdline(pid: number): string {
    const bytes = readRegularFile(join(this.o.procRoot, "proc", String(pid), "cmdline"), MAX_PROCESS_TEXT_BYTES);
    return bytes ? cmdlineText(bytes) : "";
  }
}

/** A cmdline file's arguments joined by spaces. */
function cmdlineText(bytes: Buffer): string {
  return bytes.toString("latin1").split("\0").filter(Boolean).join(" ");
}
