/**
 * The agent's downtime is counted after a restart where counters survive it (node mode: the pod
 * cgroup's CPU counter), through the built CLI on a real cgroup2 pod: the agent is SIGKILLed, the
 * pod burns CPU while no agent runs (a cheap stand-in for a 10 s pause: a CPU-second, waited for
 * on the burner's own counter, no clock), and the restarted agent's job holds every CPU-second the
 * pod's cgroup counted since the first agent looked, the downtime included, labelled
 * powerprint.gap=true.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { readCgroupMounts } from "../../src/cgroup/mounts.js";
import { makeLayout, movePid, podPaths, removeTree, type PodSpec } from "../cgroup/kube-layout.js";
import { killAgents, promValue, scrape, startAgent, waitFor } from "./agent-helpers.js";

const burner = fileURLToPath(new URL("../cgroup/scripts/pod-burner.mjs", import.meta.url));
const v2 = readCgroupMounts().v2;
const canRun = !!v2 && process.getuid?.() === 0;
const POD: PodSpec = { uid: `${(process.pid % 0xffffffff).toString(16).padStart(8, "0")}-0000-4000-c000-000000000001`, qos: "burstable", containers: ["c".repeat(64)] };

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  // A failed assertion must not leave an agent running.
  await killAgents();
  for (const c of cleanups.reverse()) await c();
});

interface View {
  timeMillis: number;
  jobs: { id: string; cpuSeconds: number; attributes: Record<string, string> }[];
}

/** utime + stime of a process, seconds. */
function processCpuSeconds(pid: number): number {
  const t = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = t.slice(t.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

describe.skipIf(!canRun)("agent --mode node: the downtime after a SIGKILL", () => {
  it("its CPU is counted from the pod cgroup's counter, exactly, and the job says so (powerprint.gap=true)", async () => {
    const top = join(v2!.mountPoint, `pp-agent-downtime-${process.pid}`);
    makeLayout(top, "systemd", [POD]);
    cleanups.push(() => removeTree(top));
    const work = mkdtempSync(join(tmpdir(), "pp-agent-downtime-"));
    cleanups.push(() => rmSync(work, { recursive: true, force: true }));
    const podDir = join(top, podPaths("systemd", POD).pod);
    const usage = () => Number(/^usage_usec (\d+)/m.exec(readFileSync(join(podDir, "cpu.stat"), "utf8"))![1]) / 1e6;
    mkdirSync(join(work, "b"));
    const child: ChildProcess = spawn(process.execPath, [burner, join(work, "b"), "pod", "1000"], { stdio: "ignore" });
    cleanups.push(() => void child.kill("SIGKILL"));
    const pid = Number(await waitFor("burner ready", () => (existsSync(join(work, "b", "pod.ready")) ? readFileSync(join(work, "b", "pod.ready"), "utf8") : undefined)));
    movePid(join(top, podPaths("systemd", POD).containers[0]), pid);

    const state = join(work, "state.json");
    const args = ["--mode", "node", "--listen", "127.0.0.1:0", "--interval", "100ms", "--state-file", state, "--checkpoint-interval", "200ms", "-v"];
    // What the pod's cgroup had counted when the first agent started (its first walk counts from then).
    const usageAtStart = usage();
    const a = startAgent(args);
    const urlA = await a.line(/health: (\S+)\/healthz/);
    await waitFor("the pod in /jobs", async () => (((await (await fetch(`${urlA}/jobs`)).json()) as View).jobs.some((j) => j.id === POD.uid) ? true : undefined));
    writeFileSync(join(work, "b", "go"), "1");
    await a.line(/checkpoint 3 written/);
    expect(await a.stop("SIGKILL")).toBeNull();

    // The pause: the pod burns a CPU-second while no agent runs.
    const atKill = processCpuSeconds(pid);
    await waitFor("a CPU-second burnt while the agent is down", () => processCpuSeconds(pid) >= atKill + 1, 120_000);

    const b = startAgent(args);
    const urlB = await b.line(/health: (\S+)\/healthz/);
    expect(await b.line(/(state: the agent was down \d+ s since the checkpoint's last sample: counted from counters that survived it: CPU of 1 job\(s\)[^\n]*)/)).toMatch(/those jobs carry powerprint\.gap=true/);
    const view = async () => (await (await fetch(`${urlB}/jobs`)).json()) as View;
    // Stop the pod's work, then read after two samples that follow.
    child.kill("SIGSTOP");
    const stopped = (await view()).timeMillis;
    const end = await waitFor("two samples after the stop", async () => {
      const v = await view();
      return v.timeMillis > stopped + 200 ? v : undefined;
    });
    const expected = usage() - usageAtStart;
    const job = end.jobs.find((j) => j.id === POD.uid)!;
    expect(expected).toBeGreaterThan(1);
    // Every CPU-second the cgroup counted since the first agent looked: before the kill, while no
    // agent ran, after the restart (its first walk's read and the test's own are a few ms apart).
    expect(job.cpuSeconds).toBeGreaterThanOrEqual(expected * 0.98 - 0.02);
    expect(job.cpuSeconds).toBeLessThanOrEqual(expected * 1.02 + 0.02);
    expect(job.attributes["powerprint.gap"]).toBe("true");
    expect(job.attributes["powerprint.restored"]).toBe("true");
    child.kill("SIGCONT");
    expect(await b.stop()).toBe(0);
  }, 240_000);

  it("an energy counter that moved while the agent was down: the device gets that energy exactly, shared out like any interval's", async () => {
    const work = mkdtempSync(join(tmpdir(), "pp-agent-downtime-rapl-"));
    cleanups.push(() => rmSync(work, { recursive: true, force: true }));
    // --sys-root: the captured powercap tree, and the real cgroup hierarchies through a link (the
    // agent rebases /sys mount points on it).
    const root = join(work, "root");
    cpSync(join(import.meta.dirname, "..", "fixtures", "powercap", "two-sockets-dram"), root, { recursive: true, verbatimSymlinks: true });
    symlinkSync("/sys/fs", join(root, "sys", "fs"));
    const counter = join(root, "sys", "class", "powercap", "intel-rapl:0", "energy_uj");
    const addJoules = (j: number) => {
      const uj = Number(readFileSync(counter, "utf8")) + j * 1e6;
      writeFileSync(`${counter}.new`, `${uj}\n`);
      renameSync(`${counter}.new`, counter);
    };
    const top = join(v2!.mountPoint, `pp-agent-downtime-rapl-${process.pid}`);
    const pod: PodSpec = { ...POD, uid: POD.uid.replace(/1$/, "2") };
    makeLayout(top, "systemd", [pod]);
    cleanups.push(() => removeTree(top));
    const sleeper = spawn("sleep", ["600"], { stdio: "ignore" });
    cleanups.push(() => void sleeper.kill("SIGKILL"));
    movePid(join(top, podPaths("systemd", pod).containers[0]), sleeper.pid!);
    const state = join(work, "state.json");
    const args = ["--mode", "node", "--sys-root", root, "--prometheus", "127.0.0.1:0", "--interval", "100ms", "--state-file", state, "--checkpoint-interval", "100ms", "-v"];
    const a = startAgent(args);
    await a.line(/checkpoint 3 written/);
    expect(await a.stop("SIGKILL")).toBeNull();
    const saved = JSON.parse(readFileSync(state, "utf8")) as { ledger: { devices: { id: string; energyJoules: number }[] } };
    const before = saved.ledger.devices.find((d) => d.id === "rapl:package-0")!.energyJoules;
    // While no agent runs, package-0 draws 5 J (the fixture's counters move only when written).
    addJoules(5);
    const b = startAgent(args);
    const metrics = await b.line(/serving metrics at (\S+)/);
    await b.line(/state: the agent was down \d+ s since the checkpoint's last sample: counted from counters that survived it: .*energy from .*rapl:package-0/);
    const energy = await waitFor("the downtime's interval recorded", async () => {
      const v = promValue(await scrape(metrics), "hw_energy_total", { hw_id: "rapl:package-0" });
      return v !== undefined && v > before ? v : undefined;
    });
    expect(energy).toBeCloseTo(before + 5, 6);
    // Conservation: what the jobs and the buckets got of it is the device's.
    const text = await scrape(metrics);
    const cpuJobs = promValue(text, "powerprint_job_energy_total", { hw_type: "cpu" }) ?? 0;
    const cpuBuckets = promValue(text, "powerprint_bucket_energy_total", { hw_type: "cpu" }) ?? 0;
    const cpuDevices = (promValue(text, "hw_energy_total", { hw_id: "rapl:package-0" }) ?? 0) + (promValue(text, "hw_energy_total", { hw_id: "rapl:package-1" }) ?? 0);
    expect(cpuJobs + cpuBuckets).toBeCloseTo(cpuDevices, 6);
    expect(await b.stop()).toBe(0);
  }, 240_000);
});
