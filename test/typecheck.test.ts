import { expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { join } from "node:path";

it("the whole tree typechecks (tsc --noEmit, strict)", () => {
  const root = join(import.meta.dirname, "..");
  const r = spawnSync(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "--noEmit", "-p", root], { encoding: "utf8" });
  expect(r.stdout + r.stderr).toBe("");
  expect(r.status).toBe(0);
});
