import { execFileSync } from "node:child_process";
import { join } from "node:path";

/**
 * Builds dist/ once before the tests: CLI tests run the real `powerprint` executable
 * (dist/src/cli/main.js), exactly what `npx powerprint` runs after `npm ci`.
 */
export default function setup(): void {
  const root = join(import.meta.dirname, "..");
  execFileSync("npm", ["run", "-s", "build"], { cwd: root, stdio: "inherit" });
}
