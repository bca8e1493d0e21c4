/**
 * What a local user controls, at sizes meant to hurt, through the built CLI: 18 processes with
 * 1.4 MB command lines matched by a capturing selector, a state file with a 100 MB attribute, a
 * 10 MB pod label in the downward API. The agent keeps running, every id and label stays within
 * the documented bounds (cut, ending in a hash, so distinct texts stay distinct jobs), the state
 * file stays small and restores, and a bad state file is set aside.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CLI } from "../helpers/cli.js";
import { waitFor } from "../helpers/wait.js";
import { killAgents, startAgent } from "./agent-helpers.js";
// @ts-expect-error a plain .mjs helper shared with bench/agent.mjs
import { retainedState } from "../agent/scripts/retained-state.mjs";

const SCENARIO = join(import.meta.dirname, "..", "fixtures", "scenarios", "constant-shared-gpu.json");
/** src/core/bounds.ts MAX_JOB_ID_CHARS and MAX_ATTRIBUTE_VALUE_CHARS. */
const MAX_ID = 256;
const canUnshare = spawnSync("unshare", ["--pid", "--fork", "--mount-proc", "true"]).status === 0;

let dir: string;
const children: ChildProcess[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "pp-agent-hostile-"));
});
afterEach(async () => {
  await killAgents();
  // A detached shell leads its own process group: its `sleep` (a child, as `; :` keeps the shell)
  // goes with it. The pod's `unshare` is killed itself: --kill-child then takes its namespace down
  // (it ignores SIGTERM while it waits).
  for (const c of children.splice(0)) {
    try {
      process.kill(-c.pid!, "SIGKILL");
    } catch {
      if (c.exitCode === null) c.kill("SIGKILL");
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

interface JobsView {
  jobs: { id: string; name: string; attributes: Record<string, string>; energyJoules: number }[];
}

describe("hostile sizes", () => {
  it("18 processes with 1.4 MB command lines: the agent runs on, ids cut to 256 characters with distinct hashes, /metrics and the state file stay small", async () => {
    // The same 1.4 MB of text in each (12 arguments of 120,000 characters: one argument may hold
    // 128 KiB), told apart only by its last word: ids cut at 256 characters must stay distinct.
    const big = Array.from({ length: 12 }, (_, k) => String.fromCharCode(97 + k).repeat(120_000));
    for (let i = 0; i < 18; i++) {
      const c = spawn("sh", ["-c", "sleep 600; :", "pp-huge", ...big, `tail-${i}`], { stdio: "ignore", detached: true });
      children.push(c);
    }
    const state = join(dir, "state.json");
    const args = ["--mode", "selector", "--match-cmdline", "^sh -c sleep 600; : (pp-huge .*)$", "--interval", "200ms", "--prometheus", "127.0.0.1:0", "--listen", "127.0.0.1:0", "--state-file", state, "--checkpoint-interval", "200ms", "-v"];
    const agent = startAgent(args);
    const metrics = await agent.line(/serving metrics at (\S+)/);
    const health = await agent.line(/health: (\S+)\/healthz/);
    const view = await waitFor("18 jobs", async () => {
      const v = (await (await fetch(`${health}/jobs`)).json()) as JobsView;
      return v.jobs.length === 18 ? v : undefined;
    });
    const ids = view.jobs.map((j) => j.id);
    expect(new Set(ids).size).toBe(18);
    for (const id of ids) {
      expect(id.length).toBe(MAX_ID);
      expect(id).toMatch(/^pp-huge aaaa.*…#[0-9a-f]{16}$/);
    }
    const text = await (await fetch(metrics)).text();
    // Every line within bounds: a job's labels are its bounded id, name and a few attributes.
    expect(Math.max(...text.split("\n").map((l) => l.length))).toBeLessThan(2_000);
    expect(new Set([...text.matchAll(/powerprint_job_id="([^"]+)"/g)].map((m) => m[1])).size).toBe(18);
    await agent.line(/checkpoint 3 written/);
    expect(statSync(state).size).toBeLessThan(200_000);
    expect(await agent.stop()).toBe(0);

    // Restarted on its own state: restored, the same 18 ids (the same hashes), running on.
    const again = startAgent(args);
    await again.line(/state: restored 18 job\(s\)/);
    const health2 = await again.line(/health: (\S+)\/healthz/);
    const v2 = (await (await fetch(`${health2}/jobs`)).json()) as JobsView;
    expect(v2.jobs.map((j) => j.id).sort()).toEqual([...ids].sort());
    expect(await again.stop()).toBe(0);
  }, 180_000);

  it("a state file with a 100 MB attribute: set aside as corrupt, the agent starts from zero and runs", async () => {
    const state = join(dir, "state.json");
    const doc = retainedState({ jobs: 2, host: hostname(), mode: "sim" });
    doc.ledger.jobs[0].attributes["k8s.pod.label.note"] = "x".repeat(100 * 1024 * 1024);
    writeFileSync(state, JSON.stringify(doc));
    const agent = startAgent(["--sim", SCENARIO, "--state-file", state, "--interval", "100ms", "--listen", "127.0.0.1:0"]);
    const health = await agent.line(/health: (\S+)\/healthz/);
    await agent.line(/agent: mode/);
    expect(agent.stderr()).toMatch(/warning: state: .*state\.json is \d+ bytes, more than the 33554432 a state file can hold: set aside as .*corrupt-\d+; starting from zero/);
    expect(readdirSync(dir).filter((f) => f.startsWith("state.json.corrupt-"))).toHaveLength(1);
    await waitFor("/readyz", async () => ((await fetch(`${health}/readyz`)).status === 200 ? true : undefined));
    expect(await agent.stop()).toBe(0);
  }, 120_000);

  it("a state file with a 300-character attribute (a hand edit): set aside, naming the field", async () => {
    const state = join(dir, "state.json");
    const doc = retainedState({ jobs: 2, host: hostname(), mode: "sim" });
    doc.ledger.jobs[1].attributes["team"] = "y".repeat(300);
    writeFileSync(state, JSON.stringify(doc));
    const agent = startAgent(["--sim", SCENARIO, "--state-file", state, "--interval", "100ms"]);
    await agent.line(/agent: mode/);
    expect(agent.stderr()).toMatch(/warning: state: .*invalid at ledger\.jobs\.1\.attributes\.team: .*set aside as .*corrupt-\d+/);
    expect(await agent.stop()).toBe(0);
  }, 60_000);

  it.skipIf(!canUnshare)("a 10 MB pod label in the downward API: the sidecar starts, the label cut to 256 characters with its hash", async () => {
    const podinfo = join(dir, "podinfo");
    mkdirSync(podinfo);
    writeFileSync(join(podinfo, "name"), "trainer-0");
    writeFileSync(join(podinfo, "namespace"), "ml");
    const huge = "r".repeat(10 * 1024 * 1024);
    // A label over the 1 MiB read of the file is cut there (said); the job label within it is cut to 256 characters.
    const jobName = `${"j".repeat(400_000)}-end`;
    writeFileSync(join(podinfo, "labels"), `batch.kubernetes.io/job-name="${jobName}"\nhuge="${huge}"\napp="trainer"\n`);
    // The pod: its own PID namespace, the agent not PID 1 (a shell is, as pause would be).
    const out = join(dir, "agent.err");
    const pod = spawn("unshare", ["--pid", "--fork", "--mount-proc", "--kill-child", "sh", "-c", `exec 2>${out}; "$0" "$1" agent --mode pod --podinfo-dir "$2" --listen 127.0.0.1:0 --interval 200ms & wait`, process.execPath, CLI, podinfo], { stdio: "ignore" });
    children.push(pod);
    const url = await waitFor("the agent's health URL", () => /health: (http:\/\/127\.0\.0\.1:\d+)\/healthz/.exec(readFileSync(out, { encoding: "utf8", flag: "a+" }))?.[1], 60_000);
    // The endpoint listens before the hardware is probed: the job is listed once the agent runs.
    const v = await waitFor("the pod's job", async () => {
      const x = (await (await fetch(`${url}/jobs`)).json()) as JobsView;
      return x.jobs.length > 0 ? x : undefined;
    });
    expect(v.jobs.map((j) => j.id)).toEqual(["ml/trainer-0"]);
    const label = v.jobs[0].attributes["k8s.job.name"];
    expect(label.length).toBe(MAX_ID);
    expect(label).toMatch(/^jjjj.*…#[0-9a-f]{16}$/);
    expect(readFileSync(out, "utf8")).toMatch(/warning: pod mode: .*labels is larger than 1 MiB: read up to 1 MiB, a label cut there is left out/);
  }, 120_000);
});
