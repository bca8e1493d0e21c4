/**
 * Work done between two scrapes of one endpoint: each counter's increase per model, reset-aware.
 * Pure: the work source feeds readings in order and says once what happened.
 *
 * - Counters that only went up (or stood still): the increase is the difference.
 * - A restart (the server was restarted: its counters start again from 0): every counter that
 *   changed went down, or `process_start_time_seconds` changed. The increase is each counter's new
 *   value (Prometheus's own rule for a counter reset), for every model in the new reading: nothing
 *   negative, nothing counted twice.
 * - Inconsistent (some counters down, others up, same process): not a restart, not counters
 *   (a proxy alternating between replicas, a broken exporter): nothing is counted for this
 *   interval and the new reading becomes the baseline.
 * - A model seen for the first time after the baseline (a LoRA adapter loaded, a model's first
 *   request): its values are counted whole, as counted from 0.
 */
import { WORK_COUNTERS, type ModelCounters, type WorkReading } from "./engines.js";

/** Increase of each counter of one model over an interval, and its running gauge at the interval's end. */
export type ModelIncrement = ModelCounters;

export type IncrementEvent = "none" | "restart" | "inconsistent";

export interface WorkIncrement {
  models: Map<string, ModelIncrement>;
  event: IncrementEvent;
}

/** A reading that stands for "nothing done yet" (run: the server was started under measurement). */
export function zeroReading(engine: string): WorkReading {
  return { engine, models: new Map() };
}

// Counters are floats (seconds, `8.128902e+06` tokens): a drop smaller than this relative amount
// is float noise, not a reset.
const RELATIVE_NOISE = 1e-12;

function direction(before: number, after: number): -1 | 0 | 1 {
  const d = after - before;
  if (Math.abs(d) <= Math.abs(before) * RELATIVE_NOISE) return 0;
  return d > 0 ? 1 : -1;
}

/** Whether the change from `prev` to `cur` is a restart, inconsistent, or plain counting. */
export function classify(prev: WorkReading, cur: WorkReading): IncrementEvent {
  if (prev.processStartSeconds !== undefined && cur.processStartSeconds !== undefined && prev.processStartSeconds !== cur.processStartSeconds) {
    return "restart";
  }
  let down = false;
  let up = false;
  for (const [model, after] of cur.models) {
    const before = prev.models.get(model);
    if (!before) continue;
    for (const k of WORK_COUNTERS) {
      const a = before[k];
      const b = after[k];
      if (a === undefined || b === undefined) continue;
      const dir = direction(a, b);
      if (dir < 0) down = true;
      else if (dir > 0) up = true;
    }
  }
  if (!down) return "none";
  return up ? "inconsistent" : "restart";
}

/** The work between two readings of one endpoint; see the module comment. */
export function increment(prev: WorkReading, cur: WorkReading): WorkIncrement {
  const event = classify(prev, cur);
  const models = new Map<string, ModelIncrement>();
  for (const [model, after] of cur.models) {
    const before = event === "restart" ? undefined : prev.models.get(model);
    const inc: ModelIncrement = {};
    for (const k of WORK_COUNTERS) {
      const b = after[k];
      if (b === undefined) continue;
      inc[k] = event === "inconsistent" ? 0 : Math.max(0, b - (before?.[k] ?? 0));
    }
    if (after.running !== undefined) inc.running = after.running;
    models.set(model, inc);
  }
  return { models, event };
}
