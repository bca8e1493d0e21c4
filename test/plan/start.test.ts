// run --start-within through the planner: without a profile the lowest slot (as before); with the
// job's measured profile, the start of lowest expected CO2e for the whole job, which can differ.
import { afterEach, describe, expect, it } from "vitest";
import { createUkCarbonIntensityProvider } from "../../src/grid/ukcarbon.js";
import { planStart, waitForStart } from "../../src/grid/schedule.js";
import type { IntensityReading } from "../../src/core/contracts.js";
import type { JobProfile } from "../../src/plan/profile.js";
import { fixture, recordingLogger, startReplayServer, type ReplayServer } from "../grid/replay-server.js";

const HOUR = 3_600_000;
const KWH = 3_600_000;
const T0 = Date.parse("2025-03-01T00:00:00Z");

const hourly = (values: number[]): IntensityReading[] =>
  values.map((v, i) => ({ intensityGramsPerKwh: v, zone: "GB", source: "test", validFrom: new Date(T0 + i * HOUR), validUntil: new Date(T0 + (i + 1) * HOUR) }));

/** Two hours: 1 kWh in the first, 9 kWh in the second (a job that ramps up). */
const rampUp: JobProfile = {
  segments: [
    { offsetSeconds: 0, durationSeconds: 3600, facilityEnergyJoules: KWH },
    { offsetSeconds: 3600, durationSeconds: 3600, facilityEnergyJoules: 9 * KWH },
  ],
  durationSeconds: 7200,
  facilityEnergyJoules: 10 * KWH,
  method: "test",
  source: "ramp.json (train)",
};

let server: ReplayServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe("planStart with the job's profile", () => {
  // Hourly: 100, 300, 200, 100, 500. Flat: the lowest slot is 00:00 (100). The ramped job puts 9 kWh
  // in its second hour: from 00:00 → 1×100 + 9×300 = 2,800 g; 01:00 → 300 + 9×200 = 2,100;
  // 02:00 → 200 + 9×100 = 1,100; 03:00 → 100 + 9×500 = 4,600. Best: 02:00, 1,100 g.
  const forecast = hourly([100, 300, 200, 100, 500]);
  it("flat: the lowest slot, as before", () => {
    const plan = planStart({ forecast, now: new Date(T0), withinMillis: 4 * HOUR });
    expect(plan.startAt.getTime()).toBe(T0);
    expect(plan.expectedGramsPerKwh).toBe(100);
  });
  it("with the profile: the start of lowest expected CO2e for the whole job", () => {
    const plan = planStart({ forecast, now: new Date(T0), withinMillis: 4 * HOUR, profile: rampUp });
    expect(plan.startAt.getTime()).toBe(T0 + 2 * HOUR);
    expect(plan.expectedGrams).toBeCloseTo(1100, 9);
    expect(plan.expectedGramsPerKwh).toBeCloseTo(110, 9);
    expect(plan.reason).toMatch(/lowest expected CO2e for the job's profile \(ramp\.json \(train\)\): 1\.10 kg starting at 2025-03-01T02:00:00Z; 2\.80 kg if started now/);
  });
  it("a job the forecast cannot cover from any start: the lowest slot, and it says so", () => {
    // Two hours of data, a two-hour job, half an hour in: no start leaves the job inside the data.
    const plan = planStart({ forecast: hourly([300, 100]), now: new Date(T0 + HOUR / 2), withinMillis: HOUR, profile: rampUp });
    expect(plan.startAt.getTime()).toBe(T0 + HOUR);
    expect(plan.reason).toMatch(/does not cover the job's 2\.00 h profile from any start: lowest slot used/);
  });
});

describe("waitForStart with a profile against the replayed UK forecast", () => {
  it("waits for the start the profile picks", async () => {
    const body = fixture<{ data: { from: string; intensity: { forecast: number } }[] }>("uk-carbonintensity__intensity_fw24h__2020-05-21.json");
    server = await startReplayServer(() => ({ body }));
    let clock = Date.parse("2020-05-21T21:00:00Z");
    const provider = createUkCarbonIntensityProvider({ baseUrl: server.url, now: () => new Date(clock) });
    const log = recordingLogger();
    const descending: JobProfile = {
      segments: [3, 2, 1].map((k, i) => ({ offsetSeconds: i * 1800, durationSeconds: 1800, facilityEnergyJoules: k * KWH })),
      durationSeconds: 5400,
      facilityEnergyJoules: 6 * KWH,
      method: "test",
      source: "test",
    };
    const result = await waitForStart({
      provider,
      zone: "GB",
      withinMillis: 20 * HOUR,
      profile: descending,
      now: () => new Date(clock),
      sleep: async (ms) => void (clock += ms),
      log,
    });
    // The same hand calculation as test/plan/planner.test.ts: 3×60 + 2×60 + 1×61 = 361 g from 14:00.
    expect(new Date(result.startedAt).toISOString()).toBe("2020-05-22T14:00:00.000Z");
    expect(log.lines.join("\n")).toMatch(/waiting until 2020-05-22T14:00:00Z: lowest expected CO2e for the job's profile \(test\): 361 g/);
  });
});
