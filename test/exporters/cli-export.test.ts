/**
 * End to end: `powerprint run --sim SCENARIO --otlp/--prometheus ... -- CMD` (the built CLI, a real
 * process) against real VictoriaMetrics and Prometheus; the receivers' PromQL answers must equal
 * the JSON report's per-job energy.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { runCli } from "../helpers/cli.js";
import {
  eventually,
  freePort,
  receiversSkipReason,
  startPrometheus,
  startVictoriaMetrics,
  type PromSample,
  type Receiver,
} from "../helpers/receivers.js";
import { waitFor } from "../helpers/wait.js";

const scenario = join(import.meta.dirname, "..", "fixtures", "scenarios", "shared-gpu-two-jobs.json");

interface ReportJob {
  id: string;
  name: string;
  energyJoules: { total: number };
}
interface Report {
  jobs: ReportJob[];
  exportFailures: Record<string, number>;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

function tempReport(): string {
  const dir = mkdtempSync(join(tmpdir(), "pp-export-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, "report.json");
}

function track(receiver: Receiver): Receiver {
  cleanups.push(() => receiver.stop());
  return receiver;
}

function readReport(path: string): Report {
  return JSON.parse(readFileSync(path, "utf8")) as Report;
}

function byJob(samples: PromSample[], label: string): Record<string, number> {
  return Object.fromEntries(samples.map((s) => [s.metric[label], s.value]));
}

/** Every job of the report has the same total energy in the receiver (float rounding only). */
function expectSameEnergy(report: Report, received: Record<string, number>): void {
  expect(report.jobs.length).toBeGreaterThan(0);
  expect(Object.keys(received).sort()).toEqual(report.jobs.map((j) => j.id).sort());
  for (const job of report.jobs) {
    expect(received[job.id], job.id).toBeCloseTo(job.energyJoules.total, 6);
  }
}

/** Resolves once `path` exists (polled every 25 ms, at most 30 s). */
const noOtelEnv = {
  OTEL_EXPORTER_OTLP_ENDPOINT: "",
  OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: "",
  OTEL_METRICS_EXPORTER: "",
  OTEL_SERVICE_NAME: "",
  OTEL_RESOURCE_ATTRIBUTES: "",
};

describe.skipIf(receiversSkipReason("victoria-metrics") !== undefined)("run --otlp → VictoriaMetrics", () => {
  test("a 3-second wrapped job pushes OTLP protobuf; PromQL per-job energy equals the report, with host and job attributes", async () => {
    const vm = track(await startVictoriaMetrics());
    const report = tempReport();
    const r = await runCli(
      [
        "run", "--sim", scenario, "--interval", "500ms", "--report", report,
        "--otlp", `${vm.baseUrl}/opentelemetry`, "--export-interval", "1h",
        "--job-id", "e2e-1", "--job-name", "sleeper", "--tag", "team=nlp", "--service-name", "pp-e2e",
        "--", "sleep", "3",
      ],
      { env: noOtelEnv },
    );
    expect(r.code, r.stderr).toBe(0);
    const written = readReport(report);
    const query = "sum by (powerprint.job.id) (powerprint.job.energy)";
    const samples = await eventually(() => vm.query(query), (s) => s.length === written.jobs.length);
    expectSameEnergy(written, byJob(samples, "powerprint.job.id"));

    const wrapped = await vm.query('powerprint.job.energy{powerprint.job.id="e2e-1"}');
    expect(wrapped.length).toBeGreaterThan(0);
    for (const s of wrapped) {
      expect(s.metric).toMatchObject({ "powerprint.job.name": "sleeper", team: "nlp", "service.name": "pp-e2e" });
      expect(s.metric["host.name"]).toBeTruthy();
    }
    expect(written.exportFailures).toEqual({});
  });

  test("a GPU held by a pod-labelled job (--sim, PIDs not visible, CUDA_VISIBLE_DEVICES): powerprint.job.device.energy for gpu0 carries k8s.pod.name and equals the report", async () => {
    // The scenario's GPU process has a PID this host does not have (a sidecar that cannot see the
    // training container's PIDs): the wrapped job holds gpu0 by CUDA_VISIBLE_DEVICES=0.
    const gpuScenario = join(import.meta.dirname, "..", "fixtures", "exporters", "gpu-held-by-pod.json");
    const vm = track(await startVictoriaMetrics());
    const report = tempReport();
    const r = await runCli(
      [
        "run", "--sim", gpuScenario, "--interval", "500ms", "--report", report,
        "--otlp", `${vm.baseUrl}/opentelemetry`, "--export-interval", "1h",
        "--job-id", "pod-1", "--tag", "k8s.pod.name=trainer-0", "--tag", "k8s.namespace.name=ml",
        "--", "sleep", "1",
      ],
      { env: { ...noOtelEnv, CUDA_VISIBLE_DEVICES: "0" } },
    );
    expect(r.code, r.stderr).toBe(0);
    const written = JSON.parse(readFileSync(report, "utf8")) as { jobs: { id: string; deviceEnergyJoules: Record<string, number> }[] };
    const pod = written.jobs.find((j) => j.id === "pod-1")!;
    expect(pod.deviceEnergyJoules.gpu0).toBeGreaterThan(0);
    const gpu = await eventually(() => vm.query('powerprint.job.device.energy{hw.type="gpu"}'), (s) => s.length > 0);
    expect(gpu).toHaveLength(1);
    expect(gpu[0].metric).toMatchObject({ "hw.id": "gpu0", "powerprint.job.id": "pod-1", "k8s.pod.name": "trainer-0", "k8s.namespace.name": "ml" });
    expect(gpu[0].value).toBeCloseTo(pod.deviceEnergyJoules.gpu0, 6);
  });

  test("SIGTERM during the run: the final totals are flushed before exit", async () => {
    const vm = track(await startVictoriaMetrics());
    const report = tempReport();
    // SIGTERM only once the command runs (it writes a ready file): a fixed delay could land during
    // set-up, where the signal stops powerprint before the command starts.
    const ready = join(report, "..", "ready");
    const r = await runCli(
      ["run", "--sim", scenario, "--interval", "250ms", "--report", report, "--otlp", `${vm.baseUrl}/opentelemetry`, "--", "sh", "-c", `touch '${ready}'; exec sleep 30`],
      { env: noOtelEnv, onSpawn: (child) => void waitFor("the ready file", () => existsSync(ready)).then(() => child.kill("SIGTERM")) },
    );
    expect(r.code).toBe(143);
    const written = readReport(report);
    const samples = await eventually(
      () => vm.query("sum by (powerprint.job.id) (powerprint.job.energy)"),
      (s) => s.length === written.jobs.length,
    );
    expectSameEnergy(written, byJob(samples, "powerprint.job.id"));
  });

  test("receiver down at start and back later: the final totals arrive, failures are counted and reported", async () => {
    const port = await freePort();
    const report = tempReport();
    let vm: Receiver | undefined;
    // Events, not delays: the receiver is started once powerprint has said an export failed, and
    // the command ends (it waits for a `go` file) only once the receiver is up.
    const go = join(report, "..", "go");
    const r = await runCli(
      [
        "run", "--sim", scenario, "--interval", "250ms", "--report", report,
        "--otlp", `http://127.0.0.1:${port}/opentelemetry`, "--export-interval", "300ms",
        "--", "sh", "-c", `while [ ! -e '${go}' ]; do sleep 0.05; done`,
      ],
      {
        env: { ...noOtelEnv, OTEL_EXPORTER_OTLP_TIMEOUT: "300" },
        timeoutMillis: 60_000,
        onSpawn: (child) => {
          let stderr = "";
          let starting = false;
          child.stderr!.on("data", (d) => {
            stderr += d;
            if (starting || !/otlp: export to .* failed \(ECONNREFUSED/.test(stderr)) return;
            starting = true;
            void startVictoriaMetrics({ port }).then((started) => {
              vm = track(started);
              writeFileSync(go, "");
            });
          });
        },
      },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(vm, "VictoriaMetrics started during the run").toBeDefined();
    const written = readReport(report);
    expect(written.exportFailures["otlp:ECONNREFUSED"]).toBeGreaterThanOrEqual(1);
    expect(r.stderr.match(/otlp: export to .* failed \(ECONNREFUSED/g)).toHaveLength(1);
    expect(r.stderr).toMatch(/export failures: .*otlp:ECONNREFUSED×\d+/);
    const samples = await eventually(
      () => (vm as Receiver).query("sum by (powerprint.job.id) (powerprint.job.energy)"),
      (s) => s.length === written.jobs.length,
    );
    expectSameEnergy(written, byJob(samples, "powerprint.job.id"));
    const failures = await (vm as Receiver).query('powerprint.export.failures{error.type="ECONNREFUSED"}');
    expect(failures.length).toBe(1);
    expect(failures[0].value).toBeGreaterThanOrEqual(1);
  });
});

describe.skipIf(receiversSkipReason("prometheus") !== undefined)("run --prometheus ← Prometheus", () => {
  test("Prometheus scrapes during the run; its query API returns the report's per-job energy", async () => {
    const port = await freePort();
    const prom = track(await startPrometheus({ targets: [`127.0.0.1:${port}`], scrapeIntervalMillis: 1000 }));
    const report = tempReport();
    const r = await runCli(
      [
        "run", "--sim", scenario, "--interval", "250ms", "--report", report,
        "--prometheus", `127.0.0.1:${port}`, "--prometheus-linger", "15s", "--job-id", "e2e-prom",
        "--", "sleep", "3",
      ],
      { env: noOtelEnv, timeoutMillis: 45_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toContain("no scrape within");
    const written = readReport(report);
    const samples = await prom.query("sum by (powerprint_job_id) (powerprint_job_energy_total)");
    expectSameEnergy(written, byJob(samples, "powerprint_job_id"));
  });
});
