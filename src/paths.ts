/** Locating files shipped with the package (data/), independent of the working directory. */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

let cachedRoot: string | undefined;

/**
 * The powerprint package root: walks up from this module's file until a package.json whose
 * name is "powerprint". Works from src/ (tests, tsx) and from dist/src/ (the built CLI).
 */
export function packageRoot(): string {
  if (cachedRoot) return cachedRoot;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, "package.json");
    if (existsSync(candidate)) {
      try {
        const pkg = JSON.parse(readFileSync(candidate, "utf8")) as { name?: string };
        if (pkg.name === "powerprint") {
          cachedRoot = dir;
          return dir;
        }
      } catch {
        // An unreadable package.json on the way up is not ours; keep walking.
      }
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`powerprint package root not found above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

/** Absolute path of a file under the package's data/ directory. */
export function dataPath(name: string): string {
  return join(packageRoot(), "data", name);
}
