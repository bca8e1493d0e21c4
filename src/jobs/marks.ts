import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";

/**
 * One training-loop mark: `{"phase": "train", "step": 1200, "samples": 4096, "tokens": 2097152,
 * "timeMillis": 1733492400123}`. The counters are cumulative, as the job reports them: non-negative
 * integers (anything else is left out and counted in MarksReader.badCounters).
 */
export interface Mark {
  /** Any name but the empty one (1..64 characters, no control characters); `constructor` is a name like any other. */
  phase: string;
  step?: number;
  samples?: number;
  tokens?: number;
  /**
   * When the mark happened, Unix epoch milliseconds: the line's `timeMillis` field (finite, >= 0);
   * from MarksReader.poll, never later than when the line was first seen, and that time when the
   * line has none (`timeOrigin` says which).
   */
  timeMillis?: number;
  /** Where timeMillis came from (MarksReader.poll): the line itself, or when the line was first seen. */
  timeOrigin?: "mark" | "seen";
  /** Counter fields present but not non-negative integers (left out of the mark). */
  badCounters?: number;
}

/** Longest accepted line, bytes: a mark is a small JSON object. */
export const MAX_MARK_LINE_BYTES = 4096;
/** Most bytes read per poll (one sampling tick): a flood is read over the next ticks, never at once. */
export const MAX_MARK_POLL_BYTES = 1 << 20;
const CHUNK_BYTES = 64 * 1024;
const NEWLINE = 0x0a;
const MAX_PHASE_CHARS = 64;

/** Options of MarksReader (tests lower the budget). */
export interface MarksReaderOptions {
  /** Byte budget per poll (default MAX_MARK_POLL_BYTES). */
  maxPollBytes?: number;
}

/**
 * Reads the marks file the wrapped command appends JSON lines to (POWERPRINT_MARKS). Each poll()
 * returns the complete new lines since the last call, reading at most `maxPollBytes` (the rest
 * waits for the next poll); a partial last line waits for its newline. A line longer than
 * MAX_MARK_LINE_BYTES is dropped whole, up to its newline, and counted once however long it is (its
 * tail is never taken as a mark). A file truncated or replaced (another inode) is read again from
 * its start. Malformed lines are counted and skipped, never fatal. Anything but a regular file at
 * the path (a FIFO, a directory) is ignored: the reader never blocks the sampling tick.
 */
export class MarksReader {
  private offset = 0;
  private identity: { dev: number; ino: number } | undefined;
  /** Bytes of the current partial line (never more than MAX_MARK_LINE_BYTES). */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Inside an oversized line: skip everything up to its newline. */
  private discarding = false;
  private readonly maxPollBytes: number;
  malformed = 0;
  oversized = 0;
  /** Counter fields (step, samples, tokens) left out of otherwise good lines: not non-negative integers. */
  badCounters = 0;
  /** How many times the file was found truncated or replaced, and read again from its start. */
  restarts = 0;

  constructor(readonly path: string, opts: MarksReaderOptions = {}) {
    this.maxPollBytes = Math.max(1, opts.maxPollBytes ?? MAX_MARK_POLL_BYTES);
  }

  /**
   * The complete new lines since the last poll, as marks. `nowMillis` (wall-clock epoch ms, the
   * caller's clock) is when they were first seen: the time of a mark without `timeMillis`, and the
   * latest a mark's own time may be (a job's clock ahead of ours cannot open a phase in the future).
   */
  poll(nowMillis: number = Date.now()): Mark[] {
    const marks = this.read();
    for (const m of marks) {
      if (m.timeMillis !== undefined && m.timeMillis <= nowMillis) m.timeOrigin = "mark";
      else {
        m.timeMillis = nowMillis;
        m.timeOrigin = "seen";
      }
      if (m.badCounters) this.badCounters += m.badCounters;
    }
    return marks;
  }

  private read(): Mark[] {
    let fd: number;
    try {
      // O_NONBLOCK: a FIFO put at the path must not block the tick on open.
      fd = openSync(this.path, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch {
      return [];
    }
    const marks: Mark[] = [];
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) return [];
      const replaced = this.identity !== undefined && (this.identity.dev !== st.dev || this.identity.ino !== st.ino);
      if (replaced || st.size < this.offset) this.restart();
      this.identity = { dev: st.dev, ino: st.ino };
      let budget = Math.min(st.size - this.offset, this.maxPollBytes);
      const buf = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, Math.max(1, budget)));
      while (budget > 0) {
        const n = readSync(fd, buf, 0, Math.min(buf.length, budget), this.offset);
        if (n <= 0) break;
        this.offset += n;
        budget -= n;
        this.take(buf.subarray(0, n), marks);
      }
    } finally {
      closeSync(fd);
    }
    return marks;
  }

  private restart(): void {
    this.offset = 0;
    this.pending = [];
    this.pendingBytes = 0;
    this.discarding = false;
    this.restarts++;
  }

  /** Splits a chunk at its newlines; complete lines are parsed, the rest kept (or skipped) for later. */
  private take(chunk: Buffer, out: Mark[]): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(NEWLINE, start);
      const end = nl === -1 ? chunk.length : nl;
      if (!this.discarding && end > start) {
        if (this.pendingBytes + (end - start) > MAX_MARK_LINE_BYTES) {
          this.oversized++;
          this.discarding = true;
          this.pending = [];
          this.pendingBytes = 0;
        } else {
          // Copy: the chunk buffer is reused by the next read.
          this.pending.push(Buffer.from(chunk.subarray(start, end)));
          this.pendingBytes += end - start;
        }
      }
      if (nl === -1) return;
      if (this.discarding) this.discarding = false; // the oversized line ends here, dropped whole
      else {
        const line = Buffer.concat(this.pending, this.pendingBytes).toString("utf8");
        const mark = line.trim() === "" ? undefined : parseMark(line);
        if (mark) out.push(mark);
        else if (line.trim() !== "") this.malformed++;
      }
      this.pending = [];
      this.pendingBytes = 0;
      start = nl + 1;
    }
  }
}

const field = (v: Record<string, unknown>, key: string): unknown => (Object.hasOwn(v, key) ? v[key] : undefined);
/** A count: a non-negative integer (counts are never fractional, never rounded). */
const isCount = (x: unknown): x is number => typeof x === "number" && Number.isSafeInteger(x) && x >= 0;
const isTime = (x: unknown): x is number => typeof x === "number" && Number.isFinite(x) && x >= 0;

/**
 * Parses one marks line; undefined when it is not a JSON object with a usable `phase`. Own
 * properties only, so `{"phase": "constructor"}` is an ordinary phase and `__proto__` keys are data.
 */
export function parseMark(line: string): Mark | undefined {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  const phase = Object.hasOwn(o, "phase") ? o.phase : undefined;
  // Control characters (a newline) in a phase would break the summary's one-line-per-phase layout.
  // eslint-disable-next-line no-control-regex
  if (typeof phase !== "string" || phase === "" || phase.length > MAX_PHASE_CHARS || /[\u0000-\u001f\u007f]/.test(phase)) return undefined;
  const mark: Mark = { phase };
  let bad = 0;
  for (const key of ["step", "samples", "tokens"] as const) {
    const n = field(o, key);
    if (isCount(n)) mark[key] = n;
    else if (n !== undefined && n !== null) bad++;
  }
  const t = field(o, "timeMillis");
  if (isTime(t)) mark.timeMillis = t;
  if (bad > 0) mark.badCounters = bad;
  return mark;
}
