/**
 * The state file: atomic checkpoints that restore exactly; garbage, foreign and symlinked files set
 * aside (never fatal, never followed).
 */
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { STATE_SCHEMA, buildState, loadState, writeStateAtomic } from "../../src/agent/state.js";
import { Ledger } from "../../src/core/ledger.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "pp-state-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A ledger with one job, the buckets and one device holding energy. */
function filledLedger(): Ledger {
  const l = new Ledger({ pue: 1.5 }, 1000);
  l.registerJob("ns/pod", "pod", { "k8s.pod.name": "pod" }, 1000);
  l.setPhase("ns/pod", "train", { step: 10 });
  l.beginTick();
  l.record(
    { deviceId: "gpu0", kind: "gpu", source: "sim", method: "counter", energyJoules: 100, idleJoules: 10, idleOrigin: "scenario", durationMillis: 1000, powerWatts: 100 },
    new Map([["ns/pod", 70], ["system", 20], ["idle", 10]]),
    { intensityGramsPerKwh: 300, zone: "DE", source: "static" },
    2000,
  );
  l.recordCpuSeconds(new Map([["ns/pod", 2.5]]));
  l.endTick(2000);
  return l;
}

describe("state file", () => {
  it("round-trips a ledger: the restored ledger's totals equal the saved ones, restored jobs carry the given attribute", () => {
    const path = join(dir, "state.json");
    const saved = filledLedger();
    writeStateAtomic(path, buildState(saved.serialize(), { host: "node-a", mode: "pod", savedMillis: 3000 }));
    const r = loadState(path, { host: "node-a", nowMillis: 4000 });
    expect(r.status).toBe("restored");
    if (r.status !== "restored") return;
    const restored = new Ledger({ pue: 1.5 }, 5000);
    restored.restore(r.state.ledger, { "powerprint.restored": "true" });
    const a = saved.snapshot();
    const b = restored.snapshot();
    expect(b.jobs[0].energyJoules).toEqual(a.jobs[0].energyJoules);
    expect(b.jobs[0].emissionsGrams).toBe(a.jobs[0].emissionsGrams);
    expect(b.jobs[0].cpuSeconds).toBe(2.5);
    // Training-phase totals (marks) survive the restart too.
    expect(a.jobs[0].phases?.some((p) => p.name === "train" && p.energyJoules === 70)).toBe(true);
    expect(b.jobs[0].phases).toEqual(a.jobs[0].phases);
    expect(b.jobs[0].phaseEnergyJoules).toEqual(a.jobs[0].phaseEnergyJoules);
    expect(b.jobs[0].attributes).toEqual({ "k8s.pod.name": "pod", "powerprint.restored": "true" });
    expect(b.buckets).toEqual(a.buckets);
    expect(b.devices).toEqual(a.devices);
    // No temp file left behind.
    expect(readdirSync(dir)).toEqual(["state.json"]);
  });

  it("a later checkpoint replaces the file whole (rename), never through a symlink at the target", () => {
    const path = join(dir, "state.json");
    const victim = join(dir, "victim.txt");
    writeFileSync(victim, "keep me");
    symlinkSync(victim, path);
    writeStateAtomic(path, buildState(filledLedger().serialize(), { host: "h", mode: "pod", savedMillis: 1 }));
    expect(readFileSync(victim, "utf8")).toBe("keep me");
    expect(lstatSync(path).isSymbolicLink()).toBe(false);
    expect(JSON.parse(readFileSync(path, "utf8")).schema).toBe(STATE_SCHEMA);
  });

  const bad: [string, (p: string) => void, RegExp][] = [
    ["garbage", (p) => writeFileSync(p, "\u0000\u0001 not json {"), /not JSON/],
    ["another schema", (p) => writeFileSync(p, JSON.stringify({ schema: "kepler", version: 1 })), /schema "kepler"/],
    ["another version", (p) => writeFileSync(p, JSON.stringify({ schema: STATE_SCHEMA, version: 99 })), /version 99/],
    [
      "a bad field",
      (p) => {
        const s = buildState(filledLedger().serialize(), { host: "h", mode: "pod", savedMillis: 1 }) as unknown as { ledger: { jobs: { energyJoules: { total: unknown } }[] } };
        s.ledger.jobs[0].energyJoules.total = "lots";
        writeFileSync(p, JSON.stringify(s));
      },
      /invalid at ledger\.jobs\.0\.energyJoules\.total/,
    ],
    ["another host", (p) => writeStateAtomic(p, buildState(filledLedger().serialize(), { host: "node-b", mode: "pod", savedMillis: 1 })), /written by host 'node-b', this is 'h'/],
  ];
  for (const [name, write, reason] of bad) {
    it(`${name}: set aside as .corrupt-<time> with the reason`, () => {
      const path = join(dir, "state.json");
      write(path);
      const r = loadState(path, { host: "h", nowMillis: 1234 });
      expect(r.status).toBe("set-aside");
      if (r.status !== "set-aside") return;
      expect(r.reason).toMatch(reason);
      expect(r.movedTo).toBe(`${path}.corrupt-1234`);
      expect(existsSync(path)).toBe(false);
      expect(existsSync(`${path}.corrupt-1234`)).toBe(true);
    });
  }

  it("a symlink at the state path is set aside, not read", () => {
    const path = join(dir, "state.json");
    const target = join(dir, "elsewhere.json");
    writeStateAtomic(target, buildState(filledLedger().serialize(), { host: "h", mode: "pod", savedMillis: 1 }));
    symlinkSync(target, path);
    const r = loadState(path, { host: "h", nowMillis: 7 });
    expect(r).toMatchObject({ status: "set-aside", reason: expect.stringMatching(/symbolic link/) });
    expect(existsSync(target)).toBe(true);
  });

  it("absent: nothing to restore", () => {
    expect(loadState(join(dir, "none.json"), { host: "h", nowMillis: 1 })).toEqual({ status: "absent" });
  });
});
