/**
 * Export options of the CLI and the factory of metric exporters (OTLP, Prometheus, console).
 *
 * Configuration is validated once here, from flags and the (injected) environment; every bad
 * value is a UsageError naming the flag or variable. The standard OTel variables are read here
 * rather than by the OTel SDK (which reads process.env only, and ignores some of them).
 */
import { hostname } from "node:os";
import { Option, type Command } from "commander";
import type { JobIdentity } from "../src/config/identity.js";
import { UsageError } from "../src/errors.js";
import { parseDurationMillis } from "../src/units.js";
import { checkDurationBound } from "../src/config/options.js";
import {
  DEFAULT_PROMETHEUS_HOST,
  DEFAULT_PROMETHEUS_PORT,
  parseKeyValueList,
  parseListenAddress,
  type OtlpConfig,
  type OtlpProtocol,
  type PrometheusSettings,
  type TemporalityPreference,
} from "./config.js";
// otel.ts, prometheus.ts and console.ts pull in the OTel SDK (tens of MiB, ~0.2 s): createExporters
// imports them only when an exporter is asked for.
import type { Exporter, Logger } from "../src/core/contracts.js";

/** Default OTLP/HTTP endpoint (the OTel spec's). */
export const DEFAULT_OTLP_ENDPOINT = "http://localhost:4318";
/**
 * Default export interval, ms. The OTel spec's default is 60 s; a job's power curve needs finer
 * points and a short job should show up while it runs, so powerprint uses 15 s.
 */
export const DEFAULT_EXPORT_INTERVAL_MILLIS = 15_000;
/** Default OTLP request timeout (OTel spec), ms. */
export const DEFAULT_OTLP_TIMEOUT_MILLIS = 10_000;

/** Options registered by addExportOptions, as commander parses them. */
export interface ExportOptions {
  /** true: --otlp without a value; a string: an endpoint URL or "console". */
  otlp?: string | boolean;
  exportInterval?: string;
  prometheus?: string | boolean;
  prometheusLinger?: string;
  jobId?: string;
  jobName?: string;
  tag?: string[];
  serviceName?: string;
}

/** Registers the export and job identity flags on a command (run, agent, simulate). */
export function addExportOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option(
        "--otlp [endpoint]",
        `push OTLP metrics: to endpoint (adds /v1/metrics unless the path ends with it), else OTEL_EXPORTER_OTLP_(METRICS_)ENDPOINT, else ${DEFAULT_OTLP_ENDPOINT}; "console" prints them to stderr`,
      ),
    )
    .addOption(
      new Option(
        "--export-interval <duration>",
        `OTLP/console export interval, e.g. 5s (default OTEL_METRIC_EXPORT_INTERVAL ms, else ${DEFAULT_EXPORT_INTERVAL_MILLIS / 1000}s)`,
      ),
    )
    .addOption(
      new Option(
        "--prometheus [host:port]",
        `serve Prometheus metrics at http://host:port/metrics (default ${DEFAULT_PROMETHEUS_HOST}:${DEFAULT_PROMETHEUS_PORT})`,
      ),
    )
    .addOption(
      new Option(
        "--prometheus-linger <duration>",
        "after the run, keep serving until one scrape has read the final totals, at most this long (default 0: exit at once)",
      ),
    )
    .addOption(new Option("--job-id <id>", "job id (default: SLURM_JOB_ID, TORCHELASTIC_RUN_ID, Kubernetes downward API, else generated)"))
    .addOption(new Option("--job-name <name>", "job name (default: the scheduler's, else the command)"))
    .addOption(
      new Option("--tag <key=value>", "job attribute on every per-job metric (repeatable)")
        .argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value])
        .default([] as string[]),
    )
    .addOption(new Option("--service-name <name>", "OTel service.name (default OTEL_SERVICE_NAME, else powerprint)"));
}

function envValue(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name]?.trim();
  return value ? value : undefined;
}

/** The first set variable of `names` (signal-specific first), with its name. */
function firstEnv(env: NodeJS.ProcessEnv, names: string[]): { name: string; value: string } | undefined {
  for (const name of names) {
    const value = envValue(env, name);
    if (value !== undefined) return { name, value };
  }
  return undefined;
}

function parseUrl(text: string, field: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(field, `'${text}' is not a URL (e.g. http://collector:4318)`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UsageError(field, `'${text}': only http:// and https:// are supported (OTLP/HTTP)`);
  }
  return url;
}

/** Base endpoint + "v1/metrics", the spec's rule for OTEL_EXPORTER_OTLP_ENDPOINT. */
function appendMetricsPath(url: URL): string {
  const copy = new URL(url.href);
  copy.pathname = copy.pathname.replace(/\/+$/, "") + "/v1/metrics";
  return copy.href;
}

function parsePositiveMillis(value: string, field: string): number {
  // Safe integers only: a 400-digit value would otherwise become Infinity.
  if (!/^\d+$/.test(value) || Number(value) <= 0 || !Number.isSafeInteger(Number(value))) {
    throw new UsageError(field, `'${value}' must be a positive whole number of milliseconds`);
  }
  return checkDurationBound(Number(value), field, value);
}

function parseDuration(value: string, field: string): number {
  const millis = parseDurationMillis(value);
  if (millis === undefined) throw new UsageError(field, `'${value}' is not a duration (e.g. 500ms, 5s, 1m)`);
  return checkDurationBound(millis, field, value);
}

/** Export interval: --export-interval, else OTEL_METRIC_EXPORT_INTERVAL (ms), else the default. */
export function resolveExportIntervalMillis(opts: ExportOptions, env: NodeJS.ProcessEnv): number {
  if (opts.exportInterval !== undefined) {
    const millis = parseDuration(opts.exportInterval, "--export-interval");
    if (millis < 100) throw new UsageError("--export-interval", `'${opts.exportInterval}' is below the minimum of 100ms`);
    return millis;
  }
  const fromEnv = envValue(env, "OTEL_METRIC_EXPORT_INTERVAL");
  if (fromEnv !== undefined) return parsePositiveMillis(fromEnv, "OTEL_METRIC_EXPORT_INTERVAL");
  return DEFAULT_EXPORT_INTERVAL_MILLIS;
}

function headerMap(env: NodeJS.ProcessEnv, name: string): Record<string, string> {
  const text = envValue(env, name);
  if (text === undefined) return Object.create(null) as Record<string, string>;
  const parsed = parseKeyValueList(text);
  if (!parsed.ok) throw new UsageError(name, `${parsed.error} (expected key=value,key2=value2, values percent-encoded)`);
  for (const key of Object.keys(parsed.values)) {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(key)) throw new UsageError(name, `'${key}' is not a valid HTTP header name`);
  }
  return parsed.values;
}

/**
 * The OTLP configuration from --otlp and the standard variables (signal-specific OTEL_EXPORTER_OTLP_METRICS_*
 * wins over OTEL_EXPORTER_OTLP_*):
 * - endpoint: --otlp URL (base; /v1/metrics added unless present), else _METRICS_ENDPOINT (as is),
 *   else OTEL_EXPORTER_OTLP_ENDPOINT + /v1/metrics, else http://localhost:4318/v1/metrics;
 * - _HEADERS (metrics-specific keys override), _PROTOCOL (http/protobuf default, http/json; grpc
 *   refused), _TIMEOUT (ms), _COMPRESSION (none|gzip), _METRICS_TEMPORALITY_PREFERENCE
 *   (cumulative default, delta, lowmemory), OTEL_METRIC_EXPORT_INTERVAL / --export-interval.
 */
export function resolveOtlpConfig(opts: ExportOptions, env: NodeJS.ProcessEnv): OtlpConfig {
  let url: string;
  if (typeof opts.otlp === "string" && opts.otlp !== "console") {
    const parsed = parseUrl(opts.otlp, "--otlp");
    url = /\/v1\/metrics\/?$/.test(parsed.pathname) ? parsed.href : appendMetricsPath(parsed);
  } else {
    const signal = envValue(env, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT");
    const base = envValue(env, "OTEL_EXPORTER_OTLP_ENDPOINT");
    if (signal !== undefined) url = parseUrl(signal, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT").href;
    else if (base !== undefined) url = appendMetricsPath(parseUrl(base, "OTEL_EXPORTER_OTLP_ENDPOINT"));
    else url = `${DEFAULT_OTLP_ENDPOINT}/v1/metrics`;
  }

  const protocolVar = firstEnv(env, ["OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"]);
  let protocol: OtlpProtocol = "http/protobuf";
  if (protocolVar) {
    const value = protocolVar.value.toLowerCase();
    if (value !== "http/protobuf" && value !== "http/json") {
      throw new UsageError(protocolVar.name, `'${protocolVar.value}' is not supported; use http/protobuf or http/json`);
    }
    protocol = value;
  }

  const headers = {
    ...headerMap(env, "OTEL_EXPORTER_OTLP_HEADERS"),
    ...headerMap(env, "OTEL_EXPORTER_OTLP_METRICS_HEADERS"),
  };

  const timeoutVar = firstEnv(env, ["OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"]);
  const timeoutMillis = timeoutVar ? parsePositiveMillis(timeoutVar.value, timeoutVar.name) : DEFAULT_OTLP_TIMEOUT_MILLIS;

  const compressionVar = firstEnv(env, ["OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION"]);
  let compression: "none" | "gzip" = "none";
  if (compressionVar) {
    const value = compressionVar.value.toLowerCase();
    if (value !== "none" && value !== "gzip") {
      throw new UsageError(compressionVar.name, `'${compressionVar.value}' is not supported; use none or gzip`);
    }
    compression = value;
  }

  let temporality: TemporalityPreference = "cumulative";
  const temporalityText = envValue(env, "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE");
  if (temporalityText !== undefined) {
    const value = temporalityText.toLowerCase();
    if (value !== "cumulative" && value !== "delta" && value !== "lowmemory") {
      throw new UsageError(
        "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
        `'${temporalityText}' is not supported; use cumulative, delta or lowmemory`,
      );
    }
    temporality = value;
  }

  return { url, protocol, headers, timeoutMillis, temporality, compression, exportIntervalMillis: resolveExportIntervalMillis(opts, env) };
}

/** Which exporters to create: from the flags, plus OTEL_METRICS_EXPORTER (otlp, prometheus, console, none). */
export function selectedExporters(opts: ExportOptions, env: NodeJS.ProcessEnv): Set<"otlp" | "console" | "prometheus"> {
  const selected = new Set<"otlp" | "console" | "prometheus">();
  if (opts.otlp === "console") selected.add("console");
  else if (opts.otlp !== undefined && opts.otlp !== false) selected.add("otlp");
  if (opts.prometheus !== undefined && opts.prometheus !== false) selected.add("prometheus");
  const fromEnv = envValue(env, "OTEL_METRICS_EXPORTER");
  if (fromEnv !== undefined) {
    for (const item of fromEnv.split(",").map((s) => s.trim().toLowerCase()).filter(Boolean)) {
      if (item === "otlp" || item === "console" || item === "prometheus") selected.add(item);
      else if (item !== "none") {
        throw new UsageError("OTEL_METRICS_EXPORTER", `'${item}' is not supported; use otlp, prometheus, console or none`);
      }
    }
  }
  return selected;
}

/** Prometheus settings: --prometheus value, else OTEL_EXPORTER_PROMETHEUS_HOST/_PORT, else 127.0.0.1:9464. */
export function resolvePrometheusSettings(opts: ExportOptions, env: NodeJS.ProcessEnv): PrometheusSettings {
  const portText = envValue(env, "OTEL_EXPORTER_PROMETHEUS_PORT");
  if (portText !== undefined && (!/^\d+$/.test(portText) || Number(portText) > 65535)) {
    throw new UsageError("OTEL_EXPORTER_PROMETHEUS_PORT", `'${portText}' must be a port number 0..65535`);
  }
  const defaults = {
    host: envValue(env, "OTEL_EXPORTER_PROMETHEUS_HOST") ?? DEFAULT_PROMETHEUS_HOST,
    port: portText !== undefined ? Number(portText) : DEFAULT_PROMETHEUS_PORT,
  };
  const listen = typeof opts.prometheus === "string" ? parseListenAddress(opts.prometheus, "--prometheus", defaults) : defaults;
  const lingerMillis = opts.prometheusLinger !== undefined ? parseDuration(opts.prometheusLinger, "--prometheus-linger") : 0;
  return { listen, lingerMillis };
}

/** Dependencies of createExporters. */
export interface ExportDeps {
  env: NodeJS.ProcessEnv;
  log: Logger;
  /** host.name; default os.hostname(). */
  hostName?: string;
  job: JobIdentity;
  /** Where the console exporter writes; default process.stderr. */
  consoleStream?: NodeJS.WritableStream;
  /** service.instance.id; default a random UUID. */
  serviceInstanceId?: string;
}

/**
 * Validates the export options and creates the exporters they ask for (none when no flag and no
 * OTEL_METRICS_EXPORTER asks). Starts the Prometheus server (so a busy port fails here, before the
 * run). Throws UsageError naming the flag or variable for any bad input.
 */
export async function createExporters(opts: ExportOptions, deps: ExportDeps): Promise<Exporter[]> {
  const env = deps.env;
  const selected = selectedExporters(opts, env);
  // Validate everything first, so no exporter is started when any input is bad.
  const otlpConfig = selected.has("otlp") ? resolveOtlpConfig(opts, env) : undefined;
  const exportIntervalMillis = resolveExportIntervalMillis(opts, env);
  const prometheusSettings = selected.has("prometheus") ? resolvePrometheusSettings(opts, env) : undefined;
  if (opts.serviceName !== undefined && opts.serviceName.trim() === "") {
    throw new UsageError("--service-name", "must not be empty");
  }
  const resourceText = envValue(env, "OTEL_RESOURCE_ATTRIBUTES");
  let resourceAttributes = Object.create(null) as Record<string, string>;
  if (resourceText !== undefined) {
    const parsed = parseKeyValueList(resourceText);
    if (!parsed.ok) throw new UsageError("OTEL_RESOURCE_ATTRIBUTES", `${parsed.error} (expected key=value,key2=value2)`);
    resourceAttributes = parsed.values;
  }
  if (selected.size === 0) return [];

  const { FailureTracker, buildResource, createOtlpExporter, resolveResourceAttributes } = await import("./otel.js");
  const attributes = resolveResourceAttributes({
    env,
    serviceName: opts.serviceName,
    hostName: deps.hostName ?? hostname(),
    serviceInstanceId: deps.serviceInstanceId,
    resourceAttributes,
  });
  const otel = { resource: buildResource(attributes), failures: new FailureTracker(), log: deps.log };
  deps.log.debug(`export: job ${deps.job.id} (${deps.job.origin}), service.name=${attributes["service.name"]}`);

  const exporters: Exporter[] = [];
  // Prometheus first: it is the one that can fail to start (port in use), before anything pushes.
  if (prometheusSettings) {
    const { createPrometheusExporter } = await import("./prometheus.js");
    const prometheus = createPrometheusExporter(prometheusSettings, otel);
    await prometheus.start();
    exporters.push(prometheus);
  }
  if (otlpConfig) {
    exporters.push(createOtlpExporter(otlpConfig, otel));
    deps.log.info(`otlp: exporting every ${otlpConfig.exportIntervalMillis} ms to ${otlpConfig.url} (${otlpConfig.protocol})`);
  }
  if (selected.has("console")) {
    const { createConsoleExporter } = await import("./console.js");
    exporters.push(createConsoleExporter({ exportIntervalMillis, stream: deps.consoleStream }, otel));
  }
  return exporters;
}
