// scripts/check-advisories.mjs: the lockfile check that stands in for the refused `npm audit`.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const script = new URL("../../scripts/check-advisories.mjs", import.meta.url).pathname;
const run = (lock?: string) => spawnSync(process.execPath, lock ? [script, lock] : [script], { encoding: "utf8" });

describe("check-advisories", () => {
  it("flags a lockfile holding a vulnerable version (nested too), and passes a fixed one", () => {
    const dir = mkdtempSync(join(tmpdir(), "pp-adv-"));
    try {
      const lock = join(dir, "package-lock.json");
      writeFileSync(lock, JSON.stringify({ packages: { "": {}, "node_modules/xml2js": { version: "0.4.23" }, "node_modules/a/node_modules/yaml": { version: "2.2.1" }, "node_modules/zod": { version: "3.22.3" } } }));
      const bad = run(lock);
      expect(bad.status).toBe(1);
      expect(bad.stdout).toMatch(/VULNERABLE node_modules\/xml2js@0\.4\.23: GHSA-776f-qx25-q3cc/);
      expect(bad.stdout).toMatch(/VULNERABLE node_modules\/a\/node_modules\/yaml@2\.2\.1/);
      expect(bad.stdout).not.toMatch(/zod@3\.22\.3/);
      writeFileSync(lock, JSON.stringify({ packages: { "node_modules/xml2js": { version: "0.6.2" }, "node_modules/yaml": { version: "2.2.2" } } }));
      expect(run(lock).status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the project's own lockfile has no listed vulnerable version", () => {
    const r = run();
    expect(r.stdout).toMatch(/no installed version is in a listed vulnerable range/);
    expect(r.status).toBe(0);
  });
});
