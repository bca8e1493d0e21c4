// A serving job's figures survive the agent's restart: the ledger's checkpoint (agent
// --state-file, src/agent/state.ts) carries jobs[].serving, the loader keeps it (bounded like every
// total), and the restored ledger goes on counting from it: tokens and energy add up across the
// restart, nothing counted twice. A state file whose serving figures are out of bounds is set aside.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { buildState, loadState, writeStateAtomic } from "../../src/agent/state.js";
import { Ledger } from "../../src/core/ledger.js";
import type { ServingIncrement } from "../../src/core/serving.js";
import type { DeviceInterval } from "../../src/core/types.js";

const dir = mkdtempSync(join(tmpdir(), "pp-serving-state-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const interval = (joules: number): DeviceInterval => ({ deviceId: "cpu0", kind: "cpu", source: "test", method: "counter", energyJoules: joules, idleJoules: 0, idleOrigin: "config", durationMillis: 1000, powerWatts: joules });
const intensity = { intensityGramsPerKwh: 300, zone: "DE", source: "static-table" };

/** One tick of `joules` for job j, and the work of the scrape started at its beginning. */
function tick(l: Ledger, joules: number, work: Record<string, ServingIncrement>, t: number): void {
  const token = l.servingToken("j")!;
  l.beginTick();
  l.record(interval(joules), new Map([["j", joules]]), intensity, t);
  l.endTick(t);
  l.recordWork("j", token, "vllm", new Map(Object.entries(work)));
}

describe("serving figures through the agent's state file", () => {
  it("are kept and continued after a restart", () => {
    const a = new Ledger({ pue: 1.2 }, 0);
    a.registerJob("j", "server", {}, 0);
    a.enableServing("j", "http://127.0.0.1:8000/metrics");
    tick(a, 10, { m: { promptTokens: 16, generatedTokens: 8, requests: 1, running: 0 } }, 1000);
    tick(a, 4, { m: { promptTokens: 0, generatedTokens: 0, requests: 0, running: 0 } }, 2000);
    const path = join(dir, "state.json");
    writeStateAtomic(path, buildState(a.serialize(), { host: "h", mode: "pod", savedMillis: 2000, final: true }));
    const r = loadState(path, { host: "h", mode: "pod", nowMillis: 3000 });
    if (r.status !== "restored") throw new Error(JSON.stringify(r));
    const before = a.snapshot().jobs[0].serving!;
    expect(r.state.ledger.jobs[0].serving).toEqual(JSON.parse(JSON.stringify(before)));

    const b = new Ledger({ pue: 1.2 }, 3000);
    b.restore(r.state.ledger);
    b.enableServing("j", "http://127.0.0.1:8000/metrics");
    tick(b, 6, { m: { promptTokens: 32, generatedTokens: 16, requests: 2, running: 1 } }, 4000);
    const after = b.snapshot().jobs[0];
    expect(after.serving!.total).toMatchObject({ promptTokens: 48, generatedTokens: 24, requests: 3 });
    expect(after.serving!.total.energyJoules).toBeCloseTo(after.energyJoules.total, 9);
    expect(after.serving!.total.activeEnergyJoules).toBeCloseTo(16, 9);
    expect(after.serving!.total.idleEnergyJoules).toBeCloseTo(4, 9);
  });

  it("a file whose serving figures are out of bounds is set aside", () => {
    const a = new Ledger({ pue: 1 }, 0);
    a.registerJob("j", "server", {}, 0);
    a.enableServing("j", "u");
    tick(a, 1, { m: { generatedTokens: 1 } }, 1000);
    const state = buildState(a.serialize(), { host: "h", mode: "pod", savedMillis: 1000 });
    (state.ledger.jobs[0].serving as { total: { generatedTokens: number } }).total.generatedTokens = 1e308;
    const path = join(dir, "bad.json");
    writeFileSync(path, JSON.stringify(state));
    expect(loadState(path, { host: "h", mode: "pod", nowMillis: 2000 }).status).toBe("set-aside");
  });
});
