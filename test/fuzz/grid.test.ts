// Grid JSON per provider (src/grid/*): each provider is given fuzzed bodies through an injected
// fetch (the real parsing path: getJson, the size cap, the provider's shape checks). It returns a
// reading with a finite intensity in 0..2,500 gCO2e/kWh and valid dates, or throws ProviderError.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createCarbonAwareSdkProvider, parseTimeSpanMillis } from "../../src/grid/carbonaware.js";
import { createElectricityMapsProvider } from "../../src/grid/electricitymaps.js";
import { MAX_PLAUSIBLE_GRAMS_PER_KWH, parseRetryAfterMillis } from "../../src/grid/http.js";
import type { IntensityProvider, IntensityReading } from "../../src/core/contracts.js";
import { createUkCarbonIntensityProvider, parseGbZone } from "../../src/grid/ukcarbon.js";
import { createWattTimeProvider } from "../../src/grid/watttime.js";
import { assertFinite, params, timeoutMillis, typedOnly, typedOnlyAsync } from "./fuzz.js";

const T = new Date("2025-06-01T12:00:00Z");
const value = fc.oneof(fc.double(), fc.integer(), fc.constantFrom(1e9, -1, 2500, 2501, 0, "120", null, true), fc.string());
const date = fc.oneof(fc.date({ noInvalidDate: false }).map((d) => (Number.isNaN(d.getTime()) ? "not a date" : d.toISOString())), fc.string(), fc.constant(T.toISOString()), fc.integer());
const anyJson = fc.jsonValue({ maxDepth: 4 });

/** Bodies near each provider's real shape, with fuzzed leaves, plus arbitrary JSON and non-JSON. */
const bodies: Record<string, fc.Arbitrary<unknown>> = {
  electricitymaps: fc.oneof(
    fc.record({ zone: fc.string(), carbonIntensity: value, datetime: date, isEstimated: fc.anything(), emissionFactorType: fc.anything() }, { requiredKeys: [] }),
    fc.record({ forecast: fc.array(fc.record({ carbonIntensity: value, datetime: date }, { requiredKeys: [] }), { maxLength: 5 }) }),
    anyJson,
  ),
  watttime: fc.oneof(
    fc.record({
      token: fc.oneof(fc.string(), fc.anything()),
      meta: fc.record({ units: fc.constantFrom("lbs_co2_per_mwh", "percentile", "kg"), data_point_period_seconds: value }, { requiredKeys: [] }),
      data: fc.array(fc.record({ point_time: date, value, imputed_data_used: fc.boolean(), forecast: fc.anything() }, { requiredKeys: [] }), { maxLength: 5 }),
    }, { requiredKeys: [] }),
    anyJson,
  ),
  "uk-carbon-intensity": fc.oneof(
    fc.record({ data: fc.array(fc.record({ from: date, to: date, intensity: fc.record({ forecast: value, actual: value }, { requiredKeys: [] }) }, { requiredKeys: [] }), { maxLength: 5 }) }),
    anyJson,
  ),
  "carbon-aware-sdk": fc.oneof(
    fc.array(fc.record({ time: date, rating: value, duration: fc.oneof(fc.string(), fc.constantFrom("00:05:00", "1.00:00:00", "99:99:99")) }, { requiredKeys: [] }), { maxLength: 5 }),
    fc.array(fc.record({ forecastData: fc.array(fc.record({ timestamp: date, value, duration: value }, { requiredKeys: [] }), { maxLength: 5 }) }), { maxLength: 2 }),
    anyJson,
  ),
};

const providers: Record<string, (f: typeof fetch) => { p: IntensityProvider; zone: string }> = {
  electricitymaps: (f) => ({ p: createElectricityMapsProvider({ apiKey: "k", baseUrl: "http://fuzz.invalid/v3", fetch: f }), zone: "DE" }),
  watttime: (f) => ({ p: createWattTimeProvider({ username: "u", password: "p", baseUrl: "http://fuzz.invalid", fetch: f, now: () => T }), zone: "CAISO_NORTH" }),
  "uk-carbon-intensity": (f) => ({ p: createUkCarbonIntensityProvider({ baseUrl: "http://fuzz.invalid", fetch: f, now: () => T }), zone: "GB" }),
  "carbon-aware-sdk": (f) => ({ p: createCarbonAwareSdkProvider({ baseUrl: "http://fuzz.invalid", fetch: f, now: () => T }), zone: "eastus" }),
};

function checkReading(r: IntensityReading): void {
  assertFinite(r);
  expect(r.intensityGramsPerKwh).toBeGreaterThanOrEqual(0);
  expect(r.intensityGramsPerKwh).toBeLessThanOrEqual(MAX_PLAUSIBLE_GRAMS_PER_KWH);
}

describe("fuzz: grid provider JSON", () => {
  for (const name of Object.keys(providers)) {
    it(`${name}: ProviderError or plausible, finite readings (current and forecast)`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.oneof(bodies[name].map((b) => JSON.stringify(b)), fc.string()), fc.constantFrom(200, 200, 200, 404, 429, 500), async (text, status) => {
          // WattTime logs in first: the login answers with a token, the data request with the body.
          const f = (async (url: URL | string) =>
            String(url).includes("/login") ? new Response(JSON.stringify({ token: "t" })) : new Response(text, { status })) as typeof fetch;
          const { p, zone } = providers[name](f);
          const now = await typedOnlyAsync(() => p.at(zone, T));
          if (now) checkReading(now);
          const forecast = await typedOnlyAsync(() => p.forecast!(zone, 24));
          for (const r of forecast ?? []) checkReading(r);
        }),
        params,
      );
    }, timeoutMillis);
  }

  it("header and zone parsers: Retry-After, .NET TimeSpan, GB zones", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.stringMatching(/^[0-9]{1,400}$/), fc.date({ noInvalidDate: false }).map(String)), (text) => {
        const ms = parseRetryAfterMillis(text, T.getTime());
        if (ms !== undefined) expect(Number.isFinite(ms) && ms >= 0, String(ms)).toBe(true);
        const span = parseTimeSpanMillis(text);
        if (span !== undefined) expect(Number.isFinite(span), String(span)).toBe(true);
        assertFinite(typedOnly(() => parseGbZone(text)));
      }),
      params,
    );
  }, timeoutMillis);
});
