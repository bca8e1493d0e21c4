import type { Logger } from "../core/contracts.js";
import { Ledger, type LedgerOptions } from "../core/ledger.js";
import type { IntensityAt, SamplerStats } from "../core/sampler.js";
import { Monitor } from "../core/monitor.js";
import { singleClock } from "../core/clock.js";
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
 * Runs a scenario in virtual time through the same Monitor (Sampler, attribution, Ledger) as real
 * runs: the clock is a variable advanced by intervalMillis and this loop drives monitor.tick()
 * itself (no timer), so it is fast and deterministic.
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
  const monitor = new Monitor({
    collectors: [new SimCollector(world)],
    // Only this Monitor reads the samples: GPU PIDs are looked up instead of listing every member.
    processes: new SimProcessSource(world, clock, { membersByLookup: true }),
    intensity: fromScenario ?? o.intensity,
    ledger,
    exporters: [],
    intervalMillis: scenario.intervalMillis,
    // Virtual time: one clock for intervals and timestamps, advanced by this loop, never stepped.
    clock: singleClock(clock),
    idlePolicy: o.idlePolicy,
    idle: o.idle,
    log: o.log,
    isVisiblePid: () => true,
  });
  if (o.onTick) monitor.onSnapshot(o.onTick);
  const endMillis = world.epochMillis + scenario.durationSeconds * 1000;
  await monitor.tick();
  while (nowMillis < endMillis) {
    nowMillis = Math.min(endMillis, nowMillis + scenario.intervalMillis);
    await monitor.tick();
  }
  const snapshot = await monitor.stop({ finalTick: false });
  return {
    snapshot,
    stats: monitor.stats,
    pue,
    pueOrigin: usePueFromScenario ? "scenario" : o.pueFromFlag ? "flag" : "default",
    intensitySource: fromScenario ? "scenario" : "options",
  };
}
