// Builds the test's native helpers with gcc into test/.build/ (gitignored): the stub
// libnvidia-ml.so.1 (test/native/stub-nvml.c; used by the NVML collector tests and by
// bench/gpu-read.bench.mjs) and stuck-fuse (test/native/stuck-fuse.c: a FUSE file whose read never
// returns). Each is rebuilt only when its C source is newer than what was built.
import { execFileSync } from "node:child_process";
import { mkdirSync, statSync, existsSync, renameSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

/** Compiles `source` (in test/native) to `output` with `flags` unless it is up to date; returns `output`. */
function build(source, output, flags) {
  const from = join(here, source);
  if (existsSync(output) && statSync(output).mtimeMs >= statSync(from).mtimeMs) return output;
  mkdirSync(dirname(output), { recursive: true });
  // Build to a temporary name then rename, so two test files building at once never load a half-written file.
  const temp = `${output}.${process.pid}.tmp`;
  execFileSync("gcc", [...flags, "-O2", "-Wall", "-o", temp, from], { stdio: "pipe" });
  renameSync(temp, output);
  return output;
}

/**
 * Compiles the stub NVML library and returns its absolute path (".../libnvidia-ml.so.1").
 * @param {string} [outDir] where to put it; default test/.build/stub-nvml
 * @returns {string}
 */
export function buildStubNvml(outDir = join(here, "..", ".build", "stub-nvml")) {
  return build("stub-nvml.c", join(outDir, "libnvidia-ml.so.1"), ["-shared", "-fPIC"]);
}

/**
 * Compiles stuck-fuse and returns its absolute path.
 * @returns {string}
 */
export function buildStuckFuse() {
  return build("stuck-fuse.c", join(here, "..", ".build", "stuck-fuse", "stuck-fuse"), []);
}
