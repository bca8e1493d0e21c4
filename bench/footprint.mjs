// powerprint's own footprint during `run --interval 1s -q -- sleep S` (S = 60; 15 with BENCH_QUICK):
// peak RSS (VmHWM of the node process) and CPU % (its utime + stime over the run's wall time, not
// the child's), without exporters and with --otlp to a real VictoriaMetrics (.cache/receivers).
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLI, quick, repoRoot, round } from "./lib.mjs";

const CLK_TCK = 100;

function readSelf(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(status)?.[1] ?? NaN);
    return { rssKb: kb("VmRSS"), hwmKb: kb("VmHWM"), cpuSeconds: (Number(f[11]) + Number(f[12])) / CLK_TCK };
  } catch {
    return undefined;
  }
}

async function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const port = s.address().port;
      s.close(() => resolve(port));
    });
  });
}

/** VictoriaMetrics single-node on loopback, or undefined when the binary is absent. */
async function startVictoriaMetrics() {
  const binary = join(repoRoot, ".cache", "receivers", "root", "usr", "bin", "victoria-metrics");
  if (!existsSync(binary)) return undefined;
  const port = await freePort();
  const data = mkdtempSync(join(tmpdir(), "pp-bench-vm-"));
  const proc = spawn(binary, [`-httpListenAddr=127.0.0.1:${port}`, `-storageDataPath=${data}`, "-retentionPeriod=1d", "-loggerLevel=WARN"], { stdio: "ignore" });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`${url}/health`)).ok) break;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url: `${url}/opentelemetry`, stop: () => (proc.kill("SIGKILL"), rmSync(data, { recursive: true, force: true })) };
}

async function measureRun(extraArgs, seconds) {
  const t0 = process.hrtime.bigint();
  const child = spawn(process.execPath, [CLI, "run", "--interval", "1s", "-q", ...extraArgs, "--", "sleep", String(seconds)], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  let last;
  let peakRssKb = 0;
  const rssSamplesKb = [];
  const timer = setInterval(() => {
    const s = readSelf(child.pid);
    if (s) {
      last = s;
      rssSamplesKb.push(s.rssKb);
      peakRssKb = Math.max(peakRssKb, s.hwmKb);
    }
  }, 250);
  const code = await new Promise((r) => child.on("exit", r));
  clearInterval(timer);
  const wallSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (code !== 0) throw new Error(`run exited ${code}: ${stderr}`);
  const steady = rssSamplesKb.slice(Math.floor(rssSamplesKb.length / 2));
  return {
    peakRssMiB: round(peakRssKb / 1024, 1),
    steadyRssMiB: round(steady.reduce((a, b) => a + b, 0) / steady.length / 1024, 1),
    cpuPercent: round((100 * last.cpuSeconds) / wallSeconds, 2),
    cpuSeconds: last.cpuSeconds,
    wallSeconds: round(wallSeconds, 2),
  };
}

export async function main({ seconds = quick ? 15 : 60 } = {}) {
  const rows = [];
  const plain = await measureRun([], seconds);
  rows.push({ metric: `run -- sleep ${seconds}, no exporter`, ...plain, target: "RSS ≤ 60 MiB" });
  process.stdout.write(`footprint: no exporter: ${JSON.stringify(plain)}\n`);
  const vm = await startVictoriaMetrics();
  if (vm) {
    try {
      const otlp = await measureRun(["--otlp", vm.url, "--export-interval", "5s"], seconds);
      rows.push({ metric: `run --otlp (VictoriaMetrics, 5 s export) -- sleep ${seconds}`, ...otlp, target: "RSS ≤ 75 MiB" });
      process.stdout.write(`footprint: otlp: ${JSON.stringify(otlp)}\n`);
    } finally {
      vm.stop();
    }
  } else {
    rows.push({ metric: "run --otlp", note: "skipped: .cache/receivers/root/usr/bin/victoria-metrics absent (bash .ci/install-receivers.sh)" });
  }
  return { name: "footprint", rows };
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
