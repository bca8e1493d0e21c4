import { afterEach, describe, expect, it } from "vitest";
import { createElectricityMapsProvider } from "../../src/grid/electricitymaps.js";
import { planStart, waitForStart } from "../../src/grid/schedule.js";
import type { IntensityReading } from "../../src/core/contracts.js";
import { fixture, recordingLogger, startReplayServer, type ReplayServer } from "./replay-server.js";

const HOUR = 3_600_000;
const T0 = Date.parse("2025-03-01T00:00:00Z");

/** Hourly forecast points from T0 with the given intensities. */
function hourly(values: number[], startMillis = T0): IntensityReading[] {
  return values.map((v, i) => ({
    intensityGramsPerKwh: v,
    zone: "DE",
    source: "test",
    validFrom: new Date(startMillis + i * HOUR),
    validUntil: new Date(startMillis + (i + 1) * HOUR),
  }));
}

describe("planStart", () => {
  it.each([
    // values, now offset (min), within (h), below, expected start offset (min), kind
    [[300, 200, 100, 250, 50], 0, 6, undefined, 240, "lowest-in-window"],
    [[300, 200, 100, 250, 50], 0, 3, undefined, 120, "lowest-in-window"], // 50 is past the limit
    [[300, 200, 100, 250, 50], 0, 6, 250, 60, "threshold-met"], // first slot below 250
    [[300, 200, 100, 250, 50], 30, 6, undefined, 240, "lowest-in-window"],
    [[100, 200, 300], 30, 6, undefined, 30, "lowest-in-window"], // current slot is best: start now
    [[300, 200, 200], 0, 6, 150, 60, "lowest-in-window"], // threshold never met: lowest, earliest tie
    [[300, 300, 90], 0, 2, undefined, 120, "lowest-in-window"], // slot starting exactly at the limit is allowed
  ])("%j now+%d min within %d h below %s → +%d min (%s)", (values, nowMin, withinH, below, expectedMin, kind) => {
    const plan = planStart({
      forecast: hourly(values as number[]),
      now: new Date(T0 + (nowMin as number) * 60_000),
      withinMillis: (withinH as number) * HOUR,
      belowGramsPerKwh: below as number | undefined,
    });
    expect(plan.startAt.getTime()).toBe(T0 + (expectedMin as number) * 60_000);
    expect(plan.kind).toBe(kind);
    expect(plan.startAt.getTime()).toBeLessThanOrEqual(T0 + (nowMin as number) * 60_000 + (withinH as number) * HOUR);
  });

  it("says the forecast intensity in the one number format (3 significant digits)", () => {
    const lowest = planStart({ forecast: hourly([300.25, 45.67, 212.5]), now: new Date(T0), withinMillis: 3 * HOUR });
    expect(lowest.reason).toMatch(/^lowest forecast in the window: 45\.7 gCO2e\/kWh at /);
    const below = planStart({ forecast: hourly([300.25, 45.67]), now: new Date(T0), withinMillis: 3 * HOUR, belowGramsPerKwh: 100 });
    expect(below.reason).toMatch(/^forecast 45\.7 gCO2e\/kWh at .* is below 100$/);
  });

  it("starts now when no forecast point covers the window", () => {
    const plan = planStart({ forecast: hourly([100], T0 - 5 * HOUR), now: new Date(T0), withinMillis: HOUR });
    expect(plan.kind).toBe("no-forecast");
    expect(plan.startAt.getTime()).toBe(T0);
  });
});

let server: ReplayServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe("waitForStart against a replayed Electricity Maps forecast", () => {
  type Point = { carbonIntensity: number; datetime: string };
  const history = fixture<{ history: Point[] }>("electricitymaps__v3_carbon-intensity_history__US-MIDW-MISO_1.json").history;
  const start = Date.parse(history[0].datetime);

  async function run(withinMillis: number, below?: number) {
    server = await startReplayServer(() => ({ body: { zone: "US-MIDW-MISO", forecast: history } }));
    const provider = createElectricityMapsProvider({ apiKey: "k-123456", baseUrl: `${server.url}/v3` });
    let clock = start + 10 * 60_000;
    const sleeps: number[] = [];
    const log = recordingLogger();
    const result = await waitForStart({
      provider,
      zone: "US-MIDW-MISO",
      withinMillis,
      below,
      now: () => new Date(clock),
      sleep: async (ms) => {
        sleeps.push(ms);
        clock += ms;
      },
      log,
    });
    return { result, sleeps, log, startedFrom: start + 10 * 60_000 };
  }

  it("starts at the slot with the lowest forecast within the limit", async () => {
    const within = 8 * HOUR;
    const { result, log, startedFrom } = await run(within);
    // Expected: lowest point whose hour overlaps [now, now + 8h), earliest on ties.
    const candidates = history.filter((p) => Date.parse(p.datetime) + HOUR > startedFrom && Date.parse(p.datetime) <= startedFrom + within);
    const best = candidates.reduce((a, b) => (b.carbonIntensity < a.carbonIntensity ? b : a));
    const expectedStart = Math.max(Date.parse(best.datetime), startedFrom);
    expect(result.startedAt.getTime()).toBe(expectedStart);
    expect(result.expectedGramsPerKwh).toBe(best.carbonIntensity);
    expect(result.kind).toBe("lowest-in-window");
    expect(log.lines.some((l) => l.includes("waiting until"))).toBe(true);
  });

  it("starts at the first slot below the threshold", async () => {
    const threshold = 420;
    const { result, startedFrom } = await run(12 * HOUR, threshold);
    const first = history.find((p) => Date.parse(p.datetime) + HOUR > startedFrom && p.carbonIntensity < threshold)!;
    expect(result.kind).toBe("threshold-met");
    expect(result.startedAt.getTime()).toBe(Math.max(Date.parse(first.datetime), startedFrom));
  });

  it("never waits past the limit, even with an unreachable threshold", async () => {
    const within = 90 * 60_000;
    const { result, sleeps, startedFrom } = await run(within, 1);
    expect(result.startedAt.getTime()).toBeLessThanOrEqual(startedFrom + within);
    expect(sleeps.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(within);
  });

  it("starts at once when the forecast fails, and says why", async () => {
    server = await startReplayServer(() => ({ status: 500, body: {} }));
    const provider = createElectricityMapsProvider({ apiKey: "k-123456", baseUrl: `${server.url}/v3` });
    const log = recordingLogger();
    const clock = start;
    const result = await waitForStart({ provider, zone: "DE", withinMillis: 6 * HOUR, now: () => new Date(clock), sleep: async () => {}, log });
    expect(result.kind).toBe("forecast-failed");
    expect(result.waitedMillis).toBe(0);
    expect(log.lines.join("\n")).toMatch(/forecast unavailable.*starting now/);
  });
});
