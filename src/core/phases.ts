/**
 * Training phases of one job (marks protocol: `{"phase": "train", "step": 10, "samples": 640,
 * "tokens": 327680}` lines). Energy, emissions and time go to the phase current when they are
 * recorded; the time before the first mark is its own phase (BEFORE_FIRST_MARK) so the phases of a
 * job always sum to the job. Counters on a mark are cumulative totals so far (a lost line loses
 * nothing): what a counter moved since the previous mark was done in the phase that was current
 * until this mark. Keyed by user text: Maps only (a phase named `constructor` or `__proto__` is a
 * phase like any other).
 */

/** Name of the phase before the first mark (docs/marks.md). */
export const BEFORE_FIRST_MARK = "(before first mark)";

/** Cumulative work counters a mark may carry. */
export interface WorkCounters {
  step?: number;
  samples?: number;
  tokens?: number;
}

const COUNTERS = ["step", "samples", "tokens"] as const;

/** One phase's totals: energy (IT, J), operational emissions (g CO2e), time (s), work done in it. */
export interface PhaseTotals {
  name: string;
  energyJoules: number;
  emissionsGrams: number;
  durationSeconds: number;
  /** Steps, samples and tokens done in the phase (undefined: the job never reported that counter). */
  steps?: number;
  samples?: number;
  tokens?: number;
}

interface PhaseAcc {
  energyJoules: number;
  emissionsGrams: number;
  durationMillis: number;
  counts: { step: number; samples: number; tokens: number };
}

const newAcc = (): PhaseAcc => ({ energyJoules: 0, emissionsGrams: 0, durationMillis: 0, counts: { step: 0, samples: 0, tokens: 0 } });

/** The phases of one job. */
export class JobPhases {
  private current = BEFORE_FIRST_MARK;
  private readonly byName = new Map<string, PhaseAcc>([[BEFORE_FIRST_MARK, newAcc()]]);
  /** Latest value of each counter seen on a mark (the job's cumulative totals). */
  private readonly last: WorkCounters = {};
  /** Whether any mark was seen: phases are reported only then. */
  marked = false;

  /** Phases continued from saved totals (a checkpoint); `current`: the phase open then. */
  static restore(totals: readonly PhaseTotals[] | undefined, work: WorkCounters | undefined, current: string | undefined): JobPhases {
    const p = new JobPhases();
    for (const t of totals ?? []) {
      p.byName.set(t.name, {
        energyJoules: t.energyJoules,
        emissionsGrams: t.emissionsGrams,
        durationMillis: t.durationSeconds * 1000,
        counts: { step: t.steps ?? 0, samples: t.samples ?? 0, tokens: t.tokens ?? 0 },
      });
    }
    Object.assign(p.last, work ?? {});
    p.marked = (totals?.length ?? 0) > 0;
    if (current !== undefined) p.current = current;
    else if (totals && totals.length > 0) p.current = totals[totals.length - 1].name;
    return p;
  }

  /** Opens `phase` (a mark); the counters it carries close the work of the phase current until now. */
  mark(phase: string, counters: WorkCounters = {}): void {
    const acc = this.acc(this.current);
    for (const k of COUNTERS) {
      const value = counters[k];
      if (value === undefined || !Number.isFinite(value)) continue;
      // A counter that went down (the loop restarted its count) starts a new baseline, adds nothing.
      acc.counts[k] += Math.max(0, value - (this.last[k] ?? 0));
      this.last[k] = value;
    }
    this.current = phase;
    this.acc(phase);
    this.marked = true;
  }

  /** Adds energy and emissions to the current phase. */
  addEnergy(energyJoules: number, emissionsGrams: number): void {
    const acc = this.acc(this.current);
    acc.energyJoules += energyJoules;
    acc.emissionsGrams += emissionsGrams;
  }

  /** Adds measured time (monotonic ms) to the current phase. */
  addTime(durationMillis: number): void {
    if (durationMillis > 0) this.acc(this.current).durationMillis += durationMillis;
  }

  /** The job's cumulative counters as last marked (undefined fields: never reported). */
  counters(): WorkCounters {
    return { ...this.last };
  }

  /** Every phase, in first-seen order (BEFORE_FIRST_MARK first). */
  totals(): PhaseTotals[] {
    const out: PhaseTotals[] = [];
    for (const [name, a] of this.byName) {
      out.push({
        name,
        energyJoules: a.energyJoules,
        emissionsGrams: a.emissionsGrams,
        durationSeconds: a.durationMillis / 1000,
        ...(this.last.step !== undefined ? { steps: a.counts.step } : {}),
        ...(this.last.samples !== undefined ? { samples: a.counts.samples } : {}),
        ...(this.last.tokens !== undefined ? { tokens: a.counts.tokens } : {}),
      });
    }
    return out;
  }

  private acc(name: string): PhaseAcc {
    let a = this.byName.get(name);
    if (!a) {
      a = newAcc();
      this.byName.set(name, a);
    }
    return a;
  }
}

/** Joules per unit of work; undefined when the count is unknown or zero. */
export function perUnit(energyJoules: number, count: number | undefined): number | undefined {
  return count !== undefined && count > 0 ? energyJoules / count : undefined;
}
