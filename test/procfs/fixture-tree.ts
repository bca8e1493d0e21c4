/**
 * Writes fake /proc trees for tests: real files in a temp dir, in the kernel's formats. Stat lines
 * are the captured line test/fixtures/procfs/captured/stat-process-leader.txt with fields replaced.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const capturedDir = fileURLToPath(new URL("../fixtures/procfs/captured/", import.meta.url));
const template = readFileSync(join(capturedDir, "stat-process-leader.txt"), "utf8").trim();
const templateFields = template.slice(template.lastIndexOf(")") + 2).split(" ");

export interface FakeProcess {
  pid: number;
  ppid: number;
  startTicks: number;
  name?: string;
  utimeTicks?: number;
  stimeTicks?: number;
  cutimeTicks?: number;
  cstimeTicks?: number;
  threads?: number;
  state?: string;
  /** -1 for a thread TID. */
  exitSignal?: number;
}

/** One stat line in the kernel's format. */
export function statLine(p: FakeProcess): string {
  const f = [...templateFields];
  f[0] = p.state ?? "S";
  f[1] = String(p.ppid);
  f[11] = String(p.utimeTicks ?? 0);
  f[12] = String(p.stimeTicks ?? 0);
  f[13] = String(p.cutimeTicks ?? 0);
  f[14] = String(p.cstimeTicks ?? 0);
  f[17] = String(p.threads ?? 1);
  f[19] = String(p.startTicks);
  f[35] = String(p.exitSignal ?? 17);
  return `${p.pid} (${p.name ?? "proc"}) ${f.join(" ")}\n`;
}

/** pid_max of the fake host (/proc/sys/kernel/pid_max). */
export const FAKE_PID_MAX = 32768;

/** A fake host: root/proc/{stat,loadavg,sys/kernel/pid_max,PID/stat,PID/task/PID/children}. */
export class FakeProc {
  readonly root = mkdtempSync(join(tmpdir(), "pp-procfs-"));
  private readonly procs = new Map<number, FakeProcess>();
  private busyTicks = 1000;
  private idleTicks = 5000;
  private forkCount = 1000;
  private lastPid = 1;

  constructor(readonly options: { childrenFiles?: boolean; loadavg?: boolean } = {}) {
    mkdirSync(join(this.root, "proc", "sys", "kernel"), { recursive: true });
    writeFileSync(join(this.root, "proc", "sys", "kernel", "pid_max"), `${FAKE_PID_MAX}\n`);
    this.writeHost();
  }

  /** Creates or rewrites a process (a fork when the PID is new or its start time changed). */
  set(p: FakeProcess): void {
    const old = this.procs.get(p.pid);
    if (!old || old.startTicks !== p.startTicks) {
      // A PID at or below the last one allocated means the kernel's cyclic allocator went round:
      // at least pid_max forks happened.
      this.forkCount += p.pid <= this.lastPid ? FAKE_PID_MAX : 1;
      this.lastPid = p.pid;
    }
    this.procs.set(p.pid, p);
    const dir = join(this.root, "proc", String(p.pid));
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "stat"), statLine(p));
    this.writeChildren();
    this.writeHost();
  }

  /** Updates CPU figures of a live process. */
  update(pid: number, change: Partial<FakeProcess>): void {
    const p = this.procs.get(pid);
    if (!p) throw new Error(`no fake pid ${pid}`);
    const next = { ...p, ...change };
    this.procs.set(pid, next);
    writeFileSync(join(this.root, "proc", String(pid), "stat"), statLine(next));
    this.writeChildren();
  }

  /** The process disappears (reaped). */
  remove(pid: number): void {
    this.procs.delete(pid);
    rmSync(join(this.root, "proc", String(pid)), { recursive: true, force: true });
    this.writeChildren();
  }

  /** A process's environ file. */
  environ(pid: number, vars: Record<string, string>): void {
    writeFileSync(
      join(this.root, "proc", String(pid), "environ"),
      Object.entries(vars).map(([k, v]) => `${k}=${v}\0`).join(""),
    );
  }

  /** Host busy (and optionally idle) CPU advances. */
  tickHost(busyTicks: number, idleTicks = 0): void {
    this.busyTicks += busyTicks;
    this.idleTicks += idleTicks;
    this.writeHost();
  }

  cleanup(): void {
    rmSync(this.root, { recursive: true, force: true });
  }

  private writeChildren(): void {
    if (!this.options.childrenFiles) return;
    const byParent = new Map<number, number[]>();
    for (const p of this.procs.values()) {
      const list = byParent.get(p.ppid) ?? [];
      list.push(p.pid);
      byParent.set(p.ppid, list);
    }
    for (const p of this.procs.values()) {
      const dir = join(this.root, "proc", String(p.pid), "task", String(p.pid));
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, "children"), (byParent.get(p.pid) ?? []).map((c) => `${c} `).join(""));
    }
  }

  private writeHost(): void {
    const idle = this.idleTicks;
    writeFileSync(
      join(this.root, "proc", "stat"),
      `cpu  ${this.busyTicks} 0 0 ${idle} 0 0 0 0 0 0\ncpu0 ${this.busyTicks} 0 0 ${idle} 0 0 0 0 0 0\nctxt 1\nbtime 1\nprocesses ${this.forkCount}\nprocs_running 1\n`,
    );
    if (this.options.loadavg !== false) writeFileSync(join(this.root, "proc", "loadavg"), `0.00 0.00 0.00 1/${this.procs.size} ${this.lastPid}\n`);
  }
}
