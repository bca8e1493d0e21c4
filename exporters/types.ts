import type { LedgerSnapshot } from "../src/core/types.js";

/**
 * An output of the pipeline. Exporters only read ledger snapshots; they never block sampling.
 * Lifecycle: start() once, update() after every tick with the newest snapshot (cheap: store it),
 * shutdown(final) once at exit: must flush the final totals (a 3 s job still exports them).
 */
export interface Exporter {
  readonly id: string;
  start?(): Promise<void>;
  update?(snapshot: LedgerSnapshot): void;
  shutdown(final: LedgerSnapshot): Promise<void>;
  /** Export failures so far, by kind (e.g. "otlp:ECONNREFUSED"); the summary prints them. */
  failures?(): Record<string, number>;
}

/** Where powerprint's own messages go (stderr in the CLI; the child owns stdout). */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  /** Warns once per key (e.g. per export failure kind). */
  warnOnce(key: string, message: string): void;
  debug(message: string): void;
}
