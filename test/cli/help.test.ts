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
});
