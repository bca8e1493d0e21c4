/**
 * The composition root (shaped after Kepler's cmd/kepler/main.go createServices): turns a command's
 * validated config into the parts of a Monitor — the devices (a scenario's or the real hardware,
 * chosen once), the scenario's job source, the intensity the tick asks, the ledger's constants
 * (PUE and footprint tables) and the report fields that say where each came from. `run`, `agent`
 * and `simulate` add only their own lifecycle (spawning, discovery, virtual time); the exporters
 * are made by exporters/index.ts from the same config (see openExporters).
 */
import type { CollectorOptions } from "../../collectors/index.js";
import type { MonitorClock } from "../core/clock.js";
import { systemClock } from "../core/clock.js";
import type { Collector, Logger } from "../core/contracts.js";
import type { LedgerOptions } from "../core/ledger.js";
import type { GridConfig } from "../config/grid.js";
import type { MeasureConfig } from "../config/measure.js";
import type { Scenario } from "../sim/scenario.js";
import { detectDevices } from "./devices.js";
import { footprintParts, type FootprintParts } from "./footprint.js";
import { intensityParts, type IntensityParts, type IntensityReport } from "./intensity.js";
// The scenario wiring (the simulated world, the scenario module's zod) loads only with a scenario:
// `run`'s RSS and start-up pay nothing for it.
import type { ScenarioParts, ScenarioTime } from "./scenario.js";

export type { ScenarioParts } from "./scenario.js";

/** What a pipeline is built from: the parts of a command's config every measuring command has. */
export interface PipelineConfig {
  measure: MeasureConfig;
  grid: GridConfig;
  /** The real hardware's options (unused with a scenario). */
  collectors: CollectorOptions;
  scenario?: Scenario;
}

/** How the command runs it. */
export interface PipelineOptions {
  log: Logger;
  /**
   * A scenario's time: virtual (`simulate`), or real from a start time (`run`, `agent`). In real
   * time a live intensity provider is asked outside the tick (the tick never waits on the network;
   * the command calls intensity.prefetch() at its start and intensity.stop() at its end).
   */
  time: ScenarioTime;
}

/** The report fields every command's report takes from its pipeline. */
export interface PipelineReportFields extends IntensityReport {
  scenario?: string;
  /** A scenario's host (every path that runs one): its logical CPUs (CSV cpu_count), its CPU devices' cores. */
  logicalCpus?: number;
  idlePolicy: MeasureConfig["idlePolicy"];
  pueOrigin: string;
  wueLitersPerKwh: number;
  waterIntensityLitersPerKwh: number;
  waterOrigin: string;
  pricePerKwh: number;
  currency: string;
}

/** A command's pipeline parts. */
export interface Pipeline {
  /** The scenario's parts (devices, process table, series, clock), with a scenario. */
  readonly scenario?: ScenarioParts;
  /** The Monitor's clock: the scenario's, else the system's. */
  readonly clock: MonitorClock;
  readonly intensity: IntensityParts;
  readonly footprint: FootprintParts;
  /** The ledger's constants: the PUE (flag, scenario or default) and the footprint constants. */
  readonly ledgerOptions: LedgerOptions;
  readonly pueOrigin: "flag" | "scenario" | "default";
  /**
   * The devices: the scenario's, or the real hardware probed now (fallbacks said once). `extra`:
   * options known only now (run: the RAPL counters read at the spawn).
   */
  devices(extra?: Partial<CollectorOptions>): Promise<Collector[]>;
  /** The report fields this pipeline determines (intensity, PUE, water, cost, scenario). */
  reportFields(): PipelineReportFields;
}

/**
 * The PUE of a ledger and where it came from: --pue wins; else the scenario's own, if any; else the
 * default (1.0).
 */
export function effectivePue(measure: Pick<MeasureConfig, "pue" | "pueOrigin">, scenario?: Pick<Scenario, "pue">): { pue: number; pueOrigin: "flag" | "scenario" | "default" } {
  if (measure.pueOrigin === "default" && scenario?.pue !== undefined) return { pue: scenario.pue, pueOrigin: "scenario" };
  return { pue: measure.pue, pueOrigin: measure.pueOrigin };
}

/** Builds a command's pipeline parts from its config. Cheap: nothing is probed and no network is asked. */
export async function createPipeline(config: PipelineConfig, o: PipelineOptions): Promise<Pipeline> {
  const scenario = config.scenario ? (await import("./scenario.js")).scenarioParts(config.scenario, o.time) : undefined;
  if (scenario && o.time.kind === "real") {
    o.log.info(`simulated devices from scenario '${scenario.scenario.name}' (${scenario.scenario.devices.map((d) => d.id).join(", ")})`);
  }
  const clock = scenario?.clock ?? systemClock;
  const intensity = intensityParts(config.grid, {
    log: o.log,
    scenario: config.scenario,
    scenarioSeries: scenario?.intensity,
    background: o.time.kind === "real",
    nowMillis: () => clock.wallMillis(),
  });
  const footprint = footprintParts(config.grid);
  const { pue, pueOrigin } = effectivePue(config.measure, config.scenario);
  return {
    scenario,
    clock,
    intensity,
    footprint,
    // A scenario's job names, tags and marks go to every path's ledger alike.
    ledgerOptions: { pue, ...footprint.ledger, ...(scenario?.ledgerOptions ?? {}) },
    pueOrigin,
    async devices(extra = {}) {
      if (scenario) return scenario.collectors;
      return (await detectDevices({ ...config.collectors, ...extra }, o.log)).collectors;
    },
    reportFields: () => ({
      scenario: config.scenario?.name,
      ...(config.scenario && { logicalCpus: config.scenario.devices.reduce((n, d) => n + (d.kind === "cpu" ? (d.cores ?? 0) : 0), 0) || undefined }),
      idlePolicy: config.measure.idlePolicy,
      pueOrigin,
      ...intensity.report(),
      ...footprint.report,
    }),
  };
}
