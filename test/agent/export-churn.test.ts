/**
 * Exporters under job churn (agent lifecycle): a dropped job's series leave /metrics at once, and
 * after many drops the OTel provider is rebuilt (the SDK keeps per-series history otherwise) while
 * the live jobs' counters carry on with the ledger's totals.
 */
import { afterEach, describe, expect, it } from "vitest";
import { exportersFromFlags } from "../helpers/exporters.js";
import type { PrometheusEndpoint } from "../../exporters/prometheus.js";
import { promValue, scrape } from "../cli/agent-helpers.js";
import { recordingLogger, snapshot } from "../exporters/snapshots.js";

const job = { id: "agent", name: "agent", attributes: {}, origin: "generated" as const };

describe("Prometheus endpoint under job churn", () => {
  let endpoint: PrometheusEndpoint | undefined;
  afterEach(async () => {
    await endpoint?.shutdown(snapshot({ jobs: [] }));
    endpoint = undefined;
  });

  it("drops a job's series when it leaves the snapshot, and rebuilds the provider after many drops", async () => {
    const [e] = await exportersFromFlags({ prometheus: "127.0.0.1:0" }, { env: {}, log: recordingLogger(), job, hostName: "node-a" });
    endpoint = e as PrometheusEndpoint;
    const meter = (endpoint as unknown as { meter: { builds: number } }).meter;
    const metric = "powerprint_job_energy_total";
    const long = (n: number) => ({ id: "long", cpuJoules: n, attributes: { "k8s.pod.name": "long-0" } });

    endpoint.update(snapshot({ jobs: [long(1), { id: "short-0", cpuJoules: 5 }] }));
    const first = await scrape(endpoint.url());
    expect(promValue(first, metric, { powerprint_job_id: "short-0" })).toBe(5);
    expect(promValue(first, metric, { powerprint_job_id: "long", k8s_pod_name: "long-0" })).toBe(1);

    // 1,000 short jobs, each seen by a scrape and then dropped.
    for (let i = 1; i <= 1000; i++) {
      endpoint.update(snapshot({ jobs: [long(1 + i), { id: `short-${i}`, cpuJoules: 5 }] }));
      if (i % 50 === 0) {
        const text = await scrape(endpoint.url());
        // Only the jobs of the current snapshot: never the dropped ones.
        const jobIds = new Set([...text.matchAll(/powerprint_job_id="([^"]+)"/g)].map((m) => m[1]));
        expect([...jobIds].sort()).toEqual(["long", `short-${i}`]);
        expect(promValue(text, metric, { powerprint_job_id: "long" })).toBe(1 + i);
      } else {
        await scrape(endpoint.url());
      }
    }
    // More than 256 dropped since a build: rebuilt (1,000 drops → at least 3 rebuilds).
    expect(meter.builds).toBeGreaterThanOrEqual(4);
    endpoint.update(snapshot({ jobs: [long(2000)] }));
    expect(promValue(await scrape(endpoint.url()), metric, { powerprint_job_id: "long" })).toBe(2000);
  }, 60_000);
});
