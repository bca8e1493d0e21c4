/**
 * Prometheus endpoint (`--prometheus [host:port]`, default 127.0.0.1:9464): the same OTel metrics,
 * served at /metrics in the Prometheus text format by @opentelemetry/exporter-prometheus, on our
 * own node:http server (so port 0 works and we know the bound address and when a scrape happened).
 * Names: dots become underscores, counters get `_total`; the exporter appends no unit suffix
 * (docs/metrics.md lists the real names). Resource attributes go to `target_info`; host.name and
 * service.name are also copied onto every series as host_name and service_name labels.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { UsageError } from "../src/errors.js";
import type { LedgerSnapshot } from "../src/core/types.js";
import { MeterExporter, type OtelDeps } from "./otel.js";
import type { Exporter } from "../src/core/contracts.js";
import type { ListenAddress, PrometheusSettings } from "./config.js";

// Pure configuration pieces live in config.ts, so option parsing never loads the OTel SDK.
export type { ListenAddress, PrometheusSettings } from "./config.js";

/** The Prometheus exporter: an OTel MeterExporter read by scrapes of our own HTTP server. */
export class PrometheusEndpoint implements Exporter {
  readonly id = "prometheus";
  /** Scrapes served so far. */
  scrapes = 0;
  private server: Server | undefined;
  private readonly meter: MeterExporter;
  /** Incremented when lingering starts: only scrapes that begin after it read the final totals. */
  private generation = 0;
  private waiters: { generation: number; wake: () => void }[] = [];

  constructor(
    private reader: PrometheusExporter,
    private readonly settings: PrometheusSettings,
    private readonly deps: OtelDeps,
  ) {
    this.meter = new MeterExporter({
      id: this.id,
      resource: deps.resource,
      reader,
      failures: deps.failures,
      log: deps.log,
      shutdownTimeoutMillis: settings.lingerMillis + 5000,
      beforeShutdown: async () => this.linger(),
      afterShutdown: async () => this.closeServer(),
      // Scrapes are served by the newest reader after a rebuild (many jobs dropped).
      newReader: () => newPrometheusReader(),
      onReader: (r) => (this.reader = r as PrometheusExporter),
    });
  }

  /** Starts listening (once; later calls do nothing); throws UsageError("--prometheus") when the address cannot be bound. */
  async start(): Promise<void> {
    if (this.server) return;
    const server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once("error", (err: NodeJS.ErrnoException) =>
        reject(
          new UsageError(
            "--prometheus",
            `cannot listen on ${this.settings.listen.host}:${this.settings.listen.port}: ${err.code ?? err.message}`,
            { cause: err },
          ),
        ),
      );
      server.listen({ host: this.settings.listen.host, port: this.settings.listen.port }, () => resolve());
    });
    // Like the OTel exporter's own server: never keeps the process alive by itself.
    server.unref();
    this.server = server;
    this.deps.log.info(`prometheus: serving metrics at ${this.url()}`);
  }

  update(snapshot: LedgerSnapshot): void {
    this.meter.update(snapshot);
  }

  /** Lingers for a final scrape (settings.lingerMillis), then closes the server. */
  async shutdown(final: LedgerSnapshot): Promise<void> {
    await this.meter.shutdown(final);
  }

  failures(): Record<string, number> {
    return this.meter.failures();
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
    this.reader.getMetricsRequestHandler(req, res);
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
        this.deps.log.warn(
          `prometheus: no scrape within ${this.settings.lingerMillis} ms after the run; the final totals were not scraped`,
        );
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
export function createPrometheusExporter(settings: PrometheusSettings, deps: OtelDeps): PrometheusEndpoint {
  return new PrometheusEndpoint(newPrometheusReader(), settings, deps);
}

function newPrometheusReader(): PrometheusExporter {
  return new PrometheusExporter({
    preventServerStart: true,
    withResourceConstantLabels: /^(host\.name|service\.name)$/,
  });
}
