import { closeSync, openSync, readSync, fstatSync } from "node:fs";

/** One training-loop mark: `{"phase": "train", "step": 1200, "samples": 4096, "tokens": 2097152}`. */
export interface Mark {
  phase: string;
  step?: number;
  samples?: number;
  tokens?: number;
}

/** Longest accepted line, bytes: a mark is a small JSON object. */
export const MAX_MARK_LINE_BYTES = 4096;

/**
 * Reads the marks file the wrapped command appends JSON lines to (POWERPRINT_MARKS). Each call to
 * poll() returns the complete new lines since the last call; a partial last line waits for its
 * newline. Malformed or oversized lines are counted and skipped, never fatal.
 */
export class MarksReader {
  private offset = 0;
  private pending = "";
  malformed = 0;
  oversized = 0;

  constructor(readonly path: string) {}

  poll(): Mark[] {
    let fd: number;
    try {
      fd = openSync(this.path, "r");
    } catch {
      return [];
    }
    const marks: Mark[] = [];
    try {
      const size = fstatSync(fd).size;
      if (size < this.offset) this.offset = 0; // truncated: start over
      const buf = Buffer.alloc(Math.min(size - this.offset, 1 << 20));
      const n = buf.length > 0 ? readSync(fd, buf, 0, buf.length, this.offset) : 0;
      this.offset += n;
      const text = this.pending + buf.subarray(0, n).toString("utf8");
      const lines = text.split("\n");
      this.pending = lines.pop() ?? "";
      if (Buffer.byteLength(this.pending) > MAX_MARK_LINE_BYTES) {
        this.oversized++;
        this.pending = "";
      }
      for (const line of lines) {
        if (line.trim() === "") continue;
        if (Buffer.byteLength(line) > MAX_MARK_LINE_BYTES) {
          this.oversized++;
          continue;
        }
        try {
          const v = JSON.parse(line) as Record<string, unknown>;
          if (typeof v !== "object" || v === null || typeof v.phase !== "string" || v.phase === "" || v.phase.length > 64) {
            this.malformed++;
            continue;
          }
          const num = (x: unknown) => (typeof x === "number" && Number.isFinite(x) ? x : undefined);
          marks.push({ phase: v.phase, step: num(v.step), samples: num(v.samples), tokens: num(v.tokens) });
        } catch {
          this.malformed++;
        }
      }
    } finally {
      closeSync(fd);
    }
    return marks;
  }
}
