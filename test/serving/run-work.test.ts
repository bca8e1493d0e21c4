// `powerprint run --work-from` around a real llama.cpp server (Debian sid's llama-server, tiny
// generated model): requests of known sizes, a quiet stretch, more requests. The report's tokens
// equal the sums of the responses' `usage`; J/token = the job's energy / generated tokens;
// active + idle = the job's energy; the quiet stretch adds idle energy and no tokens. Checkpoints
// of the report (written every tick) are the events the test waits for.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChildProcess } from "node:child_process";
import { afterAll, describe, expect, it } from "vitest";
import { reportSchemaV1, type ReportV1 } from "../../exporters/report-schema.js";
import { runCli } from "../helpers/cli.js";
import { freePort } from "../helpers/receivers.js";
import { waitFor } from "../helpers/wait.js";
import { complete, healthy, llamaServerArgv, llamaSkipReason, type Usage } from "./llama.js";

const skip = llamaSkipReason();
const dir = mkdtempSync(join(tmpdir(), "pp-serving-run-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function readReport(path: string): ReportV1 | undefined {
  if (!existsSync(path)) return undefined;
  try {
    return reportSchemaV1.parse(JSON.parse(readFileSync(path, "utf8")));
  } catch {
    return undefined; // being replaced (atomic rename): read again
  }
}

describe.skipIf(skip)("run --work-from around llama-server", () => {
  it("tokens equal the responses' usage; J/token = job energy / tokens; active + idle = energy; a quiet stretch is idle", async () => {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const reportPath = join(dir, "run.json");
    let child: ChildProcess | undefined;
    const run = runCli(
      ["run", "--interval", "250ms", "--checkpoint-interval", "10ms", "--report", reportPath, "--work-from", `${base}/metrics`, "--", ...llamaServerArgv({ port })],
      { timeoutMillis: 240_000, onSpawn: (c) => (child = c) },
    );
    const report = () => readReport(reportPath);
    const serving = () => report()?.jobs[0]?.serving;
    await waitFor("llama-server under powerprint", () => healthy(base), 120_000);

    const usages: Usage[] = [];
    const send = async (batch: [string, number][]) => {
      for (const [prompt, n] of batch) usages.push(await complete(base, prompt, n));
    };
    const generated = () => usages.reduce((a, u) => a + u.completion_tokens, 0);
    const prompted = () => usages.reduce((a, u) => a + u.prompt_tokens, 0);
    /** Waits until the report holds every token sent so far, and then `moreTicks` more ticks. */
    const settled = async (moreTicks: number) => {
      const seen = await waitFor("the tokens in the report", () => {
        const r = report();
        return r?.jobs[0]?.serving?.total.generatedTokens === generated() ? r : undefined;
      }, 120_000);
      return waitFor(`${moreTicks} more ticks`, () => {
        const r = report();
        return r && r.sampler.ticks >= seen.sampler.ticks + moreTicks ? r : undefined;
      }, 120_000);
    };

    await send([
      ["hello world", 12],
      ["the energy of one token", 30],
      ["carbon power model", 7],
    ]);
    // The quiet stretch: from two ticks after the tokens were counted, for eight ticks.
    const quietFrom = await settled(2);
    const quietTo = await waitFor("eight quiet ticks", () => {
      const r = report();
      return r && r.sampler.ticks >= quietFrom.sampler.ticks + 8 ? r : undefined;
    }, 120_000);
    await send([
      ["server request prompt", 40],
      ["joule", 3],
    ]);
    await settled(1);
    child!.kill("SIGTERM");
    const result = await run;
    // llama-server stops cleanly on SIGTERM: run exits with its code.
    expect(result.code, result.stderr).toBe(0);

    // The quiet stretch: idle energy and nothing else.
    const a = quietFrom.jobs[0].serving!.total;
    const b = quietTo.jobs[0].serving!.total;
    expect(b.generatedTokens).toBe(a.generatedTokens);
    expect(b.promptTokens).toBe(a.promptTokens);
    expect(b.activeEnergyJoules).toBeCloseTo(a.activeEnergyJoules, 9);
    expect(b.idleEnergyJoules - a.idleEnergyJoules).toBeGreaterThan(0);
    expect(b.idleEnergyJoules - a.idleEnergyJoules).toBeCloseTo(quietTo.jobs[0].energyJoules.total - quietFrom.jobs[0].energyJoules.total, 9);

    // The final report.
    const final = report()!;
    expect(final.complete).toBe(true);
    const job = final.jobs[0];
    const s = job.serving!;
    expect(s).toMatchObject({ engine: "llamacpp", source: `${base}/metrics`, activeFrom: "running-gauge", prefillDecode: "engine-times", restarts: 0 });
    expect(s.total.generatedTokens).toBe(generated());
    expect(s.total.promptTokens).toBe(prompted());
    // llama.cpp exposes no request counter: absent, never guessed.
    expect(s.total.requests).toBeNull();
    expect(s.total.joulesPerRequest).toBeNull();
    expect(s.total.energyJoules).toBeCloseTo(job.energyJoules.total, 9);
    expect(s.total.joulesPerGeneratedToken).toBeCloseTo(job.energyJoules.total / generated(), 9);
    expect(s.total.emissionsGramsPerThousandTokens).toBeCloseTo((job.emissionsGrams / generated()) * 1000, 9);
    expect(s.total.activeEnergyJoules + s.total.idleEnergyJoules).toBeCloseTo(job.energyJoules.total, 9);
    expect(s.total.activeEnergyJoules).toBeGreaterThan(0);
    expect(s.total.prefillEnergyJoules! + s.total.decodeEnergyJoules!).toBeCloseTo(s.total.activeEnergyJoules, 6);
    expect(s.models).toHaveLength(1);
    expect(s.models[0]).toMatchObject({ model: "", generatedTokens: generated(), promptTokens: prompted() });
    expect(result.stderr).not.toMatch(/work from/);
  });
});
