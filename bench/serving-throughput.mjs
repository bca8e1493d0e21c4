// A server's generated tokens/s with and without powerprint around it: the real llama.cpp server
// of the tests (.ci/install-llama.sh: Debian sid's llama-server through its own loader; the tiny
// generated model, test/serving/tiny-gguf.py), started directly and under
// `powerprint run --work-from <its /metrics> --interval 1s`, alternately (A B A B ...), each time
// the same load: a warm-up, then REQUESTS requests of MAX_TOKENS tokens (ignore_eos) one at a
// time. tokens/s = the responses' completion tokens / the load's wall time. The ratio of each
// pair (under powerprint / direct) and their median are the figure. On a shared machine the wall
// figure carries the other tenants' noise, so each load also records the server's own CPU seconds
// (/proc/PID/stat: tokens per CPU second, which contention does not change) and powerprint's CPU
// over the load (its cost beside the server). Needs dist/ (npm run build).
//   node bench/serving-throughput.mjs   (BENCH_ROUNDS, BENCH_REQUESTS, BENCH_MAX_TOKENS; BENCH_QUICK=1)
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { CLI, machine, quick, repoRoot, round, stats } from "./lib.mjs";

const root = join(repoRoot, ".cache", "llama.cpp", "root");
const lib = join(root, "usr", "lib", "x86_64-linux-gnu");
if (!existsSync(join(root, "usr", "bin", "llama-server"))) {
  console.error("no llama-server: run bash .ci/install-llama.sh");
  process.exit(1);
}
const rounds = Number(process.env.BENCH_ROUNDS ?? (quick ? 2 : 6));
const requests = Number(process.env.BENCH_REQUESTS ?? (quick ? 60 : 300));
const maxTokens = Number(process.env.BENCH_MAX_TOKENS ?? 64);

function model() {
  const generator = join(repoRoot, "test", "serving", "tiny-gguf.py");
  const dir = join(repoRoot, "test", ".artifacts", "serving");
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `tiny-${createHash("sha256").update(readFileSync(generator)).digest("hex").slice(0, 12)}.gguf`);
  if (!existsSync(path)) {
    const r = spawnSync("/usr/bin/python3", [generator, `${path}.bench.tmp`], { env: { ...process.env, PYTHONPATH: join(root, "usr", "lib", "python3", "dist-packages") }, stdio: "inherit" });
    if (r.status !== 0) process.exit(1);
    renameSync(`${path}.bench.tmp`, path);
  }
  return path;
}

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

const serverArgv = (port) => [join(lib, "ld-linux-x86-64.so.2"), "--library-path", `${lib}:${join(lib, "llama")}`, join(root, "usr", "bin", "llama-server"), "-m", model(), "--metrics", "--host", "127.0.0.1", "--port", String(port), "-c", "512", "-t", "1", "-np", "1", "--no-cache-prompt", "--no-webui"];

async function healthy(base) {
  for (let i = 0; i < 600; i++) {
    try {
      if ((await fetch(`${base}/health`)).ok) return;
    } catch {
      /* starting */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${base} never answered`);
}

/** utime + stime of a process, seconds (clock ticks of 100 Hz). */
function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/** The server's PID: the spawned process itself (the loader runs it in place), or powerprint's child. */
function serverPid(child, wrapped) {
  if (!wrapped) return child.pid;
  for (const task of readdirSync(`/proc/${child.pid}/task`)) {
    const kids = readFileSync(`/proc/${child.pid}/task/${task}/children`, "utf8").trim().split(" ").filter(Boolean);
    if (kids.length) return Number(kids[0]);
  }
  return undefined;
}

async function load(base, n) {
  let tokens = 0;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${base}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ prompt: `request ${i}: the energy of one token`, max_tokens: maxTokens, ignore_eos: true, temperature: 0 }) });
    tokens += (await res.json()).usage.completion_tokens;
  }
  return { tokens, seconds: (performance.now() - t0) / 1000 };
}

/** One measurement: the server started directly or under powerprint, warmed up, loaded, stopped. */
async function measure(wrapped) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const argv = wrapped ? [process.execPath, CLI, "run", "-q", "--interval", "1s", "--work-from", `${base}/metrics`, "--", ...serverArgv(port)] : serverArgv(port);
  const child = spawn(argv[0], argv.slice(1), { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr = (stderr + d).slice(-4000)));
  const exited = new Promise((r) => child.once("exit", r));
  try {
    await healthy(base);
    await load(base, 20);
    const pid = serverPid(child, wrapped);
    const [server0, own0] = [cpuSeconds(pid), wrapped ? cpuSeconds(child.pid) : 0];
    const r = await load(base, requests);
    const [server1, own1] = [cpuSeconds(pid), wrapped ? cpuSeconds(child.pid) : 0];
    return { tokensPerSecond: r.tokens / r.seconds, tokensPerCpuSecond: r.tokens / (server1 - server0), powerprintCpuShare: (own1 - own0) / r.seconds };
  } finally {
    child.kill("SIGTERM");
    await exited;
    if (wrapped && !/serving {5}/.test(stderr)) console.error(`(no serving line in powerprint's summary:\n${stderr})`);
  }
}

const direct = [];
const underPowerprint = [];
const ratios = [];
const cpuRatios = [];
const ownShare = [];
for (let i = 0; i < rounds; i++) {
  // Alternate which goes first, so a drift of the machine's load hits both alike.
  let a, b;
  if (i % 2 === 0) {
    a = await measure(false);
    b = await measure(true);
  } else {
    b = await measure(true);
    a = await measure(false);
  }
  direct.push(a.tokensPerSecond);
  underPowerprint.push(b.tokensPerSecond);
  ratios.push(b.tokensPerSecond / a.tokensPerSecond);
  cpuRatios.push(b.tokensPerCpuSecond / a.tokensPerCpuSecond);
  ownShare.push(b.powerprintCpuShare);
  console.error(`round ${i + 1}: direct ${a.tokensPerSecond.toFixed(0)} tok/s, under powerprint ${b.tokensPerSecond.toFixed(0)} tok/s (ratio ${(b.tokensPerSecond / a.tokensPerSecond).toFixed(3)}); per server CPU s ratio ${(b.tokensPerCpuSecond / a.tokensPerCpuSecond).toFixed(3)}; powerprint ${(100 * b.powerprintCpuShare).toFixed(2)} % of a core`);
}
const d = stats(direct);
const w = stats(underPowerprint);
const q = stats(ratios);
const c = stats(cpuRatios);
const o = stats(ownShare);
console.log(
  JSON.stringify(
    {
      bench: "serving-throughput",
      machine: machine(),
      rounds,
      requests,
      maxTokens,
      directTokensPerSecond: { median: round(d.median, 1), min: round(d.min, 1), max: round(d.max, 1) },
      underPowerprintTokensPerSecond: { median: round(w.median, 1), min: round(w.min, 1), max: round(w.max, 1) },
      ratio: { median: round(q.median, 4), min: round(q.min, 4), max: round(q.max, 4) },
      tokensPerServerCpuSecondRatio: { median: round(c.median, 4), min: round(c.min, 4), max: round(c.max, 4) },
      powerprintCpuShareOfOneCore: { median: round(o.median, 4), min: round(o.min, 4), max: round(o.max, 4) },
    },
    null,
    2,
  ),
);
