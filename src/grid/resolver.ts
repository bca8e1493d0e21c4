/**
 * The intensity resolver: what the sampler asks, every interval, for the grid intensity valid at a
 * time. It wraps one IntensityProvider with a cache and the fallback chain of issue 5:
 *
 *   live value → last good value (fallback "stale", with its age) → static table (fallback
 *   "static-table") → world average (fallback "world-average").
 *
 * Caching: a live value is kept until its validUntil (at least `minValidityMillis` after it was
 * fetched), so a provider is asked at most once per validity period per zone, whatever the tick
 * rate. After a failure the provider is not asked again before `retryAfterMillis` (or the
 * server's Retry-After); after an auth failure (wrong key, 401/403) it is not asked again at all.
 * Every fallback is counted (fallbackCounts) and every provider failure kind is warned once.
 */
import type { Logger } from "../core/contracts.js";
import { ProviderError, UsageError, errorMessage } from "../errors.js";
import { PROVIDER_ERROR_REASONS, plausibleIntensity } from "./http.js";
import { isKnownZone, staticReading, worldAverage } from "./static.js";
import type { IntensityProvider, IntensityReading } from "../core/contracts.js";
import { formatPlain, millisToSeconds } from "../units.js";

/** What the sampler calls each interval. */
export interface IntensityResolver {
  /** The intensity valid at `time`; never throws (falls back instead, and says so in the reading). */
  at(time: Date): Promise<IntensityReading>;
  /** One line for the summary: provider, zone and the fallback chain. */
  describe(): string;
  /**
   * How many readings were fallbacks, keyed by kind and, when a provider failed, its reason:
   * "stale (timeout)", "static-table (response too large)", "world-average (implausible value)";
   * plain "world-average" when no zone was given at all.
   */
  fallbackCounts(): Record<string, number>;
  /** Provider failures by kind ("auth", "rate-limit", "http", "timeout", "malformed", "network", "no-data"). */
  errorCounts(): Record<string, number>;
  /** The provider behind the resolver (for forecasts), if any. */
  readonly provider?: IntensityProvider;
  /** The zone asked, if any. */
  readonly zone?: string;
}

/** Options of createIntensityResolver. */
export interface IntensityResolverOptions {
  /** A live or static provider. Without one: the static table for `zone`, else the world average. */
  provider?: IntensityProvider;
  /** Zone passed to the provider (ISO code for the static table, provider zone for live ones). */
  zone?: string;
  /** A fixed intensity (gCO2e/kWh, --intensity); wins over provider and zone. */
  fixedGramsPerKwh?: number;
  /** Wall clock for back-off after failures (default: real time). */
  now?: () => Date;
  /** Where warnings go (each failure kind is warned once). */
  log?: Logger;
  /** Floor on how long a live value is cached when its validity has already ended or is unknown (default 5 min). */
  minValidityMillis?: number;
  /** Wait before asking a failing provider again when it gives no Retry-After (default 60 s). */
  retryAfterMillis?: number;
  /** A last good value fetched longer ago than this is not used; the static table is (default 6 h). */
  maxStaleMillis?: number;
  /** Path of the static table (tests); default data/grid_intensity.csv. */
  staticTablePath?: string;
  /**
   * The caller asks once and exits (`powerprint grid`): a failure is warned without the
   * "retrying in N s" a run's resolver says (there is no retry to make).
   */
  oneShot?: boolean;
}

const NO_LOG: Logger = { info() {}, warn() {}, warnOnce() {}, debug() {} };

interface CacheEntry {
  reading: IntensityReading;
  /** When the reading was fetched, in the resolver's time (the `time` argument). */
  fetchedAtMillis: number;
  /** The reading is served from cache until this time. */
  expiresAtMillis: number;
}

/**
 * Builds the resolver for one run. Throws UsageError at once for a static-table zone that the table
 * does not know (a typo must not silently become the world average).
 */
export function createIntensityResolver(opts: IntensityResolverOptions): IntensityResolver {
  const log = opts.log ?? NO_LOG;
  const now = opts.now ?? (() => new Date());
  const minValidityMillis = opts.minValidityMillis ?? 5 * 60_000;
  const retryAfterMillisDefault = opts.retryAfterMillis ?? 60_000;
  const maxStaleMillis = opts.maxStaleMillis ?? 6 * 3_600_000;
  const zone = opts.zone?.trim() || undefined;
  // Keyed by provider text (zones, kinds): prototype-free so no key can meet Object.prototype.
  const fallbacks: Record<string, number> = Object.create(null);
  const errors: Record<string, number> = Object.create(null);
  const count = (bucket: Record<string, number>, key: string): void => {
    bucket[key] = (bucket[key] ?? 0) + 1;
  };

  // 1. A fixed value.
  if (opts.fixedGramsPerKwh !== undefined) {
    const value = opts.fixedGramsPerKwh;
    if (!Number.isFinite(value) || value < 0) {
      throw new UsageError("--intensity", `must be a number >= 0, got '${value}'`);
    }
    const reading: IntensityReading = {
      intensityGramsPerKwh: value,
      zone: zone ?? "fixed",
      source: "fixed",
      note: "fixed value given with --intensity",
    };
    return {
      zone,
      async at() {
        return { ...reading };
      },
      describe: () => `fixed ${value} gCO2e/kWh (--intensity)`,
      fallbackCounts: () => Object.assign(Object.create(null) as Record<string, number>, fallbacks),
      errorCounts: () => Object.assign(Object.create(null) as Record<string, number>, errors),
    };
  }

  const provider = opts.provider;
  const isStatic = !provider || provider.id === "static-table";

  // 2. No zone, no live provider: the world average, counted as a fallback every time it is used.
  if (!zone && isStatic) {
    const reading = worldAverage(opts.staticTablePath);
    return {
      async at() {
        count(fallbacks, "world-average");
        return { ...reading };
      },
      describe: () =>
        `world average ${formatPlain(reading.intensityGramsPerKwh)} gCO2e/kWh (${reading.year}, Our World in Data / Ember): no --zone or --intensity given`,
      fallbackCounts: () => Object.assign(Object.create(null) as Record<string, number>, fallbacks),
      errorCounts: () => Object.assign(Object.create(null) as Record<string, number>, errors),
    };
  }

  // 3. The static table for a zone.
  if (isStatic) {
    const reading = staticReading(zone!, opts.staticTablePath); // throws UsageError for an unknown zone
    return {
      zone,
      provider,
      async at() {
        return { ...reading };
      },
      describe: () =>
        `static table ${zone}: ${formatPlain(reading.intensityGramsPerKwh)} gCO2e/kWh (annual ${reading.year}, Our World in Data / Ember)`,
      fallbackCounts: () => Object.assign(Object.create(null) as Record<string, number>, fallbacks),
      errorCounts: () => Object.assign(Object.create(null) as Record<string, number>, errors),
    };
  }

  // 4. A live provider with the fallback chain.
  if (!zone) throw new UsageError("--zone", `--intensity-provider ${provider!.id} needs a --zone`);
  const live = provider!;
  const staticFallback = isKnownZone(zone, opts.staticTablePath) ? staticReading(zone, opts.staticTablePath) : undefined;
  let cache: CacheEntry | undefined;
  let lastGood: CacheEntry | undefined;
  let blockedUntilMillis = 0;
  let disabledReason: string | undefined;
  let inFlight: Promise<IntensityReading> | undefined;
  /** Why the provider's last answer was not used (PROVIDER_ERROR_REASONS), for the fallback counts. */
  let lastReason = "unavailable";

  const fallBack = (timeMillis: number): IntensityReading => {
    const key = (kind: string) => `${kind} (${lastReason})`;
    if (lastGood) {
      // Age since the value was last fetched good: how long the provider has been failing us.
      const ageMillis = Math.max(0, timeMillis - lastGood.fetchedAtMillis);
      if (ageMillis <= maxStaleMillis) {
        count(fallbacks, key("stale"));
        return {
          ...lastGood.reading,
          fallback: "stale",
          staleAgeSeconds: Math.round(millisToSeconds(ageMillis)),
        };
      }
    }
    if (staticFallback) {
      count(fallbacks, key("static-table"));
      return { ...staticFallback, fallback: "static-table" };
    }
    count(fallbacks, key("world-average"));
    return { ...worldAverage(opts.staticTablePath), zone, note: `world average used for zone ${zone}: ${live.id} unavailable and the static table has no such zone` };
  };

  const fetchLive = async (time: Date): Promise<IntensityReading> => {
    const timeMillis = time.getTime();
    try {
      const reading = await live.at(zone, time);
      // Every provider checks its own fields; this holds for any provider plugged in.
      plausibleIntensity(live.id, reading.intensityGramsPerKwh, "intensity");
      const validUntilMillis = reading.validUntil?.getTime() ?? 0;
      const entry: CacheEntry = {
        reading,
        fetchedAtMillis: timeMillis,
        expiresAtMillis: Math.max(validUntilMillis, timeMillis + minValidityMillis),
      };
      cache = entry;
      lastGood = entry;
      return { ...reading };
    } catch (err) {
      const kind = err instanceof ProviderError ? err.kind : "network";
      count(errors, kind);
      lastReason = PROVIDER_ERROR_REASONS[kind] ?? kind;
      const wallMillis = now().getTime();
      if (kind === "auth") {
        disabledReason = errorMessage(err);
        log.warnOnce(
          `grid:${live.id}:auth`,
          opts.oneShot
            ? `grid intensity: ${errorMessage(err)}; check its credentials in the environment; using the fallback below`
            : `grid intensity: ${errorMessage(err)}; not asking ${live.id} again this run (check its credentials in the environment); using fallbacks`,
        );
      } else {
        const waitMillis =
          err instanceof ProviderError && err.retryAfterMillis !== undefined ? err.retryAfterMillis : retryAfterMillisDefault;
        blockedUntilMillis = wallMillis + waitMillis;
        log.warnOnce(
          `grid:${live.id}:${kind}`,
          opts.oneShot
            ? `grid intensity: ${errorMessage(err)}; using the fallback below`
            : `grid intensity: ${errorMessage(err)}; retrying in ${Math.round(millisToSeconds(waitMillis))} s, using fallbacks meanwhile (counted in the summary)`,
        );
      }
      return fallBack(timeMillis);
    }
  };

  return {
    zone,
    provider: live,
    async at(time: Date): Promise<IntensityReading> {
      const timeMillis = time.getTime();
      if (cache && timeMillis < cache.expiresAtMillis && timeMillis >= cache.fetchedAtMillis - minValidityMillis) {
        return { ...cache.reading };
      }
      if (disabledReason !== undefined || now().getTime() < blockedUntilMillis) return fallBack(timeMillis);
      // Ticks that arrive while a request is out share it rather than stacking requests.
      if (!inFlight) {
        inFlight = fetchLive(time).finally(() => {
          inFlight = undefined;
        });
        return inFlight;
      }
      const shared = await inFlight;
      if (shared.fallback) count(fallbacks, `${shared.fallback} (${lastReason})`);
      return { ...shared };
    },
    describe: () => {
      const chain = [
        "last good value (stale)",
        staticFallback
          ? `static table ${zone} ${formatPlain(staticFallback.intensityGramsPerKwh)} gCO2e/kWh (${staticFallback.year})`
          : undefined,
        "world average",
      ].filter(Boolean);
      return `${live.id} zone ${zone} (fallbacks: ${chain.join(" → ")})`;
    },
    fallbackCounts: () => Object.assign(Object.create(null) as Record<string, number>, fallbacks),
    errorCounts: () => Object.assign(Object.create(null) as Record<string, number>, errors),
  };
}
