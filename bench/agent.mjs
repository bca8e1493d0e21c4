#!/usr/bin/env node
// Agent benchmark (not a test; results in bench/RESULTS.md "agent"):
//  1. steady: `powerprint agent --mode selector` at 1 Hz with OTLP export (every 15 s) to a real
//     VictoriaMetrics, watching a 10-process job (one ~20 % CPU burner, 9 sleepers), for
//     BENCH_STEADY_SECONDS (default 300): the agent's CPU % of one core (from /proc/PID/stat) and
//     RSS (/proc/PID/status VmRSS), sampled every 10 s;
//  2. churn: 10,000 short jobs (each a `sleep 0.3` with its own POWERPRINT_BENCH_JOB value, 20 at a
//     time) come and go under `--interval 100ms --retention 2s` with Prometheus scraped every
//     second and OTLP every second: RSS every 1,000 jobs, and the jobs held at the end.
//  3. retained: `agent --mode node` restarted on a state file holding 10,000 finished pods (the
//     default --max-finished-jobs, shaped like node mode's: test/agent/scripts/retained-state.mjs),
//     --retention 1h, --prometheus scraped 5 times by a streaming reader: each scrape's time, size
//     and series, RSS before and peak RSS (VmHWM), against the DaemonSet's 384 MiB limit.
// Usage: npm run build && node bench/agent.mjs [--steady-seconds N] [--jobs N] [--retained N]
// BENCH_AGENT_CLI: another build's dist/src/cli/main.js (a "before" figure on the same machine).
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { hostname, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const CLI = process.env.BENCH_AGENT_CLI || join(root, "dist", "src", "cli", "main.js");
const VM = join(root, ".cache", "receivers", "root", "usr", "bin", "victoria-metrics");
const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const STEADY_SECONDS = arg("--steady-seconds", Number(process.env.BENCH_STEADY_SECONDS ?? 300));
const JOBS = arg("--jobs", 10_000);
const RETAINED = arg("--retained", 10_000);
const TICKS_PER_SECOND = 100;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// Whatever happens (an exception included), nothing this benchmark started outlives it.
const started = new Set();
const track = (child) => {
  started.add(child);
  child.once("exit", () => started.delete(child));
  return child;
};
process.on("exit", () => {
  for (const c of started) c.kill("SIGKILL");
});
process.on("uncaughtException", (err) => {
  console.error(err);
  process.exit(1);
});
process.on("unhandledRejection", (err) => {
  console.error(err);
  process.exit(1);
});

function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function procCpuSeconds(pid) {
  const t = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = t.slice(t.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / TICKS_PER_SECOND;
}
function rssMiB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

// BENCH_AGENT_NODE_FLAGS (e.g. "--max-old-space-size=48"): V8 flags of the agent; a small old space
// forces collections, so RSS then shows the live memory rather than the heap V8 chose to keep.
const AGENT_NODE_FLAGS = (process.env.BENCH_AGENT_NODE_FLAGS ?? "").split(" ").filter(Boolean);

function startAgent(args, env = {}) {
  const child = track(spawn(process.execPath, [...AGENT_NODE_FLAGS, CLI, "agent", ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "pipe"] }));
  let err = "";
  child.stderr.on("data", (d) => (err += d));
  const line = async (re) => {
    for (let i = 0; i < 600; i++) {
      const m = re.exec(err);
      if (m) return m[1] ?? m[0];
      await sleep(50);
    }
    throw new Error(`no ${re} in agent stderr:\n${err}`);
  };
  return { child, line, stderr: () => err };
}

async function startVictoriaMetrics() {
  if (!existsSync(VM)) throw new Error(`${VM} missing: run bash .ci/install-receivers.sh`);
  const port = await freePort();
  const data = mkdtempSync(join(tmpdir(), "pp-bench-vm-"));
  const child = track(spawn(VM, [`-httpListenAddr=127.0.0.1:${port}`, `-storageDataPath=${data}`, "-retentionPeriod=1d", "-search.latencyOffset=0s", "-loggerLevel=WARN"], { stdio: "ignore" }));
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`${base}/health`)).ok) break;
    } catch {
      /* starting */
    }
    await sleep(100);
  }
  return {
    base,
    async count(promql) {
      await fetch(`${base}/internal/force_flush`);
      const r = await (await fetch(`${base}/api/v1/query?query=${encodeURIComponent(promql)}`)).json();
      return r.data.result.length;
    },
    async stop() {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
      rmSync(data, { recursive: true, force: true });
    },
  };
}

async function steady() {
  const vm = await startVictoriaMetrics();
  const burner = `let x=0; setInterval(() => { const end = Date.now() + 20; while (Date.now() < end) x += Math.sqrt(x + 1); }, 100);`;
  const job = [track(spawn(process.execPath, ["-e", burner], { env: { ...process.env, POWERPRINT_BENCH_JOB: "steady" }, stdio: "ignore" }))];
  for (let i = 0; i < 9; i++) job.push(track(spawn("sleep", ["100000"], { env: { ...process.env, POWERPRINT_BENCH_JOB: "steady" }, stdio: "ignore" })));
  const agent = startAgent(["--mode", "selector", "--match-env", "POWERPRINT_BENCH_JOB", "--interval", "1s", "--otlp", `${vm.base}/opentelemetry`, "--export-interval", "15s"]);
  await agent.line(/agent: mode|otlp: exporting/);
  await sleep(5000); // start-up (module loading, first export) is not the steady state
  const pid = agent.child.pid;
  const cpu0 = procCpuSeconds(pid);
  const t0 = performance.now();
  const rss = [];
  const samples = [];
  let lastCpu = cpu0;
  let lastT = t0;
  while (performance.now() - t0 < STEADY_SECONDS * 1000) {
    await sleep(10_000);
    const c = procCpuSeconds(pid);
    const t = performance.now();
    samples.push((100 * (c - lastCpu)) / ((t - lastT) / 1000));
    rss.push(rssMiB(pid));
    lastCpu = c;
    lastT = t;
  }
  const cpuPercent = (100 * (procCpuSeconds(pid) - cpu0)) / ((performance.now() - t0) / 1000);
  const series = await vm.count('{__name__=~"powerprint.job.energy.*", powerprint.job.id="POWERPRINT_BENCH_JOB=steady"}');
  agent.child.kill("SIGTERM");
  await new Promise((r) => agent.child.once("exit", r));
  for (const p of job) p.kill("SIGKILL");
  await vm.stop();
  samples.sort((a, b) => a - b);
  return {
    seconds: STEADY_SECONDS,
    cpuPercentOfOneCore: +cpuPercent.toFixed(2),
    cpuPercentP50Per10s: +samples[Math.floor(samples.length / 2)].toFixed(2),
    cpuPercentMaxPer10s: +samples.at(-1).toFixed(2),
    rssMiB: { first: +rss[0].toFixed(1), last: +rss.at(-1).toFixed(1), max: +Math.max(...rss).toFixed(1) },
    victoriaMetricsJobEnergySeries: series,
  };
}

async function churn() {
  const vm = await startVictoriaMetrics();
  const promPort = await freePort();
  const exportArgs = process.env.BENCH_NO_EXPORT ? [] : ["--prometheus", `127.0.0.1:${promPort}`, "--otlp", `${vm.base}/opentelemetry`, "--export-interval", "1s"];
  const agent = startAgent([
    "--mode", "selector", "--match-env", "POWERPRINT_BENCH_JOB", "--interval", "100ms", "--retention", "2s",
    "--listen", "127.0.0.1:0", ...exportArgs,
  ]);
  const health = await agent.line(/health: (\S+)\/healthz/);
  const pid = agent.child.pid;
  let scraping = true;
  const scraper = (async () => {
    while (scraping) {
      await fetch(`http://127.0.0.1:${promPort}/metrics`).then((r) => r.text()).catch(() => "");
      await sleep(1000);
    }
  })();
  const rss = [{ jobs: 0, rssMiB: +rssMiB(pid).toFixed(1) }];
  let started = 0;
  let running = 0;
  const t0 = performance.now();
  await new Promise((resolve) => {
    const next = () => {
      while (running < 20 && started < JOBS) {
        const i = started++;
        running++;
        const p = spawn("sleep", ["0.3"], { env: { ...process.env, POWERPRINT_BENCH_JOB: `j${i}` }, stdio: "ignore" });
        p.once("exit", () => {
          running--;
          if (i > 0 && i % 1000 === 0) rss.push({ jobs: i, rssMiB: +rssMiB(pid).toFixed(1) });
          if (started >= JOBS && running === 0) resolve();
          else next();
        });
      }
    };
    next();
  });
  const churnSeconds = (performance.now() - t0) / 1000;
  await sleep(4000); // retention 2 s: all dropped
  const view = await (await fetch(`${health}/jobs`)).json();
  const vmSeries = await vm.count('{__name__=~"powerprint.job.energy.*"}');
  rss.push({ jobs: started, afterRetention: true, rssMiB: +rssMiB(pid).toFixed(1) });
  scraping = false;
  await scraper;
  const promText = exportArgs.length > 0 ? await (await fetch(`http://127.0.0.1:${promPort}/metrics`)).text() : "";
  const promSeries = promText.split("\n").filter((l) => l.startsWith("powerprint_job_energy_total{")).length;
  agent.child.kill("SIGTERM");
  await new Promise((r) => agent.child.once("exit", r));
  await vm.stop();
  return { jobs: JOBS, churnSeconds: +churnSeconds.toFixed(1), jobsSeenAndDropped: view.dropped, jobsHeldAtEnd: view.jobs.length, prometheusJobSeriesAtEnd: promSeries, victoriaMetricsJobSeriesSeen: vmSeries, rss };
}

async function retained() {
  const { retainedState } = await import("../test/agent/scripts/retained-state.mjs");
  const dir = mkdtempSync(join(tmpdir(), "pp-bench-retained-"));
  const state = join(dir, "state.json");
  writeFileSync(state, JSON.stringify(retainedState({ jobs: RETAINED, host: hostname(), mode: "node" })));
  const promPort = await freePort();
  const agent = startAgent(["--mode", "node", "--interval", "1s", "--prometheus", `127.0.0.1:${promPort}`, "--listen", "127.0.0.1:0", "--state-file", state, "--checkpoint-interval", "30s", "--retention", "1h"]);
  await agent.line(/agent: mode/);
  const pid = agent.child.pid;
  const hwm = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))[1]) / 1024;
  await sleep(3000);
  const rssBeforeMiB = rssMiB(pid);
  const scrapes = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    const res = await fetch(`http://127.0.0.1:${promPort}/metrics`);
    let bytes = 0;
    let lines = 0;
    const decoder = new TextDecoder();
    for await (const chunk of res.body) {
      bytes += chunk.length;
      for (const c of decoder.decode(chunk, { stream: true })) if (c === "\n") lines++;
    }
    scrapes.push({ ms: Math.round(performance.now() - t0), bytes, lines, rssMiB: +rssMiB(pid).toFixed(1) });
    await sleep(1000);
  }
  const out = { jobs: RETAINED, rssBeforeScrapesMiB: +rssBeforeMiB.toFixed(1), peakRssMiB: +hwm().toFixed(1), scrapes, scrapeMsMedian: [...scrapes.map((x) => x.ms)].sort((a, b) => a - b)[2] };
  agent.child.kill("SIGTERM");
  await new Promise((r) => agent.child.once("exit", r));
  rmSync(dir, { recursive: true, force: true });
  return out;
}

const out = { when: new Date().toISOString(), node: process.version, cli: CLI, agentNodeFlags: AGENT_NODE_FLAGS };
if (STEADY_SECONDS > 0) out.steady = await steady();
if (JOBS > 0) out.churn = await churn();
if (RETAINED > 0) out.retained = await retained();
console.log(JSON.stringify(out, null, 2));
