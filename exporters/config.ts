/**
 * Pure configuration pieces of the exporters (no OTel SDK import): the key=value list parser of
 * the OTEL_* variables, the OTLP configuration types, the Prometheus listen address. Option
 * parsing and --help need only these; exporters/index.ts imports the SDK-backed modules when an
 * exporter is actually created.
 */
import { UsageError } from "../src/errors.js";

/**
 * Parses a W3C-baggage-like "key=value,key2=value2" list (OTEL_RESOURCE_ATTRIBUTES,
 * OTEL_EXPORTER_OTLP_HEADERS): values are percent-decoded, blanks around keys and values trimmed,
 * empty items skipped. Returns an error message (naming the item) instead of throwing.
 */
export function parseKeyValueList(text: string): { ok: true; values: Record<string, string> } | { ok: false; error: string } {
  // Keys are user text: prototype-free, so `__proto__=x` or `constructor=x` is an ordinary key.
  const values = Object.create(null) as Record<string, string>;
  for (const item of text.split(",")) {
    if (item.trim() === "") continue;
    const eq = item.indexOf("=");
    if (eq < 0) return { ok: false, error: `'${item.trim()}' is not key=value` };
    const key = item.slice(0, eq).trim();
    if (key === "") return { ok: false, error: `'${item.trim()}' has an empty key` };
    try {
      values[key] = decodeURIComponent(item.slice(eq + 1).trim());
    } catch {
      return { ok: false, error: `value of '${key}' is not valid percent-encoding` };
    }
  }
  return { ok: true, values };
}

/** OTLP protocols powerprint speaks (grpc is not supported). */
export type OtlpProtocol = "http/protobuf" | "http/json";
/** OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE values. */
export type TemporalityPreference = "cumulative" | "delta" | "lowmemory";

/** Resolved OTLP configuration (see exporters/index.ts resolveOtlpConfig for the variables). */
export interface OtlpConfig {
  /** Full URL of the metrics endpoint, e.g. http://localhost:4318/v1/metrics. */
  url: string;
  protocol: OtlpProtocol;
  headers: Record<string, string>;
  /** Per-request timeout including the transport's retries, ms. */
  timeoutMillis: number;
  temporality: TemporalityPreference;
  compression: "none" | "gzip";
  exportIntervalMillis: number;
}

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
