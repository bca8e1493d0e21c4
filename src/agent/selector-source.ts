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
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { DiscoveredJob, ProcessSample } from "../core/contracts.js";
import { MAX_PROCESS_TEXT_BYTES, listPids, parseHostStat, readEnviron, readRegularFile, uptimeTicks } from "../procfs/reader.js";
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
  /** The job this process would root, or null when it does not match. */
  job: DiscoveredJob | null;
  /** Looks left before a non-match is final: a fork seen before its exec shows the parent's cmdline. */
  recheck: number;
}

/** Discoveries a non-matching new process is matched again in (covers the fork → exec gap). */
const RECHECKS = 2;

const MAX_NAME_LENGTH = 64;

export class SelectorJobSource extends RootedSource {
  private readonly seen = new Map<number, Seen>();
  private lastForkCount: number | undefined;
  private looked = false;
  private pendingRechecks = 0;
  private firstLookTicks = Infinity;

  constructor(
    private readonly o: { procRoot: string; selector: Selector; selfPid?: number },
  ) {
    super(o.procRoot);
  }

  sample(): ProcessSample {
    const s = this.trees.sample();
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
        if (known.job === null && known.recheck > 0) {
          known.recheck--;
          known.job = this.match(pid, st.startTicks);
          if (known.job) fresh.push(pid);
        }
        continue;
      }
      this.seen.set(pid, { startTicks: st.startTicks, ppid: st.ppid, job: this.match(pid, st.startTicks), recheck: first ? 0 : RECHECKS });
      fresh.push(pid);
    }
    let pending = 0;
    for (const e of this.seen.values()) if (e.job === null && e.recheck > 0) pending++;
    this.pendingRechecks = pending;
    for (const pid of this.seen.keys()) if (!listed.has(pid)) this.seen.delete(pid);
    for (const pid of fresh) {
      const me = this.seen.get(pid)!;
      if (!me.job || members.has(me.ppid) || this.hasMatchingAncestor(me.ppid) || this.isAgentDescendant(me.ppid)) continue;
      // A tree started in the clock tick of the first look (10 ms) counts from its start: counting it
      // from now would lose everything it burned until it was found (it started after the look, or
      // at most one tick before it).
      this.trees.addTree(me.job, pid, me.startTicks, !first && me.startTicks >= this.firstLookTicks);
    }
  }

  /** The agent's own helpers (nvidia-smi) inherit its environment: never a job. */
  private isAgentDescendant(pid: number): boolean {
    const self = this.o.selfPid ?? process.pid;
    for (let p = pid, guard = 0; p > 1 && guard < 256; guard++) {
      if (p === self) return true;
      const e = this.seen.get(p);
      if (!e) return false;
      p = e.ppid;
    }
    return false;
  }

  private hasMatchingAncestor(pid: number): boolean {
    for (let p = pid, guard = 0; p > 1 && guard < 256; guard++) {
      const e = this.seen.get(p);
      if (!e) return false;
      if (e.job) return true;
      p = e.ppid;
    }
    return false;
  }

  private match(pid: number, startTicks: number): DiscoveredJob | null {
    const { cmdline, env } = this.o.selector;
    if (env) {
      const value = readEnviron(this.o.procRoot, pid, [env.key])[env.key];
      if (value !== undefined && (env.value === undefined || env.value === value)) {
        return { id: boundText(`${env.key}=${value}`, MAX_JOB_ID_CHARS), name: boundText(value || env.key, MAX_JOB_NAME_CHARS), attributes: { "powerprint.selector": "env" } };
      }
    }
    if (cmdline) {
      const text = this.cmdline(pid);
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
    return bytes ? bytes.toString("latin1").split("\0").filter(Boolean).join(" ") : "";
  }
}
