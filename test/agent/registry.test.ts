/**
 * The agent mode registry: a mode defined and registered in one file (./toy-mode.ts, which no
 * source file names) gets its flags on `agent` and `probe`, is chosen by --mode, validated, and
 * runs through the real agent (runAgent: config → pipeline → Agent → Monitor → ledger), its jobs
 * registered, measured, finished and reported like a built-in mode's.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { afterAll, describe, expect, it } from "vitest";
import { toySources } from "./toy-mode.js";
import { agentModes } from "../../src/agent/modes/index.js";
import { agentConfig, declareAgentFlags, type AgentFlags } from "../../src/config/agent.js";
import { declareProbeFlags, probeConfig, type ProbeFlags } from "../../src/config/probe.js";
import { runAgent } from "../../src/cli/agent.js";
import { UsageError } from "../../src/errors.js";
import { createStderrLogger } from "../../src/log.js";
import { waitFor } from "../helpers/wait.js";

const dir = mkdtempSync(join(tmpdir(), "pp-toy-mode-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** One simulated CPU: deterministic devices for the toy's jobs (they run on extra cores of it). */
const scenario = join(dir, "one-cpu.json");
writeFileSync(scenario, JSON.stringify({ name: "one-cpu", durationSeconds: 3600, devices: [{ id: "cpu0", kind: "cpu", idleWatts: 10, maxWatts: 110, cores: 4 }] }));

/** agent's flags parsed by the real declarations (the registry's included), then validated. */
function configFor(argv: string[]) {
  const cmd = declareAgentFlags(new Command("agent").exitOverride());
  cmd.parse(argv, { from: "user" });
  return { cmd, config: agentConfig(cmd.opts<AgentFlags>(), {}, (key) => cmd.getOptionValueSource(key) !== "cli") };
}

describe("a mode registered from one file", () => {
  it("is in the registry after the built-in modes, and its flags are declared on agent and probe", () => {
    expect(agentModes().map((m) => m.name)).toEqual(["pod", "node", "selector", "toy"]);
    const { cmd } = configFor(["--mode", "toy"]);
    const option = (long: string) => cmd.options.find((o) => o.long === long);
    expect(option("--toy-jobs")?.description).toBe("toy mode: how many jobs");
    expect(option("--mode")?.description).toMatch(/, toy \(counted test jobs\)$/);
    const probe = declareProbeFlags(new Command("probe").exitOverride());
    probe.parse(["--mode", "toy", "--toy-jobs", "3"], { from: "user" });
    const p = probeConfig(probe.opts<ProbeFlags>(), {});
    expect(p.modes.map((m) => [m.mode.name, m.config])).toEqual([["toy", { jobs: 3, samples: 100 }]]);
    expect(probe.options.map((o) => o.long)).not.toContain("--toy-samples");
  });

  it("validates its flags (exit-2 errors naming them), and its exclusive flag with another mode", () => {
    expect(() => configFor(["--mode", "toy", "--toy-jobs", "0"])).toThrow(new UsageError("--toy-jobs", "must be a whole number from 1 to 100, got '0'"));
    expect(() => configFor(["--mode", "selector", "--match-env", "X", "--toy-samples", "3"])).toThrow(new UsageError("--toy-samples", "only applies to --mode toy"));
    expect(() => configFor(["--mode", "daemonset"])).toThrow(new UsageError("--mode", "'daemonset' is not a mode: use pod, node, selector or toy"));
  });

  it("runs through the real agent: its jobs registered with their attributes and --tag, measured, finished, reported", async () => {
    const report = join(dir, "report.json");
    const { config } = configFor(["--mode", "toy", "--toy-jobs", "2", "--toy-samples", "4", "--sim", scenario, "--interval", "50ms", "--tag", "team=infra", "--report", report, "-q"]);
    let stop!: (signal: string) => void;
    const until = new Promise<string>((resolve) => (stop = resolve));
    const before = toySources.length;
    const running = runAgent(config, { log: createStderrLogger({ quiet: true, write: () => undefined }), until });
    const source = await waitFor("the toy's source", () => toySources[before]);
    await waitFor("six samples", () => (source.samples >= 6 ? true : undefined));
    stop("SIGTERM");
    const final = await running;
    const toy = final.jobs.filter((j) => j.id.startsWith("toy-")).sort((a, b) => a.id.localeCompare(b.id));
    expect(toy.map((j) => [j.id, j.name, j.attributes])).toEqual([
      ["toy-0", "toy job 0", { team: "infra", "toy.index": "0" }],
      ["toy-1", "toy job 1", { team: "infra", "toy.index": "1" }],
    ]);
    // Four live samples of 0.5 × (i + 1) CPU seconds each (the first is the baseline): what the source reported.
    expect(toy.map((j) => j.cpuSeconds)).toEqual([1.5, 3]);
    for (const j of toy) expect(j.energyJoules.cpu).toBeGreaterThan(0);
    // Job 1 used twice job 0's CPU seconds in every interval: twice its CPU energy.
    expect(toy[1].energyJoules.cpu / toy[0].energyJoules.cpu).toBeCloseTo(2, 9);
    const r = JSON.parse(readFileSync(report, "utf8")) as { mode: string; jobs: { id: string; finishedMillis?: number }[] };
    expect(r.mode).toBe("agent");
    expect(r.jobs.map((j) => j.id).filter((id) => id.startsWith("toy-")).sort()).toEqual(["toy-0", "toy-1"]);
  });
});
