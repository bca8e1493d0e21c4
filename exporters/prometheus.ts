/**
 * Prometheus endpoint (`--prometheus [host:port]`, default 127.0.0.1:9464): the metrics of
 * exporters/observations.ts served at /metrics in the Prometheus text format, written straight
 * from the newest ledger snapshot and streamed in chunks with backpressure: a scrape of 10,000
 * jobs never builds one giant string, and no per-series state is kept between scrapes (the OTel
 * SDK's Prometheus exporter kept every series' history and serialised a scrape into one string:
 * 425 MiB peak and 5.5 s a scrape at 10,000 retained jobs; see bench/RESULTS.md).
 *
 * The text is the one @opentelemetry/exporter-prometheus writes for the same metrics (names,
 * `_total` on counters, `# UNIT` lines, label sanitising and escaping, `target_info` with the
 * resource, `otel_scope_name`, and host_name/service_name copied onto every series; no unit
 * suffix): test/exporters/prometheus.test.ts compares the two. On our own node:http server, so
 * port 0 works and we know the bound address and when a scrape happened.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Resource } from "@opentelemetry/resources";
import { UsageError } from "../src/errors.js";
import type { LedgerSnapshot } from "../src/core/types.js";
import type { Exporter, Logger } from "../src/core/contracts.js";
import type { SelfMetrics } from "../src/core/self-metrics.js";
import type { FailureTracker } from "./otel.js";
import { Collection, METER_NAME, OBSERVERS, type Labels } from "./observations.js";
import type { ListenAddress, PrometheusSettings } from "./config.js";

// Pure configuration pieces live in config.ts, so option parsing never loads the OTel SDK.
export type { ListenAddress, PrometheusSettings } from "./config.js";

/** What the endpoint reads besides the snapshots. */
export interface PrometheusDeps {
  resource: Resource;
  failures: FailureTracker;
  log: Logger;
  /** The agent's own figures (absent in run and simulate). */
  self?: SelfMetrics;
}

/** Resource attributes copied onto every series (as the OTel exporter's withResourceConstantLabels). */
const CONSTANT_LABELS = /^(host\.name|service\.name)$/;
/** A chunk is handed to the socket once it holds this many characters. */
const CHUNK_CHARS = 64 * 1024;
/** The exposition format's content type (version 0.0.4 of the text format). */
const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

const escapeString = (s: string): string => s.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
const NEEDS_ESCAPE = /[\\\n"]/;
const escapeLabelValue = (s: string): string => (NEEDS_ESCAPE.test(s) ? escapeString(s).replace(/"/g, '\\"') : s);
/** Prometheus names: every character outside [a-zA-Z0-9_] becomes '_', runs of '_' one. */
const sanitizeNow = (name: string): string => name.replace(/[^a-z0-9_]/gi, "_").replace(/_{2,}/g, "_");
/** Label keys repeat on every series: sanitised once (the cache is bounded, keys are user text). */
const sanitized = new Map<string, string>();
function sanitize(name: string): string {
  let out = sanitized.get(name);
  if (out === undefined) {
    if (sanitized.size >= 4096) sanitized.clear();
    sanitized.set(name, (out = sanitizeNow(name)));
  }
  return out;
}
const valueText = (v: number): string => (v === Infinity ? "+Inf" : v === -Infinity ? "-Inf" : `${v}`);

/** `k="v",k2="v2"` of `labels` (empty string for none). */
function labelText(labels: Labels): string {
  let out = "";
  for (const k of Object.keys(labels)) out += `${out.length > 0 ? "," : ""}${sanitize(k)}="${escapeLabelValue(String(labels[k]))}"`;
  return out;
}

/** Where the text goes: a response (or any stream) with backpressure. */
interface Sink {
  write(chunk: string): boolean;
  once(event: "drain" | "close", listener: () => void): unknown;
  off(event: "drain" | "close", listener: () => void): unknown;
  readonly destroyed: boolean;
}

/** Buffers text and hands it on in chunks, waiting for 'drain' when the socket is full. */
class ChunkWriter {
  private buf = "";

  constructor(private readonly sink: Sink) {}

  /** Appends; call flushIfFull() at safe points. */
  add(text: string): void {
    this.buf += text;
  }

  async flushIfFull(): Promise<boolean> {
    return this.buf.length >= CHUNK_CHARS ? this.flush() : !this.sink.destroyed;
  }

  /** Writes what is buffered; false when the client went away (stop writing). */
  async flush(): Promise<boolean> {
    if (this.sink.destroyed) return false;
    const chunk = this.buf;
    this.buf = "";
    if (chunk.length > 0 && !this.sink.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.sink.off("drain", done);
          this.sink.off("close", done);
          resolve();
        };
        this.sink.once("drain", done);
        this.sink.once("close", done);
      });
    }
    return !this.sink.destroyed;
  }
}

/**
 * Writes the exposition text of `sources` to `sink`, metric by metric (the order of METRICS), each
 * job's labels rendered once per scrape. Metrics without a data point are left out, as the OTel
 * exporter does. Resolves when written (or when the client went away).
 */
export async function writeExposition(sink: Sink, collection: Collection, resource: Labels): Promise<void> {
  const w = new ChunkWriter(sink);
  w.add(`# HELP target_info Target metadata\n# TYPE target_info gauge\ntarget_info{${labelText(resource)}} 1\n`);
  const constant: Labels = { "otel.scope.name": METER_NAME };
  for (const k of Object.keys(resource)) if (CONSTANT_LABELS.test(k)) constant[k] = resource[k];
  const tail = labelText(constant);
  const rendered = new Map<Labels, string>();
  const render = (labels: Labels): string => {
    let t = rendered.get(labels);
    if (t === undefined) rendered.set(labels, (t = labelText(labels)));
    return t;
  };
  let any = false;
  for (const { spec, observe } of OBSERVERS) {
    let name = sanitize(escapeString(spec.name));
    if (spec.instrument === "counter" && !name.endsWith("_total")) name += "_total";
    const header = `# HELP ${name} ${escapeString(spec.description || "description missing")}\n${spec.unit ? `# UNIT ${name} ${escapeString(spec.unit)}\n` : ""}# TYPE ${name} ${spec.instrument}\n`;
    let started = false;
    let batch = "";
    let n = 0;
    for (const { value, base, extra } of observe(collection)) {
      if (!started) {
        started = true;
        batch = header;
      }
      let labels = render(base);
      // An extra key the base already has keeps the base's position (object spread): render merged.
      if (extra) labels = Object.keys(extra).some((k) => Object.hasOwn(base, k)) ? labelText({ ...base, ...extra }) : `${labels}${labels.length > 0 ? "," : ""}${labelText(extra)}`;
      batch += `${name}{${labels}${labels.length > 0 ? "," : ""}${tail}} ${valueText(value)}\n`;
      // Bounded memory: hand lines on in chunks, waiting for the socket when it is full.
      if (++n % 256 === 0) {
        w.add(batch);
        batch = "";
        if (!(await w.flushIfFull())) return;
      }
    }
    w.add(batch);
    any ||= started;
    if (!(await w.flushIfFull())) return;
  }
  if (!any) w.add("# no registered metrics");
  await w.flush();
}

/** The Prometheus exporter: the newest snapshot, written out by scrapes of our own HTTP server. */
export class PrometheusEndpoint implements Exporter {
  readonly id = "prometheus";
  /** Scrapes served so far. */
  scrapes = 0;
  private server: Server | undefined;
  private latest: LedgerSnapshot | undefined;
  private source: (() => LedgerSnapshot) | undefined;
  private final: LedgerSnapshot | undefined;
  private readonly resource: Labels;
  /** Incremented when lingering starts: only scrapes that begin after it read the final totals. */
  private generation = 0;
  private waiters: { generation: number; wake: () => void }[] = [];

  constructor(
    private readonly settings: PrometheusSettings,
    private readonly deps: PrometheusDeps,
  ) {
    this.resource = Object.fromEntries(Object.entries(deps.resource.attributes).map(([k, v]) => [k, String(v)]));
  }

  /** Starts listening (once; later calls do nothing); throws UsageError("--prometheus") when the address cannot be bound. */
  async start(): Promise<void> {
    if (this.server) return;
    const server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once("error", (err: NodeJS.ErrnoException) =>
        reject(new UsageError("--prometheus", `cannot listen on ${this.settings.listen.host}:${this.settings.listen.port}: ${err.code ?? err.message}`, { cause: err })),
      );
      server.listen({ host: this.settings.listen.host, port: this.settings.listen.port }, () => resolve());
    });
    // Never keeps the process alive by itself.
    server.unref();
    this.server = server;
    this.deps.log.info(`prometheus: serving metrics at ${this.url()}`);
  }

  update(snapshot: LedgerSnapshot): void {
    this.latest = snapshot;
  }

  /** Reads snapshots on demand (Exporter.readSnapshotsFrom): a scrape copies the ledger, a tick does not. */
  readSnapshotsFrom(latest: () => LedgerSnapshot): void {
    this.source = latest;
  }

  /** Stores the final totals, lingers for a final scrape (settings.lingerMillis), then closes the server. */
  async shutdown(final: LedgerSnapshot): Promise<void> {
    this.final = final;
    await this.linger();
    await this.closeServer();
  }

  failures(): Record<string, number> {
    return this.deps.failures.countsFor(this.id);
  }

  /** The bound address (the real port when 0 was asked). */
  address(): ListenAddress {
    const info = this.server?.address() as AddressInfo | null | undefined;
    if (!info) return this.settings.listen;
    return { host: this.settings.listen.host, port: info.port };
  }

  /** http://host:port/metrics */
  url(): string {
    const { host, port } = this.address();
    return `http://${host.includes(":") ? `[${host}]` : host}:${port}/metrics`;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== "/metrics" || (req.method !== "GET" && req.method !== "HEAD")) {
      res.statusCode = 404;
      res.end();
      return;
    }
    const generation = this.generation;
    res.on("finish", () => {
      this.scrapes += 1;
      const ready = this.waiters.filter((w) => generation >= w.generation);
      this.waiters = this.waiters.filter((w) => generation < w.generation);
      for (const waiter of ready) waiter.wake();
    });
    res.writeHead(200, { "content-type": CONTENT_TYPE });
    if (req.method === "HEAD") {
      res.end();
      return;
    }
    // One snapshot per scrape: a tick during a long scrape does not mix two.
    const snapshot = this.final ?? this.source?.() ?? this.latest;
    const collection = new Collection({ snapshot, failures: this.deps.failures.entries(), self: this.deps.self?.read() });
    writeExposition(res, collection, this.resource).then(
      () => res.end(),
      (err: unknown) => {
        this.deps.log.warnOnce("prometheus:scrape", `prometheus: a scrape failed: ${String(err)} (the next one starts afresh)`);
        res.destroy();
      },
    );
  }

  private async linger(): Promise<void> {
    if (this.settings.lingerMillis <= 0 || !this.server) return;
    // The final snapshot is stored already: wait for one scrape that starts after now.
    this.generation += 1;
    const generation = this.generation;
    // While lingering, the server and the bounded timer keep the process alive (nothing else may).
    this.server.ref();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.deps.log.warn(`prometheus: no scrape within ${this.settings.lingerMillis} ms after the run; the final totals were not scraped`);
        resolve();
      }, this.settings.lingerMillis);
      this.waiters.push({
        generation,
        wake: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  private async closeServer(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** Creates (not yet listening: call start()) the Prometheus endpoint. */
export function createPrometheusExporter(settings: PrometheusSettings, deps: PrometheusDeps): PrometheusEndpoint {
  return new PrometheusEndpoint(settings, deps);
}
