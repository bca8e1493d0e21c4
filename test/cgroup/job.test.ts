// createJobCgroup and CgroupJobSource on this machine's real cgroup2 and v1 cpuacct hierarchies: a
// double-forked setsid daemon started by the job is caught, its CPU counted, killed by kill(), and
// the cgroup removed after.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, rmdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { createJobCgroup, type JobCgroup } from "../../src/cgroup/job.js";
import { CgroupJobSource } from "../../src/cgroup/job-source.js";
import { readCgroupMounts } from "../../src/cgroup/mounts.js";
import { waitFor } from "../helpers/wait.js";

const burner = fileURLToPath(new URL("./scripts/burner.mjs", import.meta.url));
const made: JobCgroup[] = [];
const dirs: string[] = [];

afterAll(async () => {
  for (const c of made) {
    await c.kill({ timeoutMillis: 3000 });
    await c.remove({ timeoutMillis: 3000 });
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const alive = (pid: number): boolean => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/^\d+ \(.*\) Z /.test(stat);
  } catch {
    return false;
  }
};

const reportedCpu = (dir: string): number =>
  readdirSync(dir)
    .filter((f) => f.startsWith("cpu-") && !f.endsWith(".tmp"))
    .reduce((s, f) => s + Number(readFileSync(join(dir, f), "utf8")), 0);

const mounts = readCgroupMounts();
const hierarchies = [
  { prefer: "v2" as const, present: mounts.v2 !== undefined },
  { prefer: "v1" as const, present: mounts.v1.has("cpuacct") },
];

describe.each(hierarchies)("job cgroup on $prefer", ({ prefer, present }) => {
  it.skipIf(!present || process.getuid?.() !== 0)("catches a double-forked setsid daemon, counts its CPU, kills it, is removed", async () => {
    const r = createJobCgroup({ prefer });
    if (r.status !== "ok") throw new Error(r.reason);
    const cg = r.cgroup;
    made.push(cg);
    expect(cg.version).toBe(prefer === "v2" ? 2 : 1);
    expect(cg.dir).toMatch(new RegExp(`/powerprint-${process.pid}-\\d+$`));

    const work = mkdtempSync(join(tmpdir(), "pp-cgjob-"));
    dirs.push(work);
    const source = new CgroupJobSource({ trackMembers: true });
    source.attach("job", cg);
    const before = source.sample();
    expect(before.jobCpuSeconds.get("job")).toBe(0);

    const argv = cg.wrapCommand([process.execPath, burner, "launcher", work, "daemon"]);
    const launcher = spawn(argv[0], argv.slice(1), { stdio: "ignore" });
    const launcherExit = new Promise((r) => launcher.on("exit", r));
    source.addJob("job", launcher.pid!);
    const daemonPid = await waitFor("daemon pid", () => {
      const n = existsSync(join(work, "daemon.pid")) ? Number(readFileSync(join(work, "daemon.pid"), "utf8")) : NaN;
      return Number.isInteger(n) && n > 0 ? n : undefined;
    });
    await launcherExit; // the launcher and the middle process have exited: the daemon is an orphan in its own session
    const mid = source.sample();
    expect(mid.members.get(daemonPid)).toBe("job");
    expect(source.jobOfPid(daemonPid)).toBe("job");
    expect(source.jobOfPid(process.pid)).toBeUndefined();
    const lean = new CgroupJobSource(); // as run builds it: no member list
    lean.attach("job", cg);
    expect(lean.sample().members.size).toBe(0);
    expect(lean.jobOfPid(daemonPid)).toBe("job");
    expect(cg.pids()).toContain(daemonPid);
    expect(readFileSync(`/proc/${daemonPid}/stat`, "utf8").split(") ")[1].split(" ")[3]).toBe(String(daemonPid)); // session id: setsid

    // Let it burn, then stop it; every process has reported its own CPU.
    await waitFor("0.5 s of job CPU", () => ((cg.cpuSeconds() ?? 0) > 0.5 ? true : undefined));
    writeFileSync(join(work, "stop"), "1");
    await waitFor("daemon report", () => (existsSync(join(work, "daemon.done")) ? true : undefined));
    const after = source.sample();
    const measured = after.jobCpuSeconds.get("job")!;
    const reported = reportedCpu(work);
    // The cgroup also holds sh (ms) and node's exit work after each report: a small absolute slack.
    expect(measured).toBeGreaterThanOrEqual(reported * 0.98);
    expect(Math.abs(measured - reported)).toBeLessThanOrEqual(0.05 * reported + 0.08);
    expect(after.hostTotalCpuSeconds).toBeGreaterThan(after.hostBusyCpuSeconds);
    expect(after.jobProcessCount.get("job")).toBe(1);

    const k = await cg.kill();
    expect(k).toEqual({ remaining: 0, method: prefer === "v2" ? "cgroup.kill" : "signal" });
    await waitFor("daemon gone", () => (alive(daemonPid) ? undefined : true));
    expect(await cg.remove()).toBe(true);
    expect(existsSync(cg.dir)).toBe(false);
    // Once removed, the source keeps the last value: the counter never goes down (its held files
    // of the removed cgroup answer ENODEV and are dropped).
    expect(source.sample().jobCpuSeconds.get("job")).toBe(measured);
    source.close();
  });
});

describe("createJobCgroup placement", () => {
  it.skipIf(!mounts.v2 || process.getuid?.() !== 0)("goes next to the process's own cgroup (under its parent) on cgroup2", async () => {
    // A process in <v2>/pp-own-<pid>/leaf: its job cgroup belongs in <v2>/pp-own-<pid>.
    const parent = join(mounts.v2!.mountPoint, `pp-own-${process.pid}`);
    mkdirSync(join(parent, "leaf"), { recursive: true });
    const sleeper = spawn("sleep", ["600"], { stdio: "ignore" });
    try {
      writeFileSync(join(parent, "leaf", "cgroup.procs"), String(sleeper.pid));
      const r = createJobCgroup({ prefer: "v2", selfPid: sleeper.pid });
      if (r.status !== "ok") throw new Error(r.reason);
      made.push(r.cgroup);
      expect(r.cgroup.dir).toBe(join(parent, `powerprint-${sleeper.pid}-${r.cgroup.dir.split("-").at(-1)}`));
      expect(await r.cgroup.remove()).toBe(true);
    } finally {
      sleeper.kill("SIGKILL");
      await new Promise((res) => sleeper.on("exit", res));
      for (const d of [join(parent, "leaf"), parent]) {
        for (let i = 0; i < 100; i++) {
          try {
            rmdirSync(d);
            break;
          } catch {
            await new Promise((res) => setTimeout(res, 20));
          }
        }
      }
    }
  });
});

describe("createJobCgroup when it cannot", () => {
  it("says why on a root without cgroups", () => {
    const empty = mkdtempSync(join(tmpdir(), "pp-nocg-"));
    dirs.push(empty);
    const r = createJobCgroup({ root: empty });
    expect(r).toEqual({ status: "unavailable", reason: "no cgroup2 or v1 cpuacct hierarchy mounted" });
  });
  it("says why when the place is not writable", () => {
    // A root whose mountinfo puts cgroup2 on /proc/self (not a cgroup: mkdir there fails).
    const fake = mkdtempSync(join(tmpdir(), "pp-rocg-"));
    dirs.push(fake);
    mkdirSync(join(fake, "proc", "self"), { recursive: true });
    mkdirSync(join(fake, "proc", "4242"));
    writeFileSync(join(fake, "proc", "self", "mountinfo"), "41 31 0:38 / /proc/self rw,relatime - cgroup2 cgroup2 rw\n");
    writeFileSync(join(fake, "proc", "4242", "cgroup"), "0::/\n");
    const r = createJobCgroup({ root: fake, selfPid: 4242 });
    expect(r.status).toBe("unavailable");
    if (r.status === "unavailable") expect(r.reason).toMatch(/^cannot create a cgroup \(\/proc\/self\/powerprint-4242-\d+: /);
  });
});
