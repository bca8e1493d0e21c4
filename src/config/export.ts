/**
 * The export and job-identity flags of `run` and `agent`, and the metric exporters' settings built
 * from them and the standard OTEL_* variables (read by src/config/env.ts, never by the OTel SDK,
 * which reads process.env only and ignores some of them). Every bad value is a UsageError naming
 * the flag or variable; exporters/index.ts creates the exporters from the result.
 */
import { Option, type Command } from "commander";
import { UsageError } from "../errors.js";
import { firstEnv, readEnvironment, type EnvName, type EnvSource, type Environment } from "./env.js";
import {
  DEFAULT_PROMETHEUS_HOST,
  DEFAULT_PROMETHEUS_PORT,
  collect,
  parseDurationFlag,
  parseHttpUrl,
  parseKeyValueList,
  parseListenAddress,
  parsePositiveMillis,
} from "./values.js";
import type { OtlpConfig, OtlpProtocol, PrometheusSettings, TemporalityPreference } from "../../exporters/config.js";

/** Default OTLP/HTTP endpoint (the OTel spec's). */
export const DEFAULT_OTLP_ENDPOINT = "http://localhost:4318";
/**
 * Default export interval, ms. The OTel spec's default is 60 s; a job's power curve needs finer
 * points and a short job should show up while it runs, so powerprint uses 15 s.
 */
export const DEFAULT_EXPORT_INTERVAL_MILLIS = 15_000;
/** Default OTLP request timeout (OTel spec), ms. */
export const DEFAULT_OTLP_TIMEOUT_MILLIS = 10_000;

/** The export and identity flags as commander parses them (declareExportFlags). */
export interface ExportFlags {
  /** true: --otlp without a value; a string: an endpoint URL or "console". */
  otlp?: string | boolean;
  exportInterval?: string;
  prometheus?: string | boolean;
  prometheusLinger?: string;
  jobId?: string;
  jobName?: string;
  tag?: string[];
  serviceName?: string;
  strictEndpoints?: boolean;
}

/** A metric exporter kind. */
export type ExporterKind = "otlp" | "console" | "prometheus";

/** Validated export settings: what createExporters (exporters/index.ts) builds. */
export interface ExportConfig {
  /** The exporters asked for by flags and OTEL_METRICS_EXPORTER. */
  selected: ReadonlySet<ExporterKind>;
  otlp?: OtlpConfig;
  prometheus?: PrometheusSettings;
  /** OTLP/console export interval, ms. */
  exportIntervalMillis: number;
  /** --prometheus-linger, ms (0 when not given). */
  prometheusLingerMillis: number;
  /** --service-name (trimmed), if given. */
  serviceName?: string;
  /** OTEL_RESOURCE_ATTRIBUTES, parsed. */
  resourceAttributes: Record<string, string>;
  /** The variables the resource detection reads (OTEL_SERVICE_NAME, K8S_*). */
  env: Environment;
  /**
   * --strict-endpoints: an endpoint address that cannot be bound (port taken) is exit 2; by
   * default it is runtime trouble, warned, and measuring goes on without that endpoint.
   */
  strictEndpoints: boolean;
}

/** Registers the export and job identity flags on a command (run, agent). */
export function declareExportFlags(cmd: Command): Command {
  return cmd
    .option("--strict-endpoints", "exit 2 when --prometheus (or agent --listen) cannot listen (port taken); default: warn and measure on without it")
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
    .addOption(new Option("--tag <key=value>", "job attribute on every per-job metric (repeatable)").argParser(collect).default([] as string[]))
    .addOption(new Option("--service-name <name>", "OTel service.name (default OTEL_SERVICE_NAME, else powerprint)"));
}

/** Base endpoint + "v1/metrics", the spec's rule for OTEL_EXPORTER_OTLP_ENDPOINT. */
function appendMetricsPath(url: URL): string {
  const copy = new URL(url.href);
  copy.pathname = copy.pathname.replace(/\/+$/, "") + "/v1/metrics";
  return copy.href;
}

/** Export interval: --export-interval (at least 100 ms), else OTEL_METRIC_EXPORT_INTERVAL (ms), else the default. */
export function resolveExportIntervalMillis(flags: ExportFlags, source: EnvSource): number {
  if (flags.exportInterval !== undefined) return parseDurationFlag(flags.exportInterval, "--export-interval", 100);
  const fromEnv = readEnvironment(source).OTEL_METRIC_EXPORT_INTERVAL;
  if (fromEnv !== undefined) return parsePositiveMillis(fromEnv, "OTEL_METRIC_EXPORT_INTERVAL");
  return DEFAULT_EXPORT_INTERVAL_MILLIS;
}

function headerMap(env: Environment, name: EnvName): Record<string, string> {
  const text = env[name];
  if (text === undefined) return Object.create(null) as Record<string, string>;
  const parsed = parseKeyValueList(text);
  if (!parsed.ok) throw new UsageError(name, `${parsed.error} (expected key=value,key2=value2, values percent-encoded)`);
  for (const key of Object.keys(parsed.values)) {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(key)) throw new UsageError(name, `'${key}' is not a valid HTTP header name`);
  }
  return parsed.values;
}

/** One of `choices` (lower-cased) from the first set variable of `names`, else `fallback`. */
function envChoice<T extends string>(env: Environment, names: readonly EnvName[], choices: readonly T[], fallback: T): T {
  const v = firstEnv(env, names);
  if (!v) return fallback;
  const value = v.value.toLowerCase();
  if (!(choices as readonly string[]).includes(value)) {
    const list = choices.length === 2 ? choices.join(" or ") : `${choices.slice(0, -1).join(", ")} or ${choices[choices.length - 1]}`;
    throw new UsageError(v.name, `'${v.value}' is not supported; use ${list}`);
  }
  return value as T;
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
export function resolveOtlpConfig(flags: ExportFlags, source: EnvSource): OtlpConfig {
  const env = readEnvironment(source);
  let url: string;
  if (typeof flags.otlp === "string" && flags.otlp !== "console") {
    const parsed = parseHttpUrl(flags.otlp, "--otlp");
    url = /\/v1\/metrics\/?$/.test(parsed.pathname) ? parsed.href : appendMetricsPath(parsed);
  } else if (env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT !== undefined) {
    url = parseHttpUrl(env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT").href;
  } else if (env.OTEL_EXPORTER_OTLP_ENDPOINT !== undefined) {
    url = appendMetricsPath(parseHttpUrl(env.OTEL_EXPORTER_OTLP_ENDPOINT, "OTEL_EXPORTER_OTLP_ENDPOINT"));
  } else {
    url = `${DEFAULT_OTLP_ENDPOINT}/v1/metrics`;
  }
  const protocol = envChoice<OtlpProtocol>(env, ["OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"], ["http/protobuf", "http/json"], "http/protobuf");
  const headers = { ...headerMap(env, "OTEL_EXPORTER_OTLP_HEADERS"), ...headerMap(env, "OTEL_EXPORTER_OTLP_METRICS_HEADERS") };
  const timeoutVar = firstEnv(env, ["OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"]);
  const timeoutMillis = timeoutVar ? parsePositiveMillis(timeoutVar.value, timeoutVar.name) : DEFAULT_OTLP_TIMEOUT_MILLIS;
  const compression = envChoice<"none" | "gzip">(env, ["OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION"], ["none", "gzip"], "none");
  const temporality = envChoice<TemporalityPreference>(env, ["OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"], ["cumulative", "delta", "lowmemory"], "cumulative");
  return { url, protocol, headers, timeoutMillis, temporality, compression, exportIntervalMillis: resolveExportIntervalMillis(flags, env) };
}

/** Which exporters to create: from the flags, plus OTEL_METRICS_EXPORTER (otlp, prometheus, console, none). */
export function selectedExporters(flags: ExportFlags, source: EnvSource): Set<ExporterKind> {
  const selected = new Set<ExporterKind>();
  if (flags.otlp === "console") selected.add("console");
  else if (flags.otlp !== undefined && flags.otlp !== false) selected.add("otlp");
  if (flags.prometheus !== undefined && flags.prometheus !== false) selected.add("prometheus");
  const fromEnv = readEnvironment(source).OTEL_METRICS_EXPORTER;
  for (const item of fromEnv?.split(",").map((s) => s.trim().toLowerCase()).filter(Boolean) ?? []) {
    if (item === "otlp" || item === "console" || item === "prometheus") selected.add(item);
    else if (item !== "none") throw new UsageError("OTEL_METRICS_EXPORTER", `'${item}' is not supported; use otlp, prometheus, console or none`);
  }
  return selected;
}

/** Prometheus settings: --prometheus value, else OTEL_EXPORTER_PROMETHEUS_HOST/_PORT, else 127.0.0.1:9464. */
export function resolvePrometheusSettings(flags: ExportFlags, source: EnvSource): PrometheusSettings {
  const env = readEnvironment(source);
  const portText = env.OTEL_EXPORTER_PROMETHEUS_PORT;
  if (portText !== undefined && (!/^\d+$/.test(portText) || Number(portText) > 65535)) {
    throw new UsageError("OTEL_EXPORTER_PROMETHEUS_PORT", `'${portText}' must be a port number 0..65535`);
  }
  const defaults = { host: env.OTEL_EXPORTER_PROMETHEUS_HOST ?? DEFAULT_PROMETHEUS_HOST, port: portText !== undefined ? Number(portText) : DEFAULT_PROMETHEUS_PORT };
  const listen = typeof flags.prometheus === "string" ? parseListenAddress(flags.prometheus, "--prometheus", defaults) : defaults;
  return { listen, lingerMillis: prometheusLingerMillis(flags) };
}

function prometheusLingerMillis(flags: ExportFlags): number {
  return flags.prometheusLinger !== undefined ? parseDurationFlag(flags.prometheusLinger, "--prometheus-linger", 0) : 0;
}

/**
 * Validates the export flags and variables into an ExportConfig (UsageError naming the flag or
 * variable). Everything is checked before any exporter exists, so none is started on bad input.
 */
export function exportConfig(flags: ExportFlags, source: EnvSource): ExportConfig {
  const env = readEnvironment(source);
  const selected = selectedExporters(flags, env);
  const otlp = selected.has("otlp") ? resolveOtlpConfig(flags, env) : undefined;
  const exportIntervalMillis = resolveExportIntervalMillis(flags, env);
  const prometheus = selected.has("prometheus") ? resolvePrometheusSettings(flags, env) : undefined;
  if (flags.serviceName !== undefined && flags.serviceName.trim() === "") throw new UsageError("--service-name", "must not be empty");
  let resourceAttributes = Object.create(null) as Record<string, string>;
  if (env.OTEL_RESOURCE_ATTRIBUTES !== undefined) {
    const parsed = parseKeyValueList(env.OTEL_RESOURCE_ATTRIBUTES);
    if (!parsed.ok) throw new UsageError("OTEL_RESOURCE_ATTRIBUTES", `${parsed.error} (expected key=value,key2=value2)`);
    resourceAttributes = parsed.values;
  }
  return {
    selected,
    otlp,
    prometheus,
    exportIntervalMillis,
    prometheusLingerMillis: prometheusLingerMillis(flags),
    serviceName: flags.serviceName?.trim(),
    resourceAttributes,
    env,
    strictEndpoints: flags.strictEndpoints === true,
  };
}
