// `agent --mode selector --work-from` on a real llama.cpp server that is killed and started again:
// three server lives on the same port. The selector's capture group keeps one job across lives.
// After the first kill the test waits until the agent saw the job finish (the job comes back and
// counts the new server from zero); the second restart is immediate (the agent may see only the
// counters go back: a restart by the counter rule). Read from the agent's checkpoints (every
// 100 ms): the job's tokens never go down, and at the end equal the sums of every response's
// usage over the three lives: nothing negative, nothing counted twice.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChildProcess } from "node:child_process";
import { afterAll, describe, expect, it } from "vitest";
import type { ServingTotals } from "../../src/core/serving.js";
import { runCli } from "../helpers/cli.js";
import { freePort } from "../helpers/receivers.js";
import { waitFor } from "../helpers/wait.js";
import { complete, llamaSkipReason, startLlama, type Llama, type Usage } from "./llama.js";

const skip = llamaSkipReason();
const dir = mkdtempSync(join(tmpdir(), "pp-serving-agent-"));
const servers: Llama[] = [];
afterAll(async () => {
  for (const s of servers) await s.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface StateJob {
  id: string;
  serving?: ServingTotals;
}
interface StateDoc {
  ledger: { jobs: StateJob[]; finished: Record<string, number> };
}

describe.skipIf(skip)("agent --mode selector --work-from across server restarts", () => {
  it("no negative and no doubled tokens across the resets", async () => {
    const port = await freePort();
    const state = join(dir, "state.json");
    const report = join(dir, "report.json");
    let agentChild: ChildProcess | undefined;
    const agent = runCli(
      [
        "agent",
        "--mode",
        "selector",
        "--match-cmdline",
        `llama-server .*--port (${port})\\b`,
        "--interval",
        "250ms",
        "--state-file",
        state,
        "--checkpoint-interval",
        "100ms",
        "--report",
        report,
        "--work-from",
        `http://127.0.0.1:${port}/metrics`,
      ],
      { timeoutMillis: 300_000, onSpawn: (c) => (agentChild = c) },
    );
    const seen: number[] = [];
    const read = (): { job?: StateJob; finished: boolean } => {
      try {
        const doc = JSON.parse(readFileSync(state, "utf8")) as StateDoc;
        // The capture group names the job (selector-source: the regex's first group).
        const job = doc.ledger.jobs.find((j) => j.id.endsWith(String(port)));
        const g = job?.serving?.total.generatedTokens;
        if (typeof g === "number") seen.push(g);
        return { job, finished: job !== undefined && doc.ledger.finished[job.id] !== undefined };
      } catch {
        return { finished: false };
      }
    };
    const usages: Usage[] = [];
    const generated = () => usages.reduce((a, u) => a + u.completion_tokens, 0);
    const prompted = () => usages.reduce((a, u) => a + u.prompt_tokens, 0);
    const counted = () => waitFor(`${generated()} tokens in the agent's state`, () => read().job?.serving?.total.generatedTokens === generated(), 120_000);
    const life = async (requests: [string, number][]) => {
      const server = await startLlama({ port });
      servers.push(server);
      // The agent found the server's job and read its endpoint once.
      await waitFor("the job's serving account", () => read().job?.serving?.engine === "llamacpp" && !read().finished, 120_000);
      for (const [p, n] of requests) usages.push(await complete(server.base, p, n));
      return server;
    };

    const one = await life([
      ["hello world", 20],
      ["the energy of one token", 9],
    ]);
    await counted();
    one.child.kill("SIGKILL");
    await one.stop();
    await waitFor("the job to finish", () => read().finished, 120_000);

    const two = await life([["carbon power model", 6]]);
    await counted();
    // Immediate restart: killed and started again at once.
    two.child.kill("SIGKILL");
    await two.stop();
    await life([
      ["server request", 4],
      ["joule", 2],
    ]);
    await counted();

    agentChild!.kill("SIGTERM");
    const result = await agent;
    expect(result.code, result.stderr).toBe(0);
    // Never down between checkpoints, never above what was served.
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThanOrEqual(seen[i - 1]);
    expect(Math.max(...seen)).toBe(generated());
    const final = (JSON.parse(readFileSync(report, "utf8")) as { jobs: StateJob[] }).jobs.find((j) => j.id.endsWith(String(port)))!;
    expect(final.serving!.total.generatedTokens).toBe(generated());
    expect(final.serving!.total.promptTokens).toBe(prompted());
    expect(final.serving!.engine).toBe("llamacpp");
    expect(result.stderr).not.toMatch(/inconsistent|went down while/);
  });
});
