/**
 * WattTime API v3 (https://api.watttime.org): GET /login with HTTP basic auth returns a bearer
 * token (valid 30 minutes; cached until shortly before then, and renewed once on a 401), then
 * GET /v3/forecast?region=R&signal_type=co2_moer. The marginal operating emissions rate (MOER) is in
 * lbs CO2 per MWh and is converted to gCO2/kWh (units.ts). A signal-index ("percentile") response is
 * a relative ranking, not an intensity, and is refused as malformed, never used as one.
 * The current value is the first point of the forecast (horizon_hours=0), as WattTime's v3 docs advise.
 */
import { ProviderError } from "../errors.js";
import { poundsPerMwhToGramsPerKwh } from "../units.js";
import { asObject, expectShape, getJson, joinUrl, parseDate, parseIntensity, plausibleIntensity, type HttpOptions } from "./http.js";
import type { IntensityProvider, IntensityReading } from "../core/contracts.js";

/** Public endpoint; POWERPRINT_WATTTIME_URL overrides it. */
export const WATTTIME_DEFAULT_URL = "https://api.watttime.org";
/** WattTime login tokens expire 30 minutes after issue (WattTime v3 docs). */
export const WATTTIME_TOKEN_LIFETIME_MILLIS = 30 * 60_000;
/** Renew this long before expiry so a request never goes out with a token about to lapse. */
const TOKEN_MARGIN_MILLIS = 60_000;
const ID = "watttime";

/** Options of the WattTime provider. Credentials come from WATTTIME_USERNAME / WATTTIME_PASSWORD. */
export interface WattTimeOptions extends HttpOptions {
  username: string;
  password: string;
  baseUrl?: string;
  /** Clock for token expiry (default real time). */
  now?: () => Date;
}

function parseMoerPoints(body: unknown, zone: string): IntensityReading[] {
  expectShape(ID, body && typeof body === "object" && !Array.isArray(body), "body is not an object");
  const b = body as { data?: unknown; meta?: unknown };
  const meta = b.meta === undefined ? {} : asObject(ID, b.meta, "meta");
  const units = meta.units;
  if (units === "percentile") {
    throw new ProviderError(ID, "malformed", "got a signal index (units 'percentile'), which is not an intensity; refusing to use it as one");
  }
  if (units !== "lbs_co2_per_mwh") {
    throw new ProviderError(ID, "malformed", `unexpected units ${JSON.stringify(units)} (expected lbs_co2_per_mwh)`);
  }
  expectShape(ID, Array.isArray(b.data), "data[] missing");
  let points = (b.data as unknown[]).map((p, i) => asObject(ID, p, `data[${i}]`));
  // /v3/forecast/historical nests the points under data[i].forecast; take the newest forecast.
  if (points.length > 0 && Array.isArray(points[0].forecast)) {
    const newest = points[points.length - 1].forecast;
    expectShape(ID, Array.isArray(newest), `data[${points.length - 1}].forecast is not a list`);
    points = (newest as unknown[]).map((p, i) => asObject(ID, p, `data[${points.length - 1}].forecast[${i}]`));
  }
  const period = meta.data_point_period_seconds;
  // WattTime points are 5 min apart unless meta says otherwise (a positive number of seconds, at most a day).
  const periodMillis = typeof period === "number" && Number.isFinite(period) && period > 0 && period <= 86_400 ? period * 1000 : 300_000;
  const readings = points.map((p, i): IntensityReading => {
    const validFrom = parseDate(ID, p.point_time, `data[${i}].point_time`);
    const r: IntensityReading = {
      intensityGramsPerKwh: plausibleIntensity(ID, poundsPerMwhToGramsPerKwh(parseIntensity(ID, p.value, `data[${i}].value`)), `data[${i}].value`),
      zone,
      source: ID,
      validFrom,
      validUntil: new Date(validFrom.getTime() + periodMillis),
      emissionFactorType: "marginal",
    };
    if (p.imputed_data_used === true) r.isEstimated = true;
    return r;
  });
  return readings.sort((a, b) => a.validFrom!.getTime() - b.validFrom!.getTime());
}

/** Creates the WattTime v3 provider (id "watttime"). Zones are WattTime region abbreviations (CAISO_NORTH, PSCO...). */
export function createWattTimeProvider(opts: WattTimeOptions): IntensityProvider & { loginCount(): number } {
  const base = opts.baseUrl ?? WATTTIME_DEFAULT_URL;
  const now = opts.now ?? (() => new Date());
  const basic = Buffer.from(`${opts.username}:${opts.password}`).toString("base64");
  let token: { value: string; expiresAtMillis: number } | undefined;
  let logins = 0;

  const login = async (): Promise<string> => {
    logins++;
    const body = (await getJson(ID, joinUrl(base, "login"), {
      headers: { authorization: `Basic ${basic}` },
      secrets: [opts.password, basic],
      http: opts,
    })) as Record<string, unknown>;
    if (!body || typeof body.token !== "string" || body.token === "") {
      throw new ProviderError(ID, "malformed", "GET /login: no token in the response");
    }
    token = { value: body.token, expiresAtMillis: now().getTime() + WATTTIME_TOKEN_LIFETIME_MILLIS - TOKEN_MARGIN_MILLIS };
    return body.token;
  };

  const authedGet = async (url: URL): Promise<unknown> => {
    const current = token && now().getTime() < token.expiresAtMillis ? token.value : await login();
    const get = (t: string) => getJson(ID, url, { headers: { authorization: `Bearer ${t}` }, secrets: [opts.password, basic, t], http: opts });
    try {
      return await get(current);
    } catch (err) {
      // A token can be revoked or expire early: log in again once, then give up with the error.
      if (err instanceof ProviderError && err.kind === "auth" && (err.message.includes("HTTP 401"))) {
        return await get(await login());
      }
      throw err;
    }
  };

  const forecastUrl = (zone: string, horizonHours: number): URL => {
    const url = joinUrl(base, "v3/forecast");
    url.searchParams.set("region", zone);
    url.searchParams.set("signal_type", "co2_moer");
    url.searchParams.set("horizon_hours", String(horizonHours));
    return url;
  };

  return {
    id: ID,
    loginCount: () => logins,
    async at(zone: string, time: Date): Promise<IntensityReading> {
      const points = parseMoerPoints(await authedGet(forecastUrl(zone, 0)), zone);
      if (points.length === 0) throw new ProviderError(ID, "no-data", `no MOER for region ${zone}`);
      const t = time.getTime();
      return points.find((p) => p.validFrom!.getTime() <= t && t < p.validUntil!.getTime()) ?? points[0];
    },
    async forecast(zone: string, hours: number): Promise<IntensityReading[]> {
      const points = parseMoerPoints(await authedGet(forecastUrl(zone, Math.max(1, Math.ceil(hours)))), zone);
      return points.map((p) => ({ ...p, isEstimated: true, note: "forecast" }));
    },
  };
}
