/**
 * Keeps the network out of the sampling tick: the tick asks this cache, which answers from memory
 * at once; a background refresh (each with a deadline) asks the real source (the grid resolver and
 * its provider) and fills the cache. A provider that accepts the connection and never answers
 * therefore neither stalls ticks nor delays the end of a run.
 */
import type { IntensityReading } from "./contracts.js";
import type { IntensityAt } from "./sampler.js";
import type { Logger } from "./contracts.js";
import { errorMessage } from "../errors.js";

export interface CachedIntensityOptions {
  /** The slow source (network). */
  source: IntensityAt;
  /** Answer while no refresh has returned yet (the offline fallback: static table or world average), labelled as a fallback. */
  initial: IntensityReading;
  /** One refresh gives up after this long, ms; the cache keeps its value. */
  deadlineMillis: number;
  /** A refresh is started when the cached value is older than this, ms (at most one in flight). */
  refreshMillis: number;
  /** Wall clock (timestamps only), epoch ms. */
  nowMillis: () => number;
  log: Logger;
}

/** IntensityAt answering from memory; see the module comment. */
export class CachedIntensity implements IntensityAt {
  private value: IntensityReading | undefined;
  private refreshedAtMillis = Number.NEGATIVE_INFINITY;
  private inFlight = false;
  private stopped = false;
  /** Intervals priced with the initial fallback because no refresh had returned, and refreshes cut off by the deadline. */
  readonly counts = { initial: 0, timeouts: 0 };

  constructor(private readonly o: CachedIntensityOptions) {}

  /** Starts the first refresh now (at the spawn), so a responsive provider has answered by the first interval. */
  prefetch(): void {
    this.refresh(new Date(this.o.nowMillis()));
  }

  async at(time: Date): Promise<IntensityReading> {
    if (this.o.nowMillis() - this.refreshedAtMillis >= this.o.refreshMillis) this.refresh(time);
    if (this.value) return { ...this.value };
    this.counts.initial++;
    return { ...this.o.initial };
  }

  /** No further refreshes (the run is over). */
  stop(): void {
    this.stopped = true;
  }

  private refresh(time: Date): void {
    if (this.inFlight || this.stopped) return;
    this.inFlight = true;
    this.refreshedAtMillis = this.o.nowMillis();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), this.o.deadlineMillis);
      // Never keeps the process alive: the run ends when the command does.
      timer.unref();
    });
    void Promise.race([this.o.source.at(time), deadline])
      .then(
        (r) => {
          if (r === "timeout") {
            this.counts.timeouts++;
            this.o.log.warnOnce("intensity:deadline", `grid intensity: no answer within ${this.o.deadlineMillis / 1000} s; sampling goes on with the last value (or ${this.o.initial.source}) and asks again later`);
          } else {
            this.value = r;
          }
        },
        (err: unknown) => this.o.log.warnOnce("intensity:refresh", `grid intensity refresh failed: ${errorMessage(err)} (sampling goes on)`),
      )
      .finally(() => {
        clearTimeout(timer);
        this.inFlight = false;
      });
  }
}
