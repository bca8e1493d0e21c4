// The real llama.cpp server (Debian sid, tiny generated model) against the scraper: its /metrics
// is recognised as llama.cpp, and between two scrapes the counters rise by exactly the `usage` of
// the responses in between (prompt and generated tokens; llama.cpp has no request counter).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { increment } from "../../src/serving/increments.js";
import { scrapeOnce } from "../../src/serving/scraper.js";
import { driveLoad } from "../../src/serving/load.js";
import { complete, llamaSkipReason, startLlama, type Llama } from "./llama.js";

const skip = llamaSkipReason();

describe.skipIf(skip)("llama-server --metrics", () => {
  let llama: Llama;
  beforeAll(async () => {
    llama = await startLlama();
  });
  afterAll(async () => {
    await llama?.stop();
  });

  async function read() {
    const out = await scrapeOnce({ url: new URL(`${llama.base}/metrics`), timeoutMillis: 10_000 });
    if (out.status !== "ok") throw new Error(`${out.kind}: ${out.message}\n${llama.output()}`);
    return out;
  }

  it("is recognised; counters rise by the responses' usage", async () => {
    const before = await read();
    expect(before.engine.id).toBe("llamacpp");
    const usages = [];
    for (const [prompt, maxTokens] of [
      ["hello world", 5],
      ["the energy of one token", 17],
      ["carbon power model server request", 1],
    ] as const) {
      usages.push(await complete(llama.base, prompt, maxTokens));
    }
    const after = await read();
    const m = increment(before.reading, after.reading).models.get("")!;
    expect(usages.map((u) => u.completion_tokens)).toEqual([5, 17, 1]);
    expect(m.generatedTokens).toBe(usages.reduce((a, u) => a + u.completion_tokens, 0));
    expect(m.promptTokens).toBe(usages.reduce((a, u) => a + u.prompt_tokens, 0));
    expect(m.requests).toBeUndefined();
    expect(m.prefillSeconds).toBeGreaterThan(0);
    expect(m.decodeSeconds).toBeGreaterThan(0);
    expect(m.running).toBe(0);
  });

  it("bench-serving's load, chat and completions: each request generates exactly max_tokens, counted from its usage", async () => {
    for (const chat of [false, true]) {
      const records = await driveLoad({ base: llama.base, concurrency: 2, requests: 4, maxTokens: 7, prompts: ["hello world", "the energy"], chat, requestTimeoutMillis: 60_000 });
      expect(records, JSON.stringify(records)).toHaveLength(4);
      for (const r of records) expect(r).toMatchObject({ ok: true, generatedTokens: 7 });
      for (const r of records) expect(r.promptTokens).toBeGreaterThan(0);
    }
  });
});
