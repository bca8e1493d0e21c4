// Host facts for the CPU model from /proc/cpuinfo and /proc/meminfo (no lscpu, no dmidecode).
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { createCpuModelCollector, loadHostInfo, parseCpuinfo, parseMeminfoTotalBytes } from "../../collectors/cpu-model.js";

const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/cpu/${name}/`, import.meta.url));
const text = (name: string, file: string) => readFileSync(`${fixture(name)}proc/${file}`, "utf8");

describe("cpuinfo and meminfo parsers", () => {
  it("reads the captured VM: model, logical CPUs, one socket, hypervisor, MemTotal in bytes", () => {
    expect(parseCpuinfo(text("host-epyc-vm", "cpuinfo"))).toEqual({ cpuModel: "AMD EPYC", cores: 2, sockets: 1, virtualized: true });
    const kb = Number(/^MemTotal:\s+(\d+)/m.exec(text("host-epyc-vm", "meminfo"))![1]);
    expect(parseMeminfoTotalBytes(text("host-epyc-vm", "meminfo"))).toBe(kb * 1024);
  });

  it("counts distinct physical ids as sockets", () => {
    expect(parseCpuinfo(text("host-xeon-2s", "cpuinfo"))).toEqual({
      cpuModel: "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz",
      cores: 4,
      sockets: 2,
      virtualized: true,
    });
    expect(parseMeminfoTotalBytes(text("host-xeon-2s", "meminfo"))).toBe(65536000 * 1024);
  });

  it("an ARM-style cpuinfo without 'model name' gives no model (the caller completes it)", () => {
    const arm = "processor\t: 0\nBogoMIPS\t: 50.00\nCPU implementer\t: 0x41\nCPU part\t: 0xd0c\n\nprocessor\t: 1\nCPU implementer\t: 0x41\n";
    expect(parseCpuinfo(arm)).toEqual({ cores: 2, sockets: 1 });
    expect(parseMeminfoTotalBytes("MemFree: 1 kB\n")).toBeUndefined();
  });
});

describe("loadHostInfo", () => {
  it("takes everything from the fixture root's proc files, source procfs", async () => {
    expect(await loadHostInfo(fixture("host-xeon-2s"))).toEqual({
      cpuModel: "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz",
      cores: 4,
      sockets: 2,
      memoryBytes: 65536000 * 1024,
      virtualized: true,
      source: "procfs",
    });
  });

  it("the collector's root option reaches the files: TDP from the table for the fixture's model, memory from its MemTotal", async () => {
    const c = createCpuModelCollector({ root: fixture("host-xeon-2s") });
    const probe = await c.probe();
    expect(probe.status).toBe("ok");
    if (probe.status !== "ok") return;
    expect(probe.devices[0]).toMatchObject({ kind: "cpu", model: "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz" });
    // 300 W per socket × 2 from the table, capped in a VM at 3.5 W × 4 vCPUs.
    expect(probe.devices[0].detail).toMatch(/^14 W TDP \(3\.5 W per vCPU × 4 \(hypervisor cap\)\), 4 logical CPUs$/);
    expect(probe.devices[1].detail).toMatch(/^62\.5 GiB × 0\.392 W\/GiB$/);
  });
});
