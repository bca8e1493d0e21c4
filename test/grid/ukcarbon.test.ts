import { afterEach, describe, expect, it } from "vitest";
import { createUkCarbonIntensityProvider, parseGbZone } from "../../src/grid/ukcarbon.js";
import { fixture, startReplayServer, type ReplayServer } from "./replay-server.js";

let server: ReplayServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

type Period = { from: string; to: string; intensity: { forecast: number; actual?: number | null; index: string } };

describe("GB Carbon Intensity API", () => {
  it("national: the actual value of the half hour containing the time asked", async () => {
    const body = fixture<{ data: Period[] }>("uk-carbonintensity__intensity_national.json");
    server = await startReplayServer((req) => (req.path === "/intensity" ? { body } : { status: 400, body: {} }));
    const p = createUkCarbonIntensityProvider({ baseUrl: server.url });
    const second = body.data[1];
    const r = await p.at("GB", new Date(Date.parse(second.from.replace("Z", ":00Z")) + 60_000));
    expect(r.intensityGramsPerKwh).toBe(second.intensity.actual);
    expect(r.isEstimated).toBe(false);
    expect(r.validUntil!.getTime() - r.validFrom!.getTime()).toBe(30 * 60_000);
    expect(r.source).toBe("uk-carbon-intensity");
  });

  it("national: falls back to the forecast when no actual is published, and marks it estimated", async () => {
    const body = fixture<{ data: Period[] }>("uk-carbonintensity__intensity_national.json");
    body.data[0].intensity.actual = null;
    server = await startReplayServer(() => ({ body }));
    const p = createUkCarbonIntensityProvider({ baseUrl: server.url });
    const r = await p.at("UK", new Date(Date.parse("2023-07-04T23:40:00Z")));
    expect(r.intensityGramsPerKwh).toBe(body.data[0].intensity.forecast);
    expect(r.isEstimated).toBe(true);
  });

  it("regional by postcode: forecast intensity and the region's name", async () => {
    const body = fixture<{ data: { shortname: string; data: Period[] } }>("uk-carbonintensity__regional_intensity_postcode_KT1.json");
    server = await startReplayServer((req) => (req.path === "/regional/postcode/KT1" ? { body } : { status: 400, body: {} }));
    const p = createUkCarbonIntensityProvider({ baseUrl: server.url });
    const r = await p.at("GB-KT1", new Date(Date.parse("2023-07-04T23:45:00Z")));
    expect(r.intensityGramsPerKwh).toBe(body.data.data[0].intensity.forecast);
    expect(r.isEstimated).toBe(true);
    expect(r.note).toContain(body.data.shortname);
  });

  it("forecast: asks the fw24h window from now and returns the periods", async () => {
    const body = fixture<{ data: { data: Period[] } }>("uk-carbonintensity__regional_intensity_postcode_KT1.json");
    server = await startReplayServer(() => ({ body }));
    const now = new Date("2023-07-04T23:31:10Z");
    const p = createUkCarbonIntensityProvider({ baseUrl: server.url, now: () => now });
    const points = await p.forecast!("GB-13", 12);
    expect(server.requests[0].path).toBe("/regional/intensity/2023-07-04T23:31Z/fw24h/regionid/13");
    expect(points.map((x) => x.intensityGramsPerKwh)).toEqual(body.data.data.map((d) => d.intensity.forecast));
  });

  it.each([
    ["GB", { kind: "national" }],
    ["uk", { kind: "national" }],
    ["GB-13", { kind: "regionid", id: "13" }],
    ["GB-kt1", { kind: "postcode", code: "KT1" }],
    ["GB-18", undefined],
    ["DE", undefined],
  ])("zone %s", (zone, expected) => {
    expect(parseGbZone(zone)).toEqual(expected);
  });
});
