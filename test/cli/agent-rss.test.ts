/**
 * Memory's static energy is split by resident memory in every agent mode, as `run` does
 * (docs/concepts.md): a job holding 300 MB and idle gets more memory energy than a job burning a
 * core with little memory. Selector mode (process RSS from /proc) and node mode (pod cgroups'
 * memory.stat: this machine is hybrid, its cgroup2 tree without the memory controller, so the pods
 * are also made in the v1 memory hierarchy, as a kubelet there does), through the built CLI. On
 * this VM the memory device is modelled at constant power, so its energy is all static: split by
 * RSS, nothing by CPU.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { readCgroupMounts } from "../../src/cgroup/mounts.js";
import { makeLayout, movePid, podPaths, removeTree, type PodSpec } from "../cgroup/kube-layout.js";
import { killAgents, promValue, scrape, startAgent, waitFor } from "./agent-helpers.js";

const burner = fileURLToPath(new URL("../cgroup/scripts/pod-burner.mjs", import.meta.url));
const mounts = readCgroupMounts();
const v2 = mounts.v2;
const v1Memory = mounts.v1.get("memory");
/** Holds 300 MB resident (written, so every page is there) and sleeps. */
const FAT = "const b = Buffer.alloc(300e6, 1); require('fs').writeFileSync(process.argv[1], String(process.pid)); setInterval(() => b[0]++, 1e9);";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  await killAgents();
  for (const c of cleanups.splice(0).reverse()) await c();
});

function spawnTracked(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  const c = spawn(process.execPath, args, { stdio: "ignore", env: { ...process.env, ...env } });
  cleanups.push(() => void c.kill("SIGKILL"));
  return c;
}

async function memoryEnergy(metrics: string, job: string): Promise<number> {
  return promValue(await scrape(metrics), "powerprint_job_energy_total", { powerprint_job_id: job, hw_type: "memory" }) ?? 0;
}

describe("memory's static energy by RSS", () => {
  it("selector mode: the idle 300 MB job gets more memory energy than the busy small one", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pp-agent-rss-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    spawnTracked(["-e", FAT, join(dir, "fat.pid")], { PP_RSS_JOB: "fat" });
    await waitFor("fat allocated", () => existsSync(join(dir, "fat.pid")));
    spawnTracked([burner, dir, "busy", "1000"], { PP_RSS_JOB: "busy" });
    await waitFor("busy ready", () => existsSync(join(dir, "busy.ready")));
    const agent = startAgent(["--mode", "selector", "--match-env", "PP_RSS_JOB", "--interval", "200ms", "--prometheus", "127.0.0.1:0"]);
    const metrics = await agent.line(/serving metrics at (\S+)/);
    writeFileSync(join(dir, "go"), "1");
    await waitFor("both jobs with memory energy", async () => ((await memoryEnergy(metrics, "PP_RSS_JOB=busy")) > 0 && (await memoryEnergy(metrics, "PP_RSS_JOB=fat")) > 0 ? true : undefined));
    const text = await scrape(metrics);
    const fat = promValue(text, "powerprint_job_energy_total", { powerprint_job_id: "PP_RSS_JOB=fat", hw_type: "memory" })!;
    const busy = promValue(text, "powerprint_job_energy_total", { powerprint_job_id: "PP_RSS_JOB=busy", hw_type: "memory" })!;
    const busyCpu = promValue(text, "powerprint_job_cpu_time_total", { powerprint_job_id: "PP_RSS_JOB=busy" })!;
    expect(busyCpu).toBeGreaterThan(0);
    // 300 MB against a burner's ~50 MB: more memory energy (by CPU seconds it would have none).
    expect(fat).toBeGreaterThan(busy);
    expect(await agent.stop()).toBe(0);
  }, 120_000);

  it.skipIf(!v2 || process.getuid?.() !== 0 || (!v1Memory && !readFileSync(join(v2?.mountPoint ?? "/", "cgroup.controllers"), "utf8").includes("memory")))("node mode: the pod holding 300 MB gets more memory energy than the busy pod (memory.stat)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pp-agent-rss-node-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const uid = (n: number) => `${(process.pid % 0xffffffff).toString(16).padStart(8, "0")}-0000-4000-b000-${String(n).padStart(12, "0")}`;
    const pods: PodSpec[] = [
      { uid: uid(1), qos: "burstable", containers: ["a".repeat(64)] },
      { uid: uid(2), qos: "burstable", containers: ["b".repeat(64)] },
    ];
    const name = `pp-agent-rss-${process.pid}`;
    const top = join(v2!.mountPoint, name);
    makeLayout(top, "systemd", pods);
    cleanups.push(() => removeTree(top));
    const memTop = v1Memory ? join(v1Memory.mountPoint, name) : undefined;
    if (memTop) {
      makeLayout(memTop, "systemd", pods);
      cleanups.push(() => removeTree(memTop));
    }
    const moveIn = (pod: PodSpec, pid: number) => {
      movePid(join(top, podPaths("systemd", pod).containers[0]), pid);
      if (memTop) movePid(join(memTop, podPaths("systemd", pod).containers[0]), pid);
    };
    // Moved in before they allocate or burn: the pod cgroups are charged for their memory.
    const fat = spawnTracked(["-e", `require('fs').writeFileSync(process.argv[1] + '.ready', ''); const t = setInterval(() => { if (require('fs').existsSync(process.argv[1] + '.go')) { clearInterval(t); ${FAT.replace("process.argv[1]", "process.argv[1]")} } }, 10);`, join(dir, "fat.pid")]);
    await waitFor("fat ready", () => existsSync(join(dir, "fat.pid.ready")));
    moveIn(pods[0], fat.pid!);
    const busy = spawnTracked([burner, dir, "busy", "1000"]);
    await waitFor("busy ready", () => existsSync(join(dir, "busy.ready")));
    moveIn(pods[1], busy.pid!);
    writeFileSync(join(dir, "fat.pid.go"), "1");
    await waitFor("fat allocated", () => existsSync(join(dir, "fat.pid")));
    writeFileSync(join(dir, "go"), "1");
    const agent = startAgent(["--mode", "node", "--interval", "200ms", "--prometheus", "127.0.0.1:0"]);
    const metrics = await agent.line(/serving metrics at (\S+)/);
    await waitFor("both pods with memory energy", async () => ((await memoryEnergy(metrics, pods[0].uid)) > 0 && (await memoryEnergy(metrics, pods[1].uid)) > 0 ? true : undefined));
    const text = await scrape(metrics);
    const fatJ = promValue(text, "powerprint_job_energy_total", { powerprint_job_id: pods[0].uid, hw_type: "memory" })!;
    const busyJ = promValue(text, "powerprint_job_energy_total", { powerprint_job_id: pods[1].uid, hw_type: "memory" })!;
    expect(promValue(text, "powerprint_job_cpu_time_total", { powerprint_job_id: pods[1].uid })!).toBeGreaterThan(0);
    expect(fatJ).toBeGreaterThan(busyJ);
    expect(await agent.stop()).toBe(0);
  }, 120_000);
});
