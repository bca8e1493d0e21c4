// The cost of reading a serving engine's /metrics once per interval (--work-from): CPU ms per
// scrape of a loopback endpoint of 200 and of 5,000 series, vLLM-shaped (counters with
// finished_reason, gauges, histograms of 20 buckets, per model; the model count makes the series
// count), against a floor measured in the same run: the same HTTP GET of the same body, read as
// text and not parsed. Needs dist/ (npm run build).
//   node bench/serving-scrape.mjs            (BENCH_QUICK=1: fewer rounds)
import { createServer } from "node:http";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { machine, quick, repoRoot, round, stats } from "./lib.mjs";

const { scrapeOnce, readBody } = await import(pathToFileURL(join(repoRoot, "dist", "src", "serving", "scraper.js")).href);

/** A vLLM v1-shaped body of exactly `series` sample lines. */
function body(series) {
  const lines = [];
  const families = [];
  const buckets = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, "+Inf"];
  for (let m = 0; lines.length < series; m++) {
    const l = `engine="0",model_name="org/model-${m}"`;
    const fam = (name, type, samples) => {
      if (!families.includes(name)) {
        families.push(name);
        lines.push(`# HELP ${name} ${name.replace(/[:_]/g, " ")}`, `# TYPE ${name} ${type}`);
      }
      lines.push(...samples);
    };
    fam("vllm:num_requests_running", "gauge", [`vllm:num_requests_running{${l}} ${m % 4}.0`]);
    fam("vllm:num_requests_waiting", "gauge", [`vllm:num_requests_waiting{${l}} 0.0`]);
    fam("vllm:kv_cache_usage_perc", "gauge", [`vllm:kv_cache_usage_perc{${l}} 0.${m % 10}3`]);
    fam("vllm:prompt_tokens_total", "counter", [`vllm:prompt_tokens_total{${l}} ${1000 * m + 48}.0`]);
    fam("vllm:generation_tokens_total", "counter", [`vllm:generation_tokens_total{${l}} ${700 * m + 24}.0`]);
    fam("vllm:request_success_total", "counter", ["stop", "length", "abort", "error", "repetition"].map((r, i) => `vllm:request_success_total{${l},finished_reason="${r}"} ${i * m}.0`));
    for (const h of ["vllm:time_to_first_token_seconds", "vllm:e2e_request_latency_seconds", "vllm:request_prefill_time_seconds", "vllm:request_decode_time_seconds", "vllm:inter_token_latency_seconds"]) {
      fam(h, "histogram", [
        ...buckets.map((b, i) => `${h}_bucket{${l},le="${b}"} ${i * 3}.0`),
        `${h}_count{${l}} ${buckets.length * 3}.0`,
        `${h}_sum{${l}} ${(m + 1) * 1.2345678}`,
      ]);
    }
  }
  // Exactly `series` sample lines (comments are free).
  let samples = 0;
  return lines.filter((x) => (x.startsWith("#") ? true : ++samples <= series)).join("\n") + "\n";
}

function serve(text) {
  return new Promise((resolve) => {
    const server = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
      res.end(text);
    });
    server.listen(0, "127.0.0.1", () => resolve({ server, url: new URL(`http://127.0.0.1:${server.address().port}/metrics`) }));
  });
}

/** CPU ms of this process per call of `fn`, over `n` calls after `warm` warm-ups (median of `rounds` batches). */
async function cpuPerCall(fn, n, warm, rounds) {
  for (let i = 0; i < warm; i++) await fn();
  const perBatch = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = process.cpuUsage();
    for (let i = 0; i < n; i++) await fn();
    const d = process.cpuUsage(t0);
    perBatch.push((d.user + d.system) / 1000 / n);
  }
  return stats(perBatch);
}

const rounds = quick ? 3 : 7;
const results = [];
for (const series of [200, 5000]) {
  const text = body(series);
  const { server, url } = await serve(text);
  const n = series > 1000 ? (quick ? 20 : 60) : quick ? 100 : 300;
  // The floor: the same GET, the body read as text (what any scrape costs before parsing).
  const floor = await cpuPerCall(async () => (await fetch(url, { headers: { accept: "text/plain;version=0.0.4" } })).text(), n, 20, rounds);
  let outcome;
  const scrape = await cpuPerCall(async () => (outcome = await scrapeOnce({ url, timeoutMillis: 5000 })), n, 20, rounds);
  const parse = await cpuPerCall(async () => readBody(text), n, 20, rounds);
  server.close();
  if (outcome.status !== "ok") throw new Error(`scrape failed: ${outcome.message}`);
  results.push({
    series,
    bodyKiB: round(Buffer.byteLength(text) / 1024, 1),
    models: outcome.reading.models.size,
    floorCpuMillis: round(floor.median, 3),
    scrapeCpuMillis: round(scrape.median, 3),
    scrapeCpuMillisRange: [round(scrape.min, 3), round(scrape.max, 3)],
    parseOnlyCpuMillis: round(parse.median, 3),
    scrapeOverFloor: round(scrape.median / floor.median, 2),
  });
}
console.log(JSON.stringify({ bench: "serving-scrape", machine: machine(), rounds, results }, null, 2));
