/**
 * Prometheus endpoint (`--prometheus [host:port]`, default 127.0.0.1:9464): the same OTel metrics,
 * served at /metrics in the Prometheus text format by @opentelemetry/exporter-prometheus, on our
 * own node:http server (so port 0 works and we know the bound address and when a scrape happened).
 * Names: dots become underscores, counters get `_total`; the exporter appends no unit suffix
 * (README.md "Metrics" lists the real names). Resource attributes go to `target_info`; host.name and
 * service.name are also copied onto every series as host_name and service_name labels.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { UsageError } from "../src/errors.js";
import type { LedgerSnapshot } from "../src/core/types.js";
import { MeterExporter, type OtelDeps } from "./otel.js";
import type { Exporter } from "../src/core/contracts.js";

/** Default listen address: loopback only (exposing it is an explicit choice). */
export const DEFAULT_PROMETHEUS_HOST = "127.0.0.1";
export const DEFAULT_PROMETHEUS_PORT = 9464;

/** Where the endpoint listens. */
export interface ListenAddress {
  host: string;
  port: number;
}

/**
 * Parses "host:port", "host", ":port", "port" or "[v6]:port" (the --prometheus value; `field`
 * names it in errors). Missing parts take the defaults. Port 0 asks for any free port.
 */
export function parseListenAddress(
  text: string,
  field: string,
  defaults: ListenAddress = { host: DEFAULT_PROMETHEUS_HOST, port: DEFAULT_PROMETHEUS_PORT },
): ListenAddress {
  const value = text.trim();
  if (value === "") return { ...defaults };
  let host: string | undefined;
  let portText: string | undefined;
  const v6 = /^\[([^\]]+)\](?::(.*))?$/.exec(value);
  if (v6) {
    host = v6[1];
    portText = v6[2];
  } else if (/^\d+$/.test(value)) {
    portText = value;
  } else {
    const colon = value.lastIndexOf(":");
    if (colon >= 0 && value.indexOf(":") !== colon) {
      throw new UsageError(field, `'${text}': write an IPv6 address in brackets, e.g. [::1]:9464`);
    }
    host = colon >= 0 ? value.slice(0, colon) : value;
    portText = colon >= 0 ? value.slice(colon + 1) : undefined;
  }
  let port = defaults.port;
  if (portText !== undefined && portText !== "") {
    if (!/^\d+$/.test(portText) || Number(portText) > 65535) {
      throw new UsageError(field, `'${text}': port must be a number 0..65535`);
    }
    port = Number(portText);
  }
  return { host: host || defaults.host, port };
}

/** Settings of the Prometheus endpoint. */
export interface PrometheusSettings {
  listen: ListenAddress;
  /**
   * After the run, keep serving the final totals until one scrape has read them, at most this
   * long (ms); 0: close at once (a scrape between the last one and exit is then never seen).
   */
  lingerMillis: number;
}

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
