/**
 * The factory of metric exporters (OTLP, Prometheus, console) from a validated ExportConfig
 * (src/config/export.ts builds it from the flags and the OTEL_* variables).
 */
import { hostname } from "node:os";
import type { ExportConfig } from "../src/config/export.js";
import type { JobIdentity } from "../src/config/identity.js";
// otel.ts, prometheus.ts and console.ts pull in the OTel SDK (tens of MiB, ~0.2 s): createExporters
// imports them only when an exporter is asked for.
import type { Exporter, Logger } from "../src/core/contracts.js";
import type { SelfMetrics } from "../src/core/self-metrics.js";

/** Dependencies of createExporters. */
export interface ExportDeps {
  log: Logger;
  /** host.name; default os.hostname(). */
  hostName?: string;
  job: JobIdentity;
  /** Where the console exporter writes; default process.stderr. */
  consoleStream?: NodeJS.WritableStream;
  /** service.instance.id; default a random UUID. */
  serviceInstanceId?: string;
  /** The agent's own figures, exported with the ledger's (agent only). */
  self?: SelfMetrics;
  /** OTel SDK series per instrument (the agent's bound on jobs × series per job); default the SDK's. */
  cardinalityLimit?: number;
}

/**
 * Creates the exporters the config asks for (none when no flag and no OTEL_METRICS_EXPORTER
 * asks). Starts the Prometheus server, so a busy port fails here (UsageError naming --prometheus),
 * before the run.
 */
export async function createExporters(config: ExportConfig, deps: ExportDeps): Promise<Exporter[]> {
  if (config.selected.size === 0) return [];

  const { FailureTracker, buildResource, createOtlpExporter, resolveResourceAttributes } = await import("./otel.js");
  const attributes = resolveResourceAttributes({
    env: config.env,
    serviceName: config.serviceName,
    hostName: deps.hostName ?? hostname(),
    serviceInstanceId: deps.serviceInstanceId,
    resourceAttributes: config.resourceAttributes,
  });
  const otel = { resource: buildResource(attributes), failures: new FailureTracker(), log: deps.log, self: deps.self, cardinalityLimit: deps.cardinalityLimit };
  deps.log.debug(`export: job ${deps.job.id} (${deps.job.origin}), service.name=${attributes["service.name"]}`);

  const exporters: Exporter[] = [];
  // Prometheus first: it is the one that can fail to start (port in use), before anything pushes.
  if (config.prometheus) {
    const { createPrometheusExporter } = await import("./prometheus.js");
    const prometheus = createPrometheusExporter(config.prometheus, otel);
    await prometheus.start();
    exporters.push(prometheus);
  }
  if (config.otlp) {
    exporters.push(createOtlpExporter(config.otlp, otel));
    deps.log.info(`otlp: exporting every ${config.otlp.exportIntervalMillis} ms to ${config.otlp.url} (${config.otlp.protocol})`);
  }
  if (config.selected.has("console")) {
    const { createConsoleExporter } = await import("./console.js");
    exporters.push(createConsoleExporter({ exportIntervalMillis: config.exportIntervalMillis, stream: deps.consoleStream }, otel));
  }
  return exporters;
}
