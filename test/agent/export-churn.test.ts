/**
 * Exporters under job churn (agent lifecycle): a dropped job's series leave /metrics at once (the
 * Prometheus endpoint writes each scrape from the newest snapshot and keeps nothing per series);
 * a push exporter's OTel provider is rebuilt after many drops (the SDK keeps per-series history
 * otherwise) while the live jobs' counters carry on with the ledger's totals.
 */
import { afterEach, describe, expect, it } from "vitest";
import { AggregationTemporality, InMemoryMetricExporter } from "@opentelemetry/sdk-metrics";
import { exportersFromFlags } from "../helpers/exporters.js";
import { FailureTracker, buildResource, createPeriodicExporter } from "../../exporters/otel.js";
import type { PrometheusEndpoint } from "../../exporters/prometheus.js";
import { promValue, scrape } from "../cli/agent-helpers.js";
import { recordingLogger, snapshot } from "../exporters/snapshots.js";

const job = { id: "agent", name: "agent", attributes: {}, origin: "generated" as const };
const long = (n: number) => ({ id: "long", cpuJoules: n, attributes: { "k8s.pod.name": "long-0" } });

describe("Prometheus endpoint under job churn", () => {
  let endpoint: PrometheusEndpoint | undefined;
  afterEach(async () => {
    await endpoint?.shutdown(snapshot({ jobs: [] }));
    endpoint = undefined;
  });

  it("shows only the jobs of the newest snapshot: a dropped job's series go at once", async () => {
    const [e] = await exportersFromFlags({ prometheus: "127.0.0.1:0" }, { env: {}, log: recordingLogger(), job, hostName: "node-a" });
    endpoint = e as PrometheusEndpoint;
    const metric = "powerprint_job_energy_total";
    endpoint.update(snapshot({ jobs: [long(1), { id: "short-0", cpuJoules: 5 }] }));
    const first = await scrape(endpoint.url());
    expect(promValue(first, metric, { powerprint_job_id: "short-0" })).toBe(5);
    expect(promValue(first, metric, { powerprint_job_id: "long", k8s_pod_name: "long-0" })).toBe(1);
    for (let i = 1; i <= 1000; i++) {
      endpoint.update(snapshot({ jobs: [long(1 + i), { id: `short-${i}`, cpuJoules: 5 }] }));
      if (i % 50 !== 0) continue;
      const text = await scrape(endpoint.url());
      const jobIds = new Set([...text.matchAll(/powerprint_job_id="([^"]+)"/g)].map((m) => m[1]));
      expect([...jobIds].sort()).toEqual(["long", `short-${i}`]);
      expect(promValue(text, metric, { powerprint_job_id: "long" })).toBe(1 + i);
    }
  }, 60_000);
});

describe("a push exporter under job churn", () => {
  it("drops a job's series when it leaves the snapshot, and rebuilds the provider after many drops", async () => {
    const memory = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const deps = { resource: buildResource({ "host.name": "node-a" }), failures: new FailureTracker(), log: recordingLogger() };
    const exporter = createPeriodicExporter("memory", memory, { exportIntervalMillis: 3_600_000, timeoutMillis: 5_000, target: "memory" }, deps);
    const internals = exporter as unknown as { provider: { forceFlush(): Promise<void> }; retiring: Set<Promise<void>> };
    const exported = async (): Promise<Map<string, number>> => {
      // A retired provider's last export still in flight would make this one skip (one at a time).
      await Promise.all([...internals.retiring]);
      memory.reset();
      await internals.provider.forceFlush();
      const out = new Map<string, number>();
      for (const rm of memory.getMetrics()) {
        for (const sm of rm.scopeMetrics) {
          for (const m of sm.metrics) {
            if (m.descriptor.name !== "powerprint.job.energy") continue;
            for (const p of m.dataPoints) out.set(String(p.attributes["powerprint.job.id"]), (out.get(String(p.attributes["powerprint.job.id"])) ?? 0) + (p.value as number));
          }
        }
      }
      return out;
    };
    for (let i = 1; i <= 1000; i++) {
      exporter.update(snapshot({ jobs: [long(1 + i), { id: `short-${i}`, cpuJoules: 5 }] }));
      // A rebuild happens after the update that noticed the drops, never inside a collection.
      await new Promise((r) => setImmediate(r));
      if (i % 50 !== 0) continue;
      const jobs = await exported();
      expect([...jobs.keys()].sort()).toEqual(["long", `short-${i}`]);
      expect(jobs.get("long")).toBe(1 + i);
    }
    // More than 256 dropped since a build: rebuilt (1,000 drops → at least 3 rebuilds).
    expect(exporter.builds).toBeGreaterThanOrEqual(4);
    await exporter.shutdown(snapshot({ jobs: [long(2000)] }));
  }, 60_000);
});
