// `powerprint grid --intensity-provider fixed` used to be a dead end: it asked for --intensity,
// which `grid` did not accept. Now `grid` takes --intensity and prints what run/simulate would use.
import { describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.js";

describe("powerprint grid with a fixed intensity", () => {
  it("--intensity-provider fixed --intensity 250 prints the fixed reading", async () => {
    const r = await runCli(["grid", "--intensity-provider", "fixed", "--intensity", "250", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.current).toMatchObject({ intensityGramsPerKwh: 250, source: "fixed" });
    expect(out.describe).toBe("fixed 250 gCO2e/kWh (--intensity)");
  });

  it("--intensity-provider fixed alone: one line naming the flag to add, exit 2", async () => {
    const r = await runCli(["grid", "--intensity-provider", "fixed"]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toEqual(["powerprint: error: --intensity-provider: fixed needs --intensity <gPerKwh>"]);
    const help = await runCli(["grid", "--help"]);
    expect(help.stdout).toMatch(/--intensity <gPerKwh>/);
  });

  it("--forecast with a fixed value says a fixed value has none", async () => {
    const r = await runCli(["grid", "--intensity", "250", "--forecast"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/no forecast: a fixed --intensity has none/);
  });
});
