/**
 * Issue 10, item 2: `powerprint run` tracks the job in a cgroup of its own where it can create
 * one. Real CLI, real cgroups (cgroup2 and the v1 cpuacct hierarchy of this machine), a real job
 * that double-forks a setsid daemon (test/fixtures/scripts/daemonizing-job.mjs). Every wait is for
 * an event (a file a process publishes by rename, a process state); CPU is compared with what the
 * processes measured themselves. Skipped unless root (creating cgroups needs it here).
 */
import { afterEach, describe, expect, it } from "vitest";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { reportSchemaV1 } from "../../exporters/report-schema.js";
import { CLI, runCli } from "../helpers/cli.js";
import { waitFor } from "../helpers/wait.js";

const job = join(import.meta.dirname, "..", "fixtures", "scripts", "daemonizing-job.mjs");
const isRoot = process.getuid?.() === 0;
/** Where each hierarchy puts the job cgroup on this machine (powerprint's own cgroup is the root of both). */
const PARENTS = { v2: "/sys/fs/cgroup/unified", v1: "/sys/fs/cgroup/cpuacct" } as const;
const available = (v: keyof typeof PARENTS) => isRoot && existsSync(join(PARENTS[v], "cgroup.procs"));

const dirs: string[] = [];
const pidsToKill: number[] = [];
const cgroupsToRemove: string[] = [];
afterEach(async () => {
  for (const pid of pidsToKill.splice(0)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* gone */
    }
  }
  // Cgroups a test left on purpose (a daemon still in them): empty once the kill above lands.
  for (const cg of cgroupsToRemove.splice(0)) {
    for (;;) {
      try {
        rmdirSync(cg);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EBUSY") break; // ENOENT: powerprint removed it
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), "pp-cgroup-"));
  dirs.push(d);
  return d;
};

function isLive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat[stat.lastIndexOf(")") + 2] !== "Z";
  } catch {
    return false;
  }
}
const readJson = <T>(file: string): T => JSON.parse(readFileSync(file, "utf8")) as T;
/** Job cgroups of the powerprint with this PID under a hierarchy's parent directory. */
const cgroupsOf = (version: keyof typeof PARENTS, ppPid: number | undefined) => readdirSync(PARENTS[version]).filter((n) => n.startsWith(`powerprint-${ppPid}-`));

describe.each(["v2", "v1"] as const)("cgroup tracking (%s)", (version) => {
  const env = { POWERPRINT_CGROUP_VERSION: version };

  it.skipIf(!available(version))("counts the CPU of a setsid daemon the job double-forked, labels the report, and leaves no cgroup behind", async () => {
    const dir = tmp();
    const report = join(dir, "report.json");
    const before = readdirSync(PARENTS[version]);
    let pp: ChildProcess | undefined;
    // 60 s interval: no tick runs while the job does; the figure is the cgroup counter read at the exit.
    const r = await runCli(["run", "--quiet", "--tracking", "cgroup", "--interval", "60s", "--report", report, "--", process.execPath, job], {
      env: { ...env, DAEMON_DIR: dir, DAEMON_CPU_SECONDS: "1" },
      onSpawn: (c) => (pp = c),
      timeoutMillis: 90_000,
    });
    expect(r.code, r.stderr).toBe(0);
    const daemon = readJson<{ pid: number; sid: number; cpuSeconds: number }>(join(dir, "daemon.json"));
    const parent = readJson<{ pid: number; cpuSeconds: number }>(join(dir, "parent.json"));
    // It really left: a session of its own.
    expect(daemon.sid).toBe(daemon.pid);
    const rep = reportSchemaV1.parse(readJson(report));
    expect(rep.tracking).toBe("cgroup");
    const selfMeasured = daemon.cpuSeconds + parent.cpuSeconds;
    // The shells of the wrapper and of the double fork and `setsid` add a few ms on top.
    expect(Math.abs(rep.jobs[0].cpuSeconds - selfMeasured), `report ${rep.jobs[0].cpuSeconds} s vs self-measured ${selfMeasured} s`).toBeLessThanOrEqual(0.05 * selfMeasured);
    expect(cgroupsOf(version, pp!.pid)).toEqual([]);
    expect(readdirSync(PARENTS[version]).filter((n) => !before.includes(n) && n.startsWith(`powerprint-${pp!.pid}-`))).toEqual([]);
  }, 90_000);

  it.skipIf(!available(version))("the command's own first instruction runs in the job cgroup", async () => {
    let pp: ChildProcess | undefined;
    // cat reads /proc/self/cgroup before anything else it does; its stdout is the command's.
    const r = await runCli(["run", "--quiet", "--tracking", "cgroup", "--", "cat", "/proc/self/cgroup"], { env, onSpawn: (c) => (pp = c) });
    expect(r.code, r.stderr).toBe(0);
    const line = r.stdout.split("\n").find((l) => (version === "v2" ? l.startsWith("0::") : /^\d+:[^:]*\bcpuacct\b/.test(l)));
    expect(line).toMatch(new RegExp(`:/powerprint-${pp!.pid}-\\d+$`));
  });

  it.skipIf(!available(version))("a daemon left running without a signal is not killed: said once, its cgroup left to it", async () => {
    const dir = tmp();
    let pp: ChildProcess | undefined;
    const r = await runCli(["run", "--quiet", "--tracking", "cgroup", "--interval", "60s", "--", process.execPath, job], {
      env: { ...env, DAEMON_DIR: dir, DAEMON_MODE: "leave" },
      onSpawn: (c) => (pp = c),
      timeoutMillis: 60_000,
    });
    const daemonPid = Number(readFileSync(join(dir, "daemon.pid"), "utf8"));
    pidsToKill.push(daemonPid);
    const left = cgroupsOf(version, pp!.pid).map((n) => join(PARENTS[version], n));
    cgroupsToRemove.push(...left);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr.match(/the command left 1 process\(es\) running/g)).toHaveLength(1);
    expect(isLive(daemonPid)).toBe(true);
    expect(left).toHaveLength(1);
    expect(readFileSync(join(left[0], "cgroup.procs"), "utf8").trim()).toBe(String(daemonPid));
  }, 60_000);

  it.skipIf(!available(version))("the grace kill reaches the setsid daemon, which never got the relayed signal", async () => {
    const dir = tmp();
    const report = join(dir, "report.json");
    let pp: ChildProcess | undefined;
    const run = runCli(["run", "--quiet", "--tracking", "cgroup", "--interval", "60s", "--grace", "200ms", "--report", report, "--", process.execPath, job], {
      env: { ...env, DAEMON_DIR: dir, DAEMON_MODE: "hold" },
      onSpawn: (c) => (pp = c),
      timeoutMillis: 60_000,
    });
    await waitFor("the parent's ready file", () => existsSync(join(dir, "parent.ready")));
    const daemonPid = Number(readFileSync(join(dir, "daemon.pid"), "utf8"));
    pidsToKill.push(daemonPid, Number(readFileSync(join(dir, "parent.ready"), "utf8")));
    // The daemon is in powerprint's job cgroup although it left the process tree.
    expect(readFileSync(`/proc/${daemonPid}/cgroup`, "utf8")).toContain(`/powerprint-${pp!.pid}-`);
    expect(cgroupsOf(version, pp!.pid)).toHaveLength(1);
    pp!.kill("SIGTERM");
    const r = await run;
    // The parent died of the relayed SIGTERM; the daemon (own session, SIGTERM ignored) only by the grace kill.
    expect(r.code, r.stderr).toBe(128 + 15);
    expect(r.stderr).toMatch(/1 process\(es\) of the job still alive .* after SIGTERM: sending SIGKILL to all/);
    expect(isLive(daemonPid)).toBe(false);
    expect(reportSchemaV1.parse(readJson(report)).tracking).toBe("cgroup");
    expect(cgroupsOf(version, pp!.pid)).toEqual([]);
  }, 60_000);
});

describe("cgroup tracking with --sim", () => {
  it.skipIf(!available("v2"))("the real job's CPU, the daemon's included, joins the simulated host", async () => {
    const dir = tmp();
    const report = join(dir, "report.json");
    const scenario = join(import.meta.dirname, "..", "fixtures", "scenarios", "shared-gpu-two-jobs.json");
    const r = await runCli(["run", "--quiet", "--sim", scenario, "--job-id", "real-job", "--interval", "60s", "--report", report, "--", process.execPath, job], {
      env: { DAEMON_DIR: dir, DAEMON_CPU_SECONDS: "0.5" },
      timeoutMillis: 90_000,
    });
    expect(r.code, r.stderr).toBe(0);
    const rep = reportSchemaV1.parse(readJson(report));
    expect(rep.tracking).toBe("cgroup");
    const selfMeasured = readJson<{ cpuSeconds: number }>(join(dir, "daemon.json")).cpuSeconds + readJson<{ cpuSeconds: number }>(join(dir, "parent.json")).cpuSeconds;
    const real = rep.jobs.find((j) => j.id === "real-job");
    expect(Math.abs(real!.cpuSeconds - selfMeasured)).toBeLessThanOrEqual(0.05 * selfMeasured);
    // The scenario's own jobs are still there.
    expect(rep.jobs.length).toBeGreaterThan(1);
  }, 90_000);
});

describe("tracking choice", () => {
  it.skipIf(!available("v2"))("--tracking procfs: the report says procfs and no cgroup is made", async () => {
    const dir = tmp();
    const report = join(dir, "report.json");
    let pp: ChildProcess | undefined;
    const r = await runCli(["run", "--quiet", "--tracking", "procfs", "--report", report, "--", process.execPath, job], {
      env: { DAEMON_DIR: dir, DAEMON_CPU_SECONDS: "0.2" },
      onSpawn: (c) => (pp = c),
      timeoutMillis: 60_000,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(reportSchemaV1.parse(readJson(report)).tracking).toBe("procfs");
    // The daemon was not in a cgroup of powerprint's.
    expect(readJson<{ pid: number }>(join(dir, "daemon.json")).pid).toBeGreaterThan(0);
    expect(cgroupsOf("v2", pp!.pid)).toEqual([]);
  }, 60_000);

  it.skipIf(!available("v2"))("a command that cannot be found keeps run's message and exit 127 under cgroup tracking, and leaves no cgroup", async () => {
    let pp: ChildProcess | undefined;
    const r = await runCli(["run", "--quiet", "--tracking", "cgroup", "--", "no-such-command-cgrouprun"], { onSpawn: (c) => (pp = c) });
    expect(r.code, r.stderr).toBe(127);
    expect(r.stderr).toContain("command not found: no-such-command-cgrouprun");
    expect(cgroupsOf("v2", pp!.pid)).toEqual([]);
  });

  it.skipIf(!available("v2"))("removes the empty cgroups that SIGKILLed powerprints left, never a populated one", async () => {
    const deadPid = spawnSync("true").pid;
    const empty = join(PARENTS.v2, `powerprint-${deadPid}-7`);
    const populated = join(PARENTS.v2, `powerprint-${deadPid}-8`);
    mkdirSync(empty);
    cgroupsToRemove.push(empty);
    mkdirSync(populated);
    cgroupsToRemove.push(populated);
    const sleeper = spawn("sleep", ["600"], { stdio: "ignore" });
    pidsToKill.push(sleeper.pid!);
    writeFileSync(join(populated, "cgroup.procs"), String(sleeper.pid));
    const r = await runCli(["run", "--quiet", "--tracking", "cgroup", "--", "true"], { env: { POWERPRINT_CGROUP_VERSION: "v2" } });
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(empty)).toBe(false);
    expect(readFileSync(join(populated, "cgroup.procs"), "utf8").trim()).toBe(String(sleeper.pid));
  });

  it("rejects a --tracking value that is not auto, cgroup or procfs (exit 2, one line)", async () => {
    const r = await runCli(["run", "--tracking", "kernel", "--", "true"]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain("--tracking");
  });

  const setpriv = spawnSync("sh", ["-c", "command -v setpriv"]).status === 0;
  it.skipIf(!isRoot || !setpriv)("--tracking cgroup as uid nobody: exit 2, one line naming --tracking, before the command runs", async () => {
    // The command exits 42 if it runs: 2 is powerprint's own refusal.
    const r = spawnSync("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, CLI, "run", "--tracking", "cgroup", "--", "/bin/sh", "-c", "exit 42"], {
      encoding: "utf8",
      cwd: "/",
      timeout: 60_000,
    });
    expect(r.status, r.stderr).toBe(2);
    const lines = r.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^powerprint: error: --tracking: cgroup: .*permission denied/);

    // auto as nobody: /proc tracking, said once, and the command runs.
    const auto = spawnSync("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, CLI, "run", "--", "/bin/sh", "-c", "exit 42"], { encoding: "utf8", cwd: "/", timeout: 60_000 });
    expect(auto.status, auto.stderr).toBe(42);
    expect(auto.stderr.match(/job tracked by \/proc \(no permission to create a cgroup\)/g)).toHaveLength(1);
  });
});
