/**
 * deploy/otel-collector/config.yaml, checked against a schema written from the documented
 * configuration of each component (no Collector binary is built here; docs/kubernetes.md says so).
 * Every object is strict, so a misspelt or unsupported key fails like the Collector's own
 * unmarshalling ("has invalid keys") would. Sources, go.opentelemetry.io/collector (core repo):
 *   receiver/otlpreceiver/config.go + config/confighttp ServerConfig, config/configgrpc ServerConfig
 *   processor/memorylimiterprocessor (internal/memorylimiter Config)
 *   processor/batchprocessor/config.go
 *   exporter/otlphttpexporter/config.go + config/confighttp ClientConfig,
 *     config/configretry BackOffConfig, exporter/exporterhelper QueueConfig
 *   service/config.go (pipelines, extensions, telemetry)
 * Also: every pipeline reference names a configured component, memory_limiter comes first, only
 * core-repository component types are used, and the exporter points at VictoriaMetrics' OTLP path.
 *
 * Where a real Collector has been built (deploy/otel-collector/build-otelcol.sh: those four core
 * components compiled from Debian's golang-opentelemetry-collector-dev; optional, minutes), the
 * config is also checked by `otelcol validate`, and powerprint → Collector → VictoriaMetrics is run.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { afterEach, describe, expect, test } from "vitest";
import { z } from "zod";
import { runCli } from "../helpers/cli.js";
import { eventually, freePort, receiversSkipReason, startVictoriaMetrics } from "../helpers/receivers.js";
import { repoRoot } from "./k8s.js";

const duration = z.string().regex(/^\d+(\.\d+)?(ns|us|µs|ms|s|m|h)$/, "a Go duration such as 1s or 5m");
const hostPort = z.string().regex(/^[^:\s]*:\d+$/, "host:port");

const otlpReceiver = z.strictObject({
  protocols: z.strictObject({
    grpc: z
      .strictObject({
        endpoint: hostPort.optional(),
        transport: z.enum(["tcp", "unix"]).optional(),
        max_recv_msg_size_mib: z.number().int().positive().optional(),
        max_concurrent_streams: z.number().int().positive().optional(),
        read_buffer_size: z.number().int().nonnegative().optional(),
        write_buffer_size: z.number().int().nonnegative().optional(),
        include_metadata: z.boolean().optional(),
        tls: z.record(z.string(), z.unknown()).optional(),
        keepalive: z.record(z.string(), z.unknown()).optional(),
      })
      .nullable()
      .optional(),
    http: z
      .strictObject({
        endpoint: hostPort.optional(),
        traces_url_path: z.string().optional(),
        metrics_url_path: z.string().optional(),
        logs_url_path: z.string().optional(),
        max_request_body_size: z.number().int().positive().optional(),
        include_metadata: z.boolean().optional(),
        cors: z.strictObject({ allowed_origins: z.array(z.string()).optional(), allowed_headers: z.array(z.string()).optional(), max_age: z.number().optional() }).optional(),
        tls: z.record(z.string(), z.unknown()).optional(),
      })
      .nullable()
      .optional(),
  }),
});

const percentage = z.number().int().min(0).max(100);
const memoryLimiter = z
  .strictObject({
    check_interval: duration,
    limit_mib: z.number().int().positive().optional(),
    spike_limit_mib: z.number().int().nonnegative().optional(),
    limit_percentage: percentage.optional(),
    spike_limit_percentage: percentage.optional(),
    min_gc_interval_when_soft_limited: duration.optional(),
    min_gc_interval_when_hard_limited: duration.optional(),
  })
  // The processor refuses a config with neither limit, or with both kinds.
  .refine((c) => (c.limit_mib === undefined) !== (c.limit_percentage === undefined), "set exactly one of limit_mib and limit_percentage")
  .refine((c) => (c.spike_limit_percentage ?? 0) < (c.limit_percentage ?? 100), "spike_limit_percentage must be below limit_percentage");

const batch = z
  .strictObject({
    timeout: duration.optional(),
    send_batch_size: z.number().int().nonnegative().optional(),
    send_batch_max_size: z.number().int().nonnegative().optional(),
    metadata_keys: z.array(z.string()).optional(),
    metadata_cardinality_limit: z.number().int().nonnegative().optional(),
  })
  .nullable()
  .refine((c) => !c || !c.send_batch_max_size || c.send_batch_max_size >= (c.send_batch_size ?? 8192), "send_batch_max_size must be >= send_batch_size");

const otlpHttpExporter = z
  .strictObject({
    endpoint: z.url().optional(),
    metrics_endpoint: z.url().optional(),
    traces_endpoint: z.url().optional(),
    logs_endpoint: z.url().optional(),
    encoding: z.enum(["proto", "json"]).optional(),
    compression: z.enum(["gzip", "zstd", "snappy", "zlib", "deflate", "lz4", "none", ""]).optional(),
    timeout: duration.optional(),
    headers: z.record(z.string(), z.string()).optional(),
    read_buffer_size: z.number().int().nonnegative().optional(),
    write_buffer_size: z.number().int().nonnegative().optional(),
    tls: z.record(z.string(), z.unknown()).optional(),
    retry_on_failure: z
      .strictObject({
        enabled: z.boolean().optional(),
        initial_interval: duration.optional(),
        randomization_factor: z.number().optional(),
        multiplier: z.number().optional(),
        max_interval: duration.optional(),
        max_elapsed_time: duration.optional(),
      })
      .optional(),
    sending_queue: z
      .strictObject({
        enabled: z.boolean().optional(),
        num_consumers: z.number().int().positive().optional(),
        queue_size: z.number().int().positive().optional(),
        blocking: z.boolean().optional(),
        storage: z.string().optional(),
      })
      .optional(),
  })
  .refine((c) => c.endpoint !== undefined || c.metrics_endpoint !== undefined, "endpoint or metrics_endpoint is required");

/** Component types of the core repository this config may use, each with its documented schema. */
const coreComponents = {
  receivers: { otlp: otlpReceiver },
  processors: { memory_limiter: memoryLimiter, batch },
  exporters: { otlphttp: otlpHttpExporter },
} as const;
type Kind = keyof typeof coreComponents;

const componentId = z.string().regex(/^[a-z0-9_]+(\/[^/\s]+)?$/, "type[/name]");
const pipeline = z.strictObject({
  receivers: z.array(componentId).min(1),
  processors: z.array(componentId).optional(),
  exporters: z.array(componentId).min(1),
});
const collectorConfig = z.strictObject({
  receivers: z.record(componentId, z.unknown()),
  processors: z.record(componentId, z.unknown()).optional(),
  exporters: z.record(componentId, z.unknown()),
  extensions: z.record(componentId, z.unknown()).optional(),
  connectors: z.record(componentId, z.unknown()).optional(),
  service: z.strictObject({
    extensions: z.array(componentId).optional(),
    pipelines: z.record(z.string().regex(/^(traces|metrics|logs)(\/[^/\s]+)?$/), pipeline),
    telemetry: z
      .strictObject({
        logs: z.strictObject({ level: z.enum(["debug", "info", "warn", "error"]).optional(), encoding: z.enum(["console", "json"]).optional() }).optional(),
        metrics: z.strictObject({ level: z.enum(["none", "basic", "normal", "detailed"]).optional(), readers: z.array(z.unknown()).optional() }).optional(),
        resource: z.record(z.string(), z.string()).optional(),
      })
      .optional(),
  }),
});

/** Problems of a Collector config, one line each (empty: valid). */
export function collectorConfigProblems(config: unknown): string[] {
  const top = collectorConfig.safeParse(config);
  if (!top.success) return top.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  const problems: string[] = [];
  const cfg = top.data;
  for (const kind of Object.keys(coreComponents) as Kind[]) {
    for (const [id, body] of Object.entries(cfg[kind] ?? {})) {
      const type = id.split("/")[0];
      const schema = (coreComponents[kind] as Record<string, z.ZodType>)[type];
      if (!schema) {
        problems.push(`${kind}.${id}: '${type}' is not a core-repository component this config may use`);
        continue;
      }
      const parsed = schema.safeParse(body);
      if (!parsed.success) problems.push(...parsed.error.issues.map((i) => `${kind}.${id}.${i.path.join(".")}: ${i.message}`));
    }
  }
  for (const [name, p] of Object.entries(cfg.service.pipelines)) {
    for (const kind of ["receivers", "processors", "exporters"] as const) {
      for (const id of p[kind] ?? []) if (!(id in (cfg[kind] ?? {}))) problems.push(`service.pipelines.${name}.${kind}: '${id}' is not configured`);
    }
    const processors = p.processors ?? [];
    if (processors.some((id) => id.startsWith("memory_limiter")) && !processors[0].startsWith("memory_limiter")) {
      problems.push(`service.pipelines.${name}.processors: memory_limiter must come first`);
    }
  }
  return problems;
}

const configPath = join(repoRoot, "deploy", "otel-collector", "config.yaml");
const config = parse(readFileSync(configPath, "utf8")) as Record<string, Record<string, unknown>>;

describe("deploy/otel-collector/config.yaml", () => {
  test("valid against the components' documented configuration", () => {
    expect(collectorConfigProblems(config)).toEqual([]);
  });

  test("the metrics pipeline is OTLP in, memory_limiter then batch, OTLP/HTTP to VictoriaMetrics' OTLP path", () => {
    const service = config.service as { pipelines: Record<string, { receivers: string[]; processors: string[]; exporters: string[] }> };
    expect(service.pipelines.metrics).toEqual({ receivers: ["otlp"], processors: ["memory_limiter", "batch"], exporters: ["otlphttp/victoriametrics"] });
    const exporter = config.exporters["otlphttp/victoriametrics"] as { endpoint: string; encoding: string };
    // otlphttp appends /v1/metrics to endpoint: VictoriaMetrics' path is /opentelemetry/v1/metrics, protobuf only.
    expect(new URL(exporter.endpoint).pathname).toBe("/opentelemetry");
    expect(exporter.encoding).toBe("proto");
    // The receiver's HTTP port is the one the sidecar's --otlp names (deploy/kubernetes/sidecar/job.yaml).
    const http = (config.receivers.otlp as { protocols: { http: { endpoint: string } } }).protocols.http;
    expect(http.endpoint.endsWith(":4318")).toBe(true);
    expect(readFileSync(join(repoRoot, "deploy", "kubernetes", "sidecar", "job.yaml"), "utf8")).toContain("http://otel-collector.powerprint.svc:4318");
  });

  test("each rule fails on a broken copy", () => {
    const broken = (edit: (c: Record<string, Record<string, unknown>>) => void): string[] => {
      const copy = structuredClone(config);
      edit(copy);
      return collectorConfigProblems(copy);
    };
    expect(broken((c) => ((c.processors.batch as Record<string, unknown>).send_batch_sise = 1)).join("\n")).toMatch(/processors.batch.*send_batch_sise/);
    expect(broken((c) => ((c.exporters["otlphttp/victoriametrics"] as Record<string, unknown>).encoding = "protobuf")).join("\n")).toMatch(/exporters.otlphttp\/victoriametrics.encoding/);
    expect(broken((c) => (c.exporters.prometheusremotewrite = { endpoint: "http://x" })).join("\n")).toMatch(/'prometheusremotewrite' is not a core-repository component/);
    expect(broken((c) => ((c.service.pipelines as Record<string, { processors: string[] }>).metrics.processors = ["batch", "memory_limiter"])).join("\n")).toMatch(/memory_limiter must come first/);
    expect(broken((c) => ((c.service.pipelines as Record<string, { exporters: string[] }>).metrics.exporters = ["otlphttp"])).join("\n")).toMatch(/'otlphttp' is not configured/);
    expect(broken((c) => delete (c.processors.memory_limiter as Record<string, unknown>).limit_percentage).join("\n")).toMatch(/exactly one of limit_mib and limit_percentage/);
    expect(broken((c) => ((c.service as Record<string, unknown>).pipeline = {})).join("\n")).toMatch(/pipeline/);
  });
});

// ---------------------------------------------------------------------------------------------
// A real Collector (optional: deploy/otel-collector/build-otelcol.sh)

const otelcol = join(process.env.POWERPRINT_OTELCOL_DIR ?? join(repoRoot, ".cache", "otelcol"), "otelcol-powerprint");
const noCollector = !existsSync(otelcol);
if (noCollector) console.warn(`\n*** SKIPPING the real-Collector checks: ${otelcol} not built (optional: bash deploy/otel-collector/build-otelcol.sh) ***\n`);

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

function writeConfig(config: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), "pp-otelcol-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "config.yaml");
  writeFileSync(file, stringify(config));
  return file;
}

describe.skipIf(noCollector)("the real Collector (core components from Debian's sources)", () => {
  test("otelcol validate accepts config.yaml and refuses a misspelt key", () => {
    const ok = spawnSync(otelcol, ["validate", "--config", configPath], { encoding: "utf8" });
    expect(ok.status, ok.stderr).toBe(0);
    const broken = structuredClone(config);
    (broken.processors.batch as Record<string, unknown>).send_batch_sise = 1;
    const bad = spawnSync(otelcol, ["validate", "--config", writeConfig(broken)], { encoding: "utf8" });
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/invalid keys: send_batch_sise/);
  });

  test.skipIf(receiversSkipReason("victoria-metrics") !== undefined)("powerprint run → Collector → VictoriaMetrics: the report's per-job energy arrives", async () => {
    const vm = await startVictoriaMetrics({ prometheusNaming: true });
    cleanups.push(() => vm.stop());
    // The config as shipped, but for the addresses: loopback ports here, VictoriaMetrics' URL.
    const otlpPort = await freePort();
    const run = structuredClone(config) as Record<string, Record<string, unknown>>;
    const protocols = (run.receivers.otlp as { protocols: Record<string, { endpoint: string }> }).protocols;
    protocols.http.endpoint = `127.0.0.1:${otlpPort}`;
    protocols.grpc.endpoint = `127.0.0.1:${await freePort()}`;
    (run.exporters["otlphttp/victoriametrics"] as { endpoint: string }).endpoint = `${vm.baseUrl}/opentelemetry`;
    (run.processors.batch as { timeout: string }).timeout = "200ms";
    (run.service as Record<string, unknown>).telemetry = { logs: { level: "info" }, metrics: { level: "none" } };
    const collector = spawn(otelcol, ["--config", writeConfig(run)], { stdio: ["ignore", "ignore", "pipe"] });
    let log = "";
    collector.stderr?.on("data", (d) => (log += d));
    const exited = new Promise<void>((r) => collector.once("exit", () => r()));
    cleanups.push(async () => {
      collector.kill("SIGTERM");
      await exited;
    });
    // Ready when it says so on stderr (an event), or failed when it exits first.
    await new Promise<void>((resolve, reject) => {
      const check = () => /Everything is ready/.test(log) && resolve();
      check();
      collector.stderr?.on("data", check);
      collector.once("exit", () => reject(new Error(`Collector did not start:\n${log}`)));
      setTimeout(() => reject(new Error(`Collector not ready within 60 s:\n${log}`)), 60_000).unref();
    });
    const dir = mkdtempSync(join(tmpdir(), "pp-otelcol-run-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const report = join(dir, "report.json");
    const scenario = join(repoRoot, "test", "fixtures", "scenarios", "shared-gpu-two-jobs.json");
    const r = await runCli(
      ["run", "--sim", scenario, "--interval", "250ms", "--report", report, "--otlp", `http://127.0.0.1:${otlpPort}`, "--job-id", "via-collector", "--", "sleep", "2"],
      { env: { OTEL_EXPORTER_OTLP_ENDPOINT: "", OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: "", OTEL_METRICS_EXPORTER: "", OTEL_RESOURCE_ATTRIBUTES: "" } },
    );
    expect(r.code, r.stderr).toBe(0);
    const written = JSON.parse(readFileSync(report, "utf8")) as { jobs: { id: string; energyJoules: { total: number } }[] };
    const want = Object.fromEntries(written.jobs.map((j) => [j.id, j.energyJoules.total]));
    const query = "sum by (powerprint_job_id) (powerprint_job_energy_joules_total)";
    const got = await eventually(
      async () => Object.fromEntries((await vm.query(query)).map((s) => [s.metric.powerprint_job_id, s.value])) as Record<string, number>,
      (g) => Object.keys(g).length === written.jobs.length && written.jobs.every((j) => Math.abs(g[j.id] - j.energyJoules.total) < 1e-6),
      30_000,
    );
    expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
    for (const [id, joules] of Object.entries(want)) expect(got[id], id).toBeCloseTo(joules, 6);
  }, 120_000);
});
