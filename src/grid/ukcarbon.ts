/**
 * GB Carbon Intensity API (National Energy System Operator, https://api.carbonintensity.org.uk; no
 * key). Half-hourly gCO2/kWh. National ("GB"): the `actual` value when published, else the
 * `forecast` (marked isEstimated). Regional (only forecasts exist): zone "GB-<regionid>" (1..17,
 * e.g. GB-13 London) or "GB-<postcode outward code>" (e.g. GB-KT1). These are average (not marginal)
 * intensities of GB generation.
 */
import { ProviderError } from "../errors.js";
import { expectShape, getJson, joinUrl, parseDate, parseIntensity, type HttpOptions } from "./http.js";
import type { IntensityProvider, IntensityReading } from "../core/contracts.js";

/** Public endpoint; POWERPRINT_UK_CARBON_INTENSITY_URL overrides it. */
export const UK_CARBON_INTENSITY_DEFAULT_URL = "https://api.carbonintensity.org.uk";
const ID = "uk-carbon-intensity";

/** Options of the GB Carbon Intensity provider. */
export interface UkCarbonIntensityOptions extends HttpOptions {
  baseUrl?: string;
  /** Clock for the forecast start (default real time). */
  now?: () => Date;
}

type Area = { kind: "national" } | { kind: "regionid"; id: string } | { kind: "postcode"; code: string };

/** Parses a zone: GB / UK (national), GB-<1..17> (region id) or GB-<outward postcode>. Undefined when not a GB zone. */
export function parseGbZone(zone: string): Area | undefined {
  const z = zone.trim().toUpperCase();
  if (z === "GB" || z === "UK" || z === "GBR") return { kind: "national" };
  const m = /^(?:GB|UK)-(.+)$/.exec(z);
  if (!m) return undefined;
  if (/^\d{1,2}$/.test(m[1]) && Number(m[1]) >= 1 && Number(m[1]) <= 17) return { kind: "regionid", id: String(Number(m[1])) };
  if (/^[A-Z]{1,2}\d[A-Z\d]?$/.test(m[1])) return { kind: "postcode", code: m[1] };
  return undefined;
}

function isoMinute(d: Date): string {
  return `${d.toISOString().slice(0, 16)}Z`;
}

function periodToReading(zone: string, p: Record<string, unknown>, field: string, regional: string | undefined): IntensityReading {
  expectShape(ID, p && typeof p.intensity === "object" && p.intensity !== null, `${field}.intensity missing`);
  const intensity = p.intensity as Record<string, unknown>;
  const hasActual = typeof intensity.actual === "number";
  const r: IntensityReading = {
    intensityGramsPerKwh: parseIntensity(ID, hasActual ? intensity.actual : intensity.forecast, `${field}.intensity.${hasActual ? "actual" : "forecast"}`, true),
    zone,
    source: ID,
    validFrom: parseDate(ID, p.from, `${field}.from`),
    validUntil: parseDate(ID, p.to, `${field}.to`),
    isEstimated: !hasActual,
    emissionFactorType: "average",
  };
  const parts = [hasActual ? "actual" : "forecast", regional].filter(Boolean);
  r.note = parts.join(", ");
  return r;
}

/** Extracts the periods and region name from a national (data[]) or regional (data{} or data[{}]) body. */
function periods(body: unknown, regionalExpected: boolean): { list: Record<string, unknown>[]; region?: string } {
  expectShape(ID, body && typeof body === "object" && "data" in (body as object), "no data field");
  const data = (body as { data: unknown }).data;
  if (!regionalExpected) {
    expectShape(ID, Array.isArray(data), "data is not a list");
    return { list: data as Record<string, unknown>[] };
  }
  const region = (Array.isArray(data) ? data[0] : data) as Record<string, unknown> | undefined;
  expectShape(ID, region && Array.isArray(region.data), "regional data[] missing");
  const name = [region.shortname, region.postcode].filter((v) => typeof v === "string").join(" ");
  return { list: region.data as Record<string, unknown>[], region: name || undefined };
}

/** Creates the GB Carbon Intensity provider (id "uk-carbon-intensity"). */
export function createUkCarbonIntensityProvider(opts: UkCarbonIntensityOptions = {}): IntensityProvider {
  const base = opts.baseUrl ?? UK_CARBON_INTENSITY_DEFAULT_URL;
  const now = opts.now ?? (() => new Date());
  const area = (zone: string): Area => {
    const a = parseGbZone(zone);
    if (!a) throw new ProviderError(ID, "no-data", `zone '${zone}' is not GB, GB-<region id 1..17> or GB-<postcode>`);
    return a;
  };
  const fetchPeriods = async (zone: string, path: string, regional: boolean) => {
    const { list, region } = periods(await getJson(ID, joinUrl(base, path), { http: opts }), regional);
    const readings = list.map((p, i) => periodToReading(zone, p, `data[${i}]`, region));
    return readings.sort((a, b) => a.validFrom!.getTime() - b.validFrom!.getTime());
  };
  const suffix = (a: Area): string => (a.kind === "regionid" ? `regionid/${a.id}` : a.kind === "postcode" ? `postcode/${a.code}` : "");
  return {
    id: ID,
    async at(zone: string, time: Date): Promise<IntensityReading> {
      const a = area(zone);
      const readings = await fetchPeriods(zone, a.kind === "national" ? "intensity" : `regional/${suffix(a)}`, a.kind !== "national");
      if (readings.length === 0) throw new ProviderError(ID, "no-data", `no intensity for ${zone}`);
      const t = time.getTime();
      return readings.find((r) => r.validFrom!.getTime() <= t && t < r.validUntil!.getTime()) ?? readings[readings.length - 1];
    },
    async forecast(zone: string, hours: number): Promise<IntensityReading[]> {
      const a = area(zone);
      // The API offers fixed windows only: fw24h and fw48h.
      const window = hours <= 24 ? "fw24h" : "fw48h";
      const start = now();
      const from = isoMinute(start);
      const path = a.kind === "national" ? `intensity/${from}/${window}` : `regional/intensity/${from}/${window}/${suffix(a)}`;
      const endMillis = start.getTime() + hours * 3_600_000;
      const readings = await fetchPeriods(zone, path, a.kind !== "national");
      // Past half-hours in the window carry their actual value (isEstimated false); the rest are forecasts.
      return readings.filter((r) => r.validFrom!.getTime() < endMillis);
    },
  };
}
