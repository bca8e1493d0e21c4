/**
 * The settings the metric exporters take, as src/config/export.ts builds them from flags and the
 * OTEL_* variables (validated there; no OTel SDK import here).
 */
import type { ListenAddress } from "../src/config/values.js";

export type { ListenAddress };

/** OTLP protocols powerprint speaks (grpc is not supported). */
export type OtlpProtocol = "http/protobuf" | "http/json";
/** OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE values. */
export type TemporalityPreference = "cumulative" | "delta" | "lowmemory";

/** Resolved OTLP configuration (see src/config/export.ts resolveOtlpConfig for the variables). */
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

/** Settings of the Prometheus endpoint. */
export interface PrometheusSettings {
  listen: ListenAddress;
  /**
   * After the run, keep serving the final totals until one scrape has read them, at most this
   * long (ms); 0: close at once (a scrape between the last one and exit is then never seen).
   */
  lingerMillis: number;
}
