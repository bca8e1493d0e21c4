/**
 * Bounds and endpoint rules of the long-running agent (and `run`, which shares them), through the
 * built CLI: durations past Node's timer range are refused for every duration flag; malformed
 * kubelet URLs and a missing downward API directory are exit 2; a taken port warns and the agent
 * measures on (exit 2 only with --strict-endpoints); stale temp files of an interrupted checkpoint
 * or report are removed at start; a state file of another --mode or with impossible totals is set
 * aside.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.js";
import { startReplayServer } from "../grid/replay-server.js";
import { killAgents, promValue, scrape, startAgent, waitFor } from "./agent-helpers.js";
// @ts-expect-error a plain .mjs helper shared with bench/agent.mjs
import { retainedState } from "../agent/scripts/retained-state.mjs";

const SCENARIO = join(import.meta.dirname, "..", "fixtures", "scenarios", "constant-shared-gpu.json");

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "pp-agent-limits-"));
});
afterEach(async () => {
  await killAgents();
  rmSync(dir, { recursive: true, force: true });
});

describe("durations past Node's timer range", () => {
  // Every duration flag of every command (and the export interval's variable), 25 days or more.
  const cases: [string[], string, NodeJS.ProcessEnv?][] = [
    [["agent", "--sim", SCENARIO, "--interval", "25d"], "--interval"],
    [["agent", "--sim", SCENARIO, "--interval", "999999999h"], "--interval"],
    [["agent", "--sim", SCENARIO, "--checkpoint-interval", "30d"], "--checkpoint-interval"],
    [["agent", "--sim", SCENARIO, "--retention", "25d"], "--retention"],
    [["agent", "--sim", SCENARIO, "--flush-timeout", "25d"], "--flush-timeout"],
    [["agent", "--sim", SCENARIO, "--export-interval", "30d", "--otlp", "console"], "--export-interval"],
    [["agent", "--sim", SCENARIO, "--prometheus-linger", "25d", "--prometheus", "127.0.0.1:0"], "--prometheus-linger"],
    [["agent", "--sim", SCENARIO, "--otlp", "console"], "OTEL_METRIC_EXPORT_INTERVAL", { OTEL_METRIC_EXPORT_INTERVAL: String(30 * 86_400_000) }],
    [["agent", "--sim", SCENARIO, "--otlp", "http://127.0.0.1:9"], "OTEL_EXPORTER_OTLP_TIMEOUT", { OTEL_EXPORTER_OTLP_TIMEOUT: String(25 * 86_400_000) }],
    [["run", "--interval", "25d", "--", "true"], "--interval"],
    [["run", "--grace", "25d", "--", "true"], "--grace"],
    [["run", "--checkpoint-interval", "25d", "--", "true"], "--checkpoint-interval"],
    [["run", "--flush-timeout", "25d", "--", "true"], "--flush-timeout"],
    [["run", "--prometheus-linger", "25d", "--", "true"], "--prometheus-linger"],
    [["run", "--export-interval", "25d", "--otlp", "console", "--", "true"], "--export-interval"],
    [["run", "--start-within", "25d", "--intensity-provider", "uk-carbon-intensity", "--zone", "GB", "--", "true"], "--start-within"],
  ];
  for (const [args, flag, env] of cases) {
    it(`${args.slice(0, 1).join(" ")} ${flag}${env ? "" : ` ${args[args.indexOf(flag) + 1]}`}: exit 2 naming the flag and the 24d limit, nothing run`, async () => {
      const marker = join(dir, "ran");
      const r = await runCli(args.flatMap((a) => (a === "true" ? ["touch", marker] : [a])), { env, cwd: dir });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`^powerprint: error: ${flag}: .* longer than the maximum of 24d .*\\n$`));
      expect(existsSync(marker)).toBe(false);
    });
  }

  it("24 days is still accepted (the documented maximum itself)", async () => {
    const agent = startAgent(["--sim", SCENARIO, "--retention", "24d", "--checkpoint-interval", "24d", "--interval", "100ms"]);
    await agent.line(/agent: mode/);
    expect(await agent.stop()).toBe(0);
  }, 60_000);
});

describe("agent flags checked before start", () => {
  it("--kubelet-url ftp://…: exit 2 naming the flag", async () => {
    const r = await runCli(["agent", "--mode", "node", "--kubelet-url", "ftp://kubelet:10250/pods"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^powerprint: error: --kubelet-url: 'ftp:\/\/kubelet:10250\/pods': only https:\/\/ and http:\/\/ are supported.*\n$/);
  });

  it("--kubelet-url that is no URL: exit 2", async () => {
    const r = await runCli(["agent", "--mode", "node", "--kubelet-url", "kubelet pods"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^powerprint: error: --kubelet-url: 'kubelet pods' is not a URL.*\n$/);
  });

  it("--prometheus-linger longer than --flush-timeout: exit 2 naming both (the agent exits within --flush-timeout at SIGTERM)", async () => {
    const r = await runCli(["agent", "--sim", SCENARIO, "--prometheus", "127.0.0.1:0", "--prometheus-linger", "30s"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^powerprint: error: --prometheus-linger: 30s is longer than --flush-timeout \(10 s\).*raise --flush-timeout or shorten the linger\n$/);
  });

  it("--podinfo-dir /missing: exit 2 (the default directory may be absent: said, not fatal)", async () => {
    const r = await runCli(["agent", "--mode", "pod", "--podinfo-dir", join(dir, "missing")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^powerprint: error: --podinfo-dir: .*missing is not a directory.*\n$/);
  });
});

describe("pod metadata", () => {
  it("a pod UID listed twice by the kubelet is warned about once, naming both pods; the first is kept", async () => {
    const uid = "5c0a1b2c-3d4e-4f50-8a6b-7c8d9e0f1a2b";
    const pod = (name: string) => ({ metadata: { uid, name, namespace: "ml", labels: {} }, spec: { nodeName: "node-a" }, status: { phase: "Running" } });
    const kubelet = await startReplayServer((req) => (req.path === "/pods" ? { body: { kind: "PodList", items: [pod("trainer-0"), pod("impostor")] } } : { status: 404, body: "no" }));
    try {
      const agent = startAgent(["--mode", "node", "--kubelet-url", `${kubelet.url}/pods`, "--interval", "100ms"]);
      const warning = await agent.line(/(warning: the kubelet lists pod UID .*)/);
      expect(warning).toBe(`warning: the kubelet lists pod UID ${uid} twice (ml/trainer-0 and ml/impostor): the first is used`);
      await agent.line(/agent: mode/);
      expect(await agent.stop()).toBe(0);
      expect(agent.stderr().split("\n").filter((l) => l.includes("twice"))).toHaveLength(1);
    } finally {
      await kubelet.close();
    }
  }, 60_000);
});

/** A listener holding a loopback port, so the agent's bind fails with EADDRINUSE. */
async function takenPort(): Promise<{ port: number; server: Server }> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return { port: (server.address() as { port: number }).port, server };
}

describe("a taken port (same rule as run)", () => {
  it("--prometheus on a taken port: a warning, and the agent measures on (its /jobs shows the jobs)", async () => {
    const { port, server } = await takenPort();
    try {
      const agent = startAgent(["--sim", SCENARIO, "--prometheus", `127.0.0.1:${port}`, "--listen", "127.0.0.1:0", "--interval", "100ms"]);
      const health = await agent.line(/health: (\S+)\/healthz/);
      expect(agent.stderr()).toMatch(/warning: --prometheus: cannot listen on 127\.0\.0\.1:\d+: EADDRINUSE: measuring on without the Prometheus endpoint/);
      const view = await waitFor("energy in /jobs", async () => {
        const v = (await (await fetch(`${health}/jobs`)).json()) as { jobs: { id: string; energyJoules: number }[] };
        return v.jobs.some((j) => j.energyJoules > 0) ? v : undefined;
      });
      expect(view.jobs.map((j) => j.id).sort()).toEqual(["job-a", "job-b"]);
      expect(await agent.stop()).toBe(0);
    } finally {
      server.close();
    }
  }, 60_000);

  it("--listen on a taken port: a warning, and the agent measures on (/metrics shows the jobs)", async () => {
    const { port, server } = await takenPort();
    try {
      const agent = startAgent(["--sim", SCENARIO, "--prometheus", "127.0.0.1:0", "--listen", `127.0.0.1:${port}`, "--interval", "100ms"]);
      const metrics = await agent.line(/serving metrics at (\S+)/);
      await agent.line(/(warning: --listen: cannot listen on 127\.0\.0\.1:\d+: EADDRINUSE: measuring on without \/healthz)/);
      await waitFor("job energy on /metrics", async () => ((promValue(await scrape(metrics), "powerprint_job_energy_total", { powerprint_job_id: "job-a" }) ?? 0) > 0 ? true : undefined));
      expect(await agent.stop()).toBe(0);
    } finally {
      server.close();
    }
  }, 60_000);

  for (const flag of ["--prometheus", "--listen"]) {
    it(`${flag} on a taken port with --strict-endpoints: exit 2 naming the flag`, async () => {
      const { port, server } = await takenPort();
      try {
        const other = flag === "--prometheus" ? ["--listen", "127.0.0.1:0"] : ["--prometheus", "127.0.0.1:0"];
        const r = await runCli(["agent", "--sim", SCENARIO, flag, `127.0.0.1:${port}`, ...other, "--strict-endpoints", "--interval", "100ms"]);
        expect(r.code).toBe(2);
        expect(r.stderr).toMatch(new RegExp(`powerprint: error: ${flag}: cannot listen on 127\\.0\\.0\\.1:${port}: EADDRINUSE\\n$`));
      } finally {
        server.close();
      }
    }, 60_000);
  }

  it("run --strict-endpoints on a taken --prometheus port: exit 2 before the command runs", async () => {
    const { port, server } = await takenPort();
    try {
      const marker = join(dir, "ran");
      const r = await runCli(["run", "--prometheus", `127.0.0.1:${port}`, "--strict-endpoints", "--", "touch", marker]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/powerprint: error: --prometheus: cannot listen on 127\.0\.0\.1:\d+: EADDRINUSE\n$/);
      expect(existsSync(marker)).toBe(false);
    } finally {
      server.close();
    }
  }, 60_000);
});

describe("state file hygiene", () => {
  it("stale temp files of this state file and of the report are removed at start; others are left", async () => {
    const state = join(dir, "state.json");
    const report = join(dir, "report.json");
    // What SIGKILLs during a checkpoint and a report write leave: temp files of writers long gone.
    const dead = 4_194_000; // above any pid_max default: never a live process
    writeFileSync(join(dir, `state.json.tmp-${dead}-0a1b2c3d`), "{ half a state");
    writeFileSync(join(dir, `state.json.tmp-${dead + 1}-deadbeef`), "");
    writeFileSync(join(dir, `report.json.tmp-${dead}-00aa11bb22cc`), "{ half a report");
    // A live writer's temp file (this test process) and unrelated files stay.
    writeFileSync(join(dir, `state.json.tmp-${process.pid}-feedf00d`), "in use");
    writeFileSync(join(dir, "other.json.tmp-1-abcdef"), "not ours");
    const agent = startAgent(["--sim", SCENARIO, "--state-file", state, "--report", report, "--interval", "100ms", "--checkpoint-interval", "100ms", "-v"]);
    await agent.line(/checkpoint 2 written/);
    expect(agent.stderr()).toMatch(/state: removed 2 temp file\(s\) of an interrupted checkpoint/);
    expect(await agent.stop()).toBe(0);
    expect(readdirSync(dir).sort()).toEqual([`state.json.tmp-${process.pid}-feedf00d`, "other.json.tmp-1-abcdef", "report.json", "state.json"].sort());
  }, 60_000);

  it("a state file of another --mode is set aside with a warning, not restored", async () => {
    const state = join(dir, "state.json");
    writeFileSync(state, JSON.stringify(retainedState({ jobs: 3, host: hostname(), mode: "node" })));
    const agent = startAgent(["--sim", SCENARIO, "--state-file", state, "--listen", "127.0.0.1:0", "--interval", "100ms"]);
    const health = await agent.line(/health: (\S+)\/healthz/);
    await agent.line(/agent: mode/);
    expect(agent.stderr()).toMatch(/warning: state: .*state\.json written by --mode node, this agent runs --mode sim: set aside as .*state\.json\.corrupt-\d+; starting from zero/);
    const v = (await (await fetch(`${health}/jobs`)).json()) as { jobs: { id: string }[] };
    expect(v.jobs.map((j) => j.id).sort()).toEqual(["job-a", "job-b"]);
    expect(await agent.stop()).toBe(0);
  }, 60_000);

  const impossible: [string, (s: ReturnType<typeof retainedState>) => void, RegExp][] = [
    ["a negative energy", (s) => (s.ledger.jobs[1].energyJoules.cpu = -5), /invalid at ledger\.jobs\.1\.energyJoules\.cpu/],
    ["an energy of 1e308 J", (s) => (s.ledger.jobs[0].energyJoules.total = 1e308), /invalid at ledger\.jobs\.0\.energyJoules\.total/],
    ["a negative CPU time", (s) => (s.ledger.jobs[2].cpuSeconds = -1), /invalid at ledger\.jobs\.2\.cpuSeconds/],
    ["emissions of 1e300 g", (s) => (s.ledger.buckets.system.emissionsGrams = 1e300), /invalid at ledger\.buckets\.system\.emissionsGrams/],
  ];
  for (const [name, edit, reason] of impossible) {
    it(`a hand-edited state with ${name} is set aside as corrupt`, async () => {
      const state = join(dir, "state.json");
      const doc = retainedState({ jobs: 3, host: hostname(), mode: "sim" });
      edit(doc);
      writeFileSync(state, JSON.stringify(doc));
      const agent = startAgent(["--sim", SCENARIO, "--state-file", state, "--interval", "100ms"]);
      await agent.line(/agent: mode/);
      const warning = agent.stderr().split("\n").find((l) => l.includes("warning: state:"));
      expect(warning).toMatch(reason);
      expect(warning).toMatch(/set aside as .*corrupt-\d+; starting from zero/);
      expect(readdirSync(dir).filter((f) => f.startsWith("state.json.corrupt-"))).toHaveLength(1);
      expect(await agent.stop()).toBe(0);
      expect(JSON.parse(readFileSync(state, "utf8")).ledger.jobs.map((j: { id: string }) => j.id).sort()).toEqual(["job-a", "job-b"]);
    }, 60_000);
  }
});
