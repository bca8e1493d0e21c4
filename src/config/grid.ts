/**
 * Grid, water and cost flags of `run` / `simulate` / `agent` / `bench-serving` (the intensity ones
 * also of `grid`): their declaration, and their validation into a GridConfig (UsageError naming
 * the flag). `run`'s carbon-aware start is src/config/start.ts. src/grid/config.ts builds the
 * provider and resolver from it. Provider credentials come only from the environment and are never
 * printed: the credentials object redacts itself in JSON and util.inspect.
 */
import { inspect } from "node:util";
import type { Command } from "commander";
import { UsageError } from "../errors.js";
import { waterIntensityDefaultFor, wueDefault } from "../core/footprint.js";
import { ELECTRICITYMAPS_DEFAULT_URL } from "../grid/electricitymaps.js";
import { isKnownZone } from "../grid/static.js";
import { UK_CARBON_INTENSITY_DEFAULT_URL } from "../grid/ukcarbon.js";
import { WATTTIME_DEFAULT_URL } from "../grid/watttime.js";
import { readEnvironment, type EnvSource } from "./env.js";
import { parseNonNegative } from "./values.js";

/** Provider ids accepted by --intensity-provider. */
export const PROVIDER_NAMES = ["electricitymaps", "watttime", "uk-carbon-intensity", "carbon-aware-sdk", "static-table", "fixed"] as const;
export type ProviderName = (typeof PROVIDER_NAMES)[number];
export const LIVE_PROVIDERS: readonly ProviderName[] = ["electricitymaps", "watttime", "uk-carbon-intensity", "carbon-aware-sdk"];

// A Map, not an object: `--intensity-provider constructor` must not find Object.prototype's.
const PROVIDER_ALIASES = new Map<string, ProviderName>(Object.entries({
  "electricity-maps": "electricitymaps",
  electricitymap: "electricitymaps",
  em: "electricitymaps",
  wt: "watttime",
  uk: "uk-carbon-intensity",
  gb: "uk-carbon-intensity",
  carbonintensity: "uk-carbon-intensity",
  "carbon-intensity-uk": "uk-carbon-intensity",
  casdk: "carbon-aware-sdk",
  "carbon-aware": "carbon-aware-sdk",
  static: "static-table",
  table: "static-table",
} satisfies Record<string, ProviderName>));

/** Environment variables of the providers (read by src/config/env.ts; secrets never come from flags). */
export const GRID_ENV = {
  electricityMapsKey: "ELECTRICITYMAPS_API_KEY",
  electricityMapsUrl: "POWERPRINT_ELECTRICITYMAPS_URL",
  wattTimeUsername: "WATTTIME_USERNAME",
  wattTimePassword: "WATTTIME_PASSWORD",
  wattTimeUrl: "POWERPRINT_WATTTIME_URL",
  ukUrl: "POWERPRINT_UK_CARBON_INTENSITY_URL",
  carbonAwareSdkUrl: "CARBON_AWARE_SDK_URL",
} as const;

/** Provider credentials and endpoints from the environment. Redacted when stringified or inspected. */
export interface GridCredentials {
  electricityMapsApiKey?: string;
  electricityMapsUrl: string;
  wattTimeUsername?: string;
  wattTimePassword?: string;
  wattTimeUrl: string;
  ukCarbonIntensityUrl: string;
  carbonAwareSdkUrl?: string;
}

/** The grid, water and cost flags as commander parses them (declareGridFlags). */
export interface GridFlags {
  zone?: unknown;
  intensity?: unknown;
  intensityProvider?: unknown;
  wue?: unknown;
  waterIntensity?: unknown;
  pricePerKwh?: unknown;
  currency?: unknown;
}

/** Validated grid/water/cost configuration. */
export interface GridConfig {
  /** Zone as given (ISO code for the static table; provider zone for live providers). */
  zone?: string;
  /** The provider that will be asked; undefined means the world average (no zone, no --intensity). */
  provider?: ProviderName;
  /** --intensity, gCO2e/kWh. */
  fixedIntensityGramsPerKwh?: number;
  credentials: GridCredentials;
  /** On-site WUE, L per IT kWh, and where the value came from ("--wue" or the default's source). */
  wueLitersPerKwh: number;
  wueSource: string;
  /** Off-site water intensity of electricity, L per facility kWh, and its origin. */
  waterIntensityLitersPerKwh: number;
  waterIntensitySource: string;
  /** Energy price per facility kWh (--price-per-kwh), and its ISO 4217 currency. */
  pricePerKwh?: number;
  currency?: string;
}

/** Registers where intensity comes from: --zone, --intensity, --intensity-provider (every command that prices energy, and `grid`). */
export function declareIntensityFlags(cmd: Command): Command {
  return cmd
    .option("--zone <zone>", "grid zone: ISO 3166 country code (DE, FR, US...) or the provider's zone (US-CAL-CISO, CAISO_NORTH, GB-13...)")
    .option("--intensity <gPerKwh>", "fixed grid carbon intensity, gCO2e/kWh (overrides any provider)")
    .option(
      "--intensity-provider <name>",
      `where intensity comes from: ${PROVIDER_NAMES.join(", ")} (credentials from the environment: ${GRID_ENV.electricityMapsKey}, ${GRID_ENV.wattTimeUsername}/${GRID_ENV.wattTimePassword}, ${GRID_ENV.carbonAwareSdkUrl})`,
    );
}

/** Registers the grid, water and cost flags on a command (the intensity flags, then water and cost). */
export function declareGridFlags(cmd: Command): Command {
  return declareIntensityFlags(cmd)
    .option("--wue <LPerKwh>", "on-site water usage effectiveness, litres per IT kWh (default: Li et al. 2023 U.S. average)")
    .option("--water-intensity <LPerKwh>", "off-site water intensity of electricity, litres per kWh (default: Li et al. 2023 U.S. average)")
    .option("--price-per-kwh <amount>", "electricity price per facility kWh, for the cost figure")
    .option("--currency <code>", "ISO 4217 currency of --price-per-kwh (default USD)");
}

function redactingCredentials(c: GridCredentials): GridCredentials {
  const describe = () => ({
    electricityMapsApiKey: c.electricityMapsApiKey ? "[set]" : undefined,
    wattTimeUsername: c.wattTimeUsername ? "[set]" : undefined,
    wattTimePassword: c.wattTimePassword ? "[set]" : undefined,
    electricityMapsUrl: c.electricityMapsUrl,
    wattTimeUrl: c.wattTimeUrl,
    ukCarbonIntensityUrl: c.ukCarbonIntensityUrl,
    carbonAwareSdkUrl: c.carbonAwareSdkUrl,
  });
  Object.defineProperty(c, "toJSON", { value: describe, enumerable: false });
  Object.defineProperty(c, inspect.custom, { value: () => describe(), enumerable: false });
  return c;
}

/**
 * Validates the parsed flags (commander's opts()) and the environment into a GridConfig.
 * Throws UsageError naming the flag: bad numbers, an unknown provider or zone, a live provider
 * without its credentials.
 */
export function gridConfig(opts: GridFlags, source: EnvSource): GridConfig {
  const env = readEnvironment(source);
  let zone = typeof opts.zone === "string" && opts.zone.trim() !== "" ? opts.zone.trim() : undefined;
  const fixed = parseNonNegative(opts.intensity, "--intensity");
  const wue = parseNonNegative(opts.wue, "--wue");
  const waterIntensity = parseNonNegative(opts.waterIntensity, "--water-intensity");
  const price = parseNonNegative(opts.pricePerKwh, "--price-per-kwh");

  let provider: ProviderName | undefined;
  if (opts.intensityProvider !== undefined) {
    const raw = String(opts.intensityProvider).trim().toLowerCase();
    provider = (PROVIDER_NAMES as readonly string[]).includes(raw) ? (raw as ProviderName) : PROVIDER_ALIASES.get(raw);
    if (!provider) throw new UsageError("--intensity-provider", `unknown provider '${String(opts.intensityProvider)}': use one of ${PROVIDER_NAMES.join(", ")}`);
  }
  if (fixed !== undefined && provider !== undefined && provider !== "fixed") {
    throw new UsageError("--intensity", `a fixed value and --intensity-provider ${provider} exclude each other: give one`);
  }
  if (provider === "fixed" && fixed === undefined) throw new UsageError("--intensity-provider", "fixed needs --intensity <gPerKwh>");
  if (fixed !== undefined) provider = "fixed";
  else if (!provider && zone) provider = "static-table";

  if (provider === "static-table") {
    if (!zone) throw new UsageError("--zone", "the static table needs a --zone (ISO 3166 country code such as DE, FR, US)");
    if (!isKnownZone(zone)) {
      throw new UsageError("--zone", `unknown zone '${zone}': use an ISO 3166 country code such as DE, FR, US (see data/grid_intensity.csv)`);
    }
    // The table takes any case; the summary, report and metrics show the code as ISO writes it.
    zone = zone.toUpperCase();
  }

  const credentials = redactingCredentials({
    electricityMapsApiKey: env.ELECTRICITYMAPS_API_KEY,
    electricityMapsUrl: env.POWERPRINT_ELECTRICITYMAPS_URL ?? ELECTRICITYMAPS_DEFAULT_URL,
    wattTimeUsername: env.WATTTIME_USERNAME,
    wattTimePassword: env.WATTTIME_PASSWORD,
    wattTimeUrl: env.POWERPRINT_WATTTIME_URL ?? WATTTIME_DEFAULT_URL,
    ukCarbonIntensityUrl: env.POWERPRINT_UK_CARBON_INTENSITY_URL ?? UK_CARBON_INTENSITY_DEFAULT_URL,
    carbonAwareSdkUrl: env.CARBON_AWARE_SDK_URL,
  });
  if (provider && LIVE_PROVIDERS.includes(provider)) {
    if (!zone) throw new UsageError("--zone", `--intensity-provider ${provider} needs a --zone (the provider's zone or region)`);
    if (provider === "electricitymaps" && !credentials.electricityMapsApiKey) {
      throw new UsageError("--intensity-provider", `electricitymaps needs ${GRID_ENV.electricityMapsKey} in the environment (never on the command line)`);
    }
    if (provider === "watttime" && (!credentials.wattTimeUsername || !credentials.wattTimePassword)) {
      throw new UsageError("--intensity-provider", `watttime needs ${GRID_ENV.wattTimeUsername} and ${GRID_ENV.wattTimePassword} in the environment (never on the command line)`);
    }
    if (provider === "carbon-aware-sdk" && !credentials.carbonAwareSdkUrl) {
      throw new UsageError("--intensity-provider", `carbon-aware-sdk needs ${GRID_ENV.carbonAwareSdkUrl} (the WebAPI's base URL) in the environment`);
    }
  }

  let currency: string | undefined;
  if (opts.currency !== undefined) {
    currency = String(opts.currency).trim().toUpperCase();
    if (!/^[A-Z]{3}$/.test(currency)) throw new UsageError("--currency", `must be an ISO 4217 code such as EUR, USD, GBP, got '${String(opts.currency)}'`);
    if (price === undefined) throw new UsageError("--currency", "needs --price-per-kwh");
  } else if (price !== undefined) currency = "USD";

  const wueDef = wueDefault();
  const waterDef = waterIntensityDefaultFor(zone);
  return {
    zone,
    provider,
    fixedIntensityGramsPerKwh: fixed,
    credentials,
    wueLitersPerKwh: wue ?? wueDef.litersPerKwh,
    wueSource: wue !== undefined ? "--wue" : `default: ${wueDef.source}`,
    waterIntensityLitersPerKwh: waterIntensity ?? waterDef.litersPerKwh,
    waterIntensitySource: waterIntensity !== undefined ? "--water-intensity" : `default: ${waterDef.source}`,
    pricePerKwh: price,
    currency,
  };
}

/**
 * The grid flags for a scenario: a scenario with `grid.zone` but no `grid.intensity` series means
 * that zone's static annual intensity, unless --zone, --intensity or a provider says otherwise.
 * Throws UsageError naming `grid.zone` for a zone the static table does not know.
 */
export function withScenarioZone(opts: GridFlags, scenario: { grid?: { zone?: string; intensity?: unknown } }, origin: string): GridFlags {
  const zone = scenario.grid?.zone;
  if (!zone || scenario.grid?.intensity || opts.zone !== undefined || opts.intensity !== undefined || opts.intensityProvider !== undefined) return opts;
  if (!isKnownZone(zone)) {
    throw new UsageError(`${origin}: grid.zone`, `unknown zone '${zone}' and no grid.intensity series: use an ISO 3166 country code (DE, FR, US...) or give grid.intensity`);
  }
  return { ...opts, zone };
}
