import type { Logger } from "../core/contracts.js";
import { Ledger, type LedgerOptions } from "../core/ledger.js";
import { Sampler, type IntensityAt, type SamplerStats } from "../core/sampler.js";
import type { IdleConfig } from "../core/energy.js";
import type { IdlePolicy, LedgerSnapshot } from "../core/types.js";
import type { Scenario } from "./scenario.js";
import { SimCollector, SimProcessSource, SimWorld, scenarioIntensity } from "./world.js";

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
}

export interface SimulationResult {
  snapshot: LedgerSnapshot;
  stats: SamplerStats;
  pue: number;
  pueOrigin: string;
  intensitySource: "scenario" | "options";
}

/**
 * Runs a scenario in virtual time through the same Sampler, attribution and Ledger as real runs:
 * the clock is a variable advanced by intervalMillis, so it is fast and deterministic.
 */
export async function simulate(scenario: Scenario, o: SimulateOptions): Promise<SimulationResult> {
  const world = new SimWorld(scenario);
  let nowMillis = world.epochMillis;
  const clock = () => nowMillis;
  const usePueFromScenario = scenario.pue !== undefined && !o.pueFromFlag;
  const pue = usePueFromScenario ? scenario.pue! : o.ledger.pue;
  const ledger = new Ledger({ ...o.ledger, pue }, nowMillis);
  for (const job of world.jobs()) ledger.registerJob(job, job, {}, nowMillis);
  const fromScenario = scenarioIntensity(world);
  const sampler = new Sampler({
    collectors: [new SimCollector(world)],
    processes: new SimProcessSource(world, clock),
    intensity: fromScenario ?? o.intensity,
    ledger,
    nowMillis: clock,
    idlePolicy: o.idlePolicy,
    idle: o.idle,
    log: o.log,
    isVisiblePid: () => true,
  });
  const endMillis = world.epochMillis + scenario.durationSeconds * 1000;
  await sampler.tick();
  while (nowMillis < endMillis) {
    nowMillis = Math.min(endMillis, nowMillis + scenario.intervalMillis);
    await sampler.tick();
    o.onTick?.(ledger.snapshot());
  }
  return {
    snapshot: ledger.snapshot(),
    stats: sampler.stats,
    pue,
    pueOrigin: usePueFromScenario ? "scenario" : o.pueFromFlag ? "flag" : "default",
    intensitySource: fromScenario ? "scenario" : "options",
  };
}
