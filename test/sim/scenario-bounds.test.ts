// Scenario bounds (docs/scenarios.md): each refused with one line naming the field and the
// limit; device ids and job names equal to Object.prototype keys are ordinary names.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { reportSchemaV1 } from "../../exporters/report-schema.js";
import { UsageError } from "../../src/errors.js";
import { SCENARIO_LIMITS, validateScenario } from "../../src/sim/scenario.js";
import { runCli } from "../helpers/cli.js";

const base = () => ({
  durationSeconds: 10,
  devices: [{ id: "gpu0", kind: "gpu", idleWatts: 50, maxWatts: 300 }],
  processes: [{ pid: 10, job: "a", gpu: { gpu0: [[0, 0.5]] } }],
});
const refusal = (s: unknown): string => {
  try {
    validateScenario(s, "s.json");
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return (err as Error).message;
  }
  throw new Error("accepted");
};
const dir = mkdtempSync(join(tmpdir(), "pp-scenario-bounds-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("scenario bounds", () => {
  it.each([
    ["durationSeconds 1e9", { durationSeconds: 1e9 }, /^s\.json: durationSeconds: must be <= 2678400 seconds \(31 days\)/],
    ["intervalMillis 5", { intervalMillis: 5 }, /^s\.json: intervalMillis: must be >= 10 ms/],
    ["31 days at 10 ms", { durationSeconds: 31 * 86_400, intervalMillis: 10 }, /^s\.json: intervalMillis: .* ticks; at most 3000000/],
    ["pid above pid_max", { processes: [{ pid: 5_000_000 }] }, /^s\.json: processes\[0\]\.pid: must be <= 4194304/],
    ["a series of 100,001 points", { grid: { intensity: Array.from({ length: 100_001 }, (_, i) => [i, 100]) } }, /^s\.json: grid\.intensity: .*100000/],
    ["2,000 devices", { devices: Array.from({ length: 2000 }, (_, i) => ({ id: `g${i}`, kind: "gpu", idleWatts: 1, maxWatts: 2 })) }, /^s\.json: devices: .*1024/],
  ])("%s is refused in one line naming the field and the limit", (_name, patch, want) => {
    const msg = refusal({ ...base(), ...patch });
    expect(msg).toMatch(want);
    expect(msg.split("\n")).toHaveLength(1);
  });

  it("10^6 processes are refused by count, before any of them is parsed", () => {
    const processes = new Array(1_000_000).fill(null); // not even valid objects: never looked at
    expect(refusal({ ...base(), processes })).toBe(`s.json: processes: 1000000 processes; at most ${SCENARIO_LIMITS.maxProcesses} (see docs/scenarios.md)`);
  });

  it("a month at 1 s ticks, the documented upper end, is accepted", () => {
    expect(validateScenario({ ...base(), durationSeconds: 31 * 86_400 }).durationSeconds).toBe(31 * 86_400);
  });

  it("a gpu usage that is not an object, or a bad series inside one, names the path", () => {
    expect(refusal({ ...base(), processes: [{ pid: 1, gpu: [] }] })).toMatch(/^s\.json: processes\[0\]\.gpu: must be an object/);
    expect(refusal({ ...base(), processes: [{ pid: 1, gpu: { gpu0: [[0, -1]] } }] })).toMatch(/^s\.json: processes\[0\]\.gpu\.gpu0\[0\]\[1\]: values must be >= 0/);
  });
});

describe("Object.prototype keys as names", () => {
  it("device ids __proto__, constructor, toString and jobs of those names: finite totals that add up", async () => {
    const ids = ["__proto__", "constructor", "toString"];
    const text = `{"name":"proto","durationSeconds":20,"intervalMillis":1000,
      "devices":[${ids.map((id) => `{"id":"${id}","kind":"gpu","idleWatts":50,"maxWatts":250}`).join(",")}],
      "processes":[${ids.map((id, i) => `{"pid":${10 + i},"job":"${id}","gpu":{"${id}":[[0,0.5]]}}`).join(",")}]}`;
    // Parsed as JSON text, so "__proto__" is an own key as a user's file would give it.
    const s = validateScenario(JSON.parse(text), "proto.json");
    expect(Object.keys(s.processes[0].gpu!)).toEqual(["__proto__"]);
    expect((s.processes[1].gpu as Record<string, unknown>)["__proto__"]).toBeUndefined();

    const file = join(dir, "proto.json");
    writeFileSync(file, text);
    const report = join(dir, "proto-report.json");
    const r = await runCli(["simulate", file, "--quiet", "--report", report]);
    expect(r.code, r.stderr).toBe(0);
    const raw = readFileSync(report, "utf8");
    expect(raw).not.toMatch(/function|native code|NaN|null/);
    const rep = reportSchemaV1.parse(JSON.parse(raw));
    expect(rep.devices.map((d) => d.id).sort()).toEqual([...ids].sort());
    for (const d of rep.devices) expect(d.energyJoules).toBeGreaterThan(0);
    const deviceSum = rep.devices.reduce((a, d) => a + d.energyJoules, 0);
    expect(rep.totals.energyJoules).toBeCloseTo(deviceSum, 6);
    for (const id of ids) {
      const job = rep.jobs.find((j) => j.id === id);
      expect(job, id).toBeDefined();
      expect(Number.isFinite(job!.energyJoules.total)).toBe(true);
      expect(job!.energyJoules.total).toBeGreaterThan(0);
    }
  });
});
