// The bundle scripts/postbuild.mjs writes (global-setup builds it): `run`'s pre-spawn chunk holds
// what the spawn needs and none of the modules loaded lazily after it. A module imported both
// statically and lazily stays in its static importer's chunk (rolldown's INEFFECTIVE_DYNAMIC_IMPORT,
// once printed as two yellow lines by `npm ci`); postbuild now fails the build on it, and this
// test reads the chunk's module list (rolldown's `// path` region comments) to pin where they went.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const bundleDir = join(import.meta.dirname, "..", "..", "dist", "bundle");

/** The modules a chunk holds, as rolldown's region comments name them. */
function modulesOf(file: string): string[] {
  return [...readFileSync(join(bundleDir, file), "utf8").matchAll(/^\/\/ ((?:dist|node_modules)\/\S+\.m?js)$/gm)].map((m) => m[1]);
}

describe("the bundle (scripts/postbuild.mjs)", () => {
  const chunks = readdirSync(bundleDir);
  const runStart = chunks.filter((f) => /^run-start-.*\.mjs$/.test(f));

  it("has one pre-spawn chunk for run, holding the spawn's modules", () => {
    expect(runStart).toHaveLength(1);
    const mods = modulesOf(runStart[0]);
    // The check can fail: the region comments are there and name what run needs before its spawn.
    for (const m of ["dist/src/cli/run.js", "dist/src/cli/run-spawn.js", "dist/collectors/rapl-counters.js", "node_modules/commander/lib/command.js"]) expect(mods).toContain(m);
  });

  it("loads the RAPL collector and the JSON report module lazily, in chunks of their own", () => {
    const mods = modulesOf(runStart[0]);
    for (const lazy of ["dist/collectors/rapl.js", "dist/exporters/report-json.js", "dist/src/cli/run-measure.js", "dist/src/core/monitor.js"]) expect(mods).not.toContain(lazy);
    const holders = (m: string) => chunks.filter((f) => f.endsWith(".mjs") && modulesOf(f).includes(m));
    expect(holders("dist/collectors/rapl.js")).toHaveLength(1);
    expect(holders("dist/exporters/report-json.js")).toHaveLength(1);
  });
});
