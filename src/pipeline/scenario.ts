/**
 * The one wiring of a scenario into a pipeline (`simulate`, `run --sim`, `agent --sim`): its
 * simulated devices, its process table (plain, or as a discovering job source for the agent), its
 * grid series, its clock, and its PUE (used unless --pue was given).
 *
 * Time: `simulate` runs in virtual time (one variable clock, advanced by its loop from the
 * scenario's epoch); `run` and `agent` run the scenario in real time from `startMillis`, its time
 * taken from the monotonic clock so that a wall-clock step does not jump the simulated world (its
 * series are indexed by the time the sampler gives).
 */
import { singleClock, type MonitorClock } from "../core/clock.js";
import type { Collector, ProcessSource } from "../core/contracts.js";
import type { IntensityAt } from "../core/sampler.js";
import { scenarioLedgerOptions, type Scenario } from "../sim/scenario.js";
import type { LedgerOptions } from "../core/ledger.js";
import { SimCollector, SimProcessSource, SimWorld, scenarioIntensity, type SimProcessSourceOptions } from "../sim/world.js";
import { SimJobSource } from "../agent/sim-source.js";
import type { DiscoveringSource } from "../agent/lifecycle.js";

/** How a scenario's time runs. */
export type ScenarioTime = { kind: "virtual" } | { kind: "real"; startMillis: number };

/** The parts of a pipeline a scenario gives. */
export interface ScenarioParts {
  readonly scenario: Scenario;
  readonly world: SimWorld;
  /** The simulated devices (one collector). */
  readonly collectors: Collector[];
  /** The scenario's grid series (source "scenario"), when it has one. */
  readonly intensity?: IntensityAt;
  readonly clock: MonitorClock;
  /** Scenario time now, epoch ms (the world's wall clock). */
  nowMillis(): number;
  /** Virtual time only: moves the clock to `millis` (never backwards). */
  advanceTo(millis: number): void;
  /** The process table as a plain source (run --sim merges it with the command; simulate alone). */
  processes(options?: SimProcessSourceOptions): ProcessSource;
  /** The process table as a discovering source: its jobs appear and finish as the agent sees real ones. */
  jobs(): DiscoveringSource;
  /** The scenario's job names, tags and marks (at their times on this world's clock), for the ledger. */
  readonly ledgerOptions: Pick<LedgerOptions, "knownJobs" | "scheduledMarks">;
}

/** Builds the scenario's parts (see the module comment for `time`). */
export function scenarioParts(scenario: Scenario, time: ScenarioTime): ScenarioParts {
  // Virtual time starts at the scenario's startTime (default: the simulation epoch).
  const world = time.kind === "virtual" ? new SimWorld(scenario, scenario.startTime !== undefined ? Date.parse(scenario.startTime) : undefined) : new SimWorld(scenario, time.startMillis);
  let virtualMillis = world.epochMillis;
  let nowMillis: () => number;
  let clock: MonitorClock;
  if (time.kind === "virtual") {
    nowMillis = () => virtualMillis;
    // One clock for intervals and timestamps, advanced by the caller's loop, never stepped.
    clock = singleClock(nowMillis);
  } else {
    const startMonotonicMillis = performance.now();
    nowMillis = () => time.startMillis + (performance.now() - startMonotonicMillis);
    clock = { monotonicMillis: () => performance.now(), wallMillis: nowMillis };
  }
  return {
    scenario,
    world,
    collectors: [new SimCollector(world)],
    intensity: scenarioIntensity(world),
    clock,
    nowMillis,
    advanceTo(millis) {
      if (time.kind !== "virtual") throw new Error("advanceTo: the scenario runs in real time");
      virtualMillis = Math.max(virtualMillis, millis);
    },
    processes: (options) => new SimProcessSource(world, nowMillis, options),
    jobs: () => new SimJobSource(world, nowMillis),
    ledgerOptions: scenarioLedgerOptions(scenario, world.epochMillis),
  };
}
