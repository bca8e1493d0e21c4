import { afterEach, describe, expect, it } from "vitest";
import { ProviderError } from "../../src/errors.js";
import { createElectricityMapsProvider } from "../../src/grid/electricitymaps.js";
import { fixture, startReplayServer, type ReplayServer } from "./replay-server.js";

const KEY = "em-test-key-3f9a1c";
let server: ReplayServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

type Point = { carbonIntensity: number; datetime: string; isEstimated: boolean; emissionFactorType: string };

describe("Electricity Maps v3", () => {
  it("parses carbon-intensity/latest (lifecycle) with the auth-token header", async () => {
    const body = fixture<Point & { zone: string }>("electricitymaps__v3_carbon-intensity_latest__lifecycle.json");
    server = await startReplayServer((req) =>
      req.path === "/v3/carbon-intensity/latest" && req.headers["auth-token"] === KEY ? { body } : { status: 401, body: { message: "bad key" } },
    );
    const p = createElectricityMapsProvider({ apiKey: KEY, baseUrl: `${server.url}/v3` });
    const r = await p.at("US-MIDW-MISO", new Date());
    expect(server.requests[0].query.get("zone")).toBe("US-MIDW-MISO");
    expect(r.intensityGramsPerKwh).toBe(body.carbonIntensity);
    expect(r.source).toBe("electricitymaps");
    expect(r.isEstimated).toBe(body.isEstimated);
    expect(r.emissionFactorType).toBe("lifecycle");
    expect(r.validFrom?.toISOString()).toBe(body.datetime);
    expect(r.validUntil!.getTime() - r.validFrom!.getTime()).toBe(3_600_000);
  });

  it("passes emissionFactorType=direct and records it", async () => {
    const body = fixture<Point>("electricitymaps__v3_carbon-intensity_latest__direct.json");
    server = await startReplayServer((req) => (req.query.get("emissionFactorType") === "direct" ? { body } : { status: 400, body: {} }));
    const p = createElectricityMapsProvider({ apiKey: KEY, baseUrl: `${server.url}/v3`, emissionFactorType: "direct" });
    const r = await p.at("US-MIDW-MISO", new Date());
    expect(r.intensityGramsPerKwh).toBe(body.carbonIntensity);
    expect(r.emissionFactorType).toBe("direct");
  });

  it("parses a forecast (points shaped as in the history response), sorted and limited to the horizon", async () => {
    const history = fixture<{ zone: string; history: Point[] }>("electricitymaps__v3_carbon-intensity_history__US-MIDW-MISO_1.json");
    const forecast = [...history.history].reverse().map((h) => ({ carbonIntensity: h.carbonIntensity, datetime: h.datetime }));
    server = await startReplayServer((req) => (req.path === "/v3/carbon-intensity/forecast" ? { body: { zone: history.zone, forecast } } : { status: 404 }));
    const p = createElectricityMapsProvider({ apiKey: KEY, baseUrl: `${server.url}/v3` });
    const points = await p.forecast!("US-MIDW-MISO", 6);
    expect(points).toHaveLength(6);
    expect(points[0].validFrom?.toISOString()).toBe(history.history[0].datetime);
    expect(points.map((x) => x.intensityGramsPerKwh)).toEqual(history.history.slice(0, 6).map((h) => h.carbonIntensity));
    expect(points.every((x) => x.isEstimated)).toBe(true);
  });

  it("turns the no-recent-data error body into a no-data ProviderError", async () => {
    const body = fixture("electricitymaps__v3_carbon-intensity_latest__error_no-recent-data.json");
    server = await startReplayServer(() => ({ status: 404, body }));
    const p = createElectricityMapsProvider({ apiKey: KEY, baseUrl: `${server.url}/v3` });
    const err = await p.at("US-MIDW-MISO", new Date()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as ProviderError).kind).toBe("no-data");
    expect((err as ProviderError).message).toMatch(/No recent data for zone/);
  });

  it("reports a wrong key as auth, without the key, even if the server echoes it", async () => {
    server = await startReplayServer((req) => ({ status: 401, body: { message: `invalid token ${String(req.headers["auth-token"])}` } }));
    const p = createElectricityMapsProvider({ apiKey: KEY, baseUrl: `${server.url}/v3` });
    const err = (await p.at("DE", new Date()).catch((e: unknown) => e)) as ProviderError;
    expect(err.kind).toBe("auth");
    expect(err.message).toMatch(/HTTP 401/);
    expect(err.message).not.toContain(KEY);
  });
});
