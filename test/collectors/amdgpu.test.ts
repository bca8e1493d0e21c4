// AMD GPU collector against hwmon fixture trees (layout of /sys/class/drm/card*/device/hwmon/hwmon*).
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { createAmdGpuCollector } from "../../collectors/amdgpu.js";

const fixtures = fileURLToPath(new URL("../fixtures/hwmon/", import.meta.url));
const temps: string[] = [];
afterAll(() => temps.forEach((t) => rmSync(t, { recursive: true, force: true })));

describe("amdgpu collector", () => {
  it("energy1_input card is a counter (µJ → J), power1_average card is power with a note; others skipped", async () => {
    const c = createAmdGpuCollector({ root: join(fixtures, "energy-and-average") });
    const readings = await c.read();
    expect(readings).toEqual([
      {
        deviceId: "amdgpu:card0",
        kind: "gpu",
        source: "amdgpu",
        model: "AMD Instinct MI210",
        uuid: "5e4a2c1b0d3f6a79",
        method: "counter",
        energyJoules: 1234567.890123,
        powerWatts: 212,
        utilization: 0.73,
        status: "ok",
      },
      {
        deviceId: "amdgpu:card1",
        kind: "gpu",
        source: "amdgpu",
        model: "AMD GPU 1002:73bf",
        method: "power",
        powerWatts: 48,
        utilization: 0.12,
        status: "ok",
        note: "amdgpu hwmon has no energy1_input: integrating power1_average",
      },
    ]);
  });

  it("probe says which source each card uses and whether it has the counter", async () => {
    const probe = await createAmdGpuCollector({ root: join(fixtures, "power-input-only") }).probe();
    expect(probe).toEqual({
      status: "ok",
      devices: [
        { deviceId: "amdgpu:card0", kind: "gpu", model: "AMD Radeon RX 7900 XTX", method: "power", energyCounter: false, detail: "no energy1_input: integrating power1_input" },
        {
          deviceId: "amdgpu:card1",
          kind: "gpu",
          model: "AMD GPU 1002:1681",
          method: "power",
          energyCounter: false,
          detail: "no energy1_input, power1_average or power1_input readable: card skipped",
        },
      ],
    });
    const readings = await createAmdGpuCollector({ root: join(fixtures, "power-input-only") }).read();
    expect(readings.map((r) => [r.deviceId, r.powerWatts, r.utilization])).toEqual([["amdgpu:card0", 355.123, 1]]);
  });

  it("follows the counter as it advances and returns it raw when it goes backwards", async () => {
    const root = mkdtempSync(join(tmpdir(), "powerprint-amdgpu-"));
    temps.push(root);
    cpSync(join(fixtures, "energy-and-average"), root, { recursive: true });
    const energyFile = join(root, "sys/class/drm/card0/device/hwmon/hwmon4/energy1_input");
    const c = createAmdGpuCollector({ root });
    expect((await c.read())[0].energyJoules).toBe(1234567.890123);
    writeFileSync(energyFile, "1234767890123\n");
    expect((await c.read())[0].energyJoules).toBe(1234767.890123);
    writeFileSync(energyFile, "5000000\n");
    expect((await c.read())[0].energyJoules).toBe(5);
  });

  it("a host without amdgpu cards, or without /sys/class/drm, is unavailable with a reason", async () => {
    const none = await createAmdGpuCollector({ root: join(fixtures, "no-amd") }).probe();
    expect(none).toMatchObject({ status: "unavailable" });
    expect(none.status === "unavailable" && none.reason).toContain("no amdgpu hwmon");
    const missing = await createAmdGpuCollector({ root: join(fixtures, "does-not-exist") }).probe();
    expect(missing.status === "unavailable" && missing.reason).toContain("not readable");
    expect(await createAmdGpuCollector({ root: join(fixtures, "no-amd") }).read()).toEqual([]);
  });
});
