/**
 * The core owns its contracts and depends on nothing outside it (DESIGN "Layout"; issue 16 item
 * 7): every module of src/core imports only other modules of src/core and the two leaf modules
 * beside it, src/units.ts and src/errors.ts, which themselves import nothing; of Node's built-ins
 * only computation (node:crypto's hashes), no I/O (no file, process or network: tables and clocks
 * are passed in); no npm package; and never collectors/, exporters/, src/grid or any other part
 * of src/.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const root = resolve(import.meta.dirname, "..", "..");
const core = join(root, "src", "core");
/** Leaf modules the core may use: they import nothing themselves (checked below). */
const LEAVES = new Set(["src/units.ts", "src/errors.ts"]);
/** Node built-ins that do I/O (files, processes, network, the host): never in the core. */
const IO_BUILTINS = /^node:(fs|fs\/promises|os|child_process|net|http|https|http2|tls|dgram|dns|worker_threads|cluster|process|readline|inspector)$/;

/** Every module specifier a TypeScript file names: import/export ... from, import "x", import("x"). */
function specifiers(text: string): string[] {
  const out: string[] = [];
  const patterns = [/\b(?:import|export)\s[^;]*?\bfrom\s*["']([^"']+)["']/g, /\bimport\s*["']([^"']+)["']/g, /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g];
  for (const re of patterns) for (const m of text.matchAll(re)) out.push(m[1]);
  return out;
}

/** What a file of src/core may not import: every specifier outside the core and its two leaves. */
function violations(file: string, text: string): string[] {
  const bad: string[] = [];
  for (const spec of specifiers(text)) {
    if (spec.startsWith("node:")) {
      if (IO_BUILTINS.test(spec)) bad.push(`${file}: '${spec}' (a Node built-in doing I/O)`);
      continue;
    }
    if (!spec.startsWith(".")) {
      bad.push(`${file}: '${spec}' (a package)`);
      continue;
    }
    const target = relative(root, resolve(dirname(join(root, file)), spec)).replace(/\.js$/, ".ts");
    if (!target.startsWith("src/core/") && !LEAVES.has(target)) bad.push(`${file}: '${spec}' (${target})`);
  }
  return bad;
}

describe("src/core depends on nothing outside it", () => {
  const files = readdirSync(core).filter((f) => f.endsWith(".ts"));

  it("finds the core's modules and their imports (the check has something to check)", () => {
    expect(files.length).toBeGreaterThanOrEqual(10);
    expect(files.flatMap((f) => specifiers(readFileSync(join(core, f), "utf8"))).length).toBeGreaterThan(20);
  });

  it("every import of every core module stays in src/core (or units.ts / errors.ts)", () => {
    const bad = files.flatMap((f) => violations(`src/core/${f}`, readFileSync(join(core, f), "utf8")));
    expect(bad).toEqual([]);
  });

  it("units.ts and errors.ts import nothing (nothing reaches the core through them)", () => {
    for (const leaf of LEAVES) expect(specifiers(readFileSync(join(root, leaf), "utf8")), leaf).toEqual([]);
  });

  it("would catch each kind of reach outside (a forbidden import in a core file is reported)", () => {
    const cases = [
      'import type { IntensityReading } from "../grid/types.js";',
      'import { readFileSync } from "node:fs";',
      'import { dataPath } from "../paths.js";',
      'export { createExporters } from "../../exporters/index.js";',
      'const m = await import("../../collectors/rapl.js");',
      'import "zod";',
      'import { spawn } from "node:child_process";',
    ];
    for (const text of cases) expect(violations("src/core/ledger.ts", text), text).toHaveLength(1);
    expect(violations("src/core/ledger.ts", 'import type { Logger } from "./contracts.js";\nimport { joulesToKwh } from "../units.js";\nimport { createHash } from "node:crypto";')).toEqual([]);
  });
});
