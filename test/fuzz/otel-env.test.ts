// OTEL_* values (src/config/export.ts): every variable fuzzed at once. The
// resolvers return finite settings or throw UsageError naming the variable; nothing else.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { resolveExportIntervalMillis, resolveOtlpConfig, resolvePrometheusSettings, selectedExporters } from "../../src/config/export.js";
import { parseKeyValueList } from "../../src/config/values.js";
import { parseDurationMillis } from "../../src/units.js";
import { assertFinite, noisy, numberish, params, timeoutMillis, typedOnly } from "./fuzz.js";

const VARS = [
  "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
  "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
  "OTEL_EXPORTER_OTLP_COMPRESSION", "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
  "OTEL_METRIC_EXPORT_INTERVAL", "OTEL_METRICS_EXPORTER", "OTEL_EXPORTER_PROMETHEUS_HOST", "OTEL_EXPORTER_PROMETHEUS_PORT",
  "OTEL_RESOURCE_ATTRIBUTES", "OTEL_SERVICE_NAME",
];
const plausible = fc.oneof(
  numberish,
  fc.constantFrom("http://127.0.0.1:4318", "https://c:4318/v1/metrics", "ftp://x", "http://[::1", "http/protobuf", "http/json", "grpc", "gzip", "none", "delta", "cumulative", "lowmemory", "otlp,prometheus", "console", "a=b,c=%ZZ", "=x", "k=v%20w"),
  fc.string(),
  noisy(fc.constantFrom("=", ",", "%", "otlp", "http://")),
);
const env = fc.dictionary(fc.constantFrom(...VARS), plausible, { maxKeys: 8 });
const flags = fc.record(
  { otlp: fc.oneof(fc.constant(true), plausible), exportInterval: plausible, prometheus: fc.oneof(fc.constant(true), plausible), prometheusLinger: plausible },
  { requiredKeys: [] },
);

describe("fuzz: OTEL_* values", () => {
  it("resolveOtlpConfig / resolveExportIntervalMillis / resolvePrometheusSettings / selectedExporters", () => {
    fc.assert(
      fc.property(flags, env, (opts, e) => {
        const o = opts as Record<string, unknown>;
        const otlp = typedOnly(() => resolveOtlpConfig(o, e));
        assertFinite(otlp);
        if (otlp) expect(otlp.timeoutMillis > 0 && otlp.exportIntervalMillis > 0).toBe(true);
        assertFinite(typedOnly(() => resolveExportIntervalMillis(o, e)));
        const prom = typedOnly(() => resolvePrometheusSettings(o, e));
        assertFinite(prom);
        if (prom) expect(Number.isInteger(prom.listen.port) && prom.listen.port >= 0 && prom.listen.port <= 65535).toBe(true);
        typedOnly(() => selectedExporters(o, e));
      }),
      params,
    );
  }, timeoutMillis);

  it("parseKeyValueList: ok with string values, or an error message; never a throw", () => {
    fc.assert(
      fc.property(fc.oneof(plausible, noisy(fc.constantFrom("=", ",", "%", "%2", "%E0%A4%A"))), (text) => {
        const r = parseKeyValueList(text);
        if (r.ok) for (const v of Object.values(r.values)) expect(typeof v).toBe("string");
        else expect(typeof r.error).toBe("string");
      }),
      params,
    );
  }, timeoutMillis);

  it("parseDurationMillis: undefined or a finite, non-negative number", () => {
    fc.assert(
      fc.property(fc.oneof(plausible, fc.tuple(numberish, fc.constantFrom("ms", "s", "m", "h", "d", "")).map(([n, u]) => n + u)), (text) => {
        const ms = parseDurationMillis(text);
        if (ms !== undefined) expect(Number.isFinite(ms) && ms >= 0, `${text} → ${ms}`).toBe(true);
      }),
      params,
    );
  }, timeoutMillis);
});
