import os from "node:os";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  ASSUMED_UTILIZATION,
  createCpuModelCollector,
  DEFAULT_IDLE_FRACTION,
  DEFAULT_MEMORY_WATTS_PER_GB,
  loadHostInfoFromSystemInformation,
  loadTdpTable,
  lookupTdp,
  lookupTdpInFile,
  modelCpuPowerWatts,
  modelMemoryPowerWatts,
  normalizeCpuName,
  parseTdpCsv,
  type TdpMatch,
} from "../../collectors/cpu-model.js";

const GIB = 1024 ** 3;
const table = loadTdpTable(); // the shipped data/cpu_tdp.csv (CodeCarbon's cpu_power.csv)

/** Real model strings (test/fixtures/cpu/model-names.tsv), keyed to the row each must match. */
const MODEL_NAMES = readFileSync(new URL("../fixtures/cpu/model-names.tsv", import.meta.url), "utf8")
  .split("\n")
  .slice(1)
  .filter((line) => line.trim() !== "")
  .map((line) => line.split("\t")[0]);

const EXPECTED: Record<string, TdpMatch | undefined> = {
  "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz": { tdpWatts: 300, matchedName: "Intel Xeon Platinum 8375C", matchKind: "exact" },
  "AMD EPYC 7B13 64-Core Processor": undefined, // Google's custom part: not in the table
  "Intel(R) Xeon(R) CPU E5-2620 v3 @ 2.40GHz": { tdpWatts: 85, matchedName: "Intel Xeon E5-2620 v3", matchKind: "exact" },
  "Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz": { tdpWatts: 120, matchedName: "Intel Xeon E5-2680 v4", matchKind: "exact" },
  "AMD Ryzen 9 7950X 16-Core Processor": { tdpWatts: 170, matchedName: "AMD Ryzen 9 7950X", matchKind: "exact" },
  "Intel(R) Core(TM) i9-13900K CPU @ 3.00GHz": { tdpWatts: 125, matchedName: "Intel Core i9-13900K", matchKind: "exact" },
  "Intel(R) Xeon(R) Platinum 8370C CPU": { tdpWatts: 205, matchedName: "Intel Xeon Platinum 8370C", matchKind: "exact" },
  "11th Gen Intel(R) Core(TM) i7-1165G7 @ 2.80GHz": { tdpWatts: 28, matchedName: "Intel Core i7-1165G7", matchKind: "tokens" },
  "AMD Ryzen 7 5800H with Radeon Graphics": { tdpWatts: 45, matchedName: "AMD Ryzen 7 5800H", matchKind: "tokens" },
  "Common KVM processor": undefined,
  "QEMU Virtual CPU version 2.5+": undefined,
  "Intel(R) Xeon(R) Processor": undefined, // generic VM name: never guessed
};

describe("TDP table and lookup", () => {
  it("loads CodeCarbon's table, skipping the rows whose TDP is not a number", () => {
    expect(table.rows.length).toBe(4899);
    expect(table.skippedLines).toBe(4); // "Intel Celeron 1000A,27.29.5" and three like it
    const quoted = table.rows.find((r) => r.name.startsWith("Intel EP80579 Integrated, 1066"));
    expect(quoted).toMatchObject({ name: "Intel EP80579 Integrated, 1066 MHz", tdpWatts: 18 });
  });

  it.each(MODEL_NAMES)("%s", (model) => {
    expect(Object.keys(EXPECTED)).toContain(model);
    expect(lookupTdp(model, table)).toEqual(EXPECTED[model]);
  });

  // lookupTdpInFile parses only the lines that can match; it must answer as lookupTdp over the whole
  // table. lookupTdp scans every row per call, so comparing the two name by name over the whole
  // table cost minutes of CPU on a loaded machine: every name is compared in one pass against the
  // answer the table itself gives (its exact match), and a deterministic sample against lookupTdp.
  /** lookupTdp's answer for a name of the table: its exact match (the highest TDP among the rows of that name, flagged when they differ). */
  const exactAnswers = new Map<string, TdpMatch>();
  for (const row of table.rows) {
    const a = exactAnswers.get(row.normalized);
    if (!a) exactAnswers.set(row.normalized, { tdpWatts: row.tdpWatts, matchedName: row.name, matchKind: "exact" });
    else if (row.tdpWatts !== a.tdpWatts) exactAnswers.set(row.normalized, { ...(row.tdpWatts > a.tdpWatts ? { tdpWatts: row.tdpWatts, matchedName: row.name } : a), matchKind: "exact", ambiguous: true });
  }
  const exactAnswer = (name: string) => exactAnswers.get(normalizeCpuName(name));

  it("lookupTdpInFile answers every name of the table with its exact match (one pass)", () => {
    for (const row of table.rows) expect(lookupTdpInFile(row.name), row.name).toEqual(exactAnswer(row.name));
    expect(exactAnswers.size).toBeGreaterThan(4000);
  });

  it("lookupTdpInFile answers as lookupTdp on a deterministic sample: every 8th name, clock suffixes, extra and missing words, the models above", () => {
    const rows = table.rows.filter((_, i) => i % 8 === 0);
    const variants = rows.filter((_, i) => i % 7 === 0).flatMap((r) => [`${r.name} @ 2.40GHz`, `${r.name} with Radeon Graphics`, r.name.split(" ").slice(1).join(" ")]);
    const kinds = new Map<string, number>();
    for (const name of [...MODEL_NAMES, ...rows.map((r) => r.name), ...variants]) {
      const expected = lookupTdp(name, table);
      expect(lookupTdpInFile(name), name).toEqual(expected);
      kinds.set(expected?.matchKind ?? "none", (kinds.get(expected?.matchKind ?? "none") ?? 0) + 1);
    }
    // The one-pass answers above are lookupTdp's for the names sampled.
    for (const r of rows) expect(exactAnswer(r.name), r.name).toEqual(lookupTdp(r.name, table));
    // The sample covers exact and token matches and misses, not only one kind.
    expect(kinds.get("exact")).toBeGreaterThan(600);
    expect(kinds.get("tokens")).toBeGreaterThan(50);
    expect(kinds.get("none")).toBeGreaterThan(5);
  });

  it("matches systeminformation's spelling of the brand too", () => {
    expect(lookupTdp("Intel Xeon® Platinum 8375C", table)).toEqual(EXPECTED["Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz"]);
    expect(lookupTdp("AMD EPYC 7763 64-Core Processor", table)).toEqual({ tdpWatts: 280, matchedName: "AMD EPYC 7763", matchKind: "exact" });
  });

  it("same name, different TDPs in the table: the highest, flagged", () => {
    expect(lookupTdp("Intel(R) Atom(TM) E625CT", table)).toEqual({
      tdpWatts: 3,
      matchedName: "Intel Atom E625CT",
      matchKind: "exact",
      ambiguous: true,
    });
  });

  it("token matches refuse ties between different TDPs", () => {
    const small = parseTdpCsv("Name,TDP\nAcme X1 Pro,10\nAcme X1 Max,20\nAcme Z9,7\n");
    expect(lookupTdp("Acme X1", small)).toBeUndefined(); // in both rows, different TDPs
    expect(lookupTdp("Acme Z9 Turbo", small)).toEqual({ tdpWatts: 7, matchedName: "Acme Z9", matchKind: "tokens" });
    expect(lookupTdp("Acme", small)).toBeUndefined(); // no model number
    expect(lookupTdp("", small)).toBeUndefined();
  });

  it("normalizes model strings", () => {
    expect(normalizeCpuName("Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz")).toBe("intel xeon platinum 8375c");
    expect(normalizeCpuName("AMD EPYC 7B13 64-Core Processor")).toBe("amd epyc 7b13");
    expect(normalizeCpuName("Intel Core™ i9-9900 CPU")).toBe("intel core i9-9900");
  });

  it("parses quoted names and counts unusable lines", () => {
    const parsed = parseTdpCsv('Name,TDP\r\n"Chip, with comma",12.5\r\nBroken,\r\nAlso broken,1.2.3\r\nPlain,7\r\n');
    expect(parsed.rows.map((r) => [r.name, r.tdpWatts])).toEqual([
      ["Chip, with comma", 12.5],
      ["Plain", 7],
    ]);
    expect(parsed.skippedLines).toBe(2);
  });
});

describe("power curves", () => {
  const cpuCases: Array<[number, number, number, number]> = [
    // utilisation, TDP W, idle fraction, expected W
    [0, 100, 0.2, 20],
    [0.5, 100, 0.2, 60],
    [1, 100, 0.2, 100],
    [1.3, 100, 0.2, 100], // clamped
    [-0.1, 100, 0.2, 20], // clamped
    [0.25, 300, 0.2, 120],
    [0.5, 200, 0, 100],
    [0.5, 200, 1, 200],
    [0.7, 0, 0.2, 0],
  ];
  it.each(cpuCases)("cpu: utilisation %s, TDP %s W, idle fraction %s → %s W", (u, tdp, idle, expected) => {
    expect(modelCpuPowerWatts(u, tdp, idle)).toBe(expected);
  });

  it("cpu default idle fraction is CCF's 0.74 W / 3.5 W", () => {
    expect(DEFAULT_IDLE_FRACTION).toBe(0.74 / 3.5);
    expect(modelCpuPowerWatts(0, 350)).toBeCloseTo(74, 10);
    expect(modelCpuPowerWatts(1, 350)).toBe(350);
  });

  it("cpu rejects nonsense", () => {
    expect(() => modelCpuPowerWatts(Number.NaN, 100, 0.2)).toThrow(RangeError);
    expect(() => modelCpuPowerWatts(0.5, -1, 0.2)).toThrow(RangeError);
    expect(() => modelCpuPowerWatts(0.5, 100, 1.5)).toThrow(RangeError);
  });

  const memoryCases: Array<[number, number, number]> = [
    // bytes, W/GB, expected W
    [128 * GIB, 0.392, 50.176],
    [16 * GIB, 0.375, 6],
    [0, 0.392, 0],
    [GIB / 2, 1, 0.5],
  ];
  it.each(memoryCases)("memory: %s bytes at %s W/GB → %s W", (bytes, perGb, expected) => {
    expect(modelMemoryPowerWatts(bytes, perGb)).toBe(expected);
  });

  it("memory default is CCF's 0.392 W/GB", () => {
    expect(DEFAULT_MEMORY_WATTS_PER_GB).toBe(0.392);
    expect(modelMemoryPowerWatts(64 * GIB)).toBe(25.088);
  });
});

describe("cpu-model collector", () => {
  it("known model: TDP × sockets from the table, power from the utilisation the sampler gives", async () => {
    const collector = createCpuModelCollector({
      cpuModel: "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz",
      cores: 128,
      sockets: 2,
      memoryBytes: 256 * GIB,
      idleFraction: 0.2,
      loadInfo: async () => {
        throw new Error("must not be called: every fact was given");
      },
    });
    const probe = await collector.probe();
    expect(probe.status).toBe("ok");
    if (probe.status === "ok") {
      expect(probe.devices.map((d) => [d.deviceId, d.kind, d.method])).toEqual([
        ["cpu-model:0", "cpu", "model"],
        ["mem-model", "memory", "model"],
      ]);
      expect(probe.note).toBe("figures are modelled from the CPU's TDP and the memory size, not measured");
    }
    const [cpu, memory] = await collector.read({ timeMillis: 1000, hostCpuUtilization: 0.25 });
    expect(cpu).toMatchObject({
      deviceId: "cpu-model:0",
      kind: "cpu",
      source: "cpu-model",
      model: "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz",
      method: "model",
      powerWatts: 240, // 600 W TDP: 120 idle + 480 × 0.25
      idleWatts: 120,
      utilization: 0.25,
    });
    expect(cpu.note).toBe(
      'modelled: 600 W TDP (300 W per socket × 2 from CodeCarbon\'s CPU table ("Intel Xeon Platinum 8375C", exact match)); idle 20.0% of TDP + the rest × host CPU utilisation',
    );
    expect(memory).toMatchObject({ deviceId: "mem-model", kind: "memory", method: "model", powerWatts: 100.352, idleWatts: 100.352 });
    expect(memory.note).toContain("256 GiB × 0.392 W/GiB (Cloud Carbon Footprint memory coefficient)");
  });

  it("unknown model: default per logical CPU, said loudly in the reading and the probe", async () => {
    const collector = createCpuModelCollector({
      idleFraction: 0.25,
      loadInfo: async () => ({
        cpuModel: "AMD EPYC 7B13 64-Core Processor",
        cores: 8,
        sockets: 8,
        memoryBytes: 16 * GIB,
        virtualized: true,
      }),
    });
    const warning = 'CPU model "AMD EPYC 7B13 64-Core Processor" not in TDP table: using default 4 W per logical CPU × 8 = 32 W (set POWERPRINT_CPU_TDP_WATTS, watts per package, to correct)';
    const probe = await collector.probe();
    expect(probe.status === "ok" && probe.note).toContain(warning);
    const [cpu, memory] = await collector.read({ timeMillis: 0, hostCpuUtilization: 1 });
    expect(cpu.powerWatts).toBe(32);
    expect(cpu.idleWatts).toBe(8);
    expect(cpu.note).toContain(warning);
    expect(memory.powerWatts).toBe(6.272);
  });

  it("known model under a hypervisor: capped at 3.5 W per vCPU instead of the whole physical CPU's TDP, loudly", async () => {
    const collector = createCpuModelCollector({
      loadInfo: async () => ({ cpuModel: "Intel Xeon® Platinum 8375C", cores: 2, sockets: 2, memoryBytes: 8 * GIB, virtualized: true }),
    });
    const [cpu] = await collector.read({ timeMillis: 0, hostCpuUtilization: 1 });
    expect(cpu.powerWatts).toBeCloseTo(7, 9); // 2 vCPUs × 3.5 W, not 2 virtual sockets × 300 W
    expect(cpu.idleWatts).toBeCloseTo(7 * DEFAULT_IDLE_FRACTION, 9);
    expect(cpu.note).toContain("running under a hypervisor: capped the CPU model at 3.5 W per vCPU × 2 = 7 W");
    // A VM as big as the host keeps the physical TDP (the cap is not lower).
    const big = createCpuModelCollector({
      loadInfo: async () => ({ cpuModel: "Intel Xeon® Platinum 8375C", cores: 128, sockets: 2, memoryBytes: 8 * GIB, virtualized: true }),
    });
    const [bigCpu] = await big.read({ timeMillis: 0, hostCpuUtilization: 1 });
    expect(bigCpu.powerWatts).toBeCloseTo(448, 9); // min(2 × 300 W, 128 × 3.5 W)
  });

  it("configured TDP per socket wins over the table; unknown utilisation is assumed, loudly", async () => {
    const collector = createCpuModelCollector({ cpuModel: "Intel Xeon Platinum 8375C", cores: 64, sockets: 2, memoryBytes: 0, tdpWatts: 150, idleFraction: 0.2 });
    const [cpu, memory] = await collector.read();
    expect(cpu.powerWatts).toBe(60 + 240 * ASSUMED_UTILIZATION);
    expect(cpu.utilization).toBe(0.5);
    expect(cpu.note).toContain("300 W TDP (configured 150 W per socket × 2)");
    expect(cpu.note).toContain("host CPU utilisation unknown: assuming 50%");
    expect(memory.powerWatts).toBe(0);
  });

  it("host facts failing: falls back to node:os and says so", async () => {
    const collector = createCpuModelCollector({
      loadInfo: async () => {
        throw new Error("dmidecode exploded");
      },
    });
    const probe = await collector.probe();
    expect(probe.status).toBe("ok");
    expect(probe.status === "ok" && probe.note).toContain("host facts unavailable (dmidecode exploded): using node:os");
    const [, memory] = await collector.read({ timeMillis: 0, hostCpuUtilization: 0.1 });
    expect(memory.powerWatts).toBe(modelMemoryPowerWatts(os.totalmem()));
  });

  it("default host facts come from systeminformation on this machine", async () => {
    const host = await loadHostInfoFromSystemInformation();
    expect(host.cores).toBe(os.cpus().length);
    expect(host.memoryBytes).toBe(os.totalmem());
    expect(host.sockets).toBeGreaterThanOrEqual(1);
    expect(normalizeCpuName(host.cpuModel)).not.toBe("");
    const probe = await createCpuModelCollector().probe();
    expect(probe.status).toBe("ok");
  });
});
