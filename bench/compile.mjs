// Compiles the listed TypeScript entry files (and what they import) to a temp dir with the
// project's tsc, so a benchmark runs the current sources whatever the state of `npm run build`.
// Usage: const dir = compileForBench(["src/jobs/tracker.ts"]); await import(`${dir}/src/jobs/tracker.js`)
import { execFileSync } from "node:child_process";
import { mkdtempSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Returns the output dir; `src/x.ts` compiles to `<dir>/src/x.js`. */
export function compileForBench(entries) {
  const outDir = mkdtempSync(join(tmpdir(), "powerprint-bench-"));
  const tsc = join(repoRoot, "node_modules", ".bin", "tsc");
  execFileSync(
    tsc,
    ["--ignoreConfig", "--outDir", outDir, "--rootDir", repoRoot, "--module", "nodenext", "--moduleResolution", "nodenext",
      "--target", "es2022", "--strict", "--skipLibCheck", "--types", "node", ...entries.map((e) => join(repoRoot, e))],
    { cwd: repoRoot, stdio: "inherit" },
  );
  // Compiled modules that import packages (zod, yaml, the OTel SDK) resolve them from here.
  symlinkSync(join(repoRoot, "node_modules"), join(outDir, "node_modules"));
  return outDir;
}
