/**
 * The live status line: while stderr is a terminal, one line on the terminal's bottom row that
 * updates at most once per second with the elapsed time, the job's power now, its energy and CO2e
 * so far and its current phase:
 *
 *   powerprint ▸ 1.50 min · 312 W · 7.80 Wh · 2.96 g CO2e · phase train
 *
 * Nothing at all when the stream is not a TTY (a file, a pipe, CI logs) or the terminal has fewer
 * than {@link LIVE_MIN_ROWS} rows.
 *
 * The wrapped command writes to the same terminal, directly and at any time, so the line is kept
 * out of its way as apt keeps its progress bar: a scroll region (DECSTBM) of every row but the last
 * holds the command's output (and powerprint's own messages), which scrolls there, into the
 * terminal's history, untouched; the status is drawn on the last row, outside the region, with the
 * cursor saved and restored around it (DECSC/DECRC) in one write, so the command's cursor, partial
 * line and colours are where it left them. A terminal resize sets the region up again for the new
 * height. The terminal is restored (the region reset to the whole screen, the status row cleared)
 * at shutdown and, whatever ends the process (process.exit, an uncaught error, a signal whose
 * handler exits), in an 'exit' hook. Only SIGKILL leaves the region set (`reset` clears it).
 *
 * The current phase is the phase whose energy grew most since the previous update (the snapshot
 * carries energy per phase, not the open phase), so it shows once the phase has used energy.
 */
import type { Exporter } from "../src/core/contracts.js";
import type { JobTotals, LedgerSnapshot } from "../src/core/types.js";
import { formatDuration, formatEnergy, formatGrams, formatWatts } from "../src/units.js";

/** Least time between two redraws, ms. */
export const LIVE_MIN_INTERVAL_MILLIS = 1000;
/** A terminal needs at least this many rows for the line (one for it, the rest for the command). */
export const LIVE_MIN_ROWS = 3;

const ESC = "\x1b";
/** Save / restore the cursor (position, attributes): DECSC / DECRC. */
const SAVE = `${ESC}7`;
const RESTORE = `${ESC}8`;

/**
 * The escape sequences of the line, for a terminal of `rows` rows. Exported for tests.
 * - setUp: IND (down one row in the same column, scrolling if at the bottom), save, the region
 *   1..rows-1 (which homes the cursor), restore, up one row. Whether the cursor was on the last row
 *   (the screen scrolled one line, so the text it was on is one row up) or above it, it ends on the
 *   same text and column, inside the region: a partial line of the command's is kept as is.
 * - draw: save, last row, attributes off, erase the row, the text, restore: one write.
 * - tearDown: save, last row, erase it, the region back to the whole screen, restore.
 */
export function liveSequences(rows: number): { setUp: string; draw: (text: string) => string; tearDown: string } {
  return {
    setUp: `${ESC}D${SAVE}${ESC}[1;${rows - 1}r${RESTORE}${ESC}[1A`,
    draw: (text) => `${SAVE}${ESC}[${rows};1H${ESC}[0m${ESC}[2K${text}${RESTORE}`,
    tearDown: `${SAVE}${ESC}[${rows};1H${ESC}[2K${ESC}[r${RESTORE}`,
  };
}

export interface LiveLineOptions {
  stream: NodeJS.WriteStream;
  /** The job to show; undefined: the sum over all jobs. */
  jobId?: string;
  /** Wall clock for the redraw throttle (injected in tests). */
  nowMillis?: () => number;
  /** Where the 'exit' hook is installed (default: process; injected in tests). */
  process?: Pick<NodeJS.Process, "on" | "off">;
}

/** Exporter drawing the live status line. */
export class LiveLine implements Exporter {
  readonly id = "live";
  private lastDrawMillis = -Infinity;
  private previousPhases: Record<string, number> = {};
  private phase?: string;
  /** Rows of the terminal the region was set up for; undefined: not set up (or torn down). */
  private rows?: number;
  private lastText?: string;
  private readonly now: () => number;
  private readonly host: Pick<NodeJS.Process, "on" | "off">;
  private readonly onResize = () => this.resize();
  private readonly onExit = () => this.tearDown();

  constructor(private readonly o: LiveLineOptions) {
    this.now = o.nowMillis ?? Date.now;
    this.host = o.process ?? process;
  }

  /** Whether the line is drawn at all (stderr is a terminal tall enough). */
  get active(): boolean {
    return this.o.stream.isTTY === true && (this.o.stream.rows ?? 0) >= LIVE_MIN_ROWS;
  }

  async start(): Promise<void> {
    if (!this.active || this.rows !== undefined) return;
    this.setUp(this.o.stream.rows);
    this.o.stream.on?.("resize", this.onResize);
    this.host.on("exit", this.onExit);
  }

  update(s: LedgerSnapshot): void {
    this.trackPhase(s);
    if (this.rows === undefined) return;
    const now = this.now();
    if (now - this.lastDrawMillis < LIVE_MIN_INTERVAL_MILLIS) return;
    this.lastDrawMillis = now;
    this.draw(formatLiveLine(s, this.jobs(s), this.phase));
  }

  async shutdown(): Promise<void> {
    this.tearDown();
  }

  private setUp(rows: number): void {
    this.rows = rows;
    this.o.stream.write(liveSequences(rows).setUp);
  }

  private draw(text: string): void {
    if (this.rows === undefined) return;
    this.lastText = text;
    // One column short of the width: a character in the last column would leave a pending wrap.
    const width = Math.max(10, (this.o.stream.columns ?? 80) - 1);
    this.o.stream.write(liveSequences(this.rows).draw(text.slice(0, width)));
  }

  /** The terminal changed size: the region again for the new height (or none, too small), the line redrawn. */
  private resize(): void {
    if (this.rows === undefined) return;
    const rows = this.o.stream.rows ?? 0;
    if (rows < LIVE_MIN_ROWS) {
      this.tearDown();
      return;
    }
    // Where the old status row went depends on the terminal (tmux pulls history down on growth,
    // xterm does not): it is not erased blindly, which could erase a line of the command's; a
    // stale copy scrolls away with the output.
    this.setUp(rows);
    if (this.lastText !== undefined) this.draw(this.lastText);
  }

  /** Restores the terminal (idempotent; synchronous, so it also runs in the 'exit' hook). */
  private tearDown(): void {
    if (this.rows === undefined) return;
    const rows = this.rows;
    this.rows = undefined;
    this.o.stream.off?.("resize", this.onResize);
    this.host.off("exit", this.onExit);
    this.o.stream.write(liveSequences(rows).tearDown);
  }

  private jobs(s: LedgerSnapshot): JobTotals[] {
    return this.o.jobId === undefined ? s.jobs : s.jobs.filter((j) => j.id === this.o.jobId);
  }

  private trackPhase(s: LedgerSnapshot): void {
    const phases: Record<string, number> = {};
    for (const j of this.jobs(s)) for (const [p, e] of Object.entries(j.phaseEnergyJoules)) phases[p] = (phases[p] ?? 0) + e;
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
