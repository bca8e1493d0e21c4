import { afterEach, describe, expect, it } from "vitest";
import { ProviderError } from "../../src/errors.js";
import { GRAMS_PER_POUND } from "../../src/units.js";
import { createWattTimeProvider, WATTTIME_TOKEN_LIFETIME_MILLIS } from "../../src/grid/watttime.js";
import { fixture, startReplayServer, type RecordedRequest, type ReplayServer } from "./replay-server.js";

const USER = "pp-user";
const PASS = "s3cret-Pa55word";
let server: ReplayServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

type Moer = { data: { point_time: string; value: number }[]; meta: Record<string, unknown> };

/** A WattTime double: /login issues token-1, token-2, ...; data endpoints accept only the tokens in `valid`. */
function wattTime(dataBody: () => unknown) {
  let issued = 0;
  const valid = new Set<string>();
  const handler = (req: RecordedRequest) => {
    if (req.path === "/login") {
      const expected = `Basic ${Buffer.from(`${USER}:${PASS}`).toString("base64")}`;
      if (req.headers.authorization !== expected) return { status: 403, body: { error: "bad credentials" } };
      const token = `token-${++issued}`;
      valid.add(token);
      return { body: { ...fixture<{ token: string }>("watttime__login__synthetic.json"), token } };
    }
    const bearer = String(req.headers.authorization ?? "").replace(/^Bearer /, "");
    if (!valid.has(bearer)) return { status: 401, body: { error: "token expired" } };
    return { body: dataBody() };
  };
  return { handler, revokeAll: () => valid.clear() };
}

describe("WattTime v3", () => {
  it("logs in with basic auth, uses the bearer token and converts lbs/MWh to g/kWh", async () => {
    const body = fixture<Moer>("watttime__v3_historical__doc-example.json");
    const wt = wattTime(() => body);
    server = await startReplayServer(wt.handler);
    const p = createWattTimeProvider({ username: USER, password: PASS, baseUrl: server.url });
    const t = new Date(body.data[1].point_time);
    const r = await p.at("CAISO_NORTH", new Date(t.getTime() + 60_000));
    const forecastReq = server.requests.find((q) => q.path === "/v3/forecast")!;
    expect(forecastReq.query.get("region")).toBe("CAISO_NORTH");
    expect(forecastReq.query.get("signal_type")).toBe("co2_moer");
    expect(forecastReq.headers.authorization).toBe("Bearer token-1");
    // The point covering the time asked: 860 lbs/MWh × 453.59237 g/lb ÷ 1000 kWh/MWh.
    expect(r.intensityGramsPerKwh).toBeCloseTo((body.data[1].value * GRAMS_PER_POUND) / 1000, 9);
    expect(r.intensityGramsPerKwh).toBeCloseTo(390.089, 3);
    expect(r.emissionFactorType).toBe("marginal");
    expect(r.isEstimated).toBe(true); // imputed_data_used
    expect(r.validUntil!.getTime() - r.validFrom!.getTime()).toBe(300_000);
  });

  it("caches the token until it expires, then logs in again", async () => {
    const body = fixture<Moer>("watttime__v3_historical__doc-example.json");
    server = await startReplayServer(wattTime(() => body).handler);
    let clock = Date.parse("2025-01-01T00:00:00Z");
    const p = createWattTimeProvider({ username: USER, password: PASS, baseUrl: server.url, now: () => new Date(clock) });
    await p.at("CAISO_NORTH", new Date(clock));
    clock += 10 * 60_000;
    await p.at("CAISO_NORTH", new Date(clock));
    expect(server.count("/login")).toBe(1);
    clock += WATTTIME_TOKEN_LIFETIME_MILLIS; // past expiry
    await p.at("CAISO_NORTH", new Date(clock));
    expect(server.count("/login")).toBe(2);
    expect(server.requests.filter((q) => q.path === "/v3/forecast").at(-1)!.headers.authorization).toBe("Bearer token-2");
  });

  it("renews a token the server rejects (401) once, then succeeds", async () => {
    const body = fixture<Moer>("watttime__v3_historical__doc-example.json");
    const wt = wattTime(() => body);
    server = await startReplayServer(wt.handler);
    const p = createWattTimeProvider({ username: USER, password: PASS, baseUrl: server.url });
    await p.at("CAISO_NORTH", new Date());
    wt.revokeAll();
    const r = await p.at("CAISO_NORTH", new Date());
    expect(r.source).toBe("watttime");
    expect(server.count("/login")).toBe(2);
  });

  it("parses the nested forecast/historical shape", async () => {
    const body = fixture<{ data: { forecast: { value: number }[] }[] }>("watttime__v3_forecast_historical__doc-example.json");
    server = await startReplayServer(wattTime(() => body).handler);
    const p = createWattTimeProvider({ username: USER, password: PASS, baseUrl: server.url });
    const points = await p.forecast!("CAISO_NORTH", 2);
    expect(points.map((x) => x.intensityGramsPerKwh)).toEqual(body.data[0].forecast.map((f) => (f.value * GRAMS_PER_POUND) / 1000));
    expect(points.every((x) => x.isEstimated)).toBe(true);
  });

  it("refuses a signal index (percentile) as an intensity", async () => {
    const body = fixture("watttime__v3_signal-index__PSCO.json");
    server = await startReplayServer(wattTime(() => body).handler);
    const p = createWattTimeProvider({ username: USER, password: PASS, baseUrl: server.url });
    const err = (await p.at("PSCO", new Date()).catch((e: unknown) => e)) as ProviderError;
    expect(err).toBeInstanceOf(ProviderError);
    expect(err.kind).toBe("malformed");
    expect(err.message).toMatch(/percentile/);
  });

  it("reports wrong credentials and an out-of-plan region as auth, never showing the password", async () => {
    server = await startReplayServer(wattTime(() => ({})).handler);
    const bad = createWattTimeProvider({ username: USER, password: "wrong-password", baseUrl: server.url });
    const e1 = (await bad.at("CAISO_NORTH", new Date()).catch((e: unknown) => e)) as ProviderError;
    expect(e1.kind).toBe("auth");
    expect(e1.message).not.toContain("wrong-password");
    await server.close();
    const scope = fixture("watttime__error_invalid-scope.json");
    server = await startReplayServer((req) => (req.path === "/login" ? { body: { token: "tok-xyz" } } : { status: 403, body: scope }));
    const p = createWattTimeProvider({ username: USER, password: PASS, baseUrl: server.url });
    const e2 = (await p.at("PJM", new Date()).catch((e: unknown) => e)) as ProviderError;
    expect(e2.kind).toBe("auth");
    expect(e2.message).toMatch(/Invalid scope/);
    expect(e2.message).not.toContain(PASS);
  });
});
