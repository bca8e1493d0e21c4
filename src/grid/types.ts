/** Grid carbon intensity: the IntensityProvider seam. */

/** One intensity figure, always with where it came from and how fresh it is. */
export interface IntensityReading {
  /** Grams CO2e per kWh of electricity consumed. */
  intensityGramsPerKwh: number;
  /** Zone as asked (ISO country code, provider zone or region). */
  zone: string;
  /** Provider id: "electricitymaps", "watttime", "uk-carbon-intensity", "carbon-aware-sdk", "static-table", "fixed", "world-average", "scenario". */
  source: string;
  /** Start of the period this value is valid for. */
  validFrom?: Date;
  /** End of the validity period; the cache keeps the value until then. */
  validUntil?: Date;
  /** Provider says the value is estimated (Electricity Maps isEstimated), or a forecast rather than an actual. */
  isEstimated?: boolean;
  /** "lifecycle" | "direct" (Electricity Maps), "marginal" (WattTime MOER), "average". */
  emissionFactorType?: string;
  /** Set when this is not a fresh live value: "stale" (last good value), "static-table", "world-average". */
  fallback?: "stale" | "static-table" | "world-average";
  /** For a stale value: its age in seconds at the time it was used. */
  staleAgeSeconds?: number;
  /** Year of an annual table value. */
  year?: number;
  /** Free-text caveat shown in the summary (e.g. "country-level annual average used for sub-zone US-CAL-CISO"). */
  note?: string;
}

/** A source of grid intensity, live or static. */
export interface IntensityProvider {
  readonly id: string;
  /** Intensity valid at `time` in `zone`. Throws ProviderError on failure (the fallback chain catches it). */
  at(zone: string, time: Date): Promise<IntensityReading>;
  /** Forecast for the next `hours` hours, sorted by validFrom. */
  forecast?(zone: string, hours: number): Promise<IntensityReading[]>;
}
