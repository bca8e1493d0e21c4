/**
 * The OTel instruments read from ledger snapshots (through the real OTel SDK, collected with its
 * in-memory exporter), the resource precedence, and the failure-handling wrapper against a real
 * refusing port.
 */
import { ExportResultCode, type ExportResult } from "@opentelemetry/core";
import {
  AggregationTemporality,
  DataPointType,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
  type MetricData,
  type ResourceMetrics,
} from "@opentelemetry/sdk-metrics";
import { describe, expect, test } from "vitest";
import {
  ConnectionWatch,
  FailureTracker,
  ResilientMetricExporter,
  createOtlpPushExporter,
  failureKind,
  registerInstruments,
  resolveResourceAttributes,
} from "../../exporters/otel.js";
import { parseKeyValueList } from "../../src/config/values.js";
import type { LedgerSnapshot } from "../../src/core/types.js";
import { ServingAccount, type ServingIncrement, type ServingTotals } from "../../src/core/serving.js";
import { METRICS } from "../../src/semconv.js";
import { SelfMetrics } from "../../src/core/self-metrics.js";
import { freePort } from "../helpers/receivers.js";
import { recordingLogger, snapshot } from "./snapshots.js";

/** Collects once through a real MeterProvider + reader and returns the metrics by name. */
async function collect(current: () => LedgerSnapshot | undefined, failures = new FailureTracker(), temporality = AggregationTemporality.CUMULATIVE, self?: SelfMetrics) {
  const memory = new InMemoryMetricExporter(temporality);
  const reader = new PeriodicExportingMetricReader({ exporter: memory, exportIntervalMillis: 3_600_000 });
  const provider = new MeterProvider({ readers: [reader] });
  registerInstruments(provider.getMeter("powerprint"), current, failures, self);
  const read = async () => {
    memory.reset();
    await reader.forceFlush();
    const byName = new Map<string, MetricData>();
    for (const rm of memory.getMetrics()) for (const sm of rm.scopeMetrics) for (const m of sm.metrics) byName.set(m.descriptor.name, m);
    return byName;
  };
  return { read, close: () => provider.shutdown() };
}

function points(metric: MetricData | undefined): { attributes: Record<string, unknown>; value: number }[] {
  if (!metric || (metric.dataPointType !== DataPointType.SUM && metric.dataPointType !== DataPointType.GAUGE)) return [];
  return metric.dataPoints.map((p) => ({ attributes: { ...p.attributes }, value: p.value as number }));
}

describe("grid intensity fallback attribute", () => {
  test("a fallback intensity says which fallback it is", async () => {
    const snap = snapshot({ jobs: [{ id: "a", cpuJoules: 1 }], grid: { zone: "WORLD", source: "world-average", intensityGramsPerKwh: 473, fallback: "world-average" } });
    const c = await collect(() => snap);
    const byName = await c.read();
    expect(points(byName.get("powerprint.grid.intensity"))).toEqual([
      { attributes: { "powerprint.grid.zone": "WORLD", "powerprint.grid.source": "world-average", "powerprint.grid.fallback": "world-average" }, value: 473 },
    ]);
    await c.close();
  });
});

/** A two-model server's serving figures, from a real ServingAccount: model "m1" worked, "" (unlabelled) idled. */
function twoModels(): ServingTotals {
  const a = new ServingAccount("http://127.0.0.1:1/metrics");
  a.addWork(a.token(), "vllm", new Map([["m1", {}], ["", {}]]));
  const t = a.token();
  a.addEnergy(100, 0.5);
  a.closeInterval();
  a.addWork(t, "vllm", new Map<string, ServingIncrement>([["m1", { promptTokens: 16, generatedTokens: 8, requests: 1, running: 0 }], ["", { promptTokens: 0, generatedTokens: 0, requests: 0 }]]));
  const idle = a.token();
  a.addEnergy(30, 0.1);
  a.closeInterval();
  a.addWork(idle, "vllm", new Map<string, ServingIncrement>([["m1", { generatedTokens: 0 }], ["", { generatedTokens: 0 }]]));
  return a.totals();
}

describe("instruments", () => {
  const serving = twoModels();
  const snap = snapshot({
    jobs: [
      {
        id: "a",
        name: "train",
        attributes: { team: "nlp", "powerprint.job.id": "spoof" },
        cpuJoules: 10,
        gpuJoules: 200,
        cpuWatts: 15,
        gpuWatts: 350,
        phases: { warmup: 50, train: 160 },
        cpuSeconds: 12.25,
        work: { step: 30, samples: 4096, tokens: 2_097_152 },
        serving,
      },
      { id: "b", cpuJoules: 1.5 },
    ],
    systemCpuJoules: 7,
    idleGpuJoules: 300,
    grid: { zone: "DE", source: "static-table", intensityGramsPerKwh: 380 },
  });

  test("every metric of the semconv table is registered with its unit and kind", async () => {
    const failures = new FailureTracker();
    failures.record("otlp", "ECONNREFUSED");
    // The agent's own figures, as an agent fills them in (run and simulate export none).
    const self = new SelfMetrics();
    self.setProvider(() => ({
      tickDurationSeconds: 0.004,
      ticksSkipped: 1,
      sourceFailures: [{ source: "rapl", kind: "timeout", count: 2 }],
      sourceHung: [{ source: "rapl", hung: true }, { source: "cpu-model", hung: false }],
      jobs: { live: 3, finished: 4 },
      jobsDropped: [{ reason: "retention", count: 5 }],
      cpuUserSeconds: 1.5,
      cpuSystemSeconds: 0.5,
      rssBytes: 90e6,
    }));
    const c = await collect(() => snap, failures, AggregationTemporality.CUMULATIVE, self);
    const byName = await c.read();
    expect(points(byName.get("powerprint.agent.source.hung"))).toEqual([
      { attributes: { "powerprint.source": "rapl" }, value: 1 },
      { attributes: { "powerprint.source": "cpu-model" }, value: 0 },
    ]);
    expect(points(byName.get("process.cpu.time"))).toEqual([
      { attributes: { "cpu.mode": "user" }, value: 1.5 },
      { attributes: { "cpu.mode": "system" }, value: 0.5 },
    ]);
    for (const spec of METRICS) {
      const metric = byName.get(spec.name);
      expect(metric, spec.name).toBeDefined();
      expect(metric?.descriptor.unit).toBe(spec.unit);
      expect(metric?.dataPointType).toBe(spec.instrument === "counter" ? DataPointType.SUM : DataPointType.GAUGE);
      if (metric?.dataPointType === DataPointType.SUM) expect(metric.isMonotonic).toBe(true);
    }
    await c.close();
  });

  test("serving (--work-from): tokens by gen_ai.token.type, requests, energy by state, emissions, per gen_ai.request.model; none for an unlabelled model's name", async () => {
    const c = await collect(() => snap);
    const byName = await c.read();
    const job = { team: "nlp", "powerprint.job.id": "a", "powerprint.job.name": "train" };
    const m1 = serving.models.find((m) => m.model === "m1")!;
    const other = serving.models.find((m) => m.model === "")!;
    const sortPoints = (ps: { attributes: Record<string, unknown>; value: number }[]) => ps.sort((x, y) => JSON.stringify(x.attributes).localeCompare(JSON.stringify(y.attributes)));
    expect(sortPoints(points(byName.get("powerprint.job.serving.tokens")))).toEqual(
      sortPoints([
        { attributes: { ...job, "gen_ai.request.model": "m1", "gen_ai.token.type": "input" }, value: 16 },
        { attributes: { ...job, "gen_ai.request.model": "m1", "gen_ai.token.type": "output" }, value: 8 },
        { attributes: { ...job, "gen_ai.token.type": "input" }, value: 0 },
        { attributes: { ...job, "gen_ai.token.type": "output" }, value: 0 },
      ]),
    );
    expect(sortPoints(points(byName.get("powerprint.job.serving.requests")))).toEqual(sortPoints([{ attributes: { ...job, "gen_ai.request.model": "m1" }, value: 1 }, { attributes: job, value: 0 }]));
    expect(sortPoints(points(byName.get("powerprint.job.serving.energy")))).toEqual(
      sortPoints([
        { attributes: { ...job, "gen_ai.request.model": "m1", "powerprint.serving.state": "active" }, value: m1.activeEnergyJoules },
        { attributes: { ...job, "gen_ai.request.model": "m1", "powerprint.serving.state": "idle" }, value: m1.idleEnergyJoules },
        { attributes: { ...job, "powerprint.serving.state": "active" }, value: other.activeEnergyJoules },
        { attributes: { ...job, "powerprint.serving.state": "idle" }, value: other.idleEnergyJoules },
      ]),
    );
    // The whole job's energy in the serving series: the account's total.
    expect(points(byName.get("powerprint.job.serving.energy")).reduce((a, p) => a + p.value, 0)).toBeCloseTo(serving.total.energyJoules, 12);
    expect(points(byName.get("powerprint.job.serving.emissions")).reduce((a, p) => a + p.value, 0)).toBeCloseTo(serving.total.emissionsGrams, 12);
    await c.close();
  });

  test("powerprint.job.device.energy: one point per job and device it used, with the job's attributes (pod labels), hw.id and hw.type", async () => {
    const pod = { "k8s.pod.name": "llm-a-0", "k8s.namespace.name": "inference", "k8s.pod.uid": "u-1" };
    const s = snapshot({
      jobs: [{ id: "u-1", name: "llm-a-0", attributes: pod, gpuJoules: 300, cpuJoules: 0 }],
      devices: [
        { id: "gpu0", kind: "gpu", energyJoules: 1000 },
        { id: "gpu1", kind: "gpu", energyJoules: 1000 },
        { id: "cpu0", kind: "cpu", energyJoules: 500 },
      ],
    });
    // Used gpu0 and gpu1 (never cpu0 here); a device id the snapshot does not list is not invented.
    s.jobs[0].deviceEnergyJoules = { gpu0: 200, gpu1: 100, "gone-dev": 7 };
    const c = await collect(() => s);
    const perDevice = points((await c.read()).get("powerprint.job.device.energy"));
    const base = { ...pod, "powerprint.job.id": "u-1", "powerprint.job.name": "llm-a-0" };
    expect(perDevice).toEqual([
      { attributes: { ...base, "hw.id": "gpu0", "hw.type": "gpu" }, value: 200 },
      { attributes: { ...base, "hw.id": "gpu1", "hw.type": "gpu" }, value: 100 },
    ]);
    await c.close();
  });

  test("job counters are the ledger's cumulative totals, gauges its last interval, per device kind present", async () => {
    const c = await collect(() => snap);
    const byName = await c.read();
    const energy = points(byName.get("powerprint.job.energy"));
    // Host has a GPU and a CPU: both kinds for every job (zeros included), no memory kind.
    expect(energy).toEqual([
      { attributes: { team: "nlp", "powerprint.job.id": "a", "powerprint.job.name": "train", "hw.type": "cpu" }, value: 10 },
      { attributes: { team: "nlp", "powerprint.job.id": "a", "powerprint.job.name": "train", "hw.type": "gpu" }, value: 200 },
      { attributes: { "powerprint.job.id": "b", "powerprint.job.name": "b", "hw.type": "cpu" }, value: 1.5 },
      { attributes: { "powerprint.job.id": "b", "powerprint.job.name": "b", "hw.type": "gpu" }, value: 0 },
    ]);
    expect(points(byName.get("powerprint.job.power")).map((p) => p.value)).toEqual([15, 350, 0, 0]);
    expect(points(byName.get("powerprint.job.facility.energy")).map((p) => p.value)).toEqual([
      snap.jobs[0].facilityEnergyJoules,
      snap.jobs[1].facilityEnergyJoules,
    ]);
    expect(points(byName.get("powerprint.job.emissions"))[0].value).toBe(snap.jobs[0].emissionsGrams);
    expect(points(byName.get("powerprint.job.embodied.emissions"))[0].value).toBe(snap.jobs[0].embodiedEmissionsGrams);
    expect(points(byName.get("powerprint.job.water"))[0].value).toBe(snap.jobs[0].waterLiters);
    // CPU seconds per job (a job without a figure exports 0, not nothing).
    expect(points(byName.get("powerprint.job.cpu.time")).map((p) => [p.attributes["powerprint.job.id"], p.value])).toEqual([
      ["a", 12.25],
      ["b", 0],
    ]);
    // Work counters as last marked, only for the job that marks them (b marks none).
    for (const [name, value] of [["powerprint.job.samples", 4096], ["powerprint.job.tokens", 2_097_152], ["powerprint.job.steps", 30]] as const) {
      expect(points(byName.get(name)).map((p) => [p.attributes["powerprint.job.id"], p.value]), name).toEqual([["a", value]]);
    }
    expect(points(byName.get("powerprint.job.phase.energy")).map((p) => [p.attributes["powerprint.phase"], p.value])).toEqual([
      ["warmup", 50],
      ["train", 160],
    ]);
    expect(points(byName.get("powerprint.bucket.energy")).map((p) => [p.attributes["powerprint.bucket"], p.attributes["hw.type"], p.value])).toEqual([
      ["system", "cpu", 7],
      ["system", "gpu", 0],
      ["idle", "cpu", 0],
      ["idle", "gpu", 300],
    ]);
    expect(points(byName.get("hw.energy"))[0]).toEqual({
      attributes: { "hw.id": "gpu0", "hw.type": "gpu", "hw.name": "NVIDIA H100 80GB HBM3", "powerprint.method": "counter", "powerprint.source": "sim" },
      value: 5000,
    });
    expect(points(byName.get("powerprint.grid.intensity"))).toEqual([
      { attributes: { "powerprint.grid.zone": "DE", "powerprint.grid.source": "static-table", "powerprint.grid.fallback": "none" }, value: 380 },
    ]);
    await c.close();
  });

  test("a later snapshot replaces the totals (cumulative), and delta temporality reports the difference", async () => {
    let current = snapshot({ jobs: [{ id: "a", gpuJoules: 100 }] });
    const cumulative = await collect(() => current);
    const delta = await collect(() => current, new FailureTracker(), AggregationTemporality.DELTA);
    const gpu = (m: Map<string, MetricData>) => points(m.get("powerprint.job.energy")).find((p) => p.attributes["hw.type"] === "gpu")?.value;
    expect(gpu(await cumulative.read())).toBe(100);
    expect(gpu(await delta.read())).toBe(100);
    current = snapshot({ jobs: [{ id: "a", gpuJoules: 250 }] });
    expect(gpu(await cumulative.read())).toBe(250);
    expect(gpu(await delta.read())).toBe(150);
    await cumulative.close();
    await delta.close();
  });

  test("before the first snapshot only the failure counter can be observed", async () => {
    const c = await collect(() => undefined);
    const byName = await c.read();
    expect([...byName.values()].flatMap((m) => points(m))).toEqual([]);
    await c.close();
  });
});

describe("resource", () => {
  const base = { hostName: "node-a", serviceInstanceId: "i-1", resourceAttributes: {} };
  test.each<{ name: string; env: Record<string, string>; input: { serviceName?: string; resourceAttributes?: Record<string, string> }; expected: Record<string, string> }>([
    { name: "defaults", env: {}, input: {}, expected: { "service.name": "powerprint", "host.name": "node-a", "service.instance.id": "i-1" } },
    {
      name: "k8s downward API variables",
      env: { K8S_POD_NAME: "train-0", K8S_POD_UID: "u-1", K8S_POD_NAMESPACE: "ml", K8S_NODE_NAME: "gpu-node-3" },
      input: {},
      expected: { "k8s.pod.name": "train-0", "k8s.pod.uid": "u-1", "k8s.namespace.name": "ml", "k8s.node.name": "gpu-node-3" },
    },
    {
      name: "OTEL_RESOURCE_ATTRIBUTES overrides detected host.name",
      env: {},
      input: { resourceAttributes: { "host.name": "override", "service.name": "attrs" } },
      expected: { "host.name": "override", "service.name": "attrs" },
    },
    {
      name: "OTEL_SERVICE_NAME beats OTEL_RESOURCE_ATTRIBUTES service.name",
      env: { OTEL_SERVICE_NAME: "env-svc" },
      input: { resourceAttributes: { "service.name": "attrs" } },
      expected: { "service.name": "env-svc" },
    },
    {
      name: "--service-name beats everything",
      env: { OTEL_SERVICE_NAME: "env-svc" },
      input: { serviceName: "flag-svc", resourceAttributes: { "service.name": "attrs" } },
      expected: { "service.name": "flag-svc" },
    },
  ])("$name", ({ env, input, expected }) => {
    expect(resolveResourceAttributes({ ...base, env, ...input })).toMatchObject(expected);
  });

  test("service.instance.id is a fresh UUID per run by default", () => {
    const a = resolveResourceAttributes({ env: {}, hostName: "h", resourceAttributes: {} })["service.instance.id"];
    const b = resolveResourceAttributes({ env: {}, hostName: "h", resourceAttributes: {} })["service.instance.id"];
    expect(a).toMatch(/^[0-9a-f-]{36}$/);
    expect(a).not.toBe(b);
  });
});

describe("parseKeyValueList", () => {
  test.each([
    ["a=1,b=2", { ok: true, values: { a: "1", b: "2" } }],
    [" a = 1 , , b=x%20y ", { ok: true, values: { a: "1", b: "x y" } }],
    ["k=v=w", { ok: true, values: { k: "v=w" } }],
    ["", { ok: true, values: {} }],
    ["a", { ok: false, error: "'a' is not key=value" }],
    ["=1", { ok: false, error: "'=1' has an empty key" }],
    ["a=%E0%A4%A", { ok: false, error: "value of 'a' is not valid percent-encoding" }],
  ])("%j", (text, expected) => {
    expect(parseKeyValueList(text)).toEqual(expected);
  });
});

describe("failureKind", () => {
  test.each([
    [Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" }), "ECONNREFUSED"],
    [Object.assign(new Error("Unauthorized"), { code: 401 }), "http_401"],
    [new Error("Request timed out"), "timeout"],
    [new Error("Export failed with retryable status"), "retries_exhausted"],
    [new AggregateError([Object.assign(new Error("x"), { code: "ECONNREFUSED" })]), "ECONNREFUSED"],
    [new Error("Concurrent export limit reached"), "concurrency_limit"],
    [new TypeError("bad"), "TypeError"],
    ["string", "error"],
  ])("%s -> %s", (error, kind) => {
    expect(failureKind(error)).toBe(kind);
  });
});

describe("ResilientMetricExporter against a refusing port", () => {
  function config(port: number) {
    return {
      url: `http://127.0.0.1:${port}/v1/metrics`,
      protocol: "http/protobuf" as const,
      headers: {},
      timeoutMillis: 300,
      temporality: "cumulative" as const,
      compression: "none" as const,
      exportIntervalMillis: 1000,
    };
  }
  async function collectBatch(): Promise<ResourceMetrics> {
    const memory = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({ exporter: memory, exportIntervalMillis: 3_600_000 });
    const provider = new MeterProvider({ readers: [reader] });
    registerInstruments(provider.getMeter("powerprint"), () => snapshot({ jobs: [{ id: "a", gpuJoules: 1 }] }), new FailureTracker());
    await reader.forceFlush();
    await provider.shutdown();
    const [metrics] = memory.getMetrics();
    if (!metrics) throw new Error("nothing collected");
    return metrics;
  }

  test("counts by kind, warns once, backs off (skipping without sending), final mode ignores the backoff", async () => {
    const port = await freePort();
    let nowMillis = 1_000_000;
    const failures = new FailureTracker();
    const log = recordingLogger();
    const wrapper = new ResilientMetricExporter(createOtlpPushExporter(config(port)), {
      exporterName: "otlp",
      target: "test",
      failures,
      log,
      initialBackoffMillis: 1000,
      maxBackoffMillis: 4000,
      now: () => nowMillis,
    });
    const metrics = await collectBatch();
    const send = () => new Promise<ExportResult>((resolve) => wrapper.export(metrics, resolve));

    expect((await send()).code).toBe(ExportResultCode.FAILED);
    expect(failures.counts()).toEqual({ "otlp:ECONNREFUSED": 1 });
    // Within the backoff: skipped, not sent, not counted as a failure.
    nowMillis += 500;
    const skipped = await send();
    expect(skipped.error?.name).toBe("SkippedExport");
    expect(wrapper.skipped).toBe(1);
    expect(failures.counts()).toEqual({ "otlp:ECONNREFUSED": 1 });
    // After it: sent again, fails again; the backoff doubles (2 s).
    nowMillis += 600;
    await send();
    expect(failures.counts()).toEqual({ "otlp:ECONNREFUSED": 2 });
    nowMillis += 1500;
    expect((await send()).error?.name).toBe("SkippedExport");
    // Final mode: attempted despite the backoff.
    wrapper.finalMode();
    await send();
    expect(failures.counts()).toEqual({ "otlp:ECONNREFUSED": 3 });
    expect(log.lines.filter((l) => l.level === "warn")).toHaveLength(1);
    await wrapper.shutdown();
  });

  test("with a ConnectionWatch, the final export ends at the first refusal, named, and shutdown does not wait for the transport's retries", async () => {
    const port = await freePort();
    const failures = new FailureTracker();
    const log = recordingLogger();
    const connections = new ConnectionWatch();
    // The SDK transport alone retries a refused connection until its timeout (here 60 s).
    const wrapper = new ResilientMetricExporter(createOtlpPushExporter({ ...config(port), timeoutMillis: 60_000 }, connections), {
      exporterName: "otlp",
      target: "test",
      failures,
      log,
      connections,
    });
    const metrics = await collectBatch();
    wrapper.finalMode();
    const result = await new Promise<ExportResult>((resolve) => wrapper.export(metrics, resolve));
    expect(result.code).toBe(ExportResultCode.FAILED);
    expect(failureKind(result.error)).toBe("ECONNREFUSED");
    expect(connections.failing).toBeDefined();
    expect(failures.counts()).toEqual({ "otlp:ECONNREFUSED": 1 });
    expect(log.lines.map((l) => l.message)).toEqual([expect.stringMatching(/^otlp: final export to test failed \(ECONNREFUSED: .*\): the last totals were not delivered$/)]);
    // Settles although the transport is still retrying (the test's own timeout would catch a wait).
    await wrapper.forceFlush();
    await wrapper.shutdown();
  });
});
