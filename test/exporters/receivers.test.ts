/**
 * Exporters against real receivers: VictoriaMetrics ingesting OTLP protobuf, Prometheus scraping
 * the --prometheus endpoint. Snapshots are plain LedgerSnapshot data (the contract).
 */
import { afterEach, describe, expect, test } from "vitest";
import { exportersFromFlags } from "../helpers/exporters.js";
import type { Exporter } from "../../src/core/contracts.js";
import type { JobIdentity } from "../../src/config/identity.js";
import type { LedgerSnapshot } from "../../src/core/types.js";
import {
  eventually,
  freePort,
  receiversSkipReason,
  startPrometheus,
  startVictoriaMetrics,
  type PromSample,
  type Receiver,
} from "../helpers/receivers.js";
import { recordingLogger, snapshot } from "./snapshots.js";

const job: JobIdentity = { id: "train-a", name: "train", attributes: { team: "nlp" }, origin: "flag" };

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

function track(receiver: Receiver): Receiver {
  cleanups.push(() => receiver.stop());
  return receiver;
}

function byLabel(samples: PromSample[], label: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of samples) out[s.metric[label]] = s.value;
  return out;
}

function twoJobs(scale: number): LedgerSnapshot {
  return snapshot({
    timeMillis: 10_000 * scale,
    jobs: [
      { id: "train-a", name: "train", attributes: { team: "nlp" }, cpuJoules: 120.125 * scale, gpuJoules: 3456.75 * scale, memoryJoules: 0, cpuSeconds: 42.5 * scale, work: { step: 10 * scale, samples: 640 * scale, tokens: 327_680 * scale } },
      { id: "eval-b", name: "eval", cpuJoules: 10.5 * scale, gpuJoules: 99.25 * scale, phases: { eval: 80 * scale } },
    ],
    systemCpuJoules: 5 * scale,
    idleGpuJoules: 700 * scale,
    grid: { zone: "DE", source: "static-table", intensityGramsPerKwh: 380 },
  });
}

/** A pod (node mode: the job's attributes are its pod identity) on two GPUs of four, and a CPU. */
const POD = { "k8s.pod.name": "llm-a-0", "k8s.namespace.name": "inference", "k8s.pod.uid": "0d1f5c2e-1111-4222-8333-444455556666" };
function podOnGpus(): LedgerSnapshot {
  const snap = snapshot({
    jobs: [{ id: POD["k8s.pod.uid"], name: "llm-a-0", attributes: POD, cpuJoules: 40.5, gpuJoules: 1500.25 }],
    devices: [
      ...[0, 1, 2, 3].map((i) => ({ id: `gpu${i}`, kind: "gpu" as const, model: "NVIDIA H100 80GB HBM3", energyJoules: 4000 })),
      { id: "cpu0", kind: "cpu" as const, model: "AMD EPYC 9654", energyJoules: 900 },
    ],
  });
  // The ledger keeps a job's energy only on the devices it used: two GPUs and the CPU.
  snap.jobs[0].deviceEnergyJoules = { gpu0: 1000.25, gpu2: 500, cpu0: 40.5 };
  return snap;
}

const vmSkip = receiversSkipReason("victoria-metrics");
const promSkip = receiversSkipReason("prometheus");

describe.skipIf(vmSkip !== undefined)("VictoriaMetrics: OTLP http/protobuf", () => {
  test("per-job energy, host and job attributes arrive; names keep their dots by default", async () => {
    const vm = track(await startVictoriaMetrics());
    const log = recordingLogger();
    const exporters = await exportersFromFlags(
      { otlp: `${vm.baseUrl}/opentelemetry`, exportInterval: "1h" },
      { env: {}, log, job, hostName: "node-a" },
    );
    const final = twoJobs(1);
    for (const e of exporters) e.update?.(final);
    for (const e of exporters) await e.shutdown(final);
    expect(exporters[0].failures?.()).toEqual({});

    // MetricsQL accepts dotted metric and label names as they are.
    const samples = await vm.query("sum by (powerprint.job.id, host.name, team) (powerprint.job.energy)");
    const energy = byLabel(samples, "powerprint.job.id");
    for (const j of final.jobs) expect(energy[j.id]).toBeCloseTo(j.energyJoules.total, 9);
    const trainA = samples.find((s) => s.metric["powerprint.job.id"] === "train-a");
    expect(trainA?.metric["host.name"]).toBe("node-a");
    expect(trainA?.metric.team).toBe("nlp");

    const raw = await vm.query('powerprint.job.energy{powerprint.job.id="train-a", hw.type="gpu"}');
    expect(raw).toHaveLength(1);
    expect(raw[0].metric).toMatchObject({
      "powerprint.job.name": "train",
      "service.name": "powerprint",
      "host.name": "node-a",
    });
    expect(raw[0].value).toBeCloseTo(3456.75, 9);
    const facility = await vm.query('powerprint.job.facility.energy{"powerprint.job.id"="eval-b"}');
    expect(facility[0].value).toBeCloseTo(final.jobs[1].facilityEnergyJoules, 9);
    const phase = await vm.query('powerprint.job.phase.energy{"powerprint.phase"="eval"}');
    expect(phase[0].value).toBe(80);
    // Each job's CPU seconds (issue 8): the ledger's figure; a job without one exports 0.
    const cpu = byLabel(await vm.query("sum by (powerprint.job.id) (powerprint.job.cpu.time)"), "powerprint.job.id");
    expect(cpu).toEqual({ "train-a": 42.5, "eval-b": 0 });
    // Units of work as last marked, only for the job that marks them.
    const workSamples = byLabel(await vm.query("powerprint.job.samples"), "powerprint.job.id");
    expect(workSamples).toEqual({ "train-a": 640 });
    expect(await vm.metricNames()).toEqual(
      [
        "hw.energy",
        "hw.power",
        "powerprint.bucket.energy",
        "powerprint.grid.intensity",
        "powerprint.job.cpu.time",
        "powerprint.job.device.energy",
        "powerprint.job.embodied.emissions",
        "powerprint.job.emissions",
        "powerprint.job.energy",
        "powerprint.job.facility.energy",
        "powerprint.job.phase.energy",
        "powerprint.job.power",
        "powerprint.job.samples",
        "powerprint.job.steps",
        "powerprint.job.tokens",
        "powerprint.job.water",
      ].sort(),
    );
  });

  test("-opentelemetry.usePrometheusNaming: the documented names, and a multi-node job sums by job id", async () => {
    const vm = track(await startVictoriaMetrics({ prometheusNaming: true }));
    const nodes: { host: string; snap: LedgerSnapshot }[] = [
      { host: "node-a", snap: snapshot({ jobs: [{ id: "multi-1", cpuJoules: 100, gpuJoules: 1000 }] }) },
      { host: "node-b", snap: snapshot({ jobs: [{ id: "multi-1", cpuJoules: 50, gpuJoules: 2500.5 }] }) },
    ];
    for (const node of nodes) {
      const exporters = await exportersFromFlags(
        { otlp: `${vm.baseUrl}/opentelemetry/v1/metrics` },
        { env: {}, log: recordingLogger(), job: { ...job, id: "multi-1" }, hostName: node.host },
      );
      for (const e of exporters) await e.shutdown(node.snap);
    }
    const perJob = await vm.query("sum by (powerprint_job_id) (powerprint_job_energy_joules_total)");
    expect(perJob).toHaveLength(1);
    expect(perJob[0].value).toBeCloseTo(100 + 1000 + 50 + 2500.5, 9);
    const perHost = byLabel(await vm.query("sum by (host_name) (powerprint_job_energy_joules_total)"), "host_name");
    expect(perHost).toEqual({ "node-a": 1100, "node-b": 2550.5 });
    expect(await vm.metricNames()).toEqual(
      [
        "hw_energy_joules_total",
        "hw_power_watts",
        "powerprint_bucket_energy_joules_total",
        "powerprint_job_cpu_time_seconds_total",
        "powerprint_job_device_energy_joules_total",
        "powerprint_job_embodied_emissions_grams_total",
        "powerprint_job_emissions_grams_total",
        "powerprint_job_energy_joules_total",
        "powerprint_job_facility_energy_joules_total",
        "powerprint_job_power_watts",
        "powerprint_job_water_L_total",
      ].sort(),
    );
  });

  test("per-job per-device energy: each GPU's series carries the pod's labels, only the devices the job used", async () => {
    for (const prometheusNaming of [false, true]) {
      const vm = track(await startVictoriaMetrics({ prometheusNaming }));
      const exporters = await exportersFromFlags({ otlp: `${vm.baseUrl}/opentelemetry` }, { env: {}, log: recordingLogger(), job, hostName: "node-a" });
      const snap = podOnGpus();
      for (const e of exporters) await e.shutdown(snap);
      const name = prometheusNaming ? "powerprint_job_device_energy_joules_total" : "powerprint.job.device.energy";
      const [id, type, pod, ns] = prometheusNaming ? ["hw_id", "hw_type", "k8s_pod_name", "k8s_namespace_name"] : ["hw.id", "hw.type", "k8s.pod.name", "k8s.namespace.name"];
      const gpus = await vm.query(`{__name__="${name}", ${JSON.stringify(type)}="gpu"}`);
      expect(byLabel(gpus, id)).toEqual({ gpu0: 1000.25, gpu2: 500 });
      for (const s of gpus) expect(s.metric).toMatchObject({ [pod]: "llm-a-0", [ns]: "inference" });
      const all = await vm.query(`{__name__="${name}"}`);
      expect(all).toHaveLength(3); // gpu0, gpu2, cpu0: not the two GPUs the pod never used
    }
  });

  test("grid intensity (g/kW.h) under Prometheus naming keeps the UCUM dot", async () => {
    const vm = track(await startVictoriaMetrics({ prometheusNaming: true }));
    const exporters = await exportersFromFlags(
      { otlp: `${vm.baseUrl}/opentelemetry` },
      { env: {}, log: recordingLogger(), job, hostName: "node-a" },
    );
    const snap = snapshot({ jobs: [], grid: { zone: "FR", source: "electricitymaps", intensityGramsPerKwh: 42.5 } });
    for (const e of exporters) await e.shutdown(snap);
    const samples = await vm.query('{__name__="powerprint_grid_intensity_grams_per_kW.h"}');
    expect(samples).toHaveLength(1);
    expect(samples[0].value).toBe(42.5);
    expect(samples[0].metric).toMatchObject({ powerprint_grid_zone: "FR", powerprint_grid_source: "electricitymaps" });
  });

  test("receiver down at start: failures are counted and warned once, the final totals still arrive", async () => {
    const port = await freePort();
    const log = recordingLogger();
    const exporters = await exportersFromFlags(
      { otlp: `http://127.0.0.1:${port}/opentelemetry`, exportInterval: "200ms" },
      // The OTLP transport retries a refused connection until this timeout, then the export fails.
      { env: { OTEL_EXPORTER_OTLP_TIMEOUT: "500" }, log, job, hostName: "node-a" },
    );
    const [otlp] = exporters;
    let tick = 0;
    const failures = await eventually(
      async () => {
        otlp.update?.(twoJobs(++tick));
        return otlp.failures?.() ?? {};
      },
      (f) => (f["otlp:ECONNREFUSED"] ?? 0) >= 2,
      10_000,
    );
    expect(failures["otlp:ECONNREFUSED"]).toBeGreaterThanOrEqual(2);
    const warnings = log.lines.filter((l) => l.level === "warn" && l.message.includes("ECONNREFUSED"));
    expect(warnings).toHaveLength(1);

    // Prometheus naming here, so the documented name of the failure counter is checked too.
    const vm = track(await startVictoriaMetrics({ port, prometheusNaming: true }));
    const final = twoJobs(10);
    await otlp.shutdown(final);
    const energy = byLabel(await vm.query("sum by (powerprint_job_id) (powerprint_job_energy_joules_total)"), "powerprint_job_id");
    expect(energy["train-a"]).toBeCloseTo(final.jobs[0].energyJoules.total, 9);
    expect(energy["eval-b"]).toBeCloseTo(final.jobs[1].energyJoules.total, 9);
    // The failure counter travels with the final export.
    const failed = await vm.query('powerprint_export_failures_total{error_type="ECONNREFUSED", powerprint_exporter="otlp"}');
    expect(failed).toHaveLength(1);
    expect(failed[0].value).toBe(otlp.failures?.()["otlp:ECONNREFUSED"]);
    expect(log.lines.some((l) => l.level === "info" && l.message.includes("recovered"))).toBe(true);
  });
});

describe.skipIf(promSkip !== undefined)("Prometheus scrapes --prometheus", () => {
  test("per-job per-device energy: powerprint_job_device_energy_total with the pod's labels per GPU", async () => {
    const exporters: Exporter[] = await exportersFromFlags({ prometheus: "127.0.0.1:0", prometheusLinger: "10s" }, { env: {}, log: recordingLogger(), job, hostName: "node-a" });
    const endpoint = exporters[0] as Exporter & { url(): string };
    const prom = track(await startPrometheus({ targets: [new URL(endpoint.url()).host], scrapeIntervalMillis: 1000 }));
    endpoint.update?.(podOnGpus());
    const query = 'powerprint_job_device_energy_total{hw_type="gpu"}';
    const gpus = await eventually(() => prom.query(query), (s) => s.length === 2, 20_000);
    expect(byLabel(gpus, "hw_id")).toEqual({ gpu0: 1000.25, gpu2: 500 });
    for (const s of gpus) expect(s.metric).toMatchObject({ k8s_pod_name: "llm-a-0", k8s_namespace_name: "inference", k8s_pod_uid: POD["k8s.pod.uid"], powerprint_job_id: POD["k8s.pod.uid"] });
    await endpoint.shutdown(podOnGpus());
  });

  test("the query API returns the same per-job energy, the final totals after a linger", async () => {
    const log = recordingLogger();
    const exporters: Exporter[] = await exportersFromFlags(
      { prometheus: "127.0.0.1:0", prometheusLinger: "10s" },
      { env: {}, log, job, hostName: "node-a" },
    );
    const endpoint = exporters[0] as Exporter & { url(): string };
    const target = new URL(endpoint.url()).host;
    const prom = track(await startPrometheus({ targets: [target], scrapeIntervalMillis: 1000 }));
    const first = twoJobs(1);
    endpoint.update?.(first);
    const query = "sum by (powerprint_job_id, host_name) (powerprint_job_energy_total)";
    const seen = await eventually(() => prom.query(query), (s) => s.length === 2, 20_000);
    expect(byLabel(seen, "powerprint_job_id")["train-a"]).toBeCloseTo(first.jobs[0].energyJoules.total, 9);
    expect(seen.every((s) => s.metric.host_name === "node-a")).toBe(true);

    const final = twoJobs(3);
    await endpoint.shutdown(final); // lingers until one scrape read the final totals
    // The scrape has read them; Prometheus appends them to its head block a moment later (a
    // loaded machine widens that gap): wait for the query to show them rather than race it.
    const closeTo = (a: number | undefined, b: number) => a !== undefined && Math.abs(a - b) < 1e-6 * Math.max(1, Math.abs(b));
    const after = byLabel(
      await eventually(() => prom.query(query), (s) => closeTo(byLabel(s, "powerprint_job_id")["train-a"], final.jobs[0].energyJoules.total), 20_000),
      "powerprint_job_id",
    );
    expect(after["train-a"]).toBeCloseTo(final.jobs[0].energyJoules.total, 9);
    expect(after["eval-b"]).toBeCloseTo(final.jobs[1].energyJoules.total, 9);
    expect(log.lines.filter((l) => l.level === "warn")).toEqual([]);
    const cpu = byLabel(await prom.query("sum by (powerprint_job_id) (powerprint_job_cpu_time_total)"), "powerprint_job_id");
    expect(cpu).toEqual({ "train-a": final.jobs[0].cpuSeconds, "eval-b": 0 });

    const names = await prom.metricNames();
    for (const name of [
      "hw_energy_total",
      "hw_power",
      "powerprint_job_energy_total",
      "powerprint_job_facility_energy_total",
      "powerprint_job_power",
      "powerprint_job_emissions_total",
      "powerprint_job_embodied_emissions_total",
      "powerprint_job_water_total",
      "powerprint_job_phase_energy_total",
      "powerprint_job_cpu_time_total",
      "powerprint_job_samples_total",
      "powerprint_job_tokens_total",
      "powerprint_job_steps_total",
      "powerprint_job_device_energy_total",
      "powerprint_bucket_energy_total",
      "powerprint_grid_intensity",
      "target_info",
    ]) {
      expect(names).toContain(name);
    }
  });
});
