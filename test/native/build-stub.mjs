// Builds the stub libnvidia-ml.so.1 (test/native/stub-nvml.c) with gcc into test/.build/stub-nvml/
// (gitignored). Used by the NVML collector tests and by bench/gpu-read.bench.mjs. Rebuilds only
// when the C source is newer than the library.
import { execFileSync } from "node:child_process";
import { mkdirSync, statSync, existsSync, renameSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

/**
 * Compiles the stub NVML library and returns its absolute path (".../libnvidia-ml.so.1").
 * @param {string} [outDir] where to put it; default test/.build/stub-nvml
 * @returns {string}
 */
export function buildStubNvml(outDir = join(here, "..", ".build", "stub-nvml")) {
  const source = join(here, "stub-nvml.c");
  const library = join(outDir, "libnvidia-ml.so.1");
  if (existsSync(library) && statSync(library).mtimeMs >= statSync(source).mtimeMs) return library;
  mkdirSync(outDir, { recursive: true });
  // Build to a temporary name then rename, so two test files building at once never load a half-written file.
  const temp = `${library}.${process.pid}.tmp`;
  execFileSync("gcc", ["-shared", "-fPIC", "-O2", "-Wall", "-o", temp, source], { stdio: "pipe" });
  renameSync(temp, library);
  return library;
}
