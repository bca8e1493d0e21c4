// Every `$ powerprint ...` line of docs/plan-and-disclose.md runs as written (a training command
// replaced by `true`), in a folder holding the reports it names (written by `simulate`), against a
// loopback GB forecast re-dated to now.
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.js";
import { fixture, startReplayServer, type ReplayServer } from "../grid/replay-server.js";

const HALF_HOUR = 30 * 60_000;
const root = join(import.meta.dirname, "..", "..");
const doc = readFileSync(join(root, "docs", "plan-and-disclose.md"), "utf8");
const examples = doc.split("\n").filter((l) => l.trim().startsWith("$ powerprint ")).map((l) => l.trim().slice("$ powerprint ".length));
const dir = mkdtempSync(join(tmpdir(), "pp-plan-docs-"));
let server: ReplayServer;
/** true: values rise from now on (starting now is best, so `run` never waits long). */
let rising = false;

beforeAll(async () => {
  const values = fixture<{ data: { intensity: { forecast: number } }[] }>("uk-carbonintensity__intensity_fw24h__2020-05-21.json").data.map((p) => p.intensity.forecast);
  server = await startReplayServer(() => {
    const start = Math.floor(Date.now() / HALF_HOUR) * HALF_HOUR;
    const series = rising ? [...values].sort((a, b) => a - b) : values;
    const data = series.map((v, i) => ({
      from: new Date(start + i * HALF_HOUR).toISOString(),
      to: new Date(start + (i + 1) * HALF_HOUR).toISOString(),
      intensity: { forecast: v, actual: null, index: "low" },
    }));
    return { body: { data } };
  });
  const ramp = join(dir, "run.json");
  const r = await runCli(["simulate", join(root, "test", "fixtures", "scenarios", "ramped-gpu-job.json"), "--report", ramp]);
  expect(r.code, r.stderr).toBe(0);
  for (const name of ["sweep-1.json", "sweep-2.json", "last-run.json"]) copyFileSync(ramp, join(dir, name));
  writeFileSync(join(dir, "README.md"), "---\nlicense: mit\n---\n# A model\n");
}, 30_000);
afterAll(async () => server?.close());

describe("docs/plan-and-disclose.md examples", () => {
  it("has examples, and `plan --help` shows only examples of the doc", async () => {
    expect(examples.length).toBeGreaterThanOrEqual(3);
    const help = await runCli(["plan", "--help"]);
    const shown = help.stdout.split("\n").filter((l) => l.trim().startsWith("$ powerprint ")).map((l) => l.trim().slice("$ powerprint ".length));
    expect(shown.length).toBeGreaterThan(0);
    for (const line of shown) expect(examples).toContain(line);
  });
  it.each(examples)("powerprint %s", async (line) => {
    const args = line.split(/\s+/);
    const dashdash = args.indexOf("--");
    rising = args[0] === "run";
    const argv = dashdash >= 0 ? [...args.slice(0, dashdash + 1), "true"] : args;
    const r = await runCli(argv, { cwd: dir, env: { POWERPRINT_UK_CARBON_INTENSITY_URL: server.url }, timeoutMillis: 60_000 });
    expect(r.code, `${line}\n${r.stderr}`).toBe(0);
    // The model card block the doc shows is this example's output (but for the version).
    if (line.includes("--model-card ")) {
      const shown = /```yaml\n(co2_eq_emissions:[\s\S]*?)```/.exec(doc)![1];
      const version = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version;
      expect(r.stdout).toBe(shown.replace("powerprint 0.1.0", `powerprint ${version}`));
    }
  });
});
