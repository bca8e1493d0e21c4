import { describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli } from "../helpers/cli.js";

const scenario = join(import.meta.dirname, "..", "fixtures", "scenarios", "design-example.json");

describe("--help of every command", () => {
  it.each(["run", "simulate", "probe", "grid"])("powerprint %s --help shows its options and examples", async (command) => {
    const r = await runCli([command, "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Usage: powerprint ${command}`);
    expect(r.stdout).toContain("Examples:");
    expect(r.stdout).toContain(`$ powerprint ${command}`);
  });

  it("run's usage line puts the command after --", async () => {
    const r = await runCli(["run", "--help"]);
    expect(r.stdout).toContain("Usage: powerprint run [options] -- <command...>");
  });

  it("simulate does not offer the carbon-aware start of run, and refuses it in one line", async () => {
    const help = await runCli(["simulate", "--help"]);
    expect(help.stdout).not.toContain("--start-within");
    expect(help.stdout).not.toContain("--below");
    const dir = mkdtempSync(join(tmpdir(), "pp-help-"));
    const report = join(dir, "r.json");
    const r = await runCli(["simulate", scenario, "--report", report, "--start-within", "1h"]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toEqual([expect.stringMatching(/^powerprint: error: --start-within: applies to 'powerprint run' only/)]);
    expect(existsSync(report)).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
    rmSync(dir, { recursive: true, force: true });
  });

  it("agent does not offer the carbon-aware start of run (it delays no start), and refuses it in one line before anything runs", async () => {
    const help = await runCli(["agent", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("--intensity-provider");
    for (const flag of ["--start-within", "--below", "--profile"]) expect(help.stdout).not.toContain(flag);
    const dir = mkdtempSync(join(tmpdir(), "pp-help-"));
    const report = join(dir, "r.json");
    for (const args of [["--start-within", "1h"], ["--below", "100"], ["--profile", report]]) {
      const r = await runCli(["agent", "--sim", scenario, "--report", report, "--intensity-provider", "uk", "--zone", "GB", ...args]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr.trim().split("\n")).toEqual([expect.stringMatching(new RegExp(`^powerprint: error: ${args[0]}: applies to 'powerprint run' only .*already running`))]);
    }
    expect(readdirSync(dir)).toEqual([]);
    rmSync(dir, { recursive: true, force: true });
  });

  it("bench-serving takes the grid flags but not the carbon-aware start (its startup timeout would run out waiting)", async () => {
    const help = await runCli(["bench-serving", "--help"]);
    expect(help.stdout).toContain("--intensity-provider");
    for (const flag of ["--start-within", "--below", "--profile"]) expect(help.stdout).not.toContain(flag);
    const r = await runCli(["bench-serving", "--url", "http://127.0.0.1:9", "--start-within", "1h", "--", "true"]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toEqual([expect.stringMatching(/^powerprint: error: unknown option '--start-within'/)]);
  });
});
