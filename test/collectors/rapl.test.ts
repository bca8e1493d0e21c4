import { renameSync, chmodSync, cpSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { createRaplCollector, parseMicrojoules, RAPL_PERMISSION_FIX } from "../../collectors/rapl.js";
import type { DeviceReading } from "../../src/core/contracts.js";
import { counterDeltaJoules } from "../../src/core/counter.js";

const FIXTURES = fileURLToPath(new URL("../fixtures/powercap/", import.meta.url));
const fixture = (name: string): string => join(FIXTURES, name);

const temps: string[] = [];
afterEach(() => {
  for (const dir of temps.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A writable copy of a fixture root (symlinks kept relative, so they point inside the copy). */
function copyFixture(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), "powerprint-rapl-"));
  temps.push(dir);
  chmodSync(dir, 0o755); // traversable by the unprivileged user of the permission test
  cpSync(fixture(name), dir, { recursive: true, verbatimSymlinks: true });
  return dir;
}

/** Sets a fixture counter, atomically (written aside, renamed): a read never sees it half-written, as with sysfs. */
function writeMicrojoules(root: string, zonePath: string, microjoules: string): void {
  const path = join(root, "sys/class/powercap", zonePath, "energy_uj");
  writeFileSync(`${path}.new`, `${microjoules}\n`);
  renameSync(`${path}.new`, path);
}

const byId = (readings: DeviceReading[]): Record<string, DeviceReading> =>
  Object.fromEntries(readings.map((r) => [r.deviceId, r]));

function deltasJoules(before: DeviceReading[], after: DeviceReading[]): Record<string, number | undefined> {
  const first = byId(before);
  return Object.fromEntries(
    after.map((r) => [r.deviceId, counterDeltaJoules(first[r.deviceId].energyJoules!, r.energyJoules!, r.counterRangeJoules)]),
  );
}

describe("rapl collector on fixture powercap trees", () => {
  it("one socket (client layout): package and dram counted; core, uncore, psys and the mmio duplicate not", async () => {
    const collector = createRaplCollector({ root: fixture("one-socket") });
    const probe = await collector.probe();
    expect(probe.status).toBe("ok");
    if (probe.status !== "ok") return;
    expect(probe.devices.map((d) => [d.deviceId, d.kind, d.method])).toEqual([
      ["rapl:package-0", "cpu", "counter"],
      ["rapl:dram-0", "memory", "counter"],
    ]);
    expect(probe.note).toContain("intel-rapl:0:0 (core): part of its package's energy, not added");
    expect(probe.note).toContain("intel-rapl:0:1 (uncore): part of its package's energy, not added");
    expect(probe.note).toContain("intel-rapl:1 (psys): whole-platform energy overlaps the package and dram zones; not added");
    expect(await collector.read()).toEqual([
      { deviceId: "rapl:package-0", kind: "cpu", source: "rapl", energyJoules: 73450.128849, counterRangeJoules: 262143.32885, method: "counter" },
      { deviceId: "rapl:dram-0", kind: "memory", source: "rapl", energyJoules: 9811.572004, counterRangeJoules: 262143.32885, method: "counter" },
    ]);
  });

  it("two sockets with dram: exact joules between two reads", async () => {
    const root = copyFixture("two-sockets-dram");
    const collector = createRaplCollector({ root });
    const before = await collector.read();
    expect(before.map((r) => [r.deviceId, r.kind, r.energyJoules, r.counterRangeJoules])).toEqual([
      ["rapl:package-0", "cpu", 182334.556901, 262143.32885],
      ["rapl:dram-0", "memory", 20488.100352, 65712.999613],
      ["rapl:package-1", "cpu", 179021.877412, 262143.32885],
      ["rapl:dram-1", "memory", 19934.417003, 65712.999613],
    ]);
    writeMicrojoules(root, "intel-rapl:0", "182456789012");
    writeMicrojoules(root, "intel-rapl:0:0", "20500000001");
    writeMicrojoules(root, "intel-rapl:1", "179121877413");
    writeMicrojoules(root, "intel-rapl:1:0", "19934417003");
    const after = await collector.read();
    expect(deltasJoules(before, after)).toEqual({
      "rapl:package-0": 122.232111,
      "rapl:dram-0": 11.899649,
      "rapl:package-1": 100.000001,
      "rapl:dram-1": 0,
    });
  });

  it("a wrap mid-run: counters go past max_energy_range_uj and the deltas stay exact", async () => {
    const root = copyFixture("two-sockets-dram");
    const collector = createRaplCollector({ root });
    writeMicrojoules(root, "intel-rapl:0", "262143000000"); // 328850 µJ below the package range
    writeMicrojoules(root, "intel-rapl:0:0", "65712000000"); // 999613 µJ below the dram range
    const first = await collector.read();
    writeMicrojoules(root, "intel-rapl:0", "1000000"); // wrapped
    writeMicrojoules(root, "intel-rapl:0:0", "499613"); // wrapped
    writeMicrojoules(root, "intel-rapl:1", "179021877412"); // unchanged
    const second = await collector.read();
    writeMicrojoules(root, "intel-rapl:0", "3000000");
    writeMicrojoules(root, "intel-rapl:0:0", "500000");
    const third = await collector.read();
    const firstInterval = deltasJoules(first, second);
    expect(firstInterval["rapl:package-0"]).toBe(1.32885); // 328850 + 1000000 µJ
    expect(firstInterval["rapl:dram-0"]).toBe(1.499226); // 999613 + 499613 µJ
    expect(firstInterval["rapl:package-1"]).toBe(0);
    const secondInterval = deltasJoules(second, third);
    expect(secondInterval["rapl:package-0"]).toBe(2);
    expect(secondInterval["rapl:dram-0"]).toBe(0.000387);
  });

  it("a hex zone id (intel-rapl:a) is package-10; the intel-rapl-mmio duplicate is ignored", async () => {
    const collector = createRaplCollector({ root: fixture("kepler__sys_class_powercap") });
    const probe = await collector.probe();
    expect(probe.status).toBe("ok");
    if (probe.status !== "ok") return;
    expect(probe.devices.map((d) => [d.deviceId, d.detail])).toEqual([
      ["rapl:package-0", "intel-rapl:0 (package-0)"],
      ["rapl:package-10", "intel-rapl:a (package-10)"],
    ]);
    const readings = byId(await collector.read());
    expect(Object.keys(readings)).toEqual(["rapl:package-0", "rapl:package-10"]);
    expect(readings["rapl:package-10"].energyJoules).toBe(240422.366267);
    expect(readings["rapl:package-10"].counterRangeJoules).toBe(262143.32885);
  });

  it("malformed zones (powertelemetry multisocket tree) are skipped or flagged, never guessed", async () => {
    const collector = createRaplCollector({ root: fixture("powertelemetry__intel-rapl_multisocket") });
    const probe = await collector.probe();
    expect(probe.status).toBe("ok");
    if (probe.status !== "ok") return;
    expect(probe.devices.map((d) => d.deviceId)).toEqual([
      "rapl:package-0",
      "rapl:dram-0",
      "rapl:package-1",
      "rapl:package-2",
      "rapl:dram-2",
      "rapl:package-3",
    ]);
    expect(probe.note).toContain('intel-rapl:0:0: unknown zone name "domain"; skipped');
    expect(probe.note).toContain('intel-rapl:1:0: unknown zone name "socket"; skipped');
    expect(probe.note).toContain("intel-rapl:4 (psys): whole-platform energy overlaps");
    const readings = byId(await collector.read());
    expect(readings["rapl:dram-0"]).toEqual({
      deviceId: "rapl:dram-0",
      kind: "memory",
      source: "rapl",
      energyJoules: 64155.753419,
      counterRangeJoules: 65712.999613,
      method: "counter",
    });
    // package-1 has max_energy_range_uj "abcdef": the counter is read, the wrap point is not invented.
    expect(readings["rapl:package-1"].energyJoules).toBe(206999.075695);
    expect(readings["rapl:package-1"].counterRangeJoules).toBeUndefined();
    expect(readings["rapl:package-1"].note).toBe('malformed max_energy_range_uj "abcdef": a counter wrap cannot be corrected');
    expect(readings["rapl:dram-2"].note).toBe('malformed max_energy_range_uj "": a counter wrap cannot be corrected');
  });

  it("a dram zone without energy_uj is skipped with a note", async () => {
    const collector = createRaplCollector({ root: fixture("powertelemetry__intel-rapl_dram-missing-energy") });
    const probe = await collector.probe();
    expect(probe).toEqual({
      status: "ok",
      devices: [{ deviceId: "rapl:package-0", kind: "cpu", method: "counter", energyCounter: true, detail: "intel-rapl:0 (package-0)" }],
      note: "intel-rapl:0:1 (dram): energy_uj unreadable (ENOENT); skipped",
    });
    expect((await collector.read()).map((r) => [r.deviceId, r.energyJoules])).toEqual([["rapl:package-0", 206999.074695]]);
  });

  it("psys is used only when no package zone is readable, and then dram is dropped", async () => {
    const root = copyFixture("one-socket");
    writeMicrojoules(root, "intel-rapl:0", "garbage");
    const collector = createRaplCollector({ root });
    const probe = await collector.probe();
    expect(probe.status).toBe("ok");
    if (probe.status !== "ok") return;
    expect(probe.devices.map((d) => [d.deviceId, d.kind])).toEqual([["rapl:psys", "cpu"]]);
    expect(probe.note).toContain('intel-rapl:0 (package-0): malformed energy_uj "garbage"; skipped');
    expect(probe.note).toContain("intel-rapl:0:2 (dram): inside the psys platform energy");
    const [reading] = await collector.read();
    expect(reading.energyJoules).toBe(151207.734993);
    expect(reading.note).toContain("whole-platform energy");
  });

  it("no /sys/class/powercap, or no zones in it: unavailable with the reason", async () => {
    const none = await createRaplCollector({ root: fixture("no-powercap") }).probe();
    expect(none.status).toBe("unavailable");
    if (none.status === "unavailable") {
      expect(none.reason).toMatch(/^no RAPL powercap zones \(VM or container without \/sys\/class\/powercap\)/);
      expect(none.fix).toContain("modprobe intel_rapl_msr");
    }
    const empty = createRaplCollector({ root: fixture("no-zones") });
    const probe = await empty.probe();
    expect(probe.status).toBe("unavailable");
    if (probe.status === "unavailable") expect(probe.reason).toContain("no RAPL powercap zones under");
    expect(await empty.read()).toEqual([]);
  });

  it("counters that never advance (emulated RAPL in a VM) make RAPL unavailable", async () => {
    const probe = await createRaplCollector({ root: fixture("two-sockets-dram"), advanceCheckMillis: 20 }).probe();
    expect(probe.status).toBe("unavailable");
    if (probe.status === "unavailable") {
      expect(probe.reason).toMatch(/^RAPL counters did not advance in 20 ms \(.*intel-rapl:0\/energy_uj, .*intel-rapl:1\/energy_uj\)/);
      expect(probe.fix).toContain("cpu-model collector");
    }
  });

  it("counters that advance during the check pass it; one that does not is noted", async () => {
    const root = copyFixture("two-sockets-dram");
    const collector = createRaplCollector({ root, advanceCheckMillis: 200 });
    // package-0 advances all along, as a real counter does (the probe's reads run on the thread
    // pool: no assumption on when they happen); package-1 never moves.
    let uj = 182334556902;
    const advancing = setInterval(() => writeMicrojoules(root, "intel-rapl:0", String((uj += 1000))), 10);
    const probe = await collector.probe().finally(() => clearInterval(advancing));
    expect(probe.status).toBe("ok");
    if (probe.status !== "ok") return;
    expect(probe.devices).toHaveLength(4);
    expect(probe.note).toBe("intel-rapl:1 (package-1): counter did not advance in 200 ms");
  });

  it("parses only whole microjoule counters", () => {
    expect(parseMicrojoules("240422366267")).toBe(240422366267);
    expect(parseMicrojoules("0")).toBe(0);
    for (const bad of ["", "abcdef", "-1", "1.5", "12 34", "99999999999999999999"]) expect(parseMicrojoules(bad)).toBeUndefined();
  });
});

/**
 * Permission denied, for real: energy_uj files get the kernel's mode (0400 root) and the probe
 * runs with the effective uid of `nobody`, so the kernel itself refuses the read with EACCES
 * (root's CAP_DAC_OVERRIDE is dropped from the effective set when euid leaves 0). Run as a
 * non-root user, the files get mode 000 instead, which refuses their owner too.
 */
describe("rapl collector without permission to read energy_uj", () => {
  const NOBODY = 65534;
  const isRoot = process.getuid?.() === 0;

  function denyEnergyFiles(root: string, zonePaths: string[]): void {
    for (const zone of zonePaths) chmodSync(join(root, "sys/class/powercap", zone, "energy_uj"), isRoot ? 0o400 : 0o000);
  }

  async function unprivileged<T>(fn: () => Promise<T>): Promise<T> {
    if (!isRoot) return fn();
    process.setegid!(NOBODY);
    process.seteuid!(NOBODY);
    try {
      return await fn();
    } finally {
      process.seteuid!(0);
      process.setegid!(0);
    }
  }

  it("all counters denied: unavailable, naming the file and the exact fixes", async () => {
    const root = copyFixture("one-socket");
    const zones = readdirSync(join(root, "sys/class/powercap")).filter((z) => z.startsWith("intel-rapl:"));
    denyEnergyFiles(root, zones);
    const collector = createRaplCollector({ root });
    const [probe, readings] = await unprivileged(async () => [await collector.probe(), await collector.read()] as const);
    expect(probe).toEqual({
      status: "unavailable",
      reason: `permission denied reading ${join(root, "sys/class/powercap/intel-rapl:0/energy_uj")} (and 2 more energy_uj files)`,
      fix: RAPL_PERMISSION_FIX,
    });
    expect(readings).toEqual([]);
    expect(RAPL_PERMISSION_FIX).toContain("sudo chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj");
    expect(RAPL_PERMISSION_FIX).toContain(
      'ACTION=="add", SUBSYSTEM=="powercap", KERNEL=="intel-rapl:*", RUN+="/bin/chmod o+r /sys%p/energy_uj"',
    );
    expect(RAPL_PERMISSION_FIX).toContain("DAC_READ_SEARCH");
  });

  it("only dram denied: the package is still counted and the note carries the fix", async () => {
    const root = copyFixture("one-socket");
    denyEnergyFiles(root, ["intel-rapl:0:2"]);
    const collector = createRaplCollector({ root });
    const [probe, readings] = await unprivileged(async () => [await collector.probe(), await collector.read()] as const);
    expect(probe.status).toBe("ok");
    if (probe.status !== "ok") return;
    expect(probe.devices.map((d) => d.deviceId)).toEqual(["rapl:package-0"]);
    expect(probe.note).toContain("intel-rapl:0:2 (dram): energy_uj unreadable (EACCES); skipped");
    expect(probe.note).toContain(RAPL_PERMISSION_FIX);
    expect(readings.map((r) => [r.deviceId, r.energyJoules])).toEqual([["rapl:package-0", 73450.128849]]);
  });
});
