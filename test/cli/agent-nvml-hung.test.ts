/**
 * An NVML call that does not return (a wedged driver: a GPU fallen off the bus), through the built
 * CLI with the stub libnvidia-ml.so.1 (test/native/stub-nvml.c): while STUB_NVML_HANG_FILE exists,
 * nvmlInit_v2, nvmlDeviceGetPowerUsage and nvmlDeviceGetTotalEnergyConsumption block. NVML's calls
 * run on the thread pool (collectors/nvml.ts), so ticks go on, /healthz answers 503 naming nvml,
 * the self-metric says it is hung, releasing the hang brings it back, and SIGTERM ends the agent
 * (exit 0, final checkpoint) with the call still stuck. `run` measures on and passes its command's
 * exit code through. Each of these hung the whole process while the calls ran on the event loop.
 */
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.js";
import { buildStubNvml } from "../native/build-stub.mjs";
import { killAgents, promValue, scrape, startAgent, waitFor } from "./agent-helpers.js";

let lib: string;
let dir: string;
beforeAll(() => {
  lib = buildStubNvml();
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "pp-agent-nvml-hung-"));
});
afterEach(async () => {
  await killAgents();
  rmSync(dir, { recursive: true, force: true });
});

/** The stub's script with gpu0's counter at `energyMillijoules`, replaced atomically (the stub re-reads it on change). */
function script(energyMillijoules: number): string {
  const path = join(dir, "stub.txt");
  writeFileSync(`${path}.tmp`, `count 1\ngpu0.name NVIDIA H100 80GB HBM3\ngpu0.energy_mj ${energyMillijoules}\ngpu0.power_mw 300000\n`);
  renameSync(`${path}.tmp`, path);
  return path;
}

function stubEnv(): NodeJS.ProcessEnv {
  return {
    POWERPRINT_NVML_LIBRARY: lib,
    STUB_NVML_SCRIPT: script(5_000_000),
    STUB_NVML_HANG_FILE: join(dir, "hang"),
    STUB_NVML_READ_LOG: join(dir, "reads.log"),
  };
}
const readLog = (): string => (existsSync(join(dir, "reads.log")) ? readFileSync(join(dir, "reads.log"), "utf8") : "");
/** Lines of the stub's log (energy reads, calls that entered the hang). */
const logLines = (prefix: string): string[] => readLog().split("\n").filter((l) => l.startsWith(prefix));

const health = async (url: string): Promise<{ status: number; body: string }> => {
  const r = await fetch(`${url}/healthz`);
  return { status: r.status, body: await r.text() };
};
/** The agent's sample time, read twice: it must move on (ticks go on). */
async function ticksGoOn(url: string): Promise<void> {
  const t0 = ((await (await fetch(`${url}/jobs`)).json()) as { timeMillis: number }).timeMillis;
  await waitFor("a later sample", async () => (((await (await fetch(`${url}/jobs`)).json()) as { timeMillis: number }).timeMillis > t0 ? true : undefined));
}

const args = (state: string) => [
  "--mode", "selector", "--match-env", "PP_NVML_HUNG_NO_SUCH_VARIABLE", "--interval", "200ms",
  "--listen", "127.0.0.1:0", "--prometheus", "127.0.0.1:0", "--state-file", state, "--flush-timeout", "2s",
];

describe("an NVML call that never returns", () => {
  it("mid-run: ticks go on, /healthz 503 naming nvml, source_hung 1; released: back, its counter read again; stuck again at SIGTERM: exit 0, the measured counter in the final checkpoint", async () => {
    const env = stubEnv();
    const state = join(dir, "state.json");
    const agent = startAgent(args(state), env);
    const url = await agent.line(/health: (\S+)\/healthz/);
    const metrics = await agent.line(/serving metrics at (\S+)/);
    await waitFor("/readyz", async () => ((await fetch(`${url}/readyz`)).status === 200 ? true : undefined));
    await waitFor("gpu0's counter read", () => logLines("energy gpu0").length > 0);
    expect((await health(url)).status).toBe(200);

    writeFileSync(env.STUB_NVML_HANG_FILE!, "");
    await waitFor("a call stuck in the stub", () => logLines("hang ").length > 0);
    const h = await waitFor("/healthz 503", async () => {
      const x = await health(url);
      return x.status === 503 ? x : undefined;
    });
    expect(h.body).toMatch(/^not live: source nvml hung: its read has not answered for \d+ s \(it is not read again until it does\)\n$/);
    await ticksGoOn(url);
    expect(promValue(await scrape(metrics), "powerprint_agent_source_hung", { powerprint_source: "nvml" })).toBe(1);
    // One call stuck, never a pile: the hung source is not read again while it is.
    await ticksGoOn(url);
    expect(logLines("hang ")).toHaveLength(1);

    // Released, with 10 J more on the counter: the source answers again and the climb is measured.
    script(5_010_000);
    unlinkSync(env.STUB_NVML_HANG_FILE!);
    await waitFor("/healthz 200 again", async () => ((await health(url)).status === 200 ? true : undefined));
    // The late answer of the stuck call belongs to no tick: the climb is counted by the next read.
    await waitFor("gpu0's climb measured", async () => promValue(await scrape(metrics), "hw_energy_total", { hw_id: "gpu0" }) === 10);
    await waitFor("source_hung 0", async () => promValue(await scrape(metrics), "powerprint_agent_source_hung", { powerprint_source: "nvml" }) === 0);
    expect(promValue(await scrape(metrics), "powerprint_agent_source_failures_total", { powerprint_source: "nvml", error_type: "timeout" })).toBeGreaterThan(0);

    // Stuck again, and SIGTERM: the agent exits without waiting for the call, after its final checkpoint.
    writeFileSync(env.STUB_NVML_HANG_FILE!, "");
    await waitFor("a call stuck again", () => logLines("hang ").length > 1);
    expect(await agent.stop()).toBe(0);
    expect(existsSync(env.STUB_NVML_HANG_FILE!)).toBe(true);
    expect(agent.stderr()).toMatch(/warning: the NVML call nvmlDevice\w+ has not returned for \d+ s \(stuck in the kernel\): exiting without waiting for it/);
    const saved = JSON.parse(readFileSync(state, "utf8")) as { final: boolean; resume: { deviceCounters: Record<string, { energyJoules: number }> }; ledger: { devices: { id: string; energyJoules: number }[] } };
    expect(saved.final).toBe(true);
    expect(saved.resume.deviceCounters.gpu0.energyJoules).toBe(5010);
    expect(saved.ledger.devices.find((d) => d.id === "gpu0")!.energyJoules).toBeCloseTo(10, 6);
  }, 180_000);

  it("at start (nvmlInit_v2 stuck): the probe gives up and says so, /healthz answers, ticks go on, SIGTERM exits 0", async () => {
    const env = stubEnv();
    writeFileSync(env.STUB_NVML_HANG_FILE!, "");
    const state = join(dir, "state.json");
    const agent = startAgent([...args(state), "-v"], env);
    const url = await agent.line(/health: (\S+)\/healthz/, 120_000);
    await waitFor("/readyz", async () => ((await fetch(`${url}/readyz`)).status === 200 ? true : undefined));
    expect(logLines("hang nvmlInit_v2")).toHaveLength(1);
    expect(agent.stderr()).toMatch(/nvmlInit_v2 did not return within 5 s \(a wedged driver\): GPUs not measured/);
    expect((await health(url)).status).toBe(200);
    await ticksGoOn(url);
    expect(await agent.stop()).toBe(0);
    expect(agent.stderr()).toMatch(/warning: the NVML call nvmlInit_v2 has not returned for \d+ s \(stuck in the kernel\): exiting without waiting for it/);
    expect(JSON.parse(readFileSync(state, "utf8")).final).toBe(true);
  }, 180_000);

  it("run: the call sticks mid-job; the job's exit code passes through, the report is written, the process exits with the call still stuck", async () => {
    const env = stubEnv();
    const report = join(dir, "r.json");
    // The job waits for a tick's whole read (the probe's counter read, then two ticks': NVML's calls
    // run one after another, so the second tick's started once the first's ended), wedges the stub,
    // waits until a call is stuck, and exits 3.
    const job = [
      'import { existsSync, readFileSync, writeFileSync } from "node:fs";',
      "const log = process.env.STUB_NVML_READ_LOG;",
      'const has = (s) => existsSync(log) && readFileSync(log, "utf8").includes(s);',
      'const reads = () => (existsSync(log) ? readFileSync(log, "utf8").split("\\n").filter((l) => l.startsWith("energy gpu0")).length : 0);',
      "const until = async (f) => { while (!f()) await new Promise((r) => setTimeout(r, 20)); };",
      "await until(() => reads() >= 3);",
      'writeFileSync(process.env.STUB_NVML_HANG_FILE, "");',
      'await until(() => has("hang "));',
      "process.exit(3);",
    ].join("\n");
    writeFileSync(join(dir, "job.mjs"), job);
    const r = await runCli(["run", "--interval", "200ms", "--report", report, "--", process.execPath, join(dir, "job.mjs")], { env });
    expect(r.code, r.stderr).toBe(3);
    expect(existsSync(env.STUB_NVML_HANG_FILE!)).toBe(true);
    expect(r.stderr).toMatch(/nvml: read did not answer within/);
    expect(r.stderr).toMatch(/warning: the NVML call nvmlDevice\w+ has not returned for \d+ s \(stuck in the kernel\): exiting without waiting for it/);
    const rep = JSON.parse(readFileSync(report, "utf8")) as { jobs: { exitCode?: number }[]; devices: { id: string; source: string }[] };
    expect(rep.devices.find((d) => d.id === "gpu0")).toMatchObject({ source: "nvml" });
    expect(rep.jobs[0].exitCode).toBe(3);
  }, 180_000);
});
