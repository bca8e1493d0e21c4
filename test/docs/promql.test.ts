/**
 * Every PromQL/MetricsQL query the docs show (```promql blocks and inline queries) runs against the
 * backend whose names it uses, after real runs exported there: VictoriaMetrics with and without
 * -opentelemetry.usePrometheusNaming (OTLP push), and Prometheus scraping `--prometheus`. Each
 * query must return data. The runs carry what the queries select: a GPU (a --sim scenario), marks
 * with samples and tokens (the marks helper), pod resource attributes and a `k8s.job.name` tag.
 * The metric identity the docs state, sum(hw.energy) = sum(job) + sum(bucket), is checked on the data.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { freePort, receiversSkipReason, startPrometheus, startVictoriaMetrics, type Receiver } from "../helpers/receivers.js";
import { codeBlocks, loadDocs, prose } from "./docs.js";
import { makeSandbox, runShell, type Sandbox } from "./sandbox.js";
import { serveText, type Endpoint } from "../serving/endpoint.js";
import { waitFor } from "../helpers/wait.js";

const docs = loadDocs();

/** A query a doc shows, and where. */
interface Query {
  doc: string;
  promql: string;
}

/** Lines of ```promql blocks (comments dropped) and inline code that calls a PromQL function or selects by __name__. */
function docQueries(): Query[] {
  const out: Query[] = [];
  for (const doc of docs) {
    for (const block of codeBlocks(doc.text).filter((b) => b.lang === "promql")) {
      for (const line of block.body.split("\n")) if (line.trim() && !line.trim().startsWith("#")) out.push({ doc: doc.path, promql: line.trim() });
    }
    for (const m of prose(doc.text).matchAll(/`([^`]+)`/g)) {
      const code = m[1];
      if (/^(sum ?\(|sum by |sum without |1e6 \* |\{__name__=)/.test(code) && !code.includes(" = ")) out.push({ doc: doc.path, promql: code });
    }
  }
  return out;
}

type Backend = "vm-otel-naming" | "vm-prometheus-naming" | "prometheus";

/** The backend whose names a query uses: dotted OTel names, VictoriaMetrics' unit-suffixed names, or the Prometheus exporter's. */
function backendOf(promql: string): Backend {
  if (/\b(powerprint|hw)\.[a-z]/.test(promql)) return "vm-otel-naming";
  if (/_(joules|grams|seconds|watts|L)_total\b|_watts\b|_grams_per_kW\.h/.test(promql)) return "vm-prometheus-naming";
  return "prometheus";
}

const skip = receiversSkipReason("victoria-metrics", "prometheus");

/**
 * Holds the Prometheus-scraped run (train.py's TRAIN_GATE) until Prometheus has the data the docs'
 * `increase()` queries need: two samples of each counter, the counters grown between them. A run of
 * a few seconds is not enough by itself: Prometheus applies a new scrape target only when its scrape
 * manager next takes target updates (every 5 s), so such a run was often scraped once, by
 * --prometheus-linger's final scrape, and every increase() was empty. So: mid-way (training paused
 * at step 5 of 10) until the job's counters are scraped, then (training done, the run still
 * measuring) until the final counts are scraped and every counter has two samples.
 */
/** The fewest samples any series of a range selector has in Prometheus (undefined: no series). */
async function fewestSamples(prometheus: Receiver, selector: string): Promise<number | undefined> {
  const response = await fetch(`${prometheus.baseUrl}/api/v1/query?query=${encodeURIComponent(selector)}&time=${Date.now() / 1000}`);
  const body = (await response.json()) as { data?: { result: { values: unknown[] }[] } };
  const counts = (body.data?.result ?? []).map((r) => r.values.length);
  return counts.length ? Math.min(...counts) : undefined;
}

async function scrapedMidAndEnd(prometheus: Receiver, gate: string): Promise<void> {
  const job = 'powerprint_job_id="docs-job"';
  const value = async (q: string) => (await prometheus.query(q))[0]?.value;
  const outputTokens = `sum(powerprint_job_serving_tokens_total{${job},gen_ai_token_type="output"})`;
  const mid = await waitFor(
    "Prometheus's scrape of the job's counters mid-way",
    async () => {
      const [samples, tokens, served] = await Promise.all([value(`powerprint_job_samples_total{${job}}`), value(`powerprint_job_tokens_total{${job}}`), value(outputTokens)]);
      return samples !== undefined && tokens !== undefined && served !== undefined && { served };
    },
    120_000,
    100,
  );
  writeFileSync(`${gate}.mid`, "");
  const counters = `{__name__=~"powerprint_job_(energy|emissions|samples|tokens|serving_energy|serving_tokens|serving_emissions)_total",${job}}`;
  await waitFor(
    "Prometheus's scrapes of the final counts, two samples of every counter",
    async () => {
      const [samples, served, fewest] = await Promise.all([value(`powerprint_job_samples_total{${job}}`), value(outputTokens), fewestSamples(prometheus, `${counters}[10m]`)]);
      return samples === 640 && served !== undefined && served > mid.served && fewest !== undefined && fewest >= 2;
    },
    120_000,
    100,
  );
  writeFileSync(`${gate}.end`, "");
}

/** Instant query at `timeSeconds`. */
async function queryAt(receiver: Receiver, promql: string, timeSeconds: number): Promise<{ metric: Record<string, string>; value: number }[]> {
  await fetch(`${receiver.baseUrl}/internal/force_flush`).catch(() => undefined);
  const response = await fetch(`${receiver.baseUrl}/api/v1/query?query=${encodeURIComponent(promql)}&time=${timeSeconds}`);
  const body = (await response.json()) as { status: string; error?: string; data?: { result: { metric: Record<string, string>; value: [number, string] }[] } };
  if (body.status !== "success" || !body.data) throw new Error(`${promql}: ${body.error ?? response.status}`);
  return body.data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
}

describe.skipIf(!!skip)("PromQL in the docs", () => {
  let sandbox: Sandbox;
  const receivers = new Map<Backend, Receiver>();
  let endedSeconds = 0;
  let lastScrapeSeconds = 0;
  // docs/serving.md's queries: the runs measure a vLLM-named endpoint (two models, counters growing per scrape).
  let serving: Endpoint;
  let scrapes = 0;

  beforeAll(async () => {
    sandbox = makeSandbox();
    serving = await serveText(() => {
      const n = ++scrapes;
      return ["m1", "m2"].map((m) => `vllm:prompt_tokens_total{model_name="${m}"} ${20 * n}\nvllm:generation_tokens_total{model_name="${m}"} ${10 * n}\nvllm:num_requests_running{model_name="${m}"} ${n % 2}\n`).join("");
    });
    const promPort = await freePort();
    const [vmOtel, vmProm, prometheus] = await Promise.all([
      startVictoriaMetrics(),
      startVictoriaMetrics({ prometheusNaming: true }),
      startPrometheus({ targets: [`127.0.0.1:${promPort}`], scrapeIntervalMillis: 1000 }),
    ]);
    receivers.set("vm-otel-naming", vmOtel);
    receivers.set("vm-prometheus-naming", vmProm);
    receivers.set("prometheus", prometheus);
    const env = {
      ...process.env,
      PATH: sandbox.path,
      TRAIN_SECONDS: "3",
      K8S_POD_NAME: "train-0",
      K8S_NAMESPACE_NAME: "ml",
      PYTHONDONTWRITEBYTECODE: "1",
    };
    const common = `--sim scenario.json --job-id docs-job --tag k8s.job.name=train-job --export-interval 1s --work-from ${serving.url}`;
    const marks = 'PYTHONPATH="$(powerprint python-path)"';
    // Two runs at once: OTLP can go to one endpoint per run; the second also serves Prometheus until it is scraped.
    const gate = join(sandbox.dir, "gate");
    const runs = Promise.all([
      runShell(`${marks} powerprint run ${common} --otlp ${vmOtel.baseUrl}/opentelemetry -- python train.py`, { cwd: sandbox.dir, env }),
      runShell(`${marks} powerprint run ${common} --otlp ${vmProm.baseUrl}/opentelemetry --prometheus 127.0.0.1:${promPort} --prometheus-linger 30s -- python train.py`, {
        cwd: sandbox.dir,
        env: { ...env, TRAIN_GATE: gate },
      }),
    ]);
    await scrapedMidAndEnd(prometheus, gate);
    const done = await runs;
    endedSeconds = Date.now() / 1000;
    for (const r of done) expect(r.code, r.stderr).toBe(0);
    // Prometheus marks the series stale at its first failed scrape after the run: query it at its
    // last good scrape (range vectors carry the samples' own timestamps; stale markers excluded).
    const response = await fetch(`${prometheus.baseUrl}/api/v1/query?query=${encodeURIComponent("powerprint_job_energy_total[10m]")}`);
    const body = (await response.json()) as { data: { result: { values: [number, string][] }[] } };
    lastScrapeSeconds = Math.max(...body.data.result.flatMap((r) => r.values.map((v) => v[0])));
    expect(lastScrapeSeconds).toBeGreaterThan(0);
  }, 180_000);

  afterAll(async () => {
    await Promise.all([...receivers.values()].map((r) => r.stop()));
    await serving?.close();
    sandbox?.remove();
  });

  const queries = docQueries();

  test("the docs show queries for each backend", () => {
    const backends = new Set(queries.map((q) => backendOf(q.promql)));
    expect([...backends].sort()).toEqual(["prometheus", "vm-otel-naming", "vm-prometheus-naming"]);
    expect(queries.length).toBeGreaterThanOrEqual(15);
  });

  test.each(queries.map((q) => [`${q.doc}: ${q.promql}`, q] as const))("returns data: %s", async (_name, q) => {
    const receiver = receivers.get(backendOf(q.promql))!;
    const samples = await queryAt(receiver, q.promql, backendOf(q.promql) === "prometheus" ? lastScrapeSeconds : endedSeconds);
    expect(samples.length, `${backendOf(q.promql)}: ${q.promql}`).toBeGreaterThan(0);
    for (const s of samples) expect(Number.isFinite(s.value)).toBe(true);
  });

  test("sum(hw.energy) = sum(powerprint.job.energy) + sum(powerprint.bucket.energy), as docs/metrics.md says", async () => {
    const metricsDoc = docs.find((d) => d.path === "docs/metrics.md")!;
    expect(metricsDoc.text).toContain("`sum(hw.energy) = sum(powerprint.job.energy) + sum(powerprint.bucket.energy)`");
    const vm = receivers.get("vm-otel-naming")!;
    const value = async (q: string) => (await queryAt(vm, q, endedSeconds))[0].value;
    const [hw, jobs, buckets] = await Promise.all(["sum(hw.energy)", "sum(powerprint.job.energy)", "sum(powerprint.bucket.energy)"].map(value));
    expect(hw).toBeGreaterThan(0);
    expect(Math.abs(hw - (jobs + buckets))).toBeLessThanOrEqual(1e-6 * hw);
  });
});
