/**
 * Issue 8: each job's CPU seconds are exported as `powerprint.job.cpu.time` (counter, s) in run
 * mode too. The built CLI wraps a real CPU-burning process tree and pushes OTLP into a real
 * VictoriaMetrics; the exported figure equals the report's, and covers what the processes measured
 * themselves (their own process.cpuUsage()).
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { runCli } from "../helpers/cli.js";
import { eventually, receiversSkipReason, startVictoriaMetrics, type Receiver } from "../helpers/receivers.js";

const burnTree = join(import.meta.dirname, "..", "fixtures", "scripts", "burn-tree.mjs");
const scenario = join(import.meta.dirname, "..", "fixtures", "scenarios", "constant-shared-gpu.json");

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

const noOtelEnv = { OTEL_EXPORTER_OTLP_ENDPOINT: "", OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: "", OTEL_METRICS_EXPORTER: "", OTEL_SERVICE_NAME: "", OTEL_RESOURCE_ATTRIBUTES: "" };

describe.skipIf(receiversSkipReason("victoria-metrics") !== undefined)("run --otlp: powerprint.job.cpu.time", () => {
  test("the wrapped tree's CPU seconds arrive in VictoriaMetrics, equal to the report's and to what the processes measured", async () => {
    const vm: Receiver = await startVictoriaMetrics();
    cleanups.push(() => vm.stop());
    const dir = mkdtempSync(join(tmpdir(), "pp-cputime-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const report = join(dir, "report.json");
    const burnLog = join(dir, "burn.log");
    const r = await runCli(
      ["run", "--sim", scenario, "--interval", "200ms", "--report", report, "--otlp", `${vm.baseUrl}/opentelemetry`, "--export-interval", "1h", "--job-id", "cpu-1", "--", process.execPath, burnTree],
      { env: { ...noOtelEnv, BURN_LOG: burnLog, BURN_CHILDREN: "2", BURN_MILLIS: "300", BURN_SHORT: "2" }, timeoutMillis: 60_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    const written = JSON.parse(readFileSync(report, "utf8")) as { jobs: { id: string; cpuSeconds: number }[] };
    const job = written.jobs.find((j) => j.id === "cpu-1")!;
    // What the five processes measured themselves (µs), a floor: node's own start-up is on top.
    const selfMeasured = readFileSync(burnLog, "utf8").trim().split("\n").map((l) => Number(l.split(" ")[2]) / 1e6).reduce((a, b) => a + b, 0);
    expect(job.cpuSeconds).toBeGreaterThanOrEqual(selfMeasured * 0.98);
    const samples = await eventually(() => vm.query('powerprint.job.cpu.time{powerprint.job.id="cpu-1"}'), (s) => s.length === 1);
    expect(samples[0].value).toBeCloseTo(job.cpuSeconds, 6);
  });
});
