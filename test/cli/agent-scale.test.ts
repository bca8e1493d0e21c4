/**
 * The agent at scale, through the built CLI: 1,200 live selector jobs are all exported on
 * /metrics with their own energy (the ledger's, as /jobs shows it) and no OTel overflow series;
 * 10,000 retained jobs (the default --max-finished-jobs) with Prometheus scrapes stay under the
 * DaemonSet's 384 MiB memory limit (peak RSS from /proc/PID/status).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { killAgents, startAgent, waitFor } from "./agent-helpers.js";
// @ts-expect-error a plain .mjs helper shared with bench/agent.mjs
import { retainedState } from "../agent/scripts/retained-state.mjs";

/** The memory limit of deploy/kubernetes/node-agent/daemonset.yaml, bytes. */
const DAEMONSET_LIMIT_BYTES = 384 * 1024 * 1024;

let dir: string;
const children: ChildProcess[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "pp-agent-scale-"));
});
afterEach(async () => {
  await killAgents();
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

interface JobsView {
  timeMillis: number;
  jobs: { id: string; energyJoules: number }[];
}

/** Every sample of `metric` in Prometheus text: job id → value (one per job: summed over kinds). */
function perJob(text: string, metric: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line.startsWith(metric + "{")) continue;
    const id = /powerprint_job_id="([^"]*)"/.exec(line)?.[1];
    if (id === undefined) continue;
    out.set(id, (out.get(id) ?? 0) + Number(line.slice(line.lastIndexOf(" ") + 1)));
  }
  return out;
}

function statusKib(pid: number, field: "VmRSS" | "VmHWM"): number {
  return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]);
}

describe("agent at scale", () => {
  it("1,200 selector jobs: every one on /metrics with the energy /jobs gives it, no otel_metric_overflow series", async () => {
    const JOBS = 1200;
    // One `sleep` per job, each with its own value of the selector's variable (one job each).
    const script = `i=0; while [ $i -lt ${JOBS} ]; do PP_SCALE_JOB=j$i sleep 600 & i=$((i+1)); done; echo started > ${join(dir, "started")}; wait`;
    const shell = spawn("sh", ["-c", script], { stdio: "ignore", detached: true });
    children.push(shell);
    const killAll = () => {
      try {
        process.kill(-shell.pid!, "SIGKILL");
      } catch {
        /* gone */
      }
    };
    try {
      await waitFor("the sleeps started", () => existsSync(join(dir, "started")));
      const agent = startAgent(["--mode", "selector", "--match-env", "PP_SCALE_JOB", "--interval", "500ms", "--prometheus", "127.0.0.1:0", "--listen", "127.0.0.1:0"]);
      const metrics = await agent.line(/serving metrics at (\S+)/);
      const health = await agent.line(/health: (\S+)\/healthz/);
      const view = async () => (await (await fetch(`${health}/jobs`)).json()) as JobsView;
      // Every job found and holding energy (memory's static part by RSS: a sleeping process has some).
      await waitFor("1,200 jobs with energy", async () => {
        const v = await view();
        return v.jobs.filter((j) => j.energyJoules > 0).length === JOBS ? true : undefined;
      }, 240_000, 200);
      // /metrics and /jobs of the same snapshot (no tick in between).
      const { text, jobs } = await waitFor("one snapshot read twice", async () => {
        const before = await view();
        const t = await (await fetch(metrics)).text();
        const after = await view();
        return before.timeMillis === after.timeMillis ? { text: t, jobs: after.jobs } : undefined;
      }, 120_000, 10);
      expect(text).not.toMatch(/otel_metric_overflow/);
      const exported = perJob(text, "powerprint_job_energy_total");
      expect(exported.size).toBe(JOBS);
      for (const j of jobs) {
        expect(j.id).toMatch(/^PP_SCALE_JOB=j\d+$/);
        expect(exported.get(j.id)).toBeGreaterThan(0);
        expect(exported.get(j.id)).toBeCloseTo(j.energyJoules, 9);
      }
      expect(await agent.stop()).toBe(0);
    } finally {
      killAll();
    }
  }, 600_000);

  it("10,000 retained jobs with Prometheus scrapes: peak RSS under the DaemonSet's 384 MiB limit, every job exported", async () => {
    const JOBS = 10_000;
    const state = join(dir, "state.json");
    writeFileSync(state, JSON.stringify(retainedState({ jobs: JOBS, host: hostname(), mode: "node" })));
    // The DaemonSet's own flags (deploy/kubernetes/node-agent/daemonset.yaml), its retention long
    // enough that no job is dropped during the test, and room above its 10,000 finished jobs for
    // other tests' pod cgroups that finish on this host meanwhile (they would push the oldest out).
    const agent = startAgent(["--mode", "node", "--interval", "1s", "--prometheus", "127.0.0.1:0", "--listen", "127.0.0.1:0", "--state-file", state, "--checkpoint-interval", "30s", "--retention", "1h", "--max-finished-jobs", String(JOBS + 1000)]);
    const metrics = await agent.line(/serving metrics at (\S+)/);
    await agent.line(/state: restored 10000 job/);
    const pid = agent.child.pid!;
    let peakKib = 0;
    let scrapedJobs = 0;
    for (let i = 0; i < 4; i++) {
      const res = await fetch(metrics);
      let lines = 0;
      const ids = new Set<string>();
      // Read as a stream, line by line, as Prometheus does: the test itself holds one chunk at a time.
      const decoder = new TextDecoder();
      let rest = "";
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        rest += decoder.decode(chunk, { stream: true });
        const parts = rest.split("\n");
        rest = parts.pop()!;
        for (const l of parts) {
          lines++;
          const id = l.startsWith("powerprint_job_energy_total{") ? /powerprint_job_id="([^"]*)"/.exec(l)?.[1] : undefined;
          // The restored pods (other tests' pod cgroups may be on this host too).
          if (id !== undefined && /^\d{8}-0000-4000-8000-\d{12}$/.test(id)) ids.add(id);
        }
        peakKib = Math.max(peakKib, statusKib(pid, "VmRSS"));
      }
      expect(lines, `scrape ${i}: lines`).toBeGreaterThan(JOBS * 10);
      scrapedJobs = ids.size;
    }
    peakKib = Math.max(peakKib, statusKib(pid, "VmHWM"));
    expect(scrapedJobs, "restored jobs on the last scrape").toBe(JOBS);
    expect(peakKib * 1024, `peak RSS ${peakKib} KiB`).toBeLessThan(DAEMONSET_LIMIT_BYTES);
    expect(await agent.stop()).toBe(0);
  }, 600_000);
});
