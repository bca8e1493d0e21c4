// The planner on replayed provider forecasts (UK Carbon Intensity, WattTime, Electricity Maps,
// Carbon Aware SDK) with a ramped profile: the best start and its gCO2e against a hand calculation
// over the fixture's values; a flat profile against the Carbon Aware SDK's own windowing rule.
import { afterEach, describe, expect, it } from "vitest";
import { createCarbonAwareSdkProvider } from "../../src/grid/carbonaware.js";
import { createElectricityMapsProvider } from "../../src/grid/electricitymaps.js";
import { createUkCarbonIntensityProvider } from "../../src/grid/ukcarbon.js";
import { createWattTimeProvider } from "../../src/grid/watttime.js";
import { staticReading } from "../../src/grid/static.js";
import { formatPlain } from "../../src/units.js";
import { buildPlan } from "../../src/plan/plan.js";
import { expectedEmissionsGrams, meanIntensity, planZone } from "../../src/plan/planner.js";
import { capSegments, flatProfile, meanProfile, type JobProfile } from "../../src/plan/profile.js";
import { zoneSeries } from "../../src/plan/zones.js";
import { GRAMS_PER_POUND } from "../../src/units.js";
import { fixture, startReplayServer, type ReplayServer } from "../grid/replay-server.js";

const MIN = 60_000;
const HOUR = 60 * MIN;
const KWH = 3_600_000;
let server: ReplayServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** A ramped job: three consecutive segments of `minutes` each using 1, 2 and 3 kWh of facility energy (or the given ramp). */
function ramp(minutes: number, kwh: number[] = [1, 2, 3]): JobProfile {
  return {
    segments: kwh.map((k, i) => ({ offsetSeconds: i * minutes * 60, durationSeconds: minutes * 60, facilityEnergyJoules: k * KWH })),
    durationSeconds: kwh.length * minutes * 60,
    facilityEnergyJoules: kwh.reduce((a, b) => a + b, 0) * KWH,
    method: "test ramp",
    source: "test",
  };
}

/**
 * The hand calculation: slots i, i+1, ... of the fixture, each weighted by the ramp's kWh; the
 * lowest sum wins, the earliest on ties. Returns the start index and the grams.
 */
function byHand(values: number[], kwh: number[], firstIndex: number): { index: number; grams: number } {
  let best = { index: -1, grams: Number.POSITIVE_INFINITY };
  for (let i = firstIndex; i + kwh.length <= values.length; i++) {
    const grams = kwh.reduce((a, k, j) => a + k * values[i + j], 0);
    if (grams < best.grams) best = { index: i, grams };
  }
  return best;
}

type UkPeriod = { from: string; to: string; intensity: { forecast: number } };
const ukBody = fixture<{ data: UkPeriod[] }>("uk-carbonintensity__intensity_fw24h__2020-05-21.json");
const ukValues = ukBody.data.map((p) => p.intensity.forecast);
const ukStart = (i: number) => Date.parse(ukBody.data[i].from.replace("Z", ":00Z"));

describe("planner: expected gCO2e of a profile over forecast slots", () => {
  const slots = [
    { fromMillis: 0, untilMillis: 30 * MIN, gramsPerKwh: 100 },
    { fromMillis: 30 * MIN, untilMillis: 60 * MIN, gramsPerKwh: 300 },
  ];
  it("a segment straddling two slots takes each slot's value for its part of the segment", () => {
    // 20 min in the first slot, 10 min in the second: (2/3) × 100 + (1/3) × 300.
    expect(meanIntensity(slots, 10 * MIN, 40 * MIN)).toBeCloseTo(500 / 3, 12);
    const p = flatProfile(30 * 60, 3 * KWH);
    expect(expectedEmissionsGrams(p, slots, 10 * MIN)).toBeCloseTo(500, 9);
  });
  it("a start whose job runs past the data, or over a gap, is not a candidate", () => {
    expect(expectedEmissionsGrams(flatProfile(40 * 60, KWH), slots, 30 * MIN)).toBeUndefined();
    const gap = [slots[0], { ...slots[1], fromMillis: 35 * MIN }];
    expect(meanIntensity(gap, 20 * MIN, 40 * MIN)).toBeUndefined();
  });
  it("the mean of several runs: the mean energy on the union of their boundaries", () => {
    const a = ramp(30, [1, 2]);
    const b = flatProfile(30 * 60, 4 * KWH);
    const m = meanProfile([a, b]);
    expect(m.durationSeconds).toBe(3600);
    expect(m.facilityEnergyJoules).toBeCloseTo(3.5 * KWH, 6);
    expect(m.segments.map((s) => s.facilityEnergyJoules / KWH)).toEqual([2.5, 1]);
  });
  it("more segments than the bound merge pairwise, conserving energy and time", () => {
    const many = Array.from({ length: 5001 }, (_, i) => ({ offsetSeconds: i, durationSeconds: 1, facilityEnergyJoules: i }));
    const capped = capSegments(many, 2000);
    expect(capped.length).toBeLessThanOrEqual(2000);
    expect(capped.reduce((a, s) => a + s.facilityEnergyJoules, 0)).toBe(many.reduce((a, s) => a + s.facilityEnergyJoules, 0));
    expect(capped.at(-1)!.offsetSeconds + capped.at(-1)!.durationSeconds).toBe(5001);
  });
});

describe("plan on replayed forecasts, ramped profile, against a hand calculation", () => {
  it("UK Carbon Intensity (national forecast, the fw48h window): best half-hour and its grams", async () => {
    server = await startReplayServer((req) => (req.path === "/intensity/2020-05-21T21:00Z/fw48h" ? { body: ukBody } : { status: 400, body: {} }));
    const from = Date.parse("2020-05-21T21:00Z");
    const provider = createUkCarbonIntensityProvider({ baseUrl: server.url, now: () => new Date(from) });
    const series = await zoneSeries("GB", { provider, staticReading: () => undefined }, from, from + 30 * HOUR);
    expect(series.basis).toBe("forecast");
    expect(series.kind.kind).toBe("average");
    // A descending ramp (3, 2, 1 kWh per half hour) against the real forecast values.
    const profile = ramp(30, [3, 2, 1]);
    const plan = buildPlan({ profile, series: [series], windowStartMillis: from, windowEndMillis: from + 30 * HOUR });
    const hand = byHand(ukValues, [3, 2, 1], 1); // slot 1 starts at 21:00, the window's start
    expect(plan.best!.startMillis).toBe(ukStart(hand.index));
    expect(plan.best!.expectedGrams).toBeCloseTo(hand.grams, 9);
    // Written out: 3 × 60 + 2 × 60 + 1 × 61 = 361 g from 14:00; the same job flat would start at 13:30.
    expect(new Date(plan.best!.startMillis).toISOString()).toBe("2020-05-22T14:00:00.000Z");
    expect(plan.best!.expectedGrams).toBeCloseTo(361, 9);
    expect(plan.nowHere!.expectedGrams).toBeCloseTo(3 * 177 + 2 * 161 + 143, 9);
    const flat = buildPlan({ profile: ramp(30, [2, 2, 2]), series: [series], windowStartMillis: from, windowEndMillis: from + 30 * HOUR });
    expect(new Date(flat.best!.startMillis).toISOString()).toBe("2020-05-22T13:30:00.000Z");
    // The forecast ends at 21:00 the next day: no start later than 19:30 is evaluated.
    expect(Math.max(...plan.zones[0].candidates.map((c) => c.startMillis))).toBe(Date.parse("2020-05-22T19:30Z"));
  });

  it("Electricity Maps (hourly forecast, lifecycle): best hour and its grams", async () => {
    type Point = { carbonIntensity: number; datetime: string };
    const history = fixture<{ zone: string; history: Point[] }>("electricitymaps__v3_carbon-intensity_history__US-MIDW-MISO_1.json");
    server = await startReplayServer((req) => (req.path === "/v3/carbon-intensity/forecast" ? { body: { zone: history.zone, forecast: history.history } } : { status: 404, body: {} }));
    const provider = createElectricityMapsProvider({ apiKey: "em-key-123", baseUrl: `${server.url}/v3` });
    const from = Date.parse(history.history[0].datetime);
    const series = await zoneSeries("US-MIDW-MISO", { provider, staticReading: () => undefined }, from, from + 24 * HOUR);
    expect(series.kind).toEqual({ kind: "average", detail: "lifecycle" });
    const values = history.history.map((p) => p.carbonIntensity);
    const plan = buildPlan({ profile: ramp(60), series: [series], windowStartMillis: from, windowEndMillis: from + 24 * HOUR });
    const hand = byHand(values, [1, 2, 3], 0);
    expect(plan.best!.startMillis).toBe(Date.parse(history.history[hand.index].datetime));
    expect(plan.best!.expectedGrams).toBeCloseTo(hand.grams, 9);
    expect(plan.zones[0].candidates).toHaveLength(values.length - 2);
  });

  it("WattTime (5-minute MOER, lbs/MWh): best 5 minutes and its grams, marginal", async () => {
    const body = fixture<{ data: { point_time: string; value: number }[] }>("watttime__v3_historical__doc-example.json");
    server = await startReplayServer((req) => (req.path === "/login" ? { body: { token: "tok-123" } } : { body }));
    const provider = createWattTimeProvider({ username: "u", password: "p-123456", baseUrl: server.url });
    const from = Date.parse(body.data[0].point_time);
    const series = await zoneSeries("CAISO_NORTH", { provider, staticReading: () => undefined }, from, from + HOUR);
    expect(series.kind.kind).toBe("marginal");
    const gPerKwh = body.data.map((p) => (p.value * GRAMS_PER_POUND) / 1000);
    // A 5-minute job ramping 1 → 2 kWh in two halves; two candidate starts (00:00, 00:05).
    const profile = { ...ramp(2.5, [1, 2]) };
    const plan = buildPlan({ profile, series: [series], windowStartMillis: from, windowEndMillis: from + HOUR });
    const perSlot = gPerKwh.map((g) => 3 * g);
    const bestIndex = perSlot[1] < perSlot[0] ? 1 : 0;
    expect(plan.zones[0].candidates.map((c) => c.expectedGrams)).toEqual(perSlot.map((g) => expect.closeTo(g, 9)));
    expect(plan.best!.startMillis).toBe(from + bestIndex * 5 * MIN);
    expect(plan.best!.expectedGrams).toBeCloseTo(perSlot[bestIndex], 9);
  });

  it("Carbon Aware SDK (forecasts/current, the SDK's 30-minute points): best window and its grams", async () => {
    server = await startReplayServer((req) => (req.path === "/emissions/forecasts/current" ? { body: casdkBody(ukValues) } : { status: 404, body: {} }));
    const from = Date.parse("2020-05-21T21:00Z");
    const provider = createCarbonAwareSdkProvider({ baseUrl: server.url, now: () => new Date(from) });
    const series = await zoneSeries("uksouth", { provider, staticReading: () => undefined }, from, from + 24 * HOUR);
    expect(series.kind.kind).toBe("unknown");
    const plan = buildPlan({ profile: ramp(30), series: [series], windowStartMillis: from, windowEndMillis: from + 24 * HOUR });
    const hand = byHand(ukValues, [1, 2, 3], 1);
    expect(plan.best!.startMillis).toBe(ukStart(hand.index));
    expect(plan.best!.expectedGrams).toBeCloseTo(hand.grams, 9);
  });

  it("a zone whose forecast fails uses the provider's latest (historical) value, labelled", async () => {
    const latest = fixture<{ carbonIntensity: number; datetime: string }>("electricitymaps__v3_carbon-intensity_latest__lifecycle.json");
    server = await startReplayServer((req) => (req.path === "/v3/carbon-intensity/latest" ? { body: latest } : { status: 404, body: { error: "no forecast for this zone" } }));
    const provider = createElectricityMapsProvider({ apiKey: "em-key-123", baseUrl: `${server.url}/v3` });
    const from = Date.parse("2020-05-21T21:00Z");
    const s = await zoneSeries("US-MIDW-MISO", { provider, staticReading: () => undefined }, from, from + 24 * HOUR);
    expect(s.basis).toBe("latest");
    expect(s.note).toMatch(/^no forecast \(electricitymaps forecast unavailable \(electricitymaps: GET \/v3\/carbon-intensity\/forecast → HTTP 404.*\)\): electricitymaps's latest value of \S+, 466 gCO2e\/kWh, used for every start$/);
    const plan = buildPlan({ profile: ramp(30), series: [s], windowStartMillis: from, windowEndMillis: from + 24 * HOUR });
    expect(plan.best!.expectedGrams).toBeCloseTo(6 * latest.carbonIntensity, 9);
  });

  it("a zone without a forecast uses the static table, labelled, the same for every start", async () => {
    const from = Date.parse("2020-05-21T21:00Z");
    const s = await zoneSeries("DE", { staticReading: (z) => staticReading(z) }, from, from + 24 * HOUR);
    expect(s.basis).toBe("static");
    expect(s.note).toMatch(/no forecast.*annual average.*used for every start/);
    // The one number format: 3 significant digits (not "344.1").
    expect(s.note).toContain(`, ${formatPlain(staticReading("DE").intensityGramsPerKwh)} gCO2e/kWh, used for every start`);
    const plan = buildPlan({ profile: ramp(30), series: [s], windowStartMillis: from, windowEndMillis: from + 24 * HOUR });
    expect(plan.zones[0].candidates).toHaveLength(1);
    expect(plan.best!.expectedGrams).toBeCloseTo(6 * staticReading("DE").intensityGramsPerKwh, 9);
  });
});

/** The Carbon Aware SDK WebAPI's forecasts/current body for 30-minute values from 2020-05-21T20:30Z. */
function casdkBody(values: number[]) {
  const t0 = Date.parse("2020-05-21T20:30:00Z");
  return [
    {
      generatedAt: "2020-05-21T20:30:00+00:00",
      location: "uksouth",
      forecastData: values.map((value, i) => ({ location: "uksouth", timestamp: new Date(t0 + i * 30 * MIN).toISOString(), duration: 30, value })),
    },
  ];
}

/**
 * The Carbon Aware SDK's optimal window (GSF.CarbonAware ForecastHandler.ProcessAndValidateForecast:
 * EmissionsDataExtensions.RollingAverage with tickSize = the first point's duration from dataStartAt,
 * windows entirely inside the data and before dataEndAt; then CarbonAwareOptimalEmission: the minimum
 * rating, every point with it, in time order). Ratings are kept as exact integer sums here (the data
 * are whole g/kWh on a whole-minute grid), so ties are exact. Points: {time ms, minutes, value}.
 */
function sdkOptimal(points: { timeMillis: number; minutes: number; value: number }[], windowMinutes: number, dataStartAt: number, dataEndAt: number): number[] {
  const tick = points[0].minutes * MIN;
  const dataEnd = points[points.length - 1].timeMillis + points[points.length - 1].minutes * MIN;
  const ratings: { time: number; sum: number }[] = [];
  for (let start = Math.max(dataStartAt, points[0].timeMillis); start + windowMinutes * MIN <= Math.min(dataEndAt, dataEnd); start += tick) {
    const end = start + windowMinutes * MIN;
    // value × minutes of overlap (AverageOverPeriod's weights × windowMinutes).
    const sum = points.reduce((a, p) => a + p.value * Math.max(0, Math.min(end, p.timeMillis + p.minutes * MIN) - Math.max(start, p.timeMillis)) / MIN, 0);
    ratings.push({ time: start, sum });
  }
  const min = Math.min(...ratings.map((r) => r.sum));
  return ratings.filter((r) => r.sum === min).map((r) => r.time);
}

describe("a flat profile picks the Carbon Aware SDK's best window for the same data", () => {
  it("the SDK rule as written here reproduces the SDK's own RollingAverage test table", () => {
    // EmissionsDataExtensionsTests: 10, 20, 30, 40 at 5-minute points from 2020-01-01T00:00Z.
    const t0 = Date.parse("2020-01-01T00:00:00Z");
    const pts = [10, 20, 30, 40].map((value, i) => ({ timeMillis: t0 + i * 5 * MIN, minutes: 5, value }));
    // window 10 min: ratings 15, 25, 35 → optimal at 00:00; window 5 min from 00:05 to 00:20: 20, 30, 40 → 00:05.
    expect(sdkOptimal(pts, 10, t0, t0 + 20 * MIN)).toEqual([t0]);
    expect(sdkOptimal(pts, 5, t0 + 5 * MIN, t0 + 20 * MIN)).toEqual([t0 + 5 * MIN]);
    // Starting mid-point (00:02, window 5): 14, 24, 34 → 00:02 (the case "Starting in middle of data window").
    expect(sdkOptimal(pts, 5, t0 + 2 * MIN, t0 + 20 * MIN)).toEqual([t0 + 2 * MIN]);
  });

  it.each([1, 2, 3, 4, 6, 8, 12])("job of %i half-hours over the replayed SDK forecast", async (slots) => {
    server = await startReplayServer(() => ({ body: casdkBody(ukValues) }));
    const from = Date.parse("2020-05-21T21:10Z"); // mid-slot, like dataStartAt "now"
    const until = from + 20 * HOUR;
    const provider = createCarbonAwareSdkProvider({ baseUrl: server.url, now: () => new Date(from) });
    const series = await zoneSeries("uksouth", { provider, staticReading: () => undefined }, from, until);
    const plan = planZone({ profile: flatProfile(slots * 30 * 60, KWH), slots: series.slots, windowStartMillis: from, windowEndMillis: until });
    const t0 = Date.parse("2020-05-21T20:30:00Z");
    const optimal = sdkOptimal(ukValues.map((value, i) => ({ timeMillis: t0 + i * 30 * MIN, minutes: 30, value })), slots * 30, from, until);
    // The SDK returns every tied optimal point; its first is the earliest, which the planner picks.
    expect(plan.best!.startMillis).toBe(optimal[0]);
  });
});
