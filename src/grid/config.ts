/**
 * The grid-intensity provider and resolver a validated GridConfig (src/config/grid.ts) names.
 */
import type { Logger } from "../core/contracts.js";
import type { GridConfig } from "../config/grid.js";
import { createCarbonAwareSdkProvider } from "./carbonaware.js";
import { createElectricityMapsProvider } from "./electricitymaps.js";
import type { HttpOptions } from "./http.js";
import { createIntensityResolver, type IntensityResolver } from "./resolver.js";
import { createStaticTableProvider } from "./static.js";
import type { IntensityProvider } from "../core/contracts.js";
import { createUkCarbonIntensityProvider } from "./ukcarbon.js";
import { createWattTimeProvider } from "./watttime.js";

/** Injected dependencies of the provider and resolver (tests point fetch/clock at loopback fixtures). */
export interface GridDeps extends HttpOptions {
  now?: () => Date;
  log?: Logger;
}

/** The provider a config names (undefined for the world average). */
export function createProviderFromConfig(config: GridConfig, deps: GridDeps = {}): IntensityProvider | undefined {
  const http: HttpOptions = { fetch: deps.fetch, timeoutMillis: deps.timeoutMillis };
  const c = config.credentials;
  switch (config.provider) {
    case undefined:
    case "fixed":
      return undefined;
    case "static-table":
      return createStaticTableProvider();
    case "electricitymaps":
      return createElectricityMapsProvider({ ...http, apiKey: c.electricityMapsApiKey!, baseUrl: c.electricityMapsUrl });
    case "watttime":
      return createWattTimeProvider({ ...http, username: c.wattTimeUsername!, password: c.wattTimePassword!, baseUrl: c.wattTimeUrl, now: deps.now });
    case "uk-carbon-intensity":
      return createUkCarbonIntensityProvider({ ...http, baseUrl: c.ukCarbonIntensityUrl, now: deps.now });
    case "carbon-aware-sdk":
      return createCarbonAwareSdkProvider({ ...http, baseUrl: c.carbonAwareSdkUrl!, now: deps.now });
  }
}

/** The resolver the sampler asks each interval, built from a validated config. */
export function createResolverFromConfig(config: GridConfig, deps: GridDeps = {}): IntensityResolver {
  return createIntensityResolver({
    provider: createProviderFromConfig(config, deps),
    zone: config.zone,
    fixedGramsPerKwh: config.fixedIntensityGramsPerKwh,
    now: deps.now,
    log: deps.log,
  });
}
