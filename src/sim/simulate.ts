import type { Logger } from "../core/contracts.js";
import { Ledger, type LedgerOptions } from "../core/ledger.js";
import type { IntensityAt, SamplerStats } from "../core/sampler.js";
import { Monitor } from "../core/monitor.js";
import type { IdleConfig } from "../core/energy.js";
import type { IdlePolicy, LedgerSnapshot } from "../core/types.js";
import { effectivePue } from "../pipeline/index.js";
import { scenarioParts, type ScenarioParts } from "../pipeline/scenario.js";
import type { Scenario } from "./scenario.js";

export interface SimulateOptions {
  idlePolicy: IdlePolicy;
  /** Ledger constants; `pue` here is used unless the scenario sets its own and `pueFromFlag` is false. */
  ledger: LedgerOptions;
  /** The PUE came from a flag (wins over the scenario's). */
  pueFromFlag?: boolean;
  /** Intensity when the scenario has no grid series (the CLI's resolver). */
  intensity: IntensityAt;
  idle?: IdleConfig;
  log: Logger;
  /** Called after each tick with the newest snapshot (exporters). */
  onTick?: (snapshot: LedgerSnapshot) => void;
  /** The scenario's parts in virtual time, when the caller's pipeline made them already. */
  parts?: ScenarioParts;
}

export interface SimulationResult {
  snapshot: LedgerSnapshot;
  stats: SamplerStats;
  pue: number;
  pueOrigin: string;
  intensitySource: "scenario" | "options";
}

/**
 * Runs a scenario in virtual time through the same Monitor (Sampler, attribution, Ledger) as real
 * runs: the clock is a variable advanced by intervalMillis and this loop drives monitor.tick()
 * itself (no timer), so it is fast and deterministic.
 */
export async function simulate(scenario: Scenario, o: SimulateOptions): Promise<SimulationResult> {
  const sim = o.parts ?? scenarioParts(scenario, { kind: "virtual" });
  const startMillis = sim.nowMillis();
  const { pue, pueOrigin } = effectivePue({ pue: o.ledger.pue, pueOrigin: o.pueFromFlag ? "flag" : "default" }, scenario);
  // The scenario's job names, tags and marks (at their virtual times).
  const ledger = new Ledger({ ...o.ledger, pue, ...sim.ledgerOptions }, startMillis);
  for (const job of sim.world.jobs()) ledger.registerJob(job, job, {}, startMillis);
  const monitor = new Monitor({
    collectors: sim.collectors,
    // Only this Monitor reads the samples: GPU PIDs are looked up instead of listing every member.
    processes: sim.processes({ membersByLookup: true }),
    intensity: sim.intensity ?? o.intensity,
    ledger,
    exporters: [],
    intervalMillis: scenario.intervalMillis,
    clock: sim.clock,
    idlePolicy: o.idlePolicy,
    idle: o.idle,
    log: o.log,
    isVisiblePid: () => true,
  });
  if (o.onTick) monitor.onSnapshot(o.onTick);
  const endMillis = startMillis + scenario.durationSeconds * 1000;
  await monitor.tick();
  while (sim.nowMillis() < endMillis) {
    sim.advanceTo(Math.min(endMillis, sim.nowMillis() + scenario.intervalMillis));
    await monitor.tick();
  }
  const snapshot = await monitor.stop({ finalTick: false });
  return { snapshot, stats: monitor.stats, pue, pueOrigin, intensitySource: sim.intensity ? "scenario" : "options" };
}
