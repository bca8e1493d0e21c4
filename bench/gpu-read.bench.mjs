// Benchmark: cost of one GPU read per tick, NVML over koffi (8 stub GPUs: test/native/stub-nvml.c)
// versus one `nvidia-smi -q -x` replay of a real 8-GPU capture (a fake nvidia-smi that cats
// test/fixtures/nvidia-smi/datakit__8x-tesla-v100s_drv460_processes.xml), through both of the
// collector's runners (node-nvidia-smi via /bin/sh, and execFile by path), plus the XML parse alone.
// Results are recorded by hand in bench/RESULTS.md ("GPU read" section). Nothing here asserts a time.
//
//   node bench/gpu-read.bench.mjs        (or: npm run bench)
//
// The stub answers from memory, so the NVML figure is the FFI + collector overhead, not the
// driver's: bench/gpu-read.device-h200.json has a real H200's read time (scripts/device-check-nvml.sh).
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { buildStubNvml } from "../test/native/build-stub.mjs";

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Compiles the entries (and their imports) with the project's tsc into a temp dir, so the current sources run. */
function compile(entries) {
  const outDir = mkdtempSync(join(tmpdir(), "powerprint-gpu-bench-build-"));
  execFileSync(
    join(repoRoot, "node_modules", ".bin", "tsc"),
    ["--ignoreConfig", "--outDir", outDir, "--rootDir", repoRoot, "--module", "nodenext", "--moduleResolution", "nodenext",
      "--target", "es2022", "--strict", "--skipLibCheck", "--types", "node", ...entries.map((e) => join(repoRoot, e))],
    { cwd: repoRoot, stdio: "inherit" },
  );
  return outDir;
}

const EIGHT_GPU_XML = join(repoRoot, "test/fixtures/nvidia-smi/datakit__8x-tesla-v100s_drv460_processes.xml");

async function time(label, iterations, fn) {
  for (let i = 0; i < Math.min(20, iterations); i++) await fn(); // warm-up
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) await fn();
  const wallMicros = Number(process.hrtime.bigint() - t0) / 1000 / iterations;
  const cpu = process.cpuUsage(cpu0);
  const cpuMicros = (cpu.user + cpu.system) / iterations;
  const row = { label, iterations, wallMicrosPerRead: Math.round(wallMicros * 10) / 10, nodeCpuMicrosPerRead: Math.round(cpuMicros * 10) / 10 };
  console.log(JSON.stringify(row));
  return row;
}

export async function main() {
  const dir = compile(["collectors/nvml.ts", "collectors/nvidia-smi.ts"]);
  // The compiled files import koffi, node-nvidia-smi and xml2js: resolve them from the repo.
  symlinkSync(join(repoRoot, "node_modules"), join(dir, "node_modules"));
  const { createNvmlCollector } = await import(pathToFileURL(join(dir, "collectors/nvml.js")).href);
  const { createNvidiaSmiCollector, parseNvidiaSmiXml } = await import(pathToFileURL(join(dir, "collectors/nvidia-smi.js")).href);
  const work = mkdtempSync(join(tmpdir(), "powerprint-gpu-bench-"));
  console.log(`# GPU read benchmark — ${new Date().toISOString()} — ${cpus()[0]?.model ?? "cpu"} x${cpus().length} — node ${process.version}`);
  try {
    // 8 stub GPUs with the counter, 4 compute processes and 4 utilisation samples each.
    const lines = ["count 8"];
    for (let g = 0; g < 8; g++) {
      lines.push(`gpu${g}.name NVIDIA H100 80GB HBM3`, `gpu${g}.energy_mj ${1_000_000 * (g + 1)}`, `gpu${g}.power_mw 350000`, `gpu${g}.util 90`);
      lines.push(`gpu${g}.procs ${[1, 2, 3, 4].map((p) => `${g * 100 + p}:${p * 1073741824}`).join(",")}`);
    }
    const script = join(work, "stub-script.txt");
    writeFileSync(script, lines.join("\n") + "\n");
    process.env.STUB_NVML_SCRIPT = script;
    const nvml = createNvmlCollector({ libraryPath: buildStubNvml() });
    const probe = await nvml.probe();
    if (probe.status !== "ok" || probe.devices.length !== 8) throw new Error(`stub probe: ${JSON.stringify(probe)}`);
    await time("nvml (koffi, stub, 8 GPUs, 4 procs each)", 5000, async () => {
      const r = await nvml.read();
      if (r.length !== 8) throw new Error("expected 8 readings");
    });
    await nvml.close();

    const bin = join(work, "bin");
    mkdirSync(bin);
    const fake = join(bin, "nvidia-smi");
    writeFileSync(fake, `#!/bin/sh\ncat "${EIGHT_GPU_XML}"\n`);
    chmodSync(fake, 0o755);
    process.env.PATH = `${bin}${delimiter}${process.env.PATH}`;
    const check = (r) => {
      if (r.length !== 8) throw new Error(`expected 8 readings, got ${r.length}`);
    };
    const viaPackage = createNvidiaSmiCollector();
    await time("nvidia-smi -q -x replay via node-nvidia-smi (sh + cat + xml2js), 8 GPUs", 200, async () => check(await viaPackage.read()));
    const viaPath = createNvidiaSmiCollector({ command: fake });
    await time("nvidia-smi -q -x replay via execFile (sh script + cat + xml2js), 8 GPUs", 200, async () => check(await viaPath.read()));
    const xml = readFileSync(EIGHT_GPU_XML, "utf8");
    await time(`parseNvidiaSmiXml only (${Math.round(xml.length / 1024)} KiB, 8 GPUs)`, 500, async () => {
      if (parseNvidiaSmiXml(xml).gpus.length !== 8) throw new Error("parse");
    });
  } finally {
    rmSync(work, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) await main();
