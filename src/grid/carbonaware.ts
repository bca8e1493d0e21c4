/**
 * Green Software Foundation Carbon Aware SDK WebAPI (self-hosted; CARBON_AWARE_SDK_URL):
 * GET /emissions/bylocation (observed `rating`, gCO2/kWh) and GET /emissions/forecasts/current
 * (`forecastData[]` of {timestamp, duration (minutes), value gCO2/kWh}). Locations are the SDK's
 * (e.g. "eastus", "northeurope"), resolved by whatever data source the SDK is configured with; the
 * emission factor type depends on that source (WattTime: marginal; Electricity Maps: average).
 */
import { ProviderError } from "../errors.js";
import { asObject, expectShape, getJson, joinUrl, parseDate, parseIntensity, type HttpOptions } from "./http.js";
import type { IntensityProvider, IntensityReading } from "../core/contracts.js";

const ID = "carbon-aware-sdk";
/** Longest validity period taken from a response (a week); longer ones are not real periods. */
const MAX_PERIOD_MILLIS = 7 * 86_400_000;

/** Options of the Carbon Aware SDK provider. */
export interface CarbonAwareSdkOptions extends HttpOptions {
  /** Base URL of the WebAPI (CARBON_AWARE_SDK_URL), e.g. http://localhost:8080. */
  baseUrl: string;
  /** Clock for the forecast window (default real time). */
  now?: () => Date;
  /** How far back bylocation looks for the latest observation (default 1 h). */
  lookbackMillis?: number;
}

/** Parses a .NET TimeSpan "hh:mm:ss" or "d.hh:mm:ss" into millis; undefined when absent or unreadable. */
export function parseTimeSpanMillis(value: unknown): number | undefined {
  if (typeof value !== "string") return undefined;
  const m = /^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.\d+)?$/.exec(value.trim());
  if (!m) return undefined;
  return (((Number(m[1] ?? 0) * 24 + Number(m[2])) * 60 + Number(m[3])) * 60 + Number(m[4])) * 1000;
}

/** Creates the Carbon Aware SDK WebAPI provider (id "carbon-aware-sdk"). */
export function createCarbonAwareSdkProvider(opts: CarbonAwareSdkOptions): IntensityProvider {
  const now = opts.now ?? (() => new Date());
  const lookbackMillis = opts.lookbackMillis ?? 3_600_000;
  return {
    id: ID,
    async at(zone: string, time: Date): Promise<IntensityReading> {
      const url = joinUrl(opts.baseUrl, "emissions/bylocation");
      url.searchParams.set("location", zone);
      url.searchParams.set("time", new Date(time.getTime() - lookbackMillis).toISOString());
      url.searchParams.set("toTime", time.toISOString());
      const body = await getJson(ID, url, { http: opts });
      expectShape(ID, Array.isArray(body), "emissions/bylocation is not a list");
      const points = (body as unknown[]).map((raw, i) => {
        const p = asObject(ID, raw, `[${i}]`);
        const validFrom = parseDate(ID, p.time, `[${i}].time`);
        const durationMillis = parseTimeSpanMillis(p.duration);
        const r: IntensityReading = {
          intensityGramsPerKwh: parseIntensity(ID, p.rating, `[${i}].rating`, true),
          zone,
          source: ID,
          validFrom,
        };
        // A validity over a week is not a real observation period: keep the value uncached-by-period.
        if (durationMillis && durationMillis <= MAX_PERIOD_MILLIS) r.validUntil = new Date(validFrom.getTime() + durationMillis);
        return r;
      });
      const t = time.getTime();
      const past = points.filter((p) => p.validFrom!.getTime() <= t).sort((a, b) => b.validFrom!.getTime() - a.validFrom!.getTime());
      const latest = past[0] ?? points[0];
      if (!latest) throw new ProviderError(ID, "no-data", `no emissions data for location ${zone}`);
      return latest;
    },
    async forecast(zone: string, hours: number): Promise<IntensityReading[]> {
      const start = now();
      const url = joinUrl(opts.baseUrl, "emissions/forecasts/current");
      url.searchParams.set("location", zone);
      url.searchParams.set("dataStartAt", start.toISOString());
      url.searchParams.set("dataEndAt", new Date(start.getTime() + hours * 3_600_000).toISOString());
      const body = await getJson(ID, url, { http: opts });
      expectShape(ID, Array.isArray(body) && body.length > 0, "emissions/forecasts/current is not a non-empty list");
      const first = asObject(ID, (body as unknown[])[0], "[0]");
      expectShape(ID, Array.isArray(first.forecastData), "forecastData[] missing");
      const readings = (first.forecastData as unknown[]).map((raw, i): IntensityReading => {
        const p = asObject(ID, raw, `forecastData[${i}]`);
        const validFrom = parseDate(ID, p.timestamp, `forecastData[${i}].timestamp`);
        // A duration that is not a positive finite number of minutes means the SDK default, 5 min.
        const durationMinutes =
          typeof p.duration === "number" && Number.isFinite(p.duration) && p.duration > 0 && p.duration * 60_000 <= MAX_PERIOD_MILLIS ? p.duration : 5;
        return {
          intensityGramsPerKwh: parseIntensity(ID, p.value, `forecastData[${i}].value`, true),
          zone,
          source: ID,
          validFrom,
          validUntil: new Date(validFrom.getTime() + durationMinutes * 60_000),
          isEstimated: true,
          note: "forecast",
        };
      });
      return readings.sort((a, b) => a.validFrom!.getTime() - b.validFrom!.getTime());
    },
  };
}
