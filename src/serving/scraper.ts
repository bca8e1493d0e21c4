/**
 * Scrapes a serving engine's Prometheus endpoint, off the sampling tick: a scrape is started by
 * kick() and its outcome is picked up later by take(); nothing ever awaits it inside a tick. Each
 * scrape has a deadline (connection to last byte) and a size cap (a larger body is refused unread
 * or cancelled as soon as it passes the cap, as the grid providers' reads are: src/grid/http.ts),
 * and at most one is in flight: a hung endpoint costs one pending request, never a pile.
 */
import { readCapped } from "../grid/http.js";
import { errorMessage } from "../errors.js";
import { parseExposition } from "./exposition.js";
import { ENGINES, readWork, recognise, sampleNames, type EngineSpec, type WorkReading } from "./engines.js";

/** Largest /metrics body read, bytes: a 5,000-series vLLM endpoint is under 1 MiB. */
export const MAX_SCRAPE_BYTES = 4 << 20;

/** Why a scrape gave no reading (each is warned once by the work source). */
export type ScrapeFailure = "network" | "timeout" | "http" | "too-large" | "not-prometheus" | "no-known-metrics";

/** One scrape's outcome. */
export type ScrapeOutcome =
  | { status: "ok"; reading: WorkReading; engine: EngineSpec; sampleCount: number; rejectedSamples: number }
  | { status: "failed"; kind: ScrapeFailure; message: string };

export interface ScrapeOptions {
  url: URL;
  /** Engines to recognise, in order (default ENGINES; `--work-metric` gives one custom spec). */
  engines?: readonly EngineSpec[];
  /** Deadline of one scrape, ms. */
  timeoutMillis: number;
  /** Largest body read, bytes (default MAX_SCRAPE_BYTES). */
  maxBytes?: number;
  /** fetch implementation (default: global fetch). */
  fetch?: typeof fetch;
}

/** One scrape, start to end; never rejects. */
export async function scrapeOnce(o: ScrapeOptions): Promise<ScrapeOutcome> {
  const engines = o.engines ?? ENGINES;
  const doFetch = o.fetch ?? globalThis.fetch;
  const where = `GET ${o.url.pathname}`;
  const signal = AbortSignal.timeout(o.timeoutMillis);
  let text: string;
  try {
    const res = await doFetch(o.url, { headers: { accept: "text/plain;version=0.0.4" }, signal, redirect: "error" });
    text = await readCapped("work", where, res, o.maxBytes ?? MAX_SCRAPE_BYTES);
    if (!res.ok) return { status: "failed", kind: "http", message: `${where} → HTTP ${res.status}` };
  } catch (err) {
    const kind = (err as { kind?: string }).kind;
    const name = (err as { name?: string }).name;
    if (kind === "too-large") return { status: "failed", kind: "too-large", message: errorMessage(err).replace(/^work: /, "") };
    if (kind === "timeout" || name === "TimeoutError" || name === "AbortError" || signal.aborted) {
      return { status: "failed", kind: "timeout", message: `${where}: no complete answer within ${o.timeoutMillis} ms` };
    }
    const code = (err as { cause?: { code?: string } }).cause?.code;
    return { status: "failed", kind: "network", message: `${where} failed: ${code ?? errorMessage(err)}` };
  }
  return readBody(text, engines);
}

/** Parses a body and reads the engine's work from it (pure; the scraper's second half). */
export function readBody(text: string, engines: readonly EngineSpec[] = ENGINES): ScrapeOutcome {
  const names = sampleNames(engines);
  const body = parseExposition(text, (name) => names.has(name));
  if (body.status === "invalid") return { status: "failed", kind: "not-prometheus", message: `not Prometheus text exposition (${body.reason})` };
  const engine = recognise(body, engines);
  if (!engine) {
    const known = engines.length === 1 && engines[0].id === "custom" ? "the --work-metric names" : "vLLM, SGLang, TGI, llama.cpp or Triton metric names";
    return { status: "failed", kind: "no-known-metrics", message: `${body.sampleCount} samples, none with ${known}` };
  }
  const { reading, rejected } = readWork(body, engine);
  return { status: "ok", reading, engine, sampleCount: body.sampleCount, rejectedSamples: rejected };
}

/** A finished scrape and the token it was started with (see WorkSource). */
export interface Completed {
  token: number;
  outcome: ScrapeOutcome;
}

/** One endpoint scraped in the background; see the module comment. */
export class BackgroundScraper {
  private inFlight = false;
  private done: Completed[] = [];
  private closed = false;

  constructor(private readonly o: ScrapeOptions) {}

  /** Whether a scrape is still running. */
  get busy(): boolean {
    return this.inFlight;
  }

  /** Starts a scrape tagged with `token` unless one is running (false then). Returns at once. */
  kick(token: number): boolean {
    if (this.inFlight || this.closed) return false;
    this.inFlight = true;
    void scrapeOnce(this.o)
      .catch((err: unknown): ScrapeOutcome => ({ status: "failed", kind: "network", message: errorMessage(err) }))
      .then((outcome) => {
        this.inFlight = false;
        if (!this.closed) this.done.push({ token, outcome });
      });
    return true;
  }

  /** The scrapes finished since the last call, oldest first. */
  take(): Completed[] {
    const out = this.done;
    this.done = [];
    return out;
  }

  /** No further scrapes; one in flight is dropped when it ends (bounded by its deadline). */
  close(): void {
    this.closed = true;
    this.done = [];
  }
}
