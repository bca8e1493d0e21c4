/**
 * The work source: each measured job's serving endpoint (--work-from) scraped in the background,
 * its counter increases handed to the ledger's serving account at the start of each tick. poll()
 * is synchronous and cheap (it only takes finished scrapes and starts the next): nothing in the
 * tick waits on the network.
 */
import type { Logger } from "../core/contracts.js";
import type { ServingIncrement } from "../core/serving.js";
import { ENGINES, WORK_COUNTERS, type EngineSpec, type WorkReading } from "./engines.js";
import { increment, zeroReading } from "./increments.js";
import { BackgroundScraper, MAX_SCRAPE_BYTES, type Completed, type ScrapeFailure } from "./scraper.js";

/** What the work source needs of the ledger. */
export interface ServingLedger {
  enableServing(id: string, source: string): void;
  servingToken(id: string): number | undefined;
  recordWork(id: string, token: number, engine: string, models: ReadonlyMap<string, ServingIncrement>, event?: "none" | "restart" | "inconsistent"): void;
}

export interface WorkSourceOptions {
  ledger: ServingLedger;
  log: Logger;
  /** Engines to recognise (default ENGINES; --work-metric gives one custom spec). */
  engines?: readonly EngineSpec[];
  /** Deadline of one scrape, ms. */
  timeoutMillis: number;
  maxBytes?: number;
  fetch?: typeof fetch;
  /**
   * true (run): the server was started under measurement, so its first reading counts from zero.
   * false (agent): the first reading is the baseline (work done before it is not this agent's to count).
   */
  countFromZero: boolean;
  /**
   * An endpoint that refuses connections before it ever answered is only warned about after this
   * long, ms (a server loading its model is not yet listening): default 120 s.
   */
  startupGraceMillis?: number;
  /** Monotonic clock, ms (default performance.now). */
  nowMillis?: () => number;
}

interface Target {
  url: URL;
  scraper: BackgroundScraper;
  last?: WorkReading;
  answered: boolean;
  /** Whether the first reading counts from zero (see WorkSourceOptions.countFromZero). */
  countFromZero: boolean;
  /** Failed scrapes since the last answer. */
  consecutiveFailures: number;
  attachedAtMillis: number;
  lastFailure?: { kind: ScrapeFailure; message: string };
}

/** Deadline of one scrape at a sampling interval, ms: the interval, within 1–5 s (as a collector read's). */
export function scrapeDeadlineMillis(intervalMillis: number): number {
  return Math.max(1_000, Math.min(intervalMillis, 5_000));
}

/** Refused or timed-out scrapes in a row that make a warning (see WorkSource.persistent). */
export const TRANSIENT_FAILURES = 3;

/** Scrapes failed, by kind, over the source's life (the report's serving notes). */
export type WorkFailures = Partial<Record<ScrapeFailure, number>>;

/** The work source; see the module comment. */
export class WorkSource {
  private readonly targets = new Map<string, Target>();
  readonly failures: WorkFailures = {};

  constructor(private readonly o: WorkSourceOptions) {}

  /**
   * Measures job `jobId`'s work from `url` from now on (its serving account starts now, or goes on
   * if it has one). `countFromZero` overrides the source's default for this job's first reading.
   */
  attach(jobId: string, url: URL, o: { countFromZero?: boolean } = {}): void {
    if (this.targets.has(jobId)) return;
    this.o.ledger.enableServing(jobId, url.href);
    const scraper = new BackgroundScraper({ url, engines: this.o.engines ?? ENGINES, timeoutMillis: this.o.timeoutMillis, maxBytes: this.o.maxBytes ?? MAX_SCRAPE_BYTES, fetch: this.o.fetch });
    this.targets.set(jobId, { url, scraper, answered: false, countFromZero: o.countFromZero ?? this.o.countFromZero, consecutiveFailures: 0, attachedAtMillis: this.now() });
  }

  /** Stops scraping for a job (finished, or its endpoint now belongs to another job); its figures stay in the ledger. */
  detach(jobId: string): void {
    this.targets.get(jobId)?.scraper.close();
    this.targets.delete(jobId);
  }

  /** Whether a scrape is in flight (tests wait for it; the tick never does). */
  get scraping(): boolean {
    return [...this.targets.values()].some((t) => t.scraper.busy);
  }

  /** Jobs scraped now. */
  get jobs(): string[] {
    return [...this.targets.keys()];
  }

  /** At the start of a tick: hands finished scrapes to the ledger and starts the next ones. */
  poll(): void {
    for (const [jobId, t] of this.targets) {
      for (const done of t.scraper.take()) this.handle(jobId, t, done);
      const token = this.o.ledger.servingToken(jobId);
      if (token !== undefined) t.scraper.kick(token);
    }
  }

  /** Ends scraping; an endpoint that never answered is said now (once). */
  close(): void {
    for (const [jobId, t] of this.targets) {
      if (!t.answered && t.lastFailure) this.warn(t, `never answered (${t.lastFailure.message})`);
      this.detach(jobId);
    }
  }

  private handle(jobId: string, t: Target, done: Completed): void {
    const out = done.outcome;
    if (out.status === "failed") {
      this.failures[out.kind] = (this.failures[out.kind] ?? 0) + 1;
      t.lastFailure = { kind: out.kind, message: out.message };
      t.consecutiveFailures++;
      if (this.persistent(t, out.kind)) this.warn(t, out.message);
      return;
    }
    t.answered = true;
    t.consecutiveFailures = 0;
    if (out.rejectedSamples > 0) this.o.log.warnOnce(`work:${t.url.href}:rejected`, `work from ${t.url.href}: ${out.rejectedSamples} sample(s) negative or not a number skipped`);
    const cur = out.reading;
    let prev = t.last;
    if (prev && prev.engine !== cur.engine) {
      this.o.log.warnOnce(`work:${t.url.href}:engine`, `work from ${t.url.href}: the endpoint now answers as ${cur.engine} (was ${prev.engine}); counting from its next reading`);
      prev = undefined;
    }
    t.last = cur;
    if (!prev && !t.countFromZero) {
      // The baseline: what was counted before it is not ours; its intervals get the running gauge only.
      this.o.ledger.recordWork(jobId, done.token, cur.engine, runningOnly(cur));
      return;
    }
    const inc = increment(prev ?? zeroReading(cur.engine), cur);
    if (inc.event === "restart") {
      this.o.log.info(`work from ${t.url.href}: counters went back to near 0 (the server restarted): counting their new values`);
    } else if (inc.event === "inconsistent") {
      this.o.log.warnOnce(`work:${t.url.href}:inconsistent`, `work from ${t.url.href}: some counters went down while others went up (not a restart): such readings are skipped`);
    }
    this.o.ledger.recordWork(jobId, done.token, cur.engine, inc.models, inc.event);
  }

  /**
   * Whether a failure is worth saying now. A body that is not what was asked (HTTP error, too
   * large, not Prometheus text, no known names) is said at once. A refused connection or a
   * deadline passed may be the server starting (loading its model: refused for up to
   * startupGraceMillis before it ever answered) or stopping (a server being shut down stops
   * answering): said once it persists for TRANSIENT_FAILURES scrapes in a row, or at close() when
   * the endpoint never answered at all.
   */
  private persistent(t: Target, kind: ScrapeFailure): boolean {
    if (kind !== "network" && kind !== "timeout") return true;
    if (!t.answered && kind === "network") return this.now() - t.attachedAtMillis >= (this.o.startupGraceMillis ?? 120_000);
    return t.consecutiveFailures >= TRANSIENT_FAILURES;
  }

  /** One warning per endpoint, whatever goes wrong with it (the report counts each failure). */
  private warn(t: Target, message: string): void {
    this.o.log.warnOnce(`work:${t.url.href}`, `work from ${t.url.href}: ${message}; measuring goes on without units of work (tried again each interval)`);
  }

  private now(): number {
    return (this.o.nowMillis ?? (() => performance.now()))();
  }
}

/** A reading's models with no counted work, only their running gauge (the baseline's intervals). */
function runningOnly(r: WorkReading): Map<string, ServingIncrement> {
  const out = new Map<string, ServingIncrement>();
  for (const [model, c] of r.models) {
    const inc: ServingIncrement = {};
    for (const k of WORK_COUNTERS) if (c[k] !== undefined) inc[k] = 0;
    if (c.running !== undefined) inc.running = c.running;
    out.set(model, inc);
  }
  return out;
}
