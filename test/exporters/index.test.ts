/**
 * The standard OTEL_* variables and the export flags, one row per variable, observed on the wire
 * by a loopback OTLP receiver (what the exporter really sends), plus the UsageErrors for bad input.
 */
import { Command } from "commander";
import { afterEach, describe, expect, test } from "vitest";
import { declareExportFlags, resolveOtlpConfig, type ExportFlags } from "../../src/config/export.js";
import { exportersFromFlags } from "../helpers/exporters.js";
import type { Exporter } from "../../src/core/contracts.js";
import type { JobIdentity } from "../../src/config/identity.js";
import { UsageError } from "../../src/errors.js";
import { attributesOf, metricsOf, parseJsonRequest, startOtlpSink, type OtlpSink, type RecordedRequest } from "./otlp-sink.js";
import { recordingLogger, snapshot } from "./snapshots.js";

const job: JobIdentity = { id: "j-1", name: "train", attributes: {}, origin: "flag" };
const final = snapshot({ jobs: [{ id: "j-1", name: "train", cpuJoules: 12.5, gpuJoules: 300.25 }] });

let sink: OtlpSink;
afterEach(async () => {
  await sink?.close();
});

/** Creates exporters from opts/env (the sink's URL substituted for "SINK"), exports `final` once at shutdown. */
async function exportOnce(opts: ExportFlags, env: Record<string, string>) {
  sink = await startOtlpSink();
  const sub = (v: string) => v.replace("SINK", sink.baseUrl);
  const resolvedEnv = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, sub(v)]));
  const resolvedOpts = { ...opts, otlp: typeof opts.otlp === "string" ? sub(opts.otlp) : opts.otlp };
  const log = recordingLogger();
  const exporters = await exportersFromFlags(resolvedOpts, { env: resolvedEnv, log, job, hostName: "node-a", serviceInstanceId: "inst-1" });
  for (const e of exporters) await e.shutdown(final);
  return { exporters, log };
}

function lastJson(requests: RecordedRequest[]) {
  expect(requests.length).toBeGreaterThan(0);
  return parseJsonRequest(requests[requests.length - 1]);
}

interface Row {
  name: string;
  opts?: ExportFlags;
  env: Record<string, string>;
  check(requests: RecordedRequest[], exporters: Exporter[]): void;
}

const json = { OTEL_EXPORTER_OTLP_PROTOCOL: "http/json" };

const rows: Row[] = [
  {
    name: "OTEL_EXPORTER_OTLP_ENDPOINT: base URL + /v1/metrics",
    opts: { otlp: true },
    env: { ...json, OTEL_EXPORTER_OTLP_ENDPOINT: "SINK/base/" },
    check: (r) => expect(r[0].path).toBe("/base/v1/metrics"),
  },
  {
    name: "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: used as is, wins over OTEL_EXPORTER_OTLP_ENDPOINT",
    opts: { otlp: true },
    env: { ...json, OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: "SINK/custom/path", OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9/nowhere" },
    check: (r) => expect(r[0].path).toBe("/custom/path"),
  },
  {
    name: "--otlp URL wins over the variables",
    opts: { otlp: "SINK/vm/opentelemetry" },
    env: { ...json, OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: "http://127.0.0.1:9/nowhere" },
    check: (r) => expect(r[0].path).toBe("/vm/opentelemetry/v1/metrics"),
  },
  {
    name: "OTEL_EXPORTER_OTLP_HEADERS: sent, values percent-decoded",
    opts: { otlp: "SINK" },
    env: { ...json, OTEL_EXPORTER_OTLP_HEADERS: "Authorization=Bearer%20s3cr%3Dt, X-Scope-OrgID=tenant-1" },
    check: (r) => {
      expect(r[0].headers.authorization).toBe("Bearer s3cr=t");
      expect(r[0].headers["x-scope-orgid"]).toBe("tenant-1");
    },
  },
  {
    name: "OTEL_EXPORTER_OTLP_METRICS_HEADERS: overrides the same key of OTEL_EXPORTER_OTLP_HEADERS",
    opts: { otlp: "SINK" },
    env: { ...json, OTEL_EXPORTER_OTLP_HEADERS: "X-Tenant=general,X-Other=1", OTEL_EXPORTER_OTLP_METRICS_HEADERS: "X-Tenant=metrics" },
    check: (r) => {
      expect(r[0].headers["x-tenant"]).toBe("metrics");
      expect(r[0].headers["x-other"]).toBe("1");
    },
  },
  {
    name: "protocol default: http/protobuf",
    opts: { otlp: "SINK" },
    env: {},
    check: (r) => expect(r[0].headers["content-type"]).toBe("application/x-protobuf"),
  },
  {
    name: "OTEL_EXPORTER_OTLP_PROTOCOL=http/json: JSON body with the job's energy",
    opts: { otlp: "SINK" },
    env: json,
    check: (r) => {
      expect(r[0].headers["content-type"]).toBe("application/json");
      const energy = metricsOf(lastJson(r)).find((m) => m.name === "powerprint.job.energy");
      expect(energy?.unit).toBe("J");
      const gpu = energy?.sum?.dataPoints.find((p) => attributesOf(p.attributes)["hw.type"] === "gpu");
      expect(gpu?.asDouble).toBe(300.25);
      expect(attributesOf(gpu?.attributes ?? [])).toMatchObject({ "powerprint.job.id": "j-1", "powerprint.job.name": "train" });
    },
  },
  {
    name: "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: wins over OTEL_EXPORTER_OTLP_PROTOCOL",
    opts: { otlp: "SINK" },
    env: { OTEL_EXPORTER_OTLP_PROTOCOL: "http/json", OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: "http/protobuf" },
    check: (r) => expect(r[0].headers["content-type"]).toBe("application/x-protobuf"),
  },
  {
    name: "OTEL_EXPORTER_OTLP_COMPRESSION=gzip",
    opts: { otlp: "SINK" },
    env: { ...json, OTEL_EXPORTER_OTLP_COMPRESSION: "gzip" },
    check: (r) => {
      expect(r[0].headers["content-encoding"]).toBe("gzip");
      expect(metricsOf(lastJson(r)).length).toBeGreaterThan(0);
    },
  },
  {
    name: "temporality default: cumulative (2) for counters",
    opts: { otlp: "SINK" },
    env: json,
    check: (r) => {
      const energy = metricsOf(lastJson(r)).find((m) => m.name === "powerprint.job.energy");
      expect(energy?.sum?.aggregationTemporality).toBe(2);
      expect(energy?.sum?.isMonotonic).toBe(true);
    },
  },
  {
    name: "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta: delta (1) for counters",
    opts: { otlp: "SINK" },
    env: { ...json, OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: "DELTA" },
    check: (r) => {
      const energy = metricsOf(lastJson(r)).find((m) => m.name === "powerprint.job.energy");
      expect(energy?.sum?.aggregationTemporality).toBe(1);
    },
  },
  {
    name: "OTEL_SERVICE_NAME: service.name; host.name and service.instance.id on the resource",
    opts: { otlp: "SINK" },
    env: { ...json, OTEL_SERVICE_NAME: "trainer-svc" },
    check: (r) =>
      expect(attributesOf(lastJson(r).resourceMetrics[0].resource.attributes)).toMatchObject({
        "service.name": "trainer-svc",
        "host.name": "node-a",
        "service.instance.id": "inst-1",
      }),
  },
  {
    name: "--service-name wins over OTEL_SERVICE_NAME",
    opts: { otlp: "SINK", serviceName: "from-flag" },
    env: { ...json, OTEL_SERVICE_NAME: "from-env" },
    check: (r) => expect(attributesOf(lastJson(r).resourceMetrics[0].resource.attributes)["service.name"]).toBe("from-flag"),
  },
  {
    name: "OTEL_RESOURCE_ATTRIBUTES: merged into the resource (service.name from it when OTEL_SERVICE_NAME is unset)",
    opts: { otlp: "SINK" },
    env: { ...json, OTEL_RESOURCE_ATTRIBUTES: "deployment.environment=prod,service.name=from-attrs,cluster=eu%2Cwest" },
    check: (r) =>
      expect(attributesOf(lastJson(r).resourceMetrics[0].resource.attributes)).toMatchObject({
        "deployment.environment": "prod",
        "service.name": "from-attrs",
        cluster: "eu,west",
        "telemetry.sdk.language": "nodejs",
      }),
  },
  {
    name: "OTEL_METRICS_EXPORTER=otlp: exports without --otlp",
    env: { ...json, OTEL_METRICS_EXPORTER: "otlp", OTEL_EXPORTER_OTLP_ENDPOINT: "SINK" },
    check: (r, exporters) => {
      expect(exporters.map((e) => e.id)).toEqual(["otlp"]);
      expect(r[0].path).toBe("/v1/metrics");
    },
  },
];

describe("OTEL_* variables and flags, observed on the wire", () => {
  test.each(rows)("$name", async (row) => {
    const { exporters } = await exportOnce(row.opts ?? {}, row.env);
    row.check(sink.requests, exporters);
  });

  test("OTEL_EXPORTER_OTLP_TIMEOUT: a receiver slower than the timeout is a counted 'timeout' failure", async () => {
    sink = await startOtlpSink();
    sink.respond.delayMillis = 3000;
    const log = recordingLogger();
    const [otlp] = await exportersFromFlags(
      { otlp: sink.baseUrl },
      { env: { OTEL_EXPORTER_OTLP_TIMEOUT: "200" }, log, job, hostName: "node-a" },
    );
    // Without the 200 ms timeout the export would succeed after 3 s: the counted timeout proves it.
    await otlp.shutdown(final);
    expect(otlp.failures?.()).toEqual({ "otlp:timeout": 1 });
    expect(log.lines.filter((l) => l.level === "warn").map((l) => l.message).join("\n")).toMatch(/otlp: (final )?export to .* failed \(timeout/);
  });

  test("an HTTP error status is a counted failure of kind http_<status>, warned once", async () => {
    sink = await startOtlpSink();
    sink.respond.status = 401;
    const log = recordingLogger();
    const [otlp] = await exportersFromFlags({ otlp: sink.baseUrl, exportInterval: "100ms" }, { env: {}, log, job, hostName: "n" });
    otlp.update?.(final);
    await expect.poll(() => sink!.requests.length, { timeout: 30_000, interval: 50 }).toBeGreaterThanOrEqual(2);
    await otlp.shutdown(final);
    const failures = otlp.failures?.() ?? {};
    expect(failures["otlp:http_401"]).toBeGreaterThanOrEqual(2);
    expect(log.lines.filter((l) => l.level === "warn" && l.message.includes("http_401"))).toHaveLength(1);
  });

  test("OTEL_METRIC_EXPORT_INTERVAL: periodic exports at that interval (the SDK reader ignores the variable)", async () => {
    sink = await startOtlpSink();
    const [otlp] = await exportersFromFlags(
      { otlp: sink.baseUrl },
      { env: { OTEL_METRIC_EXPORT_INTERVAL: "150" }, log: recordingLogger(), job, hostName: "n" },
    );
    otlp.update?.(final);
    // Three periodic exports before any shutdown: at the default 15 s the first would come after
    // 15 s, past this wait (it waits for the event, with a bound well under the default interval).
    await expect.poll(() => sink!.requests.length, { timeout: 10_000, interval: 25 }).toBeGreaterThanOrEqual(3);
    const periodic = sink.requests.length;
    await otlp.shutdown(final);
    expect(sink.requests.length).toBeGreaterThanOrEqual(periodic + 1);
  });

  test("--export-interval wins over OTEL_METRIC_EXPORT_INTERVAL", () => {
    expect(resolveOtlpConfig({ otlp: true, exportInterval: "2s" }, { OTEL_METRIC_EXPORT_INTERVAL: "100" }).exportIntervalMillis).toBe(2000);
    expect(resolveOtlpConfig({ otlp: true }, { OTEL_METRIC_EXPORT_INTERVAL: "100" }).exportIntervalMillis).toBe(100);
    expect(resolveOtlpConfig({ otlp: true }, {}).exportIntervalMillis).toBe(15_000);
  });

  test("defaults: http://localhost:4318/v1/metrics, http/protobuf, 10 s timeout, cumulative, no compression", () => {
    expect(resolveOtlpConfig({ otlp: true }, {})).toEqual({
      url: "http://localhost:4318/v1/metrics",
      protocol: "http/protobuf",
      headers: {},
      timeoutMillis: 10_000,
      temporality: "cumulative",
      compression: "none",
      exportIntervalMillis: 15_000,
    });
  });

  test("no flag and no OTEL_METRICS_EXPORTER: no exporter", async () => {
    const exporters = await exportersFromFlags({}, { env: { OTEL_EXPORTER_OTLP_ENDPOINT: "http://x:4318" }, log: recordingLogger(), job });
    expect(exporters).toEqual([]);
  });

  test("--otlp console prints the metrics to the given stream, never to stdout", async () => {
    const chunks: string[] = [];
    const stream = { write: (c: string) => chunks.push(c) } as unknown as NodeJS.WritableStream;
    const exporters = await exportersFromFlags(
      { otlp: "console" },
      { env: {}, log: recordingLogger(), job, hostName: "n", consoleStream: stream },
    );
    expect(exporters.map((e) => e.id)).toEqual(["console"]);
    await exporters[0].shutdown(final);
    const text = chunks.join("");
    expect(text).toContain('powerprint.job.energy{powerprint.job.id="j-1",powerprint.job.name="train",hw.type="gpu"} 300.25 J');
    expect(text).toMatch(/^powerprint metrics \S+ service.name=powerprint$/m);
  });
});

describe("bad input is a UsageError naming the flag or variable", () => {
  const errorRows: { opts?: ExportFlags; env?: Record<string, string>; field: string; message: RegExp | string }[] = [
    {
      env: { OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" },
      field: "OTEL_EXPORTER_OTLP_PROTOCOL",
      message: "OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' is not supported; use http/protobuf or http/json",
    },
    { env: { OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: "grpc" }, field: "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", message: /'grpc' is not supported/ },
    { env: { OTEL_EXPORTER_OTLP_TIMEOUT: "10s" }, field: "OTEL_EXPORTER_OTLP_TIMEOUT", message: /positive whole number of milliseconds/ },
    { env: { OTEL_EXPORTER_OTLP_HEADERS: "Authorization" }, field: "OTEL_EXPORTER_OTLP_HEADERS", message: /'Authorization' is not key=value/ },
    { env: { OTEL_EXPORTER_OTLP_HEADERS: "bad header=1" }, field: "OTEL_EXPORTER_OTLP_HEADERS", message: /not a valid HTTP header name/ },
    { env: { OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318" }, field: "OTEL_EXPORTER_OTLP_ENDPOINT", message: /only http:\/\/ and https:\/\// },
    { env: { OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: "not a url" }, field: "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", message: /is not a URL/ },
    { env: { OTEL_EXPORTER_OTLP_COMPRESSION: "br" }, field: "OTEL_EXPORTER_OTLP_COMPRESSION", message: /use none or gzip/ },
    {
      env: { OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: "sometimes" },
      field: "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
      message: /use cumulative, delta or lowmemory/,
    },
    { env: { OTEL_METRIC_EXPORT_INTERVAL: "-5" }, field: "OTEL_METRIC_EXPORT_INTERVAL", message: /positive whole number/ },
    { env: { OTEL_RESOURCE_ATTRIBUTES: "a=1,oops" }, field: "OTEL_RESOURCE_ATTRIBUTES", message: /'oops' is not key=value/ },
    { env: { OTEL_RESOURCE_ATTRIBUTES: "a=%zz" }, field: "OTEL_RESOURCE_ATTRIBUTES", message: /percent-encoding/ },
    { opts: { otlp: "ftp://x" }, field: "--otlp", message: /only http:\/\/ and https:\/\// },
    { opts: { otlp: true, exportInterval: "5x" }, field: "--export-interval", message: /must be a duration such as/ },
    { opts: { otlp: true, exportInterval: "10ms" }, field: "--export-interval", message: /must be at least 100 ms/ },
    { opts: { prometheus: "localhost:http" }, field: "--prometheus", message: /port must be a number/ },
    { opts: { prometheus: "::1:9464" }, field: "--prometheus", message: /IPv6 address in brackets/ },
    { opts: { prometheus: true, prometheusLinger: "soon" }, field: "--prometheus-linger", message: /must be a duration such as/ },
    { env: { OTEL_EXPORTER_PROMETHEUS_PORT: "99999" }, opts: { prometheus: true }, field: "OTEL_EXPORTER_PROMETHEUS_PORT", message: /0..65535/ },
    { env: { OTEL_METRICS_EXPORTER: "zipkin" }, field: "OTEL_METRICS_EXPORTER", message: /'zipkin' is not supported/ },
    { opts: { otlp: true, serviceName: " " }, field: "--service-name", message: /must not be empty/ },
  ];

  test.each(errorRows)("$field: $message", async (row) => {
    const opts = row.opts ?? { otlp: true };
    const error = await exportersFromFlags(opts, { env: row.env ?? {}, log: recordingLogger(), job }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).field).toBe(row.field);
    if (typeof row.message === "string") expect((error as UsageError).message).toBe(row.message);
    else expect((error as UsageError).message).toMatch(row.message);
  });

  test("a busy --prometheus port is a UsageError, and nothing else was started", async () => {
    sink = await startOtlpSink();
    const error = await exportersFromFlags(
      { prometheus: `127.0.0.1:${sink.port}`, otlp: sink.baseUrl },
      { env: {}, log: recordingLogger(), job },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).message).toMatch(/^--prometheus: cannot listen on 127.0.0.1:\d+: EADDRINUSE/);
    expect(sink.requests).toEqual([]);
  });
});

describe("declareExportFlags", () => {
  function parse(argv: string[]): ExportFlags {
    const cmd = declareExportFlags(new Command("run").exitOverride());
    cmd.parse(argv, { from: "user" });
    return cmd.opts<ExportFlags>();
  }

  test("flags parse as createExporters expects", () => {
    expect(parse([])).toEqual({ tag: [] });
    expect(parse(["--otlp"])).toMatchObject({ otlp: true });
    expect(parse(["--otlp", "console"])).toMatchObject({ otlp: "console" });
    expect(parse(["--otlp", "http://vm:8428/opentelemetry", "--export-interval", "5s"])).toMatchObject({
      otlp: "http://vm:8428/opentelemetry",
      exportInterval: "5s",
    });
    expect(parse(["--prometheus"])).toMatchObject({ prometheus: true });
    expect(parse(["--prometheus", "0.0.0.0:9500", "--prometheus-linger", "30s"])).toMatchObject({
      prometheus: "0.0.0.0:9500",
      prometheusLinger: "30s",
    });
    expect(
      parse(["--job-id", "42", "--job-name", "bert", "--tag", "team=nlp", "--tag", "exp=a=b", "--service-name", "svc"]),
    ).toEqual({ jobId: "42", jobName: "bert", tag: ["team=nlp", "exp=a=b"], serviceName: "svc" });
  });
});
