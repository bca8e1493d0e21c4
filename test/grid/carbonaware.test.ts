import { afterEach, describe, expect, it } from "vitest";
import { createCarbonAwareSdkProvider, parseTimeSpanMillis } from "../../src/grid/carbonaware.js";
import { fixture, fixtureText, startReplayServer, type ReplayServer } from "./replay-server.js";

let server: ReplayServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** The SDK docs' forecast example with its elision line removed (upstream is not valid JSON). */
function forecastBody(): { forecastData: { timestamp: string; value: number; duration: number }[] }[] {
  const text = fixtureText("carbon-aware-sdk__emissions_forecasts_current__doc-example.jsonc.txt")
    .split("\n")
    .filter((l) => l.trim() !== "...")
    .join("\n");
  return JSON.parse(text);
}

describe("Carbon Aware SDK WebAPI", () => {
  it("emissions/bylocation: the latest rating at or before the time asked", async () => {
    const body = fixture<{ location: string; time: string; rating: number }[]>("carbon-aware-sdk__emissions_bylocation__doc-example.json");
    server = await startReplayServer((req) => (req.path === "/emissions/bylocation" ? { body } : { status: 404, body: {} }));
    const p = createCarbonAwareSdkProvider({ baseUrl: server.url });
    const t = new Date(Date.parse(body[0].time) + 120_000);
    const r = await p.at("eastus", t);
    expect(server.requests[0].query.get("location")).toBe("eastus");
    expect(server.requests[0].query.get("toTime")).toBe(t.toISOString());
    expect(r.intensityGramsPerKwh).toBe(body[0].rating);
    expect(r.source).toBe("carbon-aware-sdk");
  });

  it("emissions/forecasts/current: forecastData points with their duration", async () => {
    const body = forecastBody();
    server = await startReplayServer((req) => (req.path === "/emissions/forecasts/current" ? { body } : { status: 404, body: {} }));
    const now = new Date("2022-07-19T13:40:00Z");
    const p = createCarbonAwareSdkProvider({ baseUrl: server.url, now: () => now });
    const points = await p.forecast!("northeurope", 24);
    expect(server.requests[0].query.get("dataStartAt")).toBe(now.toISOString());
    expect(points.map((x) => x.intensityGramsPerKwh)).toEqual(body[0].forecastData.map((d) => d.value));
    expect(points[0].validUntil!.getTime() - points[0].validFrom!.getTime()).toBe(body[0].forecastData[0].duration * 60_000);
  });

  it.each([
    ["00:05:00", 300_000],
    ["1.02:00:00", 26 * 3_600_000],
    ["5 minutes", undefined],
  ])("TimeSpan %s", (text, expected) => {
    expect(parseTimeSpanMillis(text)).toBe(expected);
  });
});
