/**
 * Electricity Maps API v3 (https://api.electricitymap.org/v3): GET carbon-intensity/latest and
 * carbon-intensity/forecast, authenticated with the `auth-token` header. Values are gCO2eq/kWh,
 * hourly (each value valid for the hour starting at `datetime`). `isEstimated` and
 * `emissionFactorType` ("lifecycle" by default, or "direct") are carried to the reading.
 */
import { ProviderError } from "../errors.js";
import { asObject, expectShape, getJson, joinUrl, parseDate, parseIntensity, type HttpOptions } from "./http.js";
import type { IntensityProvider, IntensityReading } from "../core/contracts.js";

/** Public endpoint; POWERPRINT_ELECTRICITYMAPS_URL overrides it. */
export const ELECTRICITYMAPS_DEFAULT_URL = "https://api.electricitymap.org/v3";
const HOUR_MILLIS = 3_600_000;

/** Options of the Electricity Maps provider. The key comes from ELECTRICITYMAPS_API_KEY, never a flag. */
export interface ElectricityMapsOptions extends HttpOptions {
  apiKey: string;
  /** Base URL including /v3 (default ELECTRICITYMAPS_DEFAULT_URL). */
  baseUrl?: string;
  /** "lifecycle" (the API default) or "direct"; omitted from the request when undefined. */
  emissionFactorType?: "lifecycle" | "direct";
}

const ID = "electricitymaps";

function toReading(zone: string, value: unknown, field: string, forecast: boolean): IntensityReading {
  const point = asObject(ID, value, field);
  const validFrom = parseDate(ID, point.datetime, `${field}.datetime`);
  const reading: IntensityReading = {
    intensityGramsPerKwh: parseIntensity(ID, point.carbonIntensity, `${field}.carbonIntensity`, true),
    zone,
    source: ID,
    validFrom,
    validUntil: new Date(validFrom.getTime() + HOUR_MILLIS),
    isEstimated: forecast ? true : point.isEstimated === true,
  };
  if (typeof point.emissionFactorType === "string") reading.emissionFactorType = point.emissionFactorType;
  if (typeof point.estimationMethod === "string") reading.note = `estimated (${point.estimationMethod})`;
  if (forecast) reading.note = "forecast";
  return reading;
}

/** Creates the Electricity Maps v3 provider (id "electricitymaps"). Zones are Electricity Maps zone keys (DE, FR, US-CAL-CISO...). */
export function createElectricityMapsProvider(opts: ElectricityMapsOptions): IntensityProvider {
  const base = opts.baseUrl ?? ELECTRICITYMAPS_DEFAULT_URL;
  const headers = { "auth-token": opts.apiKey };
  const secrets = [opts.apiKey];
  const query = (path: string, zone: string): URL => {
    const url = joinUrl(base, path);
    url.searchParams.set("zone", zone);
    if (opts.emissionFactorType) url.searchParams.set("emissionFactorType", opts.emissionFactorType);
    return url;
  };
  return {
    id: ID,
    async at(zone: string): Promise<IntensityReading> {
      const body = (await getJson(ID, query("carbon-intensity/latest", zone), { headers, secrets, http: opts })) as Record<string, unknown>;
      expectShape(ID, body && typeof body === "object" && !Array.isArray(body), "body is not an object");
      if (typeof body.error === "string") throw new ProviderError(ID, "no-data", `carbon-intensity/latest: ${body.error}`);
      return toReading(zone, body, "carbonIntensity/latest", false);
    },
    async forecast(zone: string, hours: number): Promise<IntensityReading[]> {
      const body = (await getJson(ID, query("carbon-intensity/forecast", zone), { headers, secrets, http: opts })) as Record<string, unknown>;
      expectShape(ID, body && typeof body === "object" && Array.isArray(body.forecast), "carbon-intensity/forecast has no forecast[]");
      const points = (body.forecast as unknown[]).map((p, i) => toReading(zone, p, `forecast[${i}]`, true));
      points.sort((a, b) => a.validFrom!.getTime() - b.validFrom!.getTime());
      const first = points[0]?.validFrom?.getTime();
      return first === undefined ? [] : points.filter((p) => p.validFrom!.getTime() < first + hours * HOUR_MILLIS);
    },
  };
}
