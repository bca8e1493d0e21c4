// `powerprint run --start-within … --below …` end to end: the real CLI asks a loopback server that
// answers like the GB Carbon Intensity API (shape of test/fixtures/grid-api/uk-carbonintensity__*).
import { afterEach, describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.js";
import { startReplayServer, type ReplayServer } from "../grid/replay-server.js";

const HALF_HOUR = 30 * 60_000;
const iso = (ms: number) => new Date(ms).toISOString().slice(0, 16) + "Z";

/** Half-hourly forecast slots from the current half-hour on, with the given intensities. */
function forecastBody(values: number[]) {
  const start = Math.floor(Date.now() / HALF_HOUR) * HALF_HOUR;
  return {
    data: values.map((v, i) => ({
      from: iso(start + i * HALF_HOUR),
      to: iso(start + (i + 1) * HALF_HOUR),
      intensity: { forecast: v, actual: null, index: "moderate" },
    })),
  };
}

let server: ReplayServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe("carbon-aware start", () => {
  it("starts at once when the current slot is already below the threshold", async () => {
    server = await startReplayServer(() => ({ body: forecastBody([90, 300, 40]) }));
    const t0 = Date.now();
    const r = await runCli(
      ["run", "--quiet", "--intensity-provider", "uk-carbon-intensity", "--zone", "GB", "--start-within", "6h", "--below", "150", "--", "sh", "-c", "exit 0"],
      { env: { POWERPRINT_UK_CARBON_INTENSITY_URL: server.url } },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(server.requests.some((q) => q.path.includes("/intensity/") && q.path.includes("fw"))).toBe(true);
  });

  it("waits for the cleaner slot, then starts the command", async () => {
    // Slots need not be half-hour aligned for this: 300 g/kWh until 2 s from now, then 40.
    const switchAt = Date.now() + 2_000;
    server = await startReplayServer(() => ({
      body: {
        data: [
          { from: new Date(switchAt - 60_000).toISOString(), to: new Date(switchAt).toISOString(), intensity: { forecast: 300, actual: null, index: "high" } },
          { from: new Date(switchAt).toISOString(), to: new Date(switchAt + HALF_HOUR).toISOString(), intensity: { forecast: 40, actual: null, index: "low" } },
        ],
      },
    }));
    const r = await runCli(
      ["run", "--intensity-provider", "uk-carbon-intensity", "--zone", "GB", "--start-within", "30s", "--below", "150", "--", "node", "-e", "console.log(Date.now())"],
      { env: { POWERPRINT_UK_CARBON_INTENSITY_URL: server.url }, timeoutMillis: 40_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/carbon-aware start: waiting until/);
    const startedAt = Number(r.stdout.trim());
    expect(startedAt).toBeGreaterThanOrEqual(switchAt);
    expect(startedAt - switchAt).toBeLessThan(5_000);
  });

  it("never waits past --start-within when the clean slot comes later", async () => {
    const switchAt = Date.now() + 60_000;
    server = await startReplayServer(() => ({
      body: {
        data: [
          { from: new Date(switchAt - 120_000).toISOString(), to: new Date(switchAt).toISOString(), intensity: { forecast: 300, actual: null, index: "high" } },
          { from: new Date(switchAt).toISOString(), to: new Date(switchAt + HALF_HOUR).toISOString(), intensity: { forecast: 40, actual: null, index: "low" } },
        ],
      },
    }));
    const t0 = Date.now();
    const r = await runCli(
      ["run", "--quiet", "--intensity-provider", "uk-carbon-intensity", "--zone", "GB", "--start-within", "2s", "--below", "150", "--", "sh", "-c", "exit 0"],
      { env: { POWERPRINT_UK_CARBON_INTENSITY_URL: server.url }, timeoutMillis: 30_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(Date.now() - t0).toBeLessThan(12_000);
  });

  it("refuses --below without --start-within (exit 2)", async () => {
    const r = await runCli(["run", "--below", "100", "--", "true"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--below/);
  });
});
