/**
 * What the tick asks for grid intensity, and what the report says about it: the scenario's series
 * when it has one, else the resolver of the grid config; a live provider is asked in the
 * background (CachedIntensity) when the command runs in real time (`run`, `agent`): the network is
 * kept out of the tick.
 */
import type { Logger, IntensityReading } from "../core/contracts.js";
import { CachedIntensity } from "../core/intensity-cache.js";
import type { IntensityAt } from "../core/sampler.js";
import type { GridConfig } from "../config/grid.js";
import { createResolverFromConfig } from "../grid/config.js";
import type { IntensityResolver } from "../grid/resolver.js";
import { isKnownZone, staticReading, worldAverage } from "../grid/static.js";
import type { Scenario } from "../sim/scenario.js";

/** A background intensity refresh gives up after this long, ms (the tick never waits for it). */
const INTENSITY_DEADLINE_MILLIS = 5_000;
/** A live intensity is asked again after this long, ms (the resolver caches by validity too). */
const INTENSITY_REFRESH_MILLIS = 60_000;

/** The report's fields on intensity. */
export interface IntensityReport {
  intensityDescription: string;
  intensityZone: string;
  intensitySource: "scenario" | "none";
  fallbacks: Record<string, number>;
}

/** The intensity side of a pipeline. */
export interface IntensityParts {
  /** What the tick asks (answers from memory when `background`). */
  readonly intensity: IntensityAt;
  readonly resolver: IntensityResolver;
  /** Starts the first background refresh (run: at the spawn; agent: before its first tick). */
  prefetch(): void;
  /** Stops background refreshes. */
  stop(): void;
  /** The report's fields: where intensity came from, and the fallbacks counted so far. */
  report(): IntensityReport;
}

/** The intensity while a live provider has not answered yet: the static table for the zone, else the world average (labelled). */
function offlineIntensity(zone: string | undefined): IntensityReading {
  const note = "the live provider had not answered yet";
  if (zone && isKnownZone(zone)) return { ...staticReading(zone), fallback: "static-table", note };
  return { ...worldAverage(), ...(zone ? { zone } : {}), note };
}

/**
 * Builds the intensity side. `scenarioSeries`: the scenario's grid series (wins over the grid
 * config); `background`: ask a live provider outside the tick.
 */
export function intensityParts(
  grid: GridConfig,
  o: { log: Logger; scenario?: Pick<Scenario, "grid">; scenarioSeries?: IntensityAt; background?: boolean; nowMillis?: () => number },
): IntensityParts {
  const resolver = createResolverFromConfig(grid, { log: o.log });
  const live = resolver.provider !== undefined && !["static-table", "fixed"].includes(resolver.provider.id);
  const cache =
    !o.scenarioSeries && live && o.background
      ? new CachedIntensity({ source: resolver, initial: offlineIntensity(grid.zone), deadlineMillis: INTENSITY_DEADLINE_MILLIS, refreshMillis: INTENSITY_REFRESH_MILLIS, nowMillis: o.nowMillis ?? (() => Date.now()), log: o.log })
      : undefined;
  const intensity = o.scenarioSeries ?? cache ?? resolver;
  return {
    intensity,
    resolver,
    prefetch: () => cache?.prefetch(),
    stop: () => cache?.stop(),
    report() {
      // The zone of the figures used: the series' own, else the grid config's (a scenario's zone
      // without a series is in it already, unless a flag chose another).
      if (o.scenarioSeries) {
        const zone = o.scenario?.grid?.zone;
        return { intensityDescription: `scenario series (zone ${zone ?? "scenario"})`, intensityZone: zone ?? grid.zone ?? "none", intensitySource: "scenario", fallbacks: {} };
      }
      const fallbacks: Record<string, number> = { ...resolver.fallbackCounts() };
      const initial = cache?.counts.initial ?? 0;
      if (initial > 0) {
        const kind = offlineIntensity(grid.zone).fallback ?? "world-average";
        fallbacks[kind] = (fallbacks[kind] ?? 0) + initial;
      }
      return { intensityDescription: resolver.describe(), intensityZone: grid.zone ?? "none", intensitySource: "none", fallbacks };
    },
  };
}
