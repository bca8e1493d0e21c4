// Shared helpers of the benchmarks: statistics, C compilation, the machine, the built CLI.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { cpus, tmpdir, totalmem, loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const benchDir = dirname(fileURLToPath(import.meta.url));
export const repoRoot = join(benchDir, "..");
/** The CLI under test: BENCH_CLI (e.g. a build of an older commit, for before/after), else this checkout's dist. */
export const CLI = process.env.BENCH_CLI ?? join(repoRoot, "dist", "src", "cli", "main.js");
export const quick = process.env.BENCH_QUICK === "1";

/** Median, min, max, and the interquartile range of numbers. */
export function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => {
    const i = (s.length - 1) * p;
    const lo = Math.floor(i);
    return s[lo] + (s[Math.min(lo + 1, s.length - 1)] - s[lo]) * (i - lo);
  };
  return { n: s.length, median: q(0.5), p25: q(0.25), p75: q(0.75), min: s[0], max: s[s.length - 1] };
}

export const round = (x, digits = 3) => (x === undefined || x === null || Number.isNaN(x) ? x : Number(x.toFixed(digits)));

/** Compiles bench/c/NAME.c with cc -O2 into a temp dir; returns the binary path. */
export function compileC(name) {
  const out = join(mkdtempSync(join(tmpdir(), "pp-bench-c-")), name);
  execFileSync("cc", ["-O2", "-o", out, join(benchDir, "c", `${name}.c`)], { stdio: "inherit" });
  return out;
}

/** The machine and Node version, for every result file. */
export function machine() {
  const cpuinfo = existsSync("/proc/cpuinfo") ? readFileSync("/proc/cpuinfo", "utf8") : "";
  return {
    date: new Date().toISOString(),
    cpu: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? cpus()[0]?.model,
    logicalCpus: cpus().length,
    memoryGiB: round(totalmem() / 1024 ** 3, 1),
    kernel: readFileSync("/proc/sys/kernel/osrelease", "utf8").trim(),
    node: process.version,
    loadAverageAtStart: loadavg().map((x) => round(x, 2)),
  };
}

/** Spawns and waits; resolves { code, wallMillis, stdout, stderr }. */
export function run(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], ...opts });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code, wallMillis: Number(process.hrtime.bigint() - t0) / 1e6, stdout, stderr, pid: child.pid }));
    opts.onSpawn?.(child);
  });
}

/** Deterministic PRNG (mulberry32): every bench run generates the same scenario and traces. */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
