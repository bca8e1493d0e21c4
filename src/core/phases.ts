/**
 * Training phases of one job (marks protocol: `{"phase": "train", "step": 10, "samples": 640,
 * "tokens": 327680, "timeMillis": 1733492400123}` lines).
 *
 * A mark opens its phase at the mark's time (`timeMillis`, wall-clock epoch ms; the reader puts the
 * time it first saw the line when the job gave none). The job's phases are a timeline: the phase
 * before the first mark (BEFORE_FIRST_MARK), then each mark's phase from its time on. Energy and
 * time are split along that timeline, time-weighted: an interval [start, end] that spans marks
 * gives each phase the part of its energy (and of its duration) that its time inside the interval
 * is of the interval (the interval's power is taken as constant within it, which is all a sampled
 * interval says). So a phase shorter than the sampling interval still gets its share, and the
 * phases of a job always sum to the job.
 *
 * Counters on a mark are cumulative totals so far (a lost line loses nothing): what a counter moved
 * since the previous mark was done in the phase that was open until this mark. Counts are integers.
 * Keyed by user text: Maps only (a phase named `constructor` or `__proto__` is a phase like any other).
 */

/** Name of the phase before the first mark (docs/marks.md). */
export const BEFORE_FIRST_MARK = "(before first mark)";

/** Cumulative work counters a mark may carry (non-negative integers). */
export interface WorkCounters {
  step?: number;
  samples?: number;
  tokens?: number;
}

const COUNTERS = ["step", "samples", "tokens"] as const;

/**
 * Marks kept on the timeline to split intervals that end after them (a device read late spans
 * more than one tick). Older ones are folded into the phase they opened: bounded whatever the job writes.
 */
export const MAX_TIMELINE_MARKS = 64;

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

/** A mark on the timeline: `acc` is open from `atMillis` (wall-clock epoch ms) until the next one. */
interface Boundary {
  atMillis: number;
  acc: PhaseAcc;
}

/** The phases of one job. */
export class JobPhases {
  private readonly byName = new Map<string, PhaseAcc>([[BEFORE_FIRST_MARK, newAcc()]]);
  /** The phase open before the first boundary kept. */
  private base: PhaseAcc = this.byName.get(BEFORE_FIRST_MARK)!;
  /** The marks still needed to split intervals, in time order (at most MAX_TIMELINE_MARKS). */
  private readonly timeline: Boundary[] = [];
  /** The phase open now (the last mark's), and its name. */
  private open: PhaseAcc = this.base;
  private openName = BEFORE_FIRST_MARK;
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
    const name = current ?? (totals && totals.length > 0 ? totals[totals.length - 1].name : BEFORE_FIRST_MARK);
    p.openName = name;
    p.open = p.base = p.acc(name);
    return p;
  }

  /** The phase open now (the last mark's). */
  get current(): string {
    return this.openName;
  }

  /**
   * Opens `phase` at `atMillis` (a mark); the counters it carries close the work of the phase open
   * until now. A time before the previous mark's is taken as that mark's (the timeline never goes back).
   */
  mark(phase: string, counters: WorkCounters = {}, atMillis = Number.NEGATIVE_INFINITY): void {
    for (const k of COUNTERS) {
      const value = counters[k];
      if (value === undefined || !Number.isSafeInteger(value) || value < 0) continue;
      // A counter that went down (the loop restarted its count) starts a new baseline, adds nothing.
      this.open.counts[k] += Math.max(0, value - (this.last[k] ?? 0));
      this.last[k] = value;
    }
    const acc = this.acc(phase);
    const previous = this.timeline.length > 0 ? this.timeline[this.timeline.length - 1].atMillis : Number.NEGATIVE_INFINITY;
    this.timeline.push({ atMillis: Math.max(previous, atMillis), acc });
    if (this.timeline.length > MAX_TIMELINE_MARKS) this.base = this.timeline.shift()!.acc;
    this.open = acc;
    this.openName = phase;
    this.marked = true;
  }

  /** Adds energy and emissions to the phase open now (no interval to split: a restored total, a test). */
  addEnergy(energyJoules: number, emissionsGrams: number): void {
    this.open.energyJoules += energyJoules;
    this.open.emissionsGrams += emissionsGrams;
  }

  /**
   * Adds an interval's energy and emissions, split time-weighted among the phases open during
   * [startMillis, endMillis] (wall-clock epoch ms). The parts sum to what was given.
   */
  addEnergyOver(energyJoules: number, emissionsGrams: number, startMillis: number, endMillis: number): void {
    if (this.timeline.length === 0 || this.timeline[this.timeline.length - 1].atMillis <= startMillis) {
      // Fast path (every interval but those a mark falls in): all of it to the phase open now.
      this.addEnergy(energyJoules, emissionsGrams);
      return;
    }
    this.split(startMillis, endMillis, (acc, fraction) => {
      acc.energyJoules += energyJoules * fraction;
      acc.emissionsGrams += emissionsGrams * fraction;
    });
  }

  /** Adds measured time (monotonic ms) of the window [startMillis, endMillis] (wall), split like energy. */
  addTimeOver(durationMillis: number, startMillis: number, endMillis: number): void {
    if (durationMillis <= 0) return;
    this.split(startMillis, endMillis, (acc, fraction) => {
      acc.durationMillis += durationMillis * fraction;
    });
  }

  /** Adds measured time (monotonic ms) to the phase open now. */
  addTime(durationMillis: number): void {
    if (durationMillis > 0) this.open.durationMillis += durationMillis;
  }

  /**
   * Calls `give` with each phase open during [start, end] and the fraction of the span it was open
   * (fractions sum to 1; the last gets the remainder, so nothing is lost to rounding). An empty or
   * reversed span goes whole to the phase open at its end.
   */
  private split(startMillis: number, endMillis: number, give: (acc: PhaseAcc, fraction: number) => void): void {
    const t = this.timeline;
    // The phase open at `start`: the last boundary at or before it, else the base.
    let i = 0;
    while (i < t.length && t[i].atMillis <= startMillis) i++;
    let acc = i > 0 ? t[i - 1].acc : this.base;
    const span = endMillis - startMillis;
    if (!(span > 0)) {
      while (i < t.length && t[i].atMillis <= endMillis) acc = t[i++].acc;
      give(acc, 1);
      return;
    }
    let from = startMillis;
    let given = 0;
    for (; i < t.length && t[i].atMillis < endMillis; i++) {
      const fraction = (t[i].atMillis - from) / span;
      if (fraction > 0) give(acc, fraction);
      given += fraction;
      from = t[i].atMillis;
      acc = t[i].acc;
    }
    give(acc, 1 - given);
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
