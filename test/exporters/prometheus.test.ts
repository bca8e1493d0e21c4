import { afterEach, describe, expect, test } from "vitest";
import { PrometheusExporter, PrometheusSerializer } from "@opentelemetry/exporter-prometheus";
import type { Resource } from "@opentelemetry/resources";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { exportersFromFlags } from "../helpers/exporters.js";
import { Collection } from "../../exporters/observations.js";
import { FailureTracker, buildResource, registerInstruments, resolveResourceAttributes } from "../../exporters/otel.js";
import { writeExposition, type PrometheusEndpoint } from "../../exporters/prometheus.js";
import { parseListenAddress } from "../../src/config/values.js";
import { SelfMetrics } from "../../src/core/self-metrics.js";
import type { LedgerSnapshot } from "../../src/core/types.js";
import { METRICS } from "../../src/semconv.js";
import type { JobIdentity } from "../../src/config/identity.js";
import { UsageError } from "../../src/errors.js";
import { freePort } from "../helpers/receivers.js";
import { recordingLogger, snapshot } from "./snapshots.js";

const job: JobIdentity = { id: "j", name: "j", attributes: {}, origin: "flag" };

describe("parseListenAddress", () => {
  test.each([
    ["", { host: "127.0.0.1", port: 9464 }],
    ["9500", { host: "127.0.0.1", port: 9500 }],
    [":9500", { host: "127.0.0.1", port: 9500 }],
    ["0.0.0.0", { host: "0.0.0.0", port: 9464 }],
    ["0.0.0.0:0", { host: "0.0.0.0", port: 0 }],
    ["[::1]:9500", { host: "::1", port: 9500 }],
    ["[::]", { host: "::", port: 9464 }],
  ])("%j", (text, expected) => {
    expect(parseListenAddress(text, "--prometheus")).toEqual(expected);
  });

  test.each(["host:99999", "host:abc", "::1"])("%j is a UsageError", (text) => {
    expect(() => parseListenAddress(text, "--prometheus")).toThrow(UsageError);
  });
});

describe("Prometheus endpoint", () => {
  let endpoint: PrometheusEndpoint | undefined;
  afterEach(async () => {
    await endpoint?.shutdown(snapshot({ jobs: [] }));
  });

  async function start(opts: { prometheusLinger?: string } = {}, env: Record<string, string> = {}) {
    const log = recordingLogger();
    const [e] = await exportersFromFlags({ prometheus: "127.0.0.1:0", ...opts }, { env, log, job, hostName: "node-a" });
    endpoint = e as PrometheusEndpoint;
    return { endpoint, log };
  }

  test("serves /metrics with the newest snapshot, 404 elsewhere", async () => {
    const { endpoint } = await start();
    endpoint.update(snapshot({ jobs: [{ id: "j", gpuJoules: 12.5 }] }));
    const body = await (await fetch(endpoint.url())).text();
    expect(body).toContain('powerprint_job_energy_total{powerprint_job_id="j",powerprint_job_name="j",hw_type="gpu",otel_scope_name="powerprint",service_name="powerprint",host_name="node-a"} 12.5');
    expect(body).toMatch(/^target_info\{.*host_name="node-a".*\} 1$/m);
    // Per job and device (default snapshot: gpu0 12.5 J, cpu0 0 J), hw_id and hw_type labelled.
    expect(body).toContain('powerprint_job_device_energy_total{powerprint_job_id="j",powerprint_job_name="j",hw_id="gpu0",hw_type="gpu",otel_scope_name="powerprint",service_name="powerprint",host_name="node-a"} 12.5');
    endpoint.update(snapshot({ jobs: [{ id: "j", gpuJoules: 20 }] }));
    expect(await (await fetch(endpoint.url())).text()).toContain('hw_type="gpu",otel_scope_name="powerprint",service_name="powerprint",host_name="node-a"} 20');
    expect((await fetch(endpoint.url().replace("/metrics", "/other"))).status).toBe(404);
    expect(endpoint.scrapes).toBe(2);
  });

  test("OTEL_EXPORTER_PROMETHEUS_HOST/_PORT are the defaults of a bare --prometheus", async () => {
    const log = recordingLogger();
    const [e] = await exportersFromFlags({ prometheus: true }, { env: { OTEL_EXPORTER_PROMETHEUS_HOST: "127.0.0.1", OTEL_EXPORTER_PROMETHEUS_PORT: "0" }, log, job });
    endpoint = e as PrometheusEndpoint;
    expect(endpoint.address().host).toBe("127.0.0.1");
    expect(endpoint.address().port).toBeGreaterThan(0);
  });

  test("without linger, shutdown closes at once; with linger and no scrape it warns and gives up", async () => {
    const { endpoint: quick } = await start();
    await quick.shutdown(snapshot({ jobs: [] }));
    await expect(fetch(quick.url())).rejects.toThrow();

    const { endpoint: lingering, log } = await start({ prometheusLinger: "300ms" });
    // A lower bound only (load can only lengthen the wait).
    const started = Date.now();
    await lingering.shutdown(snapshot({ jobs: [] }));
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(log.lines.filter((l) => l.level === "warn").map((l) => l.message)).toEqual([
      "prometheus: no scrape within 300 ms after the run; the final totals were not scraped",
    ]);
  });

  test("with linger, a scrape after shutdown began reads the final totals and ends the wait", async () => {
    // A linger longer than the test's timeout: the test can only pass if the scrape ends the wait.
    const { endpoint, log } = await start({ prometheusLinger: "10m" });
    endpoint.update(snapshot({ jobs: [{ id: "j", gpuJoules: 1 }] }));
    const done = endpoint.shutdown(snapshot({ jobs: [{ id: "j", gpuJoules: 99 }] }));
    const body = await (await fetch(endpoint.url())).text();
    await done;
    expect(body).toMatch(/hw_type="gpu".*\} 99$/m);
    expect(log.lines.filter((l) => l.level === "warn")).toEqual([]);
  });

  test("OTLP failures show on the endpoint as powerprint_export_failures_total", async () => {
    const closed = await freePort();
    const log = recordingLogger();
    const exporters = await exportersFromFlags(
      { prometheus: "127.0.0.1:0", otlp: `http://127.0.0.1:${closed}` },
      { env: { OTEL_EXPORTER_OTLP_TIMEOUT: "200" }, log, job, hostName: "node-a" },
    );
    endpoint = exporters.find((e) => e.id === "prometheus") as PrometheusEndpoint;
    const otlp = exporters.find((e) => e.id === "otlp");
    await otlp?.shutdown(snapshot({ jobs: [] }));
    expect(otlp?.failures?.()).toEqual({ "otlp:ECONNREFUSED": 1 });
    const body = await (await fetch(endpoint.url())).text();
    expect(body).toMatch(/^powerprint_export_failures_total\{powerprint_exporter="otlp",error_type="ECONNREFUSED",.*\} 1$/m);
  });
});

describe("the streamed text is the OTel Prometheus exporter's", () => {
  /**
   * The reference: the same instruments (registerInstruments) collected by
   * @opentelemetry/exporter-prometheus's reader and written by its serializer, as the endpoint did
   * before it streamed. Compared per metric family as sets of lines (the SDK orders series by first
   * sight, the stream by snapshot order).
   */
  async function reference(snap: LedgerSnapshot, failures: FailureTracker, self: SelfMetrics, resource: Resource): Promise<string> {
    const reader = new PrometheusExporter({ preventServerStart: true });
    const provider = new MeterProvider({ resource, readers: [reader] });
    registerInstruments(provider.getMeter("powerprint"), () => snap, failures, self);
    const { resourceMetrics } = await reader.collect();
    await provider.shutdown();
    return new PrometheusSerializer(undefined, false, /^(host\.name|service\.name)$/).serialize(resourceMetrics);
  }

  /** Text → family name → sorted lines (HELP/UNIT/TYPE first), and the family order. */
  function families(text: string): { order: string[]; lines: Map<string, string[]> } {
    const lines = new Map<string, string[]>();
    const order: string[] = [];
    for (const line of text.split("\n").filter((l) => l !== "")) {
      const name = line.startsWith("#") ? line.split(" ")[2] : /^[^{ ]+/.exec(line)![0];
      if (!lines.has(name)) {
        lines.set(name, []);
        order.push(name);
      }
      lines.get(name)!.push(line);
    }
    for (const l of lines.values()) l.sort();
    return { order, lines };
  }

  async function streamed(snap: LedgerSnapshot, failures: FailureTracker, self: SelfMetrics, resource: Resource): Promise<string> {
    const chunks: string[] = [];
    const sink = { destroyed: false, write: (c: string) => (chunks.push(c), true), once: () => sink, off: () => sink };
    const attrs = Object.fromEntries(Object.entries(resource.attributes).map(([k, v]) => [k, String(v)]));
    await writeExposition(sink, new Collection({ snapshot: snap, failures: failures.entries(), self: self.read() }), attrs);
    return chunks.join("");
  }

  test("a snapshot with every kind of series, awkward labels included: the same lines", async () => {
    const awkward = { "team": 'vision "a"\nb\\c', "k8s.pod.label.app.kubernetes.io/name": "trainer", "ünïcode key": "värde ✓", "x-y.z": "" };
    const snap = snapshot({
      jobs: [
        { id: "job-a", name: "resnet", attributes: awkward, cpuJoules: 10.25, gpuJoules: 1e-7, memoryJoules: 3, cpuWatts: 5, phases: { train: 9, eval: 1.25 }, cpuSeconds: 2.5, work: { step: 100, samples: 4096, tokens: 1e12 } },
        { id: "job-b", attributes: { "powerprint.job.id": "spoof", "hw.type": "spoof" }, gpuJoules: 7, cpuSeconds: 0 },
        { id: "job-c", name: "x".repeat(300), cpuJoules: Number.MAX_SAFE_INTEGER },
      ],
      grid: { zone: "DE", source: "electricitymaps", intensityGramsPerKwh: 380.5, fallback: "stale" },
    });
    // A serving job (--work-from): two models, one engine without model labels' worth of nulls.
    const figures = (model: string, generated: number | null) => ({
      model, promptTokens: 100, generatedTokens: generated, requests: generated === null ? null : 3, energyJoules: 9, activeEnergyJoules: 6, idleEnergyJoules: 3,
      prefillEnergyJoules: null, decodeEnergyJoules: null, emissionsGrams: 0.5, joulesPerGeneratedToken: null, joulesPerRequest: null, emissionsGramsPerThousandTokens: null,
    });
    (snap.jobs[0] as { serving?: unknown }).serving = {
      engine: "vllm", source: "http://127.0.0.1:8000/metrics", activeFrom: "running-gauge", prefillDecode: "none", restarts: 0, inconsistentReadings: 0,
      total: figures("", 400), models: [figures("model-a", 400), figures("", null)],
    };
    const failures = new FailureTracker();
    failures.record("otlp", "ECONNREFUSED");
    failures.record("otlp", "http_503");
    const self = new SelfMetrics();
    self.setProvider(() => ({
      tickDurationSeconds: 0.0041,
      ticksSkipped: 2,
      sourceFailures: [{ source: "rapl", kind: "timeout", count: 3 }],
      sourceHung: [{ source: "rapl", hung: true }, { source: "cpu-model", hung: false }],
      jobs: { live: 2, finished: 1 },
      jobsDropped: [{ reason: "retention", count: 7 }],
      cpuUserSeconds: 12.5,
      cpuSystemSeconds: 3.25,
      rssBytes: 88_000_000,
    }));
    const resource = buildResource(resolveResourceAttributes({ env: {}, hostName: "node-a", serviceInstanceId: "i-1", resourceAttributes: { "deployment.environment": 'prod "eu"' } }));
    const ref = families(await reference(snap, failures, self, resource));
    const ours = families(await streamed(snap, failures, self, resource));
    expect(ours.order).toEqual(ref.order);
    expect(Object.fromEntries(ours.lines)).toEqual(Object.fromEntries(ref.lines));
    // It is rich enough to mean something: every metric of the table has a family.
    expect(ours.order.length).toBe(METRICS.length + 1);
  });

  test("before the first snapshot: target_info and no metrics, as the SDK says it", async () => {
    const resource = buildResource(resolveResourceAttributes({ env: {}, hostName: "node-a", serviceInstanceId: "i-1", resourceAttributes: {} }));
    const chunks: string[] = [];
    const sink = { destroyed: false, write: (c: string) => (chunks.push(c), true), once: () => sink, off: () => sink };
    const attrs = Object.fromEntries(Object.entries(resource.attributes).map(([k, v]) => [k, String(v)]));
    await writeExposition(sink, new Collection({ snapshot: undefined, failures: [], self: undefined }), attrs);
    const reader = new PrometheusExporter({ preventServerStart: true });
    const provider = new MeterProvider({ resource, readers: [reader] });
    registerInstruments(provider.getMeter("powerprint"), () => undefined, new FailureTracker());
    const { resourceMetrics } = await reader.collect();
    await provider.shutdown();
    expect(chunks.join("")).toBe(new PrometheusSerializer(undefined, false, /^(host\.name|service\.name)$/).serialize(resourceMetrics));
  });

  test("a scrape of 5,000 jobs is streamed: many chunks, none larger than the chunk size plus one metric's batch", async () => {
    const snap = snapshot({ jobs: Array.from({ length: 5000 }, (_, i) => ({ id: `pod-${i}`, attributes: { "k8s.namespace.name": `ns-${i % 7}` }, cpuJoules: i, gpuJoules: 1 })) });
    const chunks: string[] = [];
    const sink = { destroyed: false, write: (c: string) => (chunks.push(c), true), once: () => sink, off: () => sink };
    await writeExposition(sink, new Collection({ snapshot: snap, failures: [], self: undefined }), { "host.name": "n" });
    const text = chunks.join("");
    expect(text.split("\n").filter((l) => l.startsWith("powerprint_job_energy_total{")).length).toBe(10_000);
    expect(chunks.length).toBeGreaterThan(20);
    expect(Math.max(...chunks.map((c) => c.length))).toBeLessThan(2 * 64 * 1024 + 512 * 400);
  });
});
