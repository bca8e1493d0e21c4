/**
 * The agent's figures about itself on /metrics (powerprint.agent.*, process.*), through the built
 * CLI, against what the kernel says of the same process: resident memory and CPU time from
 * /proc/PID, jobs held and dropped from /jobs, every collector in use with its failure counters
 * and hung gauge from the first scrape (zeros included).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { killAgents, promValue, scrape, shortAndLong, startAgent, waitFor } from "./agent-helpers.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "pp-agent-self-"));
});
afterEach(async () => {
  await killAgents();
  rmSync(dir, { recursive: true, force: true });
});

/** utime + stime of a process, seconds (clock ticks of 10 ms). */
function procCpuSeconds(pid: number): number {
  const t = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = t.slice(t.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

const rssBytes = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) * 1024;

describe("agent self-metrics", () => {
  it("its own RSS and CPU as /proc has them, jobs held and dropped as /jobs has them, every source with its counters", async () => {
    const scenario = shortAndLong(dir);
    const agent = startAgent(["--sim", scenario, "--prometheus", "127.0.0.1:0", "--listen", "127.0.0.1:0", "--interval", "100ms", "--retention", "500ms"]);
    const metrics = await agent.line(/serving metrics at (\S+)/);
    const health = await agent.line(/health: (\S+)\/healthz/);
    const pid = agent.child.pid!;
    await waitFor("short dropped", async () => (((await (await fetch(`${health}/jobs`)).json()) as { dropped: number }).dropped === 1 ? true : undefined));

    const cpuBefore = procCpuSeconds(pid);
    const rssBefore = rssBytes(pid);
    const text = await scrape(metrics);
    const cpuAfter = procCpuSeconds(pid);
    const rssAfter = rssBytes(pid);

    const cpu = (promValue(text, "process_cpu_time_total", { cpu_mode: "user" }) ?? -1) + (promValue(text, "process_cpu_time_total", { cpu_mode: "system" }) ?? -1);
    // The kernel's figure read before and after the scrape bracket the agent's own. /proc gives
    // user and system each truncated to a 10 ms tick, so the sum read after may sit up to two
    // ticks below the exact figure the agent read from getrusage during the scrape.
    expect(cpu).toBeGreaterThanOrEqual(cpuBefore - 0.001);
    expect(cpu).toBeLessThanOrEqual(cpuAfter + 0.021);
    // Its RSS when the scrape read it: above what it had before (less a collection's 20 %), never
    // above its peak so far (VmHWM).
    const rss = promValue(text, "process_memory_usage", {})!;
    const peak = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) * 1024;
    expect(rss).toBeGreaterThanOrEqual(Math.min(rssBefore, rssAfter) * 0.8);
    expect(rss).toBeLessThanOrEqual(peak);

    expect(promValue(text, "powerprint_agent_jobs", { powerprint_job_state: "live" })).toBe(1);
    expect(promValue(text, "powerprint_agent_jobs", { powerprint_job_state: "finished" })).toBe(0);
    expect(promValue(text, "powerprint_agent_jobs_dropped_total", { powerprint_reason: "retention" })).toBe(1);
    expect(promValue(text, "powerprint_agent_jobs_dropped_total", { powerprint_reason: "max-jobs" })).toBe(0);
    expect(promValue(text, "powerprint_agent_jobs_dropped_total", { powerprint_reason: "max-finished-jobs" })).toBe(0);
    // The scenario's collector: read each tick, never failed or hung, its series there with 0.
    expect(promValue(text, "powerprint_agent_source_hung", { powerprint_source: "sim" })).toBe(0);
    expect(promValue(text, "powerprint_agent_source_failures_total", { powerprint_source: "sim", error_type: "timeout" })).toBe(0);
    expect(promValue(text, "powerprint_agent_source_failures_total", { powerprint_source: "sim", error_type: "error" })).toBe(0);
    expect(promValue(text, "powerprint_agent_tick_duration", {})).toBeGreaterThan(0);
    expect(promValue(text, "powerprint_agent_ticks_skipped_total", {})).toBeGreaterThanOrEqual(0);
    expect(await agent.stop()).toBe(0);
  }, 60_000);
});

describe("--max-jobs", () => {
  it("a job beyond the bound is not tracked (said once, counted); admitted once room frees up, its CPU counts from then", async () => {
    const scenario = join(dir, "three.json");
    writeFileSync(
      scenario,
      JSON.stringify({
        name: "three-jobs",
        durationSeconds: 3600,
        devices: [{ id: "cpu0", kind: "cpu", idleWatts: 10, maxWatts: 110, cores: 4 }],
        processes: [
          { pid: 10, job: "a", endSeconds: 1.5, cpu: [[0, 1]] },
          { pid: 20, job: "b", cpu: [[0, 1]] },
          { pid: 30, job: "c", cpu: [[0, 1]] },
        ],
      }),
    );
    const agent = startAgent(["--sim", scenario, "--prometheus", "127.0.0.1:0", "--listen", "127.0.0.1:0", "--interval", "100ms", "--retention", "300ms", "--max-jobs", "2"]);
    const metrics = await agent.line(/serving metrics at (\S+)/);
    const health = await agent.line(/health: (\S+)\/healthz/);
    type View = { timeMillis: number; dropped: number; jobs: { id: string; cpuSeconds: number; finishedMillis: number | null }[] };
    const view = async () => (await (await fetch(`${health}/jobs`)).json()) as View;
    const first = await waitFor("two jobs", async () => {
      const v = await view();
      return v.jobs.length === 2 ? v : undefined;
    });
    const held = first.jobs.map((j) => j.id).sort();
    const left = ["a", "b", "c"].find((id) => !held.includes(id))!;
    await agent.line(/(warning: more than --max-jobs 2 jobs live at once: new ones are not tracked)/);
    expect(promValue(await scrape(metrics), "powerprint_agent_jobs_dropped_total", { powerprint_reason: "max-jobs" })).toBe(1);
    // "a" ends at 1.5 s and is dropped after its retention: the job left out gets its place.
    const admittedAt = await waitFor(`${left} admitted`, async () => {
      const v = await view();
      return v.jobs.some((j) => j.id === left) ? v.timeMillis : undefined;
    });
    const later = await waitFor("a later sample", async () => {
      const v = await view();
      return v.timeMillis > admittedAt + 500 ? v : undefined;
    });
    const job = later.jobs.find((j) => j.id === left)!;
    // One busy core since it was admitted (the sample before admission at most): never its CPU
    // from the start of the scenario (~2 s by then).
    expect(job.cpuSeconds).toBeGreaterThan(0);
    expect(job.cpuSeconds).toBeLessThanOrEqual((later.timeMillis - admittedAt) / 1000 + 0.25);
    expect(agent.stderr().split("\n").filter((l) => l.includes("--max-jobs"))).toHaveLength(1);
    expect(await agent.stop()).toBe(0);
  }, 60_000);
});
