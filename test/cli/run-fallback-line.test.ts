import { describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.js";

// Issue 11: each fallback is one short line; the long provenance (why RAPL is unavailable, TDP
// table lookups) only with --verbose (and in the report / 'powerprint probe').
describe("run: fallback lines people read", () => {
  it("one short warning line per fallback by default; the details with --verbose", async () => {
    const plain = await runCli(["run", "--", "true"]);
    expect(plain.code, plain.stderr).toBe(0);
    const warnings = plain.stderr.split("\n").filter((l) => l.startsWith("powerprint: warning:"));
    for (const w of warnings) expect(w.length, w).toBeLessThanOrEqual(120);
    const fallback = warnings.find((w) => /fallback/.test(w));
    if (!fallback) return; // a host with RAPL: nothing falls back
    expect(fallback).toMatch(/details with --verbose$/);
    const verbose = await runCli(["run", "--verbose", "--", "true"]);
    expect(verbose.code, verbose.stderr).toBe(0);
    // The reason the measured source is unavailable is said there.
    expect(verbose.stderr).toMatch(/cpu-model \((rapl|nvml): /);
  });
});
