/**
 * `powerprint grid [--zone Z] [--forecast] [--intensity-provider P]`: prints the current grid
 * intensity (with its source and any fallback) and, with --forecast, the provider's forecast.
 */
import { Command } from "commander";
import type { Logger } from "../core/contracts.js";
import { errorMessage } from "../errors.js";
import { createProviderFromConfig } from "../grid/config.js";
import { declareGridCommandFlags, gridCommandConfig, type GridCommandFlags } from "../config/grid-command.js";
import { createIntensityResolver } from "../grid/resolver.js";
import type { IntensityReading } from "../core/contracts.js";
import { formatPlain } from "../units.js";
import { addCommand, type CommandSpec } from "./command.js";

/** Injected I/O for tests; defaults are the process's. */
export interface GridCommandDeps {
  env?: NodeJS.ProcessEnv;
  fetch?: typeof fetch;
  now?: () => Date;
  /** Where the table goes (default process.stdout). */
  write?: (text: string) => void;
  log?: Logger;
}

const stderrLog: Logger = {
  info: (m) => process.stderr.write(`powerprint: ${m}\n`),
  warn: (m) => process.stderr.write(`powerprint: warning: ${m}\n`),
  warnOnce: (() => {
    const seen = new Set<string>();
    return (key: string, m: string) => {
      if (seen.has(key)) return;
      seen.add(key);
      process.stderr.write(`powerprint: warning: ${m}\n`);
    };
  })(),
  debug: () => {},
};

/** An intensity for people: 3 significant digits, as every figure powerprint prints ("344 gCO2e/kWh"). */
const gramsPerKwh = (v: number): string => `${formatPlain(v)} gCO2e/kWh`;

/** One line describing a reading: value, source, zone, validity, flags. */
export function formatReading(r: IntensityReading): string {
  const parts = [gramsPerKwh(r.intensityGramsPerKwh), `zone ${r.zone}`, `source ${r.source}`];
  if (r.validFrom) parts.push(`from ${r.validFrom.toISOString()}`);
  if (r.validUntil) parts.push(`until ${r.validUntil.toISOString()}`);
  if (r.year !== undefined) parts.push(`year ${r.year}`);
  if (r.emissionFactorType) parts.push(r.emissionFactorType);
  if (r.isEstimated) parts.push("estimated");
  if (r.fallback) parts.push(`FALLBACK ${r.fallback}${r.staleAgeSeconds !== undefined ? ` (age ${r.staleAgeSeconds} s)` : ""}`);
  return parts.join(", ") + (r.note ? ` (${r.note})` : "");
}

/** Registers the `grid` command on the program. */
export function registerGridCommand(program: Command, deps: GridCommandDeps = {}): void {
  const spec = {
    name: "grid",
    description: "print the current grid carbon intensity and, with --forecast, the forecast",
    helpAfter: `
Examples:
  $ powerprint grid --zone DE
  $ powerprint grid --intensity-provider fixed --intensity 250
  $ powerprint grid --zone GB --intensity-provider uk-carbon-intensity --forecast --hours 12
  $ ELECTRICITYMAPS_API_KEY=... powerprint grid --intensity-provider electricitymaps --zone FR --json`,
  } satisfies CommandSpec;
  addCommand(program, spec, declareGridCommandFlags).action(async (flags: GridCommandFlags) => {
    const write = deps.write ?? ((t: string) => void process.stdout.write(t));
    const log = deps.log ?? stderrLog;
    const { grid: config, forecastHours, json } = gridCommandConfig(flags, deps.env ?? process.env);
    const gridDeps = { fetch: deps.fetch, now: deps.now, log };
    // Asked once: a failure is said without the retry a run would make (the command exits now).
    const resolver = createIntensityResolver({ provider: createProviderFromConfig(config, gridDeps), zone: config.zone, fixedGramsPerKwh: config.fixedIntensityGramsPerKwh, now: deps.now, log, oneShot: true });
    const now = (deps.now ?? (() => new Date()))();
    const current = await resolver.at(now);
    let forecast: IntensityReading[] | undefined;
    let forecastError: string | undefined;
    if (forecastHours !== undefined) {
      const provider = createProviderFromConfig(config, gridDeps);
      if (!provider?.forecast) forecastError = `no forecast: ${provider?.id ?? (config.provider === "fixed" ? "a fixed --intensity" : "the world average")} has none (use a live --intensity-provider)`;
      else {
        try {
          forecast = await provider.forecast(config.zone!, forecastHours);
        } catch (err) {
          forecastError = `forecast unavailable: ${errorMessage(err)}`;
        }
      }
    }
    if (json) {
      write(`${JSON.stringify({ current, describe: resolver.describe(), forecast, forecastError, fallbacks: resolver.fallbackCounts() }, null, 2)}\n`);
      return;
    }
    write(`${formatReading(current)}\n`);
    // The reading says where it came from; the resolver's chain adds something only when a live
    // provider was asked and did not answer (what it fell back through).
    const live = resolver.provider !== undefined && resolver.provider.id !== "static-table";
    if (live && current.fallback) write(`(${resolver.describe()})\n`);
    if (forecastError) write(`${forecastError}\n`);
    if (forecast) {
      write(`forecast, ${forecast.length} points:\n`);
      for (const p of forecast) write(`  ${p.validFrom?.toISOString() ?? "?"}  ${gramsPerKwh(p.intensityGramsPerKwh).padStart(15)}\n`);
      if (forecast.length > 0) {
        const best = forecast.reduce((a, b) => (b.intensityGramsPerKwh < a.intensityGramsPerKwh ? b : a));
        write(`lowest: ${gramsPerKwh(best.intensityGramsPerKwh)} at ${best.validFrom?.toISOString()}\n`);
      }
    }
  });
}
