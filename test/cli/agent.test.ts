/**
 * `powerprint agent` end to end (the built CLI): restart after SIGKILL continues from the
 * checkpoint without double counting, retention, and bad input (flags exit 2; a garbage state file
 * or a failing kubelet only warn).
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.js";
import { startReplayServer } from "../grid/replay-server.js";
import { killAgents, promValue, scrape, shortAndLong, startAgent, waitFor } from "./agent-helpers.js";

const SCENARIO = join(import.meta.dirname, "..", "fixtures", "scenarios", "constant-shared-gpu.json");
/** The scenario's GPU at full power: no job can gain energy faster. */
const MAX_WATTS = 700;
const ENERGY = "powerprint_job_energy_total";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "pp-agent-cli-"));
});
afterEach(async () => {
  await killAgents();
  rmSync(dir, { recursive: true, force: true });
});

interface StateDoc {
  final?: boolean;
  ledger: { jobs: { id: string; attributes: Record<string, string>; energyJoules: { total: number } }[] };
}
const readState = (path: string): StateDoc => JSON.parse(readFileSync(path, "utf8")) as StateDoc;
const jobEnergy = (s: StateDoc, id: string) => s.ledger.jobs.find((j) => j.id === id)!.energyJoules.total;

describe("agent restart", () => {
  it("after SIGKILL, each job's energy continues exactly from the checkpoint, never double counted, then only grows", async () => {
    const state = join(dir, "state.json");
    const common = ["--sim", SCENARIO, "--prometheus", "127.0.0.1:0", "--state-file", state, "--checkpoint-interval", "200ms", "-v"];

    // A: runs, checkpoints a few times, is killed without warning.
    const a = startAgent([...common, "--interval", "100ms"]);
    const urlA = await a.line(/serving metrics at (\S+)/);
    await a.line(/checkpoint 3 written/);
    const a1 = promValue(await scrape(urlA), ENERGY, { powerprint_job_id: "job-a" })!;
    const a2 = promValue(await scrape(urlA), ENERGY, { powerprint_job_id: "job-a" })!;
    expect(a2).toBeGreaterThanOrEqual(a1);
    expect(await a.stop("SIGKILL")).toBeNull();
    const killed = readState(state);
    expect(killed.final).toBeUndefined();
    const checkpointA = jobEnergy(killed, "job-a");
    const checkpointB = jobEnergy(killed, "job-b");
    expect(checkpointA).toBeGreaterThan(0);

    // B: an interval of an hour, so until its final sample it shows exactly what it restored.
    const startedB = performance.now();
    const b = startAgent([...common, "--interval", "1h"]);
    const urlB = await b.line(/serving metrics at (\S+)/);
    await b.line(/agent: mode/);
    expect(b.stderr()).toMatch(/did not stop cleanly.*powerprint\.restored=true/);
    const textB = await scrape(urlB);
    expect(promValue(textB, ENERGY, { powerprint_job_id: "job-a" })).toBeCloseTo(checkpointA, 9);
    expect(promValue(textB, ENERGY, { powerprint_job_id: "job-b" })).toBeCloseTo(checkpointB, 9);
    expect(promValue(textB, ENERGY, { powerprint_job_id: "job-a", powerprint_restored: "true" })).toBeCloseTo(checkpointA, 9);
    expect(await b.stop("SIGTERM")).toBe(0);
    const elapsedBSeconds = (performance.now() - startedB) / 1000;
    const stopped = readState(state);
    expect(stopped.final).toBe(true);
    // B's own final interval was added once: more than the checkpoint, at most what the GPU could
    // have drawn while B existed.
    expect(jobEnergy(stopped, "job-a")).toBeGreaterThan(checkpointA);
    expect(jobEnergy(stopped, "job-a") - checkpointA).toBeLessThanOrEqual(MAX_WATTS * elapsedBSeconds);

    // C: a clean restart continues from B's final totals and only grows.
    const c = startAgent([...common, "--interval", "100ms"]);
    const urlC = await c.line(/serving metrics at (\S+)/);
    await c.line(/clean stop: nothing was lost/);
    const values: number[] = [];
    await waitFor("three growing scrapes", async () => {
      values.push(promValue(await scrape(urlC), ENERGY, { powerprint_job_id: "job-a" }) ?? -1);
      return values.length >= 3 && values.at(-1)! > values[0] ? true : undefined;
    });
    expect(values[0]).toBeGreaterThanOrEqual(jobEnergy(stopped, "job-a") - 1e-9);
    for (let i = 1; i < values.length; i++) expect(values[i]).toBeGreaterThanOrEqual(values[i - 1]);
    expect(await c.stop()).toBe(0);
  }, 120_000);
});

describe("agent retention", () => {
  it("a finished job's final totals are exported for --retention, then it is dropped from /jobs and /metrics", async () => {
    const scenario = shortAndLong(dir);
    const agent = startAgent(["--sim", scenario, "--prometheus", "127.0.0.1:0", "--listen", "127.0.0.1:0", "--interval", "100ms", "--retention", "1s"]);
    const metrics = await agent.line(/serving metrics at (\S+)/);
    const health = await agent.line(/health: (\S+)\/healthz/);
    type View = { dropped: number; jobs: { id: string; finishedMillis: number | null; energyJoules: number }[] };
    const jobs = async () => (await (await fetch(`${health}/jobs`)).json()) as View;
    const finished = await waitFor("short finished", async () => (await jobs()).jobs.find((j) => j.id === "short" && j.finishedMillis !== null));
    const text = await scrape(metrics);
    const view = await jobs();
    // Still exported while retained (unless the retention already passed in between).
    if (view.dropped === 0) expect(promValue(text, ENERGY, { powerprint_job_id: "short" })).toBeGreaterThanOrEqual(finished.energyJoules - 1e-9);
    await waitFor("short dropped", async () => ((await jobs()).dropped === 1 ? true : undefined));
    const after = await scrape(metrics);
    expect(promValue(after, ENERGY, { powerprint_job_id: "short" })).toBeUndefined();
    expect(promValue(after, ENERGY, { powerprint_job_id: "long" })).toBeGreaterThan(0);
    expect((await jobs()).jobs.map((j) => j.id)).toEqual(["long"]);
    expect(await agent.stop()).toBe(0);
  }, 60_000);
});

describe("agent bad input", () => {
  const usage: [string, string[], RegExp][] = [
    ["unknown mode", ["--mode", "daemonset"], /^powerprint: error: --mode: 'daemonset' is not a mode: use pod, node or selector\n$/],
    ["unreadable proc root", ["--proc-root", "/nonexistent-pp"], /^powerprint: error: --proc-root: cannot read \/nonexistent-pp\/proc \(ENOENT\).*\n$/],
    ["selector without a selector", ["--mode", "selector"], /^powerprint: error: --mode: selector needs --match-cmdline REGEX or --match-env KEY\[=VALUE\]\n$/],
    ["bad regex", ["--mode", "selector", "--match-cmdline", "("], /^powerprint: error: --match-cmdline: .*not a regular expression.*\n$/],
    ["bad retention", ["--retention", "soon"], /^powerprint: error: --retention: .*\n$/],
    ["state file in a missing directory", ["--state-file", "/nonexistent-pp/state.json"], /^powerprint: error: --state-file: directory \/nonexistent-pp does not exist.*\n$/],
  ];
  for (const [name, args, message] of usage) {
    it(`${name}: exit 2, one line naming the flag`, async () => {
      const r = await runCli(["agent", ...args]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(message);
    });
  }

  it("a state file of garbage is set aside with a warning; the agent runs and writes a good one", async () => {
    const state = join(dir, "state.json");
    writeFileSync(state, "{ this is not json");
    const agent = startAgent(["--sim", SCENARIO, "--state-file", state, "--interval", "100ms"]);
    await agent.line(/agent: mode/);
    expect(agent.stderr()).toMatch(/warning: state: .*state\.json not JSON .*: set aside as .*state\.json\.corrupt-\d+; starting from zero/);
    const aside = readdirSync(dir).filter((f) => f.startsWith("state.json.corrupt-"));
    expect(aside).toHaveLength(1);
    expect(readFileSync(join(dir, aside[0]), "utf8")).toBe("{ this is not json");
    expect(await agent.stop()).toBe(0);
    expect(readState(state).final).toBe(true);
  }, 60_000);

  const kubelets: [string, { status: number; body: unknown }, RegExp][] = [
    ["401", { status: 401, body: "Unauthorized" }, /401/],
    ["500", { status: 500, body: "internal error" }, /500/],
    ["garbage", { status: 200, body: "<html>not a pod list" }, /JSON|pod list|invalid/i],
  ];
  for (const [name, reply, reason] of kubelets) {
    it(`a kubelet answering ${name}: one warning line, the agent keeps running (pods by UID)`, async () => {
      const kubelet = await startReplayServer(() => reply);
      try {
        const agent = startAgent(["--mode", "node", "--kubelet-url", `${kubelet.url}/pods`, "--listen", "127.0.0.1:0", "--interval", "100ms"]);
        const health = await agent.line(/health: (\S+)\/healthz/);
        const warning = await agent.line(/(warning: pod metadata from the kubelet unavailable: .*)/);
        expect(warning).toMatch(reason);
        await waitFor("/readyz", async () => ((await fetch(`${health}/readyz`)).status === 200 ? true : undefined));
        expect((await fetch(`${health}/healthz`)).status).toBe(200);
        expect(agent.stderr().split("\n").filter((l) => l.includes("pod metadata from the kubelet unavailable"))).toHaveLength(1);
        expect(kubelet.count("/pods")).toBeGreaterThanOrEqual(1);
        expect(await agent.stop()).toBe(0);
      } finally {
        await kubelet.close();
      }
    }, 60_000);
  }

  it("SIGINT stops it like SIGTERM: final checkpoint, the report, exit 0", async () => {
    const state = join(dir, "state.json");
    const report = join(dir, "report.json");
    const agent = startAgent(["--sim", SCENARIO, "--state-file", state, "--interval", "100ms", "--report", report]);
    await agent.line(/agent: mode/);
    expect(await agent.stop("SIGINT")).toBe(0);
    expect(existsSync(state)).toBe(true);
    expect(readState(state).final).toBe(true);
    const r = JSON.parse(readFileSync(report, "utf8")) as { mode: string; jobs: { id: string; energyJoules: { total: number } }[] };
    expect(r.mode).toBe("agent");
    expect(r.jobs.map((j) => j.id).sort()).toEqual(["job-a", "job-b"]);
    // The report's totals are the final checkpoint's.
    expect(r.jobs.find((j) => j.id === "job-a")!.energyJoules.total).toBeCloseTo(jobEnergy(readState(state), "job-a"), 9);
  }, 60_000);
});
