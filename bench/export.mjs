// Benchmark: metric export of 500 jobs × 4 devices at 1 s intervals — CPU per export and RSS —
// for OTLP http/protobuf (to a real VictoriaMetrics when .cache/receivers has it, else to a
// loopback sink), OTLP http/json (loopback sink), a Prometheus scrape every second, and OTLP with
// the receiver down (memory must stay flat). Receivers and scrapers run in other processes.
// Results are recorded by hand in bench/RESULTS.md ("export" section). Not a test: nothing here
// asserts a time.
//
//   node --expose-gc bench/export.mjs [--exports 15]     (or: npm run bench)
//
// CPU is process.cpuUsage() of this process over the window divided by the exports in it; it
// includes building and update()-ing a fresh 500-job snapshot every second (measured separately).
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compileForBench, repoRoot } from "./compile.mjs";

const JOBS = 500;
const DEVICES = [
  { id: "gpu0", kind: "gpu", model: "NVIDIA H100 80GB HBM3" },
  { id: "gpu1", kind: "gpu", model: "NVIDIA H100 80GB HBM3" },
  { id: "cpu0", kind: "cpu", model: "AMD EPYC 9654" },
  { id: "mem0", kind: "memory" },
];

const byKind = (cpu, gpu, memory) => ({ cpu, gpu, memory, total: cpu + gpu + memory });

/** A LedgerSnapshot (the contract's plain data) of 500 jobs on 4 devices after `seconds`. */
export function bigSnapshot(seconds) {
  const job = (id, scale) => {
    const e = byKind(40 * seconds * scale, 300 * seconds * scale, 8 * seconds * scale);
    return {
      id,
      name: `job ${id}`,
      attributes: { team: `team-${Math.round(scale * 7) % 7}` },
      energyJoules: e,
      facilityEnergyJoules: e.total * 1.2,
      emissionsGrams: (e.total * 1.2 * 380) / 3_600_000,
      embodiedEmissionsGrams: e.total * 0.001,
      waterLiters: (e.total * 1.8) / 3_600_000,
      cost: 0,
      lastPowerWatts: byKind(40 * scale, 300 * scale, 8 * scale),
      phaseEnergyJoules: { train: e.total * 0.9, eval: e.total * 0.1 },
      deviceEnergyJoules: { gpu0: e.gpu / 2, gpu1: e.gpu / 2, cpu0: e.cpu, mem0: e.memory },
      firstSeenMillis: 0,
      lastSeenMillis: seconds * 1000,
    };
  };
  return {
    timeMillis: seconds * 1000,
    startMillis: 0,
    jobs: Array.from({ length: JOBS }, (_, i) => job(`job-${i}`, 1 + (i % 13) / 13)),
    buckets: { system: job("system", 0.1), idle: job("idle", 0.2) },
    devices: DEVICES.map((d) => ({
      ...d, source: "sim", method: "counter", energyJoules: 1000 * seconds, lastPowerWatts: 1000,
      idleOrigin: "scenario", status: "ok", notes: [],
    })),
    grid: { intensityGramsPerKwh: 380, zone: "DE", source: "static-table" },
    pue: 1.2,
  };
}

const warned = new Set();
const log = {
  info() {},
  warn(m) {
    console.error(`  warn: ${m}`);
  },
  warnOnce(k, m) {
    if (warned.has(k)) return;
    warned.add(k);
    console.error(`  warn (once): ${m}`);
  },
  debug() {},
};

async function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function child(code) {
  const c = spawn(process.execPath, ["-e", code], { stdio: ["ignore", "pipe", "inherit"] });
  return { c, ready: new Promise((r) => c.stdout.once("data", r)) };
}

/** A loopback OTLP sink in a child process: answers 200 to everything. */
async function startSink() {
  const port = await freePort();
  const { c, ready } = child(`require("http").createServer((q,s)=>{q.resume();q.on("end",()=>s.end())}).listen(${port},"127.0.0.1",()=>console.log("up"))`);
  await ready;
  return { url: `http://127.0.0.1:${port}`, stop: () => c.kill() };
}

/** A scraper in a child process: GETs url every second. */
async function startScraper(url) {
  const { c, ready } = child(`console.log("up");setInterval(()=>fetch(${JSON.stringify(url)}).then(r=>r.text()).catch(()=>{}),1000)`);
  await ready;
  return { stop: () => c.kill() };
}

async function startVm() {
  const bin = join(repoRoot, ".cache", "receivers", "root", "usr", "bin", "victoria-metrics");
  if (!existsSync(bin)) return undefined;
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "pp-bench-vm-"));
  const c = spawn(bin, [`-httpListenAddr=127.0.0.1:${port}`, `-storageDataPath=${dir}`, "-loggerLevel=ERROR"], { stdio: "ignore" });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`${base}/health`)).ok) break;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url: `${base}/opentelemetry`,
    stop: async () => {
      c.kill();
      await new Promise((r) => c.once("exit", r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const mib = (bytes) => (bytes / 1024 / 1024).toFixed(1);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Cost of building + update()-ing one snapshot (subtracted from nothing: reported alone). */
function snapshotCostMillis() {
  const start = process.cpuUsage();
  for (let i = 0; i < 20; i++) bigSnapshot(i);
  const c = process.cpuUsage(start);
  return (c.user + c.system) / 1000 / 20;
}

async function measure(label, createExporters, opts, env, seconds, extra = {}) {
  const job = { id: "bench", name: "bench", attributes: {}, origin: "flag" };
  const [exporter] = await createExporters(opts, { env, log, job, hostName: "bench-host", serviceInstanceId: "bench" });
  const scraper = extra.scrape ? await startScraper(exporter.url()) : undefined;
  let t = 1;
  exporter.update(bigSnapshot(t));
  await sleep(2100); // warm-up (JIT, connection, first exports): not counted
  global.gc?.();
  const count = () => (extra.scrape ? exporter.scrapes : exporter.exportStats().successes + Object.values(exporter.failures()).reduce((a, b) => a + b, 0) + exporter.exportStats().skipped);
  const rssStart = process.memoryUsage().rss;
  const heapStart = process.memoryUsage().heapUsed;
  let rssMax = rssStart;
  const before = count();
  const cpuStart = process.cpuUsage();
  for (let i = 0; i < seconds; i++) {
    exporter.update(bigSnapshot(++t));
    await sleep(1000);
    rssMax = Math.max(rssMax, process.memoryUsage().rss);
  }
  const cpu = process.cpuUsage(cpuStart);
  const n = count() - before;
  global.gc?.();
  const rssEnd = process.memoryUsage().rss;
  const heapEnd = process.memoryUsage().heapUsed;
  scraper?.stop();
  const stats = extra.scrape ? {} : exporter.exportStats();
  await exporter.shutdown(bigSnapshot(t));
  const cpuMillis = (cpu.user + cpu.system) / 1000;
  console.log(
    `| ${label} | ${n} | ${(cpuMillis / Math.max(1, n)).toFixed(1)} | ${mib(rssStart)} → ${mib(rssEnd)} (max ${mib(rssMax)}) | ${mib(heapStart)} → ${mib(heapEnd)} | ${JSON.stringify({ ...stats, failures: exporter.failures() })} |`,
  );
}

export async function main() {
  const argIndex = process.argv.indexOf("--exports");
  const seconds = argIndex > 0 ? Number(process.argv[argIndex + 1]) : 15;
  const dir = compileForBench(["exporters/index.ts"]);
  // The compiled files live outside the repo: let them resolve the project's packages.
  symlinkSync(join(repoRoot, "node_modules"), join(dir, "node_modules"));
  const { createExporters } = await import(`${dir}/exporters/index.js`);
  const points = JOBS * (2 * 3 + 4 + 2) + DEVICES.length * 2 + 2 * 3 + 1;
  console.log(`export benchmark: ${JOBS} jobs × ${DEVICES.length} devices (${points} data points per collection), 1 s interval, ${seconds} s per mode, node ${process.version}`);
  console.log(`building one 500-job snapshot: ${snapshotCostMillis().toFixed(2)} ms CPU (included in the figures below)`);
  console.log("| mode | exports | CPU ms/export | RSS MiB | heap MiB (after gc) | stats |");
  console.log("| --- | ---: | ---: | --- | --- | --- |");
  const vm = await startVm();
  const sink = await startSink();
  try {
    await measure(`OTLP http/protobuf → ${vm ? "VictoriaMetrics" : "loopback sink"}`, createExporters, { otlp: (vm ?? sink).url, exportInterval: "1s" }, {}, seconds);
    await measure("OTLP http/json → loopback sink", createExporters, { otlp: sink.url, exportInterval: "1s" }, { OTEL_EXPORTER_OTLP_PROTOCOL: "http/json" }, seconds);
    await measure("Prometheus, scraped every 1 s", createExporters, { prometheus: "127.0.0.1:0" }, {}, seconds, { scrape: true });
    const closed = await freePort();
    await measure("OTLP http/protobuf, receiver down", createExporters, { otlp: `http://127.0.0.1:${closed}`, exportInterval: "1s" }, { OTEL_EXPORTER_OTLP_TIMEOUT: "1000" }, seconds * 2);
  } finally {
    await vm?.stop();
    sink.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
