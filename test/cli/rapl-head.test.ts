// The head of a run on an energy counter: the command moves the RAPL counters at its very first
// instruction and exits at once, long before powerprint (which sets its measuring pipeline up
// after the spawn, so the command starts at once) has probed anything. The counters read just
// before the spawn make the report exact anyway: it holds the whole move, edge to edge. Without the
// read at the spawn the first read would already see the moved values and the report 0 J.
import { describe, expect, it } from "vitest";
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli } from "../helpers/cli.js";
import { reportSchemaV1 } from "../../exporters/report-schema.js";

const fixture = join(import.meta.dirname, "..", "fixtures", "powercap", "two-sockets-dram");

describe("RAPL counters are read at the spawn and at the exit (fixture powercap tree)", () => {
  it("counts a move made at the command's first instruction, in full", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pp-rapl-head-"));
    try {
      const root = join(dir, "root");
      cpSync(fixture, root, { recursive: true, verbatimSymlinks: true });
      const zone = (z: string) => join(root, "sys", "class", "powercap", z, "energy_uj");
      const read = (z: string) => Number(readFileSync(zone(z), "utf8"));
      const p0 = read("intel-rapl:0");
      const d0 = read("intel-rapl:0:0");
      const report = join(dir, "r.json");
      // One shell, no fork before the writes: they land within a few ms of the spawn.
      const script = `echo ${p0 + 7_000_000} > '${zone("intel-rapl:0")}'; echo ${d0 + 250_000} > '${zone("intel-rapl:0:0")}'`;
      const r = await runCli(["run", "--quiet", "--interval", "5s", "--report", report, "--", "/bin/sh", "-c", script], { env: { POWERPRINT_SYSFS_ROOT: root } });
      expect(r.code, r.stderr).toBe(0);
      const rep = reportSchemaV1.parse(JSON.parse(readFileSync(report, "utf8")));
      const dev = (id: string) => rep.devices.find((d) => d.id === id)!;
      expect(dev("rapl:package-0")).toMatchObject({ method: "counter", source: "rapl" });
      expect(dev("rapl:package-0").energyJoules).toBeCloseTo(7, 9);
      expect(dev("rapl:dram-0").energyJoules).toBeCloseTo(0.25, 9);
      // Untouched zones: nothing.
      expect(dev("rapl:package-1").energyJoules).toBe(0);
      expect(JSON.stringify(rep)).not.toMatch(/not counted/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
