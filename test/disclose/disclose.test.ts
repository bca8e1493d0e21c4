// Disclosure end to end with the real CLI: the Hugging Face model card block (parsed as YAML,
// written into a README keeping every other byte), the SCI against a hand calculation from the
// report's own numbers, and the Impact Framework manifest recomputed by the real `if-run`
// (@grnsft/if, offline) equal to powerprint's carbon and SCI to float rounding.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { execFile } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { runCli } from "../helpers/cli.js";
import type { ReportV1 } from "../../exporters/report-schema.js";

const root = join(import.meta.dirname, "..", "..");
const scenario = (name: string) => join(root, "test", "fixtures", "scenarios", name);
const dir = mkdtempSync(join(tmpdir(), "pp-disclose-"));
const ramp = join(dir, "ramp.json");
const tokens = join(dir, "tokens.json");
const read = (file: string) => JSON.parse(readFileSync(file, "utf8")) as ReportV1 & { jobs: (ReportV1["jobs"][number] & Record<string, unknown>)[] };
const KWH = 3_600_000;
const YEAR_SECONDS = 365.25 * 86_400;

/**
 * A training-loop stand-in writing marks with cumulative counters; each step computes for at least
 * 300 ms of wall time, so the run outlasts the Impact Framework's 1 s minimum observation whatever
 * the machine's speed (a lower bound, not a timing assertion).
 */
const LOOP = `const fs = require("fs");
for (let i = 1; i <= 6; i++) { fs.appendFileSync(process.env.POWERPRINT_MARKS, JSON.stringify({ phase: "train", step: i * 10, samples: i * 320, tokens: i * 163840 }) + "\\n"); let x = 0; const end = Date.now() + 300; while (Date.now() < end) x++; if (x < 0) console.log(x); }`;

beforeAll(async () => {
  const a = await runCli(["simulate", scenario("ramped-gpu-job.json"), "--report", ramp]);
  expect(a.code, a.stderr).toBe(0);
  const b = await runCli(["run", "--sim", scenario("shared-gpu-two-jobs.json"), "--interval", "100ms", "--job-id", "loop", "--report", tokens, "--", process.execPath, "-e", LOOP], { timeoutMillis: 60_000 });
  expect(b.code, b.stderr).toBe(0);
}, 90_000);

describe("report --model-card", () => {
  it("the whole experiment: every run's emissions summed, failed runs counted, documented fields and types", async () => {
    // A sweep of three runs of the ramped job: the second failed (exit 1), the third was renamed.
    const base = read(ramp);
    const failed = join(dir, "failed.json");
    const third = join(dir, "third.json");
    writeFileSync(failed, JSON.stringify({ ...base, exitCode: 1, jobs: base.jobs.map((j) => ({ ...j, id: "train-2", emissionsGrams: j.emissionsGrams / 3 })) }));
    writeFileSync(third, JSON.stringify({ ...base, jobs: base.jobs.map((j) => ({ ...j, id: "train-3", emissionsGrams: j.emissionsGrams * 2 })) }));
    const r = await runCli(["report", ramp, failed, third, "--model-card", "--training-type", "fine-tuning"]);
    expect(r.code, r.stderr).toBe(0);
    const doc = parse(r.stdout) as { co2_eq_emissions: Record<string, unknown> };
    const block = doc.co2_eq_emissions;
    expect(Object.keys(block).sort()).toEqual(["emissions", "geographical_location", "hardware_used", "source", "training_type"]);
    expect(typeof block.emissions).toBe("number");
    const sum = [ramp, failed, third].flatMap((f) => read(f).jobs).reduce((a, j) => a + j.emissionsGrams, 0);
    expect(block.emissions as number).toBeCloseTo(sum, 9);
    expect(block.source).toBe(`powerprint ${base.tool.version}`);
    expect(block.training_type).toBe("fine-tuning");
    expect(block.geographical_location).toBe("United Kingdom (GB)");
    expect(block.hardware_used).toBe("1 x NVIDIA A100-SXM4-80GB");
    expect(r.stdout).toMatch(/# 3 runs \(the whole experiment, 1 failed, counted\): operational CO2e of the jobs, g; embodied \S+ g not included/);
  });

  it("written into a README's front matter: every other byte kept", async () => {
    const readme = join(dir, "README.md");
    const head = "---\n# Hub metadata\nlicense: mit\ntags:\n  - vision\n  - pytorch\n";
    const old = "co2_eq_emissions:\n  emissions: 1\n  source: old figure\n";
    const tail = "language:  en   # two spaces kept\n---\n\n# My model\n\nA line with --- inside, and trailing spaces   \n";
    writeFileSync(readme, head + old + tail);
    const r = await runCli(["report", ramp, "--model-card-readme", readme]);
    expect(r.code, r.stderr).toBe(0);
    const after = readFileSync(readme, "utf8");
    expect(after.startsWith(head)).toBe(true);
    expect(after.endsWith(tail)).toBe(true);
    const front = parse(after.slice(4, after.indexOf("\n---\n") + 1)) as Record<string, Record<string, unknown>>;
    expect(front.co2_eq_emissions.emissions).toBeCloseTo(read(ramp).jobs[0].emissionsGrams, 9);
    expect(front.license).toBe("mit");
    expect(front.tags).toEqual(["vision", "pytorch"]);
  });
});

describe("report --sci", () => {
  it("equals a hand calculation from the report's numbers, per tokens, samples, steps and run", async () => {
    const job = read(tokens).jobs.find((j) => j.id === "loop")!;
    expect(job.tokens).toBe(6 * 163840);
    for (const [per, r] of [["tokens", job.tokens], ["samples", job.samples], ["steps", job.steps], ["run", 1]] as const) {
      const out = join(dir, `sci-${per}.json`);
      const res = await runCli(["report", tokens, "--sci", "--per", per, "--job", "loop", "--json", out]);
      expect(res.code, res.stderr).toBe(0);
      const sci = (JSON.parse(readFileSync(out, "utf8")) as { sci: Record<string, number>[] }).sci[0];
      // By hand: SCI = ((E × I) + M) / R with E × I = the job's operational emissions, M its embodied.
      expect(sci.sciGrams).toBeCloseTo((job.emissionsGrams + job.embodiedEmissionsGrams) / (r as number), 15);
      expect(sci.sciGrams / ((job.emissionsGrams + job.embodiedEmissionsGrams) / (r as number))).toBeCloseTo(1, 12);
      expect(sci.energyKwh).toBe(job.facilityEnergyJoules / KWH);
      expect(sci.energyKwh * sci.intensityGramsPerKwh).toBeCloseTo(job.emissionsGrams, 15);
      expect(res.stdout).toContain(`R = ${(r as number).toLocaleString("en-US")} ${per}`);
      expect(res.stdout).toMatch(/SCI = \(\(E × I\) \+ M\) \/ R = \(\(/);
    }
  });

  it("R from serving: requests, and generated tokens where marks gave none", async () => {
    const base = read(ramp);
    const figures = { promptTokens: 5000, generatedTokens: 20000, requests: 40, energyJoules: 1, activeEnergyJoules: 1, idleEnergyJoules: 0, prefillEnergyJoules: null, decodeEnergyJoules: null, emissionsGrams: 0, joulesPerGeneratedToken: null, joulesPerRequest: null, emissionsGramsPerThousandTokens: null };
    const serving = { engine: "llamacpp", source: "http://127.0.0.1:8080/metrics", activeFrom: "counter-increases", prefillDecode: "none", restarts: 0, inconsistentReadings: 0, total: figures, models: [{ ...figures, model: "" }] };
    const served = join(dir, "served.json");
    writeFileSync(served, JSON.stringify({ ...base, jobs: base.jobs.map((j) => ({ ...j, serving })) }));
    const job = base.jobs[0];
    for (const [per, r, source] of [["requests", 40, "serving (requests)"], ["tokens", 20000, "serving (generated tokens)"]] as const) {
      const out = join(dir, `served-${per}.json`);
      const res = await runCli(["report", served, "--sci", "--per", per, "--json", out]);
      expect(res.code, res.stderr).toBe(0);
      const sci = (JSON.parse(readFileSync(out, "utf8")) as { sci: { sciGrams: number; unitSource: string }[] }).sci[0];
      expect(sci.sciGrams / ((job.emissionsGrams + job.embodiedEmissionsGrams) / r)).toBeCloseTo(1, 12);
      expect(sci.unitSource).toBe(source);
    }
  });

  it("M = TE × TS × RS: TE from the device table, TS = time reserved / lifetime, RS the job's share", async () => {
    const out = join(dir, "sci-ramp.json");
    const res = await runCli(["report", ramp, "--sci", "--json", out]);
    expect(res.code, res.stderr).toBe(0);
    const sci = (JSON.parse(readFileSync(out, "utf8")) as { sci: { groups: { totalGrams: number; timeShare: number; lifetimeSeconds: number }[]; resourceShare: number; embodiedGrams: number; reservedSeconds: number }[] }).sci[0];
    const job = read(ramp).jobs[0];
    // The A100 row of data/embodied.json: 318 kg over 4 years; the run covers 5,400 s.
    expect(sci.groups).toHaveLength(1);
    expect(sci.groups[0].totalGrams).toBe(318_000);
    expect(sci.groups[0].lifetimeSeconds).toBe(4 * YEAR_SECONDS);
    expect(sci.reservedSeconds).toBe(5400);
    expect(sci.groups[0].timeShare).toBe(5400 / (4 * YEAR_SECONDS));
    expect(sci.embodiedGrams).toBe(job.embodiedEmissionsGrams);
    // The job was the GPU's only user: its share is 1 (the ledger's per-interval energy share).
    expect(sci.resourceShare).toBeCloseTo(1, 9);
    expect(318_000 * sci.groups[0].timeShare * sci.resourceShare).toBeCloseTo(job.embodiedEmissionsGrams, 12);
  });

  it("bad input: one line, exit 2, nothing written", async () => {
    const v2 = join(dir, "v2.json");
    writeFileSync(v2, JSON.stringify({ ...read(ramp), schemaVersion: 2 }));
    const manifest = join(dir, "never.yml");
    const short = join(dir, "short.json");
    const { timeSeries: _series, ...noSeries } = read(ramp);
    // The job's own duration is what it covers (the report model's jobs[].durationSeconds).
    writeFileSync(short, JSON.stringify({ ...noSeries, durationSeconds: 0.5, jobs: noSeries.jobs.map((j) => ({ ...j, durationSeconds: 0.5 })) }));
    const cases: [string[], RegExp][] = [
      [[ramp, "--sci", "--per", "bananas"], /--per: must be one of tokens, samples, requests, steps, run, got 'bananas'/],
      [[ramp, "--sci", "--per", "requests"], /--per: job 'train' has no requests count in the report: requests are counted by serving/],
      [[ramp, "--sci", "--per", "tokens"], /--per: job 'train' has no tokens count/],
      [[ramp, v2, "--model-card"], /v2\.json: not a powerprint v1 report: schemaVersion/],
      [[ramp, "--model-card", "--training-type", "pretraining"], /--training-type: must be pre-training or fine-tuning/],
      [[ramp, "--model-card-readme", join(dir, "missing.md")], /--model-card-readme: '.*missing\.md' is not an existing regular file/],
      [[ramp, "--sci", "--job", "nope"], /--job: no job 'nope'/],
      [[short], /--impact-manifest: job train covers 500 ms: the Impact Framework's Sci plugin needs observations of at least 1 s/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(["report", ...args, "--impact-manifest", manifest]);
      expect(r.code, `${args.join(" ")}\n${r.stderr}`).toBe(2);
      expect(r.stderr.trim().split("\n"), r.stderr).toHaveLength(1);
      expect(r.stderr).toMatch(message);
      expect(existsSync(manifest)).toBe(false);
    }
  });
});

const ifRun = join(root, "node_modules", ".bin", "if-run");

/** Runs the real Impact Framework CLI on a manifest and returns its output tree. */
async function recompute(manifest: string) {
  const out = join(dir, `if-${Math.random().toString(36).slice(2)}`);
  await promisify(execFile)(ifRun, ["--manifest", manifest, "--output", out], { timeout: 120_000 });
  const doc = parse(readFileSync(`${out}.yaml`, "utf8")) as { tree: { children: Record<string, { aggregated: Record<string, number>; outputs: unknown[] }> } };
  return doc.tree.children;
}

describe("report --impact-manifest, recomputed by the real if-run", () => {
  it("a 90-point ramped run per run: IF's carbon and SCI equal powerprint's", async () => {
    const manifest = join(dir, "ramp.yml");
    const json = join(dir, "ramp-sci.json");
    const r = await runCli(["report", ramp, "--impact-manifest", manifest, "--sci", "--json", json]);
    expect(r.code, r.stderr).toBe(0);
    const text = readFileSync(manifest, "utf8");
    // Only IF's built-in plugins.
    const methods = [...text.matchAll(/^\s+method: (\S+)$/gm)].map((m) => m[1]);
    expect(new Set(methods)).toEqual(new Set(["Sum", "Coefficient", "Multiply", "SciEmbodied", "Sci"]));
    expect([...text.matchAll(/^\s+path: (\S+)$/gm)].every((m) => m[1] === "builtin")).toBe(true);
    const job = read(ramp).jobs[0];
    const sci = (JSON.parse(readFileSync(json, "utf8")) as { sci: { sciGrams: number }[] }).sci[0];
    const tree = await recompute(manifest);
    expect(tree.train.outputs).toHaveLength(90);
    expect(tree.train.aggregated["carbon-operational"] / job.emissionsGrams).toBeCloseTo(1, 12);
    expect(tree.train.aggregated.carbon / (job.emissionsGrams + job.embodiedEmissionsGrams)).toBeCloseTo(1, 12);
    expect(tree.train.aggregated.sci / sci.sciGrams).toBeCloseTo(1, 12);
  }, 180_000);

  it("a run with marks, 100 ms points joined to IF's 1 s minimum, three jobs, per run and per token", async () => {
    const report = read(tokens);
    const manifest = join(dir, "tokens.yml");
    const r = await runCli(["report", tokens, "--impact-manifest", manifest]);
    expect(r.code, r.stderr).toBe(0);
    const tree = await recompute(manifest);
    expect(Object.keys(tree).sort()).toEqual(report.jobs.map((j) => j.id).sort());
    for (const job of report.jobs) {
      expect(tree[job.id].aggregated.carbon / (job.emissionsGrams + job.embodiedEmissionsGrams)).toBeCloseTo(1, 12);
      expect(tree[job.id].aggregated.sci / (job.emissionsGrams + job.embodiedEmissionsGrams)).toBeCloseTo(1, 12);
    }
    const perToken = join(dir, "tokens-per-token.yml");
    const json = join(dir, "tokens-sci.json");
    const t = await runCli(["report", tokens, "--impact-manifest", perToken, "--per", "tokens", "--job", "loop", "--sci", "--json", json]);
    expect(t.code, t.stderr).toBe(0);
    const sci = (JSON.parse(readFileSync(json, "utf8")) as { sci: { sciGrams: number }[] }).sci[0];
    const loop = (await recompute(perToken)).loop;
    expect(loop.aggregated.sci / sci.sciGrams).toBeCloseTo(1, 12);
  }, 180_000);
});
