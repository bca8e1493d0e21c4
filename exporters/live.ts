/**
 * The live status line: while stderr is a terminal, one line that updates at most once per second
 * with the elapsed time, the job's power now, its energy and CO2e so far and its current phase:
 *
 *   powerprint ▸ 1.50 min · 312 W · 7.80 Wh · 2.96 g CO2e · phase train
 *
 * Nothing at all when the stream is not a TTY (a file, a pipe, CI logs). powerprint's own stderr
 * output (warnings, the summary) goes through the same stream: the line is erased before each such
 * write and redrawn at the next update, and erased at the end. The wrapped command writes to the
 * terminal directly; the cursor is left at the start of the line so its output overwrites the
 * status rather than being appended to it.
 *
 * The current phase is the phase whose energy grew most since the previous update (the snapshot
 * carries energy per phase, not the open phase), so it shows once the phase has used energy.
 */
import type { Exporter } from "../src/core/contracts.js";
import type { JobTotals, LedgerSnapshot } from "../src/core/types.js";
import { formatDuration, formatEnergy, formatGrams, formatWatts } from "../src/units.js";

const ERASE_LINE = "\r\x1b[2K";
/** Least time between two redraws, ms. */
export const LIVE_MIN_INTERVAL_MILLIS = 1000;

export interface LiveLineOptions {
  stream: NodeJS.WriteStream;
  /** The job to show; undefined: the sum over all jobs. */
  jobId?: string;
  /** Wall clock for the redraw throttle (injected in tests). */
  nowMillis?: () => number;
}

/** Exporter drawing the live status line. */
export class LiveLine implements Exporter {
  readonly id = "live";
  private shown = false;
  private lastDrawMillis = -Infinity;
  private previousPhases: Record<string, number> = {};
  private phase?: string;
  private originalWrite?: NodeJS.WriteStream["write"];
  /** Writes past the erase-first wrapper. */
  private raw: (text: string) => void = () => {};
  private readonly now: () => number;

  constructor(private readonly o: LiveLineOptions) {
    this.now = o.nowMillis ?? Date.now;
  }

  /** Whether the line is drawn at all (stderr is a terminal). */
  get active(): boolean {
    return this.o.stream.isTTY === true;
  }

  async start(): Promise<void> {
    if (!this.active || this.originalWrite) return;
    const stream = this.o.stream;
    const original = stream.write;
    this.originalWrite = original;
    const raw = (chunk: unknown, ...rest: unknown[]) => (original as (c: unknown, ...r: unknown[]) => boolean).call(stream, chunk, ...rest);
    this.raw = (text) => raw(text);
    // Every other write to the stream first erases the status line, so messages never land on it.
    stream.write = ((chunk: unknown, ...rest: unknown[]) => {
      if (this.shown) {
        this.shown = false;
        raw(ERASE_LINE);
      }
      return raw(chunk, ...rest);
    }) as NodeJS.WriteStream["write"];
  }

  update(s: LedgerSnapshot): void {
    this.trackPhase(s);
    if (!this.originalWrite) return;
    const now = this.now();
    if (now - this.lastDrawMillis < LIVE_MIN_INTERVAL_MILLIS) return;
    this.lastDrawMillis = now;
    const width = Math.max(20, (this.o.stream.columns ?? 100) - 1);
    const text = formatLiveLine(s, this.jobId(s), this.phase);
    this.raw(`${ERASE_LINE}${text.slice(0, width)}\r`);
    this.shown = true;
  }

  async shutdown(): Promise<void> {
    if (!this.originalWrite) return;
    if (this.shown) this.raw(ERASE_LINE);
    this.shown = false;
    this.o.stream.write = this.originalWrite;
    this.originalWrite = undefined;
  }

  private jobId(s: LedgerSnapshot): JobTotals[] {
    return this.o.jobId === undefined ? s.jobs : s.jobs.filter((j) => j.id === this.o.jobId);
  }

  private trackPhase(s: LedgerSnapshot): void {
    const phases: Record<string, number> = {};
    for (const j of this.jobId(s)) for (const [p, e] of Object.entries(j.phaseEnergyJoules)) phases[p] = (phases[p] ?? 0) + e;
    let best = 0;
    for (const [p, e] of Object.entries(phases)) {
      const grew = e - (this.previousPhases[p] ?? 0);
      if (grew > best) {
        best = grew;
        this.phase = p;
      }
    }
    this.previousPhases = phases;
  }
}

/** The status text for the jobs shown. */
export function formatLiveLine(s: LedgerSnapshot, jobs: JobTotals[], phase: string | undefined): string {
  const sum = (f: (t: JobTotals) => number) => jobs.reduce((a, t) => a + f(t), 0);
  const parts = [
    formatDuration((s.timeMillis - s.startMillis) / 1000),
    formatWatts(sum((t) => t.lastPowerWatts.total)),
    formatEnergy(sum((t) => t.energyJoules.total)),
    `${formatGrams(sum((t) => t.emissionsGrams))} CO2e`,
  ];
  if (phase !== undefined) parts.push(`phase ${phase}`);
  return `powerprint ▸ ${parts.join(" · ")}`;
}
