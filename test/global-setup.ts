import { spawnSync } from "node:child_process";
import { join } from "node:path";

/**
 * Builds dist/ once before the tests: CLI tests run the real `powerprint` executable
 * (dist/src/cli/main.js), exactly what `npx powerprint` runs after `npm ci`. tsc writes dist/
 * even when it reports type errors; those fail test/typecheck.test.ts rather than every test.
 */
export default function setup(): void {
  const root = join(import.meta.dirname, "..");
  const r = spawnSync("npm", ["run", "-s", "build"], { cwd: root, encoding: "utf8" });
  if (r.status !== 0) process.stderr.write(`global-setup: build reported errors (see test/typecheck.test.ts):\n${r.stdout}${r.stderr}\n`);
}
