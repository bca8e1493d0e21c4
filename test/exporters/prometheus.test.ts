import { afterEach, describe, expect, test } from "vitest";
import { exportersFromFlags } from "../helpers/exporters.js";
import type { PrometheusEndpoint } from "../../exporters/prometheus.js";
import { parseListenAddress } from "../../src/config/values.js";
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
