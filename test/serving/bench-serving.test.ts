// `powerprint bench-serving` against a real llama.cpp server (Debian sid's llama-server, tiny
// generated model, two slots) at concurrency 1 and 2: each level's J/token is its window's energy
// over its window's tokens, the window lies inside the load, its tokens within what the responses
// counted, its energy within the server's; the idle power was measured; the table, JSON and HTML
// say the same. Also the window arithmetic (src/serving/load.ts, bench.ts) on plain tables.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { benchRows } from "../../exporters/bench-serving.js";
import type { LedgerSnapshot } from "../../src/core/types.js";
import { benchLevel, type BenchResult } from "../../src/serving/bench.js";
import { parsePrompts, percentile, windowWork, type RequestRecord } from "../../src/serving/load.js";
import { runCli } from "../helpers/cli.js";
import { freePort } from "../helpers/receivers.js";
import { snapshot } from "../exporters/snapshots.js";
import { llamaServerArgv, llamaSkipReason } from "./llama.js";

const skip = llamaSkipReason();
const dir = mkdtempSync(join(tmpdir(), "pp-bench-serving-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the steady-state window", () => {
  const rec = (startMillis: number, endMillis: number, generatedTokens: number, ok = true): RequestRecord => ({ startMillis, endMillis, ok, promptTokens: 1, generatedTokens });

  it("counts each request's tokens pro rata of its time inside the window", () => {
    const records = [rec(0, 100, 10), rec(50, 150, 10), rec(100, 200, 10), rec(150, 250, 20), rec(120, 130, 99, false)];
    const w = windowWork(records, 100, 200);
    // 0 of the first, half of the second, all of the third, half of the fourth; the failed one never.
    expect(w.generatedTokens).toBeCloseTo(0 + 5 + 10 + 10, 12);
    expect(w.requests).toBeCloseTo(0 + 0.5 + 1 + 0.5, 12);
  });

  it("energy between the first and last sample inside [saturated, draining]; J/token = energy / window tokens", () => {
    const snaps: LedgerSnapshot[] = [0, 100, 200, 300, 400].map((t, i) => ({ ...snapshot({ jobs: [{ id: "j", cpuJoules: 10 * i * i }] }), timeMillis: t }));
    const records = [rec(0, 150, 30), rec(150, 400, 50)];
    const l = benchLevel(2, records, snaps, 50, 350);
    expect(l.windowStartMillis).toBe(100);
    expect(l.windowEndMillis).toBe(300);
    expect(l.windowEnergyJoules).toBeCloseTo(90 - 10, 12);
    const w = windowWork(records, 100, 300);
    expect(l.windowGeneratedTokens).toBeCloseTo(w.generatedTokens, 12);
    expect(l.joulesPerGeneratedToken).toBeCloseTo(80 / w.generatedTokens, 12);
    expect(l.generatedTokensPerSecond).toBeCloseTo(w.generatedTokens / 0.2, 9);
    expect(l.latencyP50Millis).toBe(150);
    expect(benchLevel(2, records, snaps, 50, 150).note).toMatch(/less than two samples/);
  });

  it("percentiles by nearest rank; --prompt-file one prompt per line, bounded", () => {
    expect(percentile([5, 1, 3, 2, 4], 50)).toBe(3);
    expect(percentile([5, 1, 3, 2, 4], 95)).toBe(5);
    expect(percentile([], 50)).toBeUndefined();
    expect(parsePrompts("a\n\n b \r\n")).toEqual(["a", "b"]);
    expect(() => parsePrompts("\n \n")).toThrow(/--prompt-file: has no prompt/);
  });
});

describe.skipIf(skip)("bench-serving against llama-server", () => {
  it("concurrency 1 and 2: J/token = window energy / window tokens; table, JSON and HTML agree", async () => {
    const port = await freePort();
    const json = join(dir, "bench.json");
    const html = join(dir, "bench.html");
    const r = await runCli(
      [
        "bench-serving",
        "--url",
        `http://127.0.0.1:${port}`,
        "--concurrency",
        "1,2",
        "--requests",
        "80",
        "--max-tokens",
        "48",
        "--interval",
        "100ms",
        "--idle",
        "500ms",
        "--json",
        json,
        "--html",
        html,
        "--",
        ...llamaServerArgv({ port, parallel: 2 }),
      ],
      { timeoutMillis: 300_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(readFileSync(json, "utf8")) as BenchResult;
    expect(result.levels.map((l) => l.concurrency)).toEqual([1, 2]);
    expect(result.idlePowerWatts).toBeGreaterThan(0);
    for (const l of result.levels) {
      expect(l.note, JSON.stringify(l)).toBeUndefined();
      expect(l.failedRequests).toBe(0);
      expect(l.generatedTokens).toBe(80 * 48);
      // The window lies inside the load and holds part of its work and of the server's energy.
      expect(l.windowGeneratedTokens!).toBeGreaterThan(0);
      expect(l.windowGeneratedTokens!).toBeLessThanOrEqual(l.generatedTokens);
      expect(l.windowEnergyJoules!).toBeGreaterThan(0);
      expect(l.joulesPerGeneratedToken!).toBeCloseTo(l.windowEnergyJoules! / l.windowGeneratedTokens!, 12);
      expect(l.joulesPerRequest!).toBeCloseTo(l.windowEnergyJoules! / l.windowRequests!, 12);
      expect(l.generatedTokensPerSecond!).toBeCloseTo(l.windowGeneratedTokens! / l.windowSeconds!, 9);
      expect(l.meanPowerWatts!).toBeCloseTo(l.windowEnergyJoules! / l.windowSeconds!, 9);
      expect(l.latencyP95Millis!).toBeGreaterThanOrEqual(l.latencyP50Millis!);
    }
    // The table on stdout and the HTML show the JSON's figures (one formatter).
    const { rows } = benchRows(result);
    const text = r.stdout.split("\n");
    for (const row of rows) expect(text.some((line) => row.every((cell) => line.includes(cell)))).toBe(true);
    const page = readFileSync(html, "utf8");
    for (const l of result.levels) expect(page).toContain(`data-concurrency="${l.concurrency}" data-joules-per-token="${l.joulesPerGeneratedToken}"`);
    // The server ran under run's measurement: its summary was printed.
    expect(r.stderr).toMatch(/powerprint summary \(run\)/);
  });
});
