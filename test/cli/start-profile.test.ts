// `run --start-within --profile REPORT`: the real CLI plans its own start with the measured profile
// of an earlier run (a report written by `simulate`), against a loopback GB forecast whose slots are
// placed relative to the moment the request reached the server (no wall-clock windows).
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.js";
import { startReplayServer, type ReplayServer } from "../grid/replay-server.js";

const dir = mkdtempSync(join(tmpdir(), "pp-start-profile-"));
const ramp = join(dir, "ramp.json");
let server: ReplayServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

beforeAll(async () => {
  const r = await runCli(["simulate", join(import.meta.dirname, "..", "fixtures", "scenarios", "ramped-gpu-job.json"), "--report", ramp]);
  expect(r.code, r.stderr).toBe(0);
}, 30_000);

describe("run --start-within --profile", () => {
  it("waits for the start of lowest expected CO2e of the whole 1.5 h job, and says why", async () => {
    // 300 g/kWh now (the slot began 2 min before the request), 100 g/kWh for 3 h from 3 s later.
    let t0: number | undefined;
    server = await startReplayServer(() => {
      t0 ??= Date.now();
      const slots = [
        { from: t0 - 120_000, to: t0 + 3_000, v: 300 },
        { from: t0 + 3_000, to: t0 + 3_000 + 3 * 3_600_000, v: 100 },
      ];
      return { body: { data: slots.map((s) => ({ from: new Date(s.from).toISOString(), to: new Date(s.to).toISOString(), intensity: { forecast: s.v, actual: null, index: "low" } })) } };
    });
    const r = await runCli(
      ["run", "--intensity-provider", "uk-carbon-intensity", "--zone", "GB", "--start-within", "30s", "--profile", ramp, "--", "node", "-e", "console.log(Date.now())"],
      { env: { POWERPRINT_UK_CARBON_INTENSITY_URL: server.url }, timeoutMillis: 40_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    // Started at or after the clean slot; a powerprint so starved that the forecast arrived after
    // the slot began starts at once (and then has no "waiting" line).
    expect(Number(r.stdout.trim())).toBeGreaterThanOrEqual(t0! + 3_000);
    const waiting = /carbon-aware start: waiting until (\S+Z): lowest expected CO2e for the job's profile \(([^)]+) \(train\)\): (\S+ \S+) starting/.exec(r.stderr);
    if (waiting) {
      expect(Date.parse(waiting[1])).toBe(t0! + 3_000);
      expect(waiting[2]).toBe(ramp);
      // The whole job at 100 g/kWh: 0.594 kWh facility × 100 = 59.4 g.
      expect(waiting[3]).toBe("59.4 g");
    }
  });

  it("bad input before anything runs: --profile without --start-within, a report that is not one (exit 2)", async () => {
    const bad = join(dir, "bad.json");
    writeFileSync(bad, JSON.stringify({ schemaVersion: 1 }));
    const marker = join(dir, "ran");
    const a = await runCli(["run", "--profile", ramp, "--", "touch", marker]);
    expect(a.code).toBe(2);
    expect(a.stderr.trim().split("\n")).toHaveLength(1);
    expect(a.stderr).toMatch(/--profile: needs --start-within/);
    server = await startReplayServer(() => ({ body: { data: [] } }));
    const b = await runCli(["run", "--intensity-provider", "uk", "--zone", "GB", "--start-within", "10s", "--profile", bad, "--", "touch", marker], {
      env: { POWERPRINT_UK_CARBON_INTENSITY_URL: server.url },
    });
    expect(b.code).toBe(2);
    expect(b.stderr.trim().split("\n")).toHaveLength(1);
    expect(b.stderr).toMatch(/bad\.json: not a powerprint v1 report/);
    const { existsSync } = await import("node:fs");
    expect(existsSync(marker)).toBe(false);
  });
});
