/**
 * The work source: each measured job's serving endpoint (--work-from) scraped in the background,
 * its counter increases handed to the ledger's serving account at the start of each tick. poll()
 * is synchronous and cheap (it only takes finished scrapes and starts the next): nothing in the
 * tick waits on the network.
 */
import type { Logger } from "../core/contracts.js";
import type { ServingIncrement } from "../core/serving.js";
import { UsageError } from "../errors.js";
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
  attachedAtMillis: number;
  lastFailure?: { kind: ScrapeFailure; message: string };
}

/** Scrapes failed, by kind, over the source's life (the report's serving notes). */
export type WorkFailures = Partial<Record<ScrapeFailure, number>>;

/**
 * Parses a --work-from URL: http(s) only; a URL without a path scrapes `/metrics`. UsageError
 * naming the flag otherwise.
 */
export function parseWorkFrom(text: string, flag = "--work-from"): URL {
  const example = "e.g. --work-from http://127.0.0.1:8000/metrics";
  if (text.length > 2048) throw new UsageError(flag, "is longer than 2048 characters");
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(flag, `'${text.slice(0, 100)}' is not a URL (${example})`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new UsageError(flag, `'${url.protocol}' is not http: or https: (${example})`);
  if (url.username || url.password) throw new UsageError(flag, "must not carry credentials");
  if (url.pathname === "/" && url.search === "") url.pathname = "/metrics";
  return url;
}

/** The work source; see the module comment. */
export class WorkSource {
  private readonly targets = new Map<string, Target>();
  readonly failures: WorkFailures = {};

  constructor(private readonly o: WorkSourceOptions) {}

  /** Measures job `jobId`'s work from `url` from now on (its serving account starts now). */
  attach(jobId: string, url: URL): void {
    if (this.targets.has(jobId)) return;
    this.o.ledger.enableServing(jobId, url.href);
    const scraper = new BackgroundScraper({ url, engines: this.o.engines ?? ENGINES, timeoutMillis: this.o.timeoutMillis, maxBytes: this.o.maxBytes ?? MAX_SCRAPE_BYTES, fetch: this.o.fetch });
    this.targets.set(jobId, { url, scraper, answered: false, attachedAtMillis: this.now() });
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
      // Refused before the first answer: the server may still be loading its model.
      const starting = !t.answered && out.kind === "network" && this.now() - t.attachedAtMillis < (this.o.startupGraceMillis ?? 120_000);
      if (!starting) this.warn(t, out.message);
      return;
    }
    t.answered = true;
    if (out.rejectedSamples > 0) this.o.log.warnOnce(`work:${t.url.href}:rejected`, `work from ${t.url.href}: ${out.rejectedSamples} sample(s) negative or not a number skipped`);
    const cur = out.reading;
    let prev = t.last;
    if (prev && prev.engine !== cur.engine) {
      this.o.log.warnOnce(`work:${t.url.href}:engine`, `work from ${t.url.href}: the endpoint now answers as ${cur.engine} (was ${prev.engine}); counting from its next reading`);
      prev = undefined;
    }
    t.last = cur;
    if (!prev && !this.o.countFromZero) {
      // The baseline: what was counted before it is not ours; its intervals get the running gauge only.
      this.o.ledger.recordWork(jobId, done.token, cur.engine, runningOnly(cur));
      return;
    }
    const inc = increment(prev ?? zeroReading(cur.engine), cur);
    if (inc.event === "restart") {
      this.o.log.info(`work from ${t.url.href}: counters went back to near 0 (the server restarted): counting their new values`);
    } else if (inc.event === "inconsistent") {
      this.o.log.warnOnce(`work:${t.url.href}:inconsistent`, `work from ${t.url.href}: some counters went down while others went up (not a restart): such readings are skipped (counted in the report)`);
    }
    this.o.ledger.recordWork(jobId, done.token, cur.engine, inc.models, inc.event);
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
