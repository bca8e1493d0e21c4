// Engines recognised from the real /metrics captures (test/fixtures/serving, PROVENANCE.md), their
// counts checked against a real Prometheus that scrapes the same files (sum by model label, as a
// user's PromQL would read them), the before/after pairs giving exactly the request's tokens, and
// the multi-model vLLM case built from the single-model capture.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseExposition } from "../../src/serving/exposition.js";
import { ENGINES, MAX_MODELS, OTHER_MODELS, readWork, recognise, type EngineSpec, type WorkCounter } from "../../src/serving/engines.js";
import { parseWorkMetric } from "../../src/config/serving.js";
import { increment } from "../../src/serving/increments.js";
import { readBody } from "../../src/serving/scraper.js";
import { receiversSkipReason, startPrometheus, eventually, type Receiver } from "../helpers/receivers.js";
import { fixture, fixtures, serveText, type Endpoint } from "./endpoint.js";

const ENGINE_OF_FILE: Record<string, string> = { vllm: "vllm", sglang: "sglang", tgi: "tgi", llamacpp: "llamacpp", triton: "triton" };

function work(text: string, engines?: readonly EngineSpec[]) {
  const out = readBody(text, engines);
  if (out.status !== "ok") throw new Error(`${out.kind}: ${out.message}`);
  return out;
}

describe("every capture is recognised", () => {
  for (const [name, text] of fixtures()) {
    it(name, () => {
      expect(work(text).engine.id).toBe(ENGINE_OF_FILE[name.split("__")[0]]);
    });
  }
});

describe("counts equal what a real Prometheus reads from the same files", () => {
  const skip = receiversSkipReason("prometheus");
  let prom: Receiver;
  const endpoints = new Map<string, Endpoint>();
  beforeAll(async () => {
    if (skip) return;
    for (const [name, text] of fixtures()) endpoints.set(name, await serveText(() => text));
    prom = await startPrometheus({ targets: [...endpoints.values()].map((e) => e.hostPort), scrapeIntervalMillis: 1000 });
  });
  afterAll(async () => {
    await prom?.stop();
    for (const e of endpoints.values()) await e.close();
  });

  for (const [name, text] of fixtures()) {
    it.skipIf(skip)(name, async () => {
      const { engine, reading } = work(text);
      const instance = endpoints.get(name)!.hostPort;
      const by = engine.modelLabel ? ` by (${engine.modelLabel})` : "";
      let checked = 0;
      const refs = [...Object.entries(engine.counters), ["running", engine.running] as const];
      for (const [key, list] of refs) {
        for (const r of list ?? []) {
          const where = Object.entries(r.where ?? {}).map(([k, v]) => `,${k}="${v}"`).join("");
          const promql = `sum${by} ({__name__="${r.name}",instance="${instance}"${where}})`;
          const present = new RegExp(`^${r.name.replace(/[:]/g, ":")}[{ ]`, "m").test(text);
          const rows = await eventually(() => prom.query(promql), (x) => x.length > 0 || !present, 30_000);
          if (present) expect(rows.length, promql).toBeGreaterThan(0);
          for (const row of rows) {
            const model = engine.modelLabel ? row.metric[engine.modelLabel] ?? "" : "";
            expect(reading.models.get(model)?.[key as WorkCounter | "running"], `${promql} for ${model}`).toBeCloseTo(row.value, 9);
            checked++;
          }
        }
      }
      expect(checked).toBeGreaterThan(0);
    });
  }
});

describe("before/after pairs give exactly the request's work", () => {
  it("vLLM 0.20 (v1 naming, engine label): one chat completion of 16 prompt / 8 generated tokens", () => {
    const before = work(fixture("vllm__v1-0.20_qwen3.6-27b_spec-decode__before")).reading;
    const after = work(fixture("vllm__v1-0.20_qwen3.6-27b_spec-decode__after")).reading;
    const inc = increment(before, after);
    expect(inc.event).toBe("none");
    expect([...inc.models.keys()]).toEqual(["qwen3.6-27b-autoround"]);
    const m = inc.models.get("qwen3.6-27b-autoround")!;
    expect(m.promptTokens).toBe(16);
    expect(m.generatedTokens).toBe(8);
    expect(m.requests).toBe(1);
    expect(m.prefillSeconds).toBeGreaterThan(0);
  });

  it("llama.cpp b9014: idle, then after traffic (65 prompt / 8 predicted; a request still in flight)", () => {
    const idle = work(fixture("llamacpp__b9014_tinyllama-15m__idle")).reading;
    const after = work(fixture("llamacpp__b9014_tinyllama-15m__after")).reading;
    const m = increment(idle, after).models.get("")!;
    expect(m).toMatchObject({ promptTokens: 65, generatedTokens: 8, running: 1 });
    // llama.cpp exposes no request counter: absent, never guessed.
    expect(m.requests).toBeUndefined();
  });
});

describe("models split by label", () => {
  it("Triton: 8 models by the `model` label, densenet_onnx's 3 requests and 3 inferences", () => {
    const { reading } = work(fixture("triton__"));
    expect(reading.models.size).toBe(8);
    expect(reading.models.get("densenet_onnx")).toMatchObject({ requests: 3, inferences: 3, running: 0 });
    for (const [model, c] of reading.models) if (model !== "densenet_onnx") expect(c.requests).toBe(0);
  });

  it("vLLM with two models, built from the single-model capture: each model's request is its own", () => {
    // The capture's vllm: sample lines copied under a second model_name (no real multi-model capture exists, PROVENANCE.md).
    const second = (text: string) =>
      text
        .split("\n")
        .filter((l) => l.startsWith("vllm:") && l.includes('model_name="qwen3.6-27b-autoround"'))
        .map((l) => l.replace('model_name="qwen3.6-27b-autoround"', 'model_name="lora-b"'))
        .join("\n");
    const before = fixture("vllm__v1-0.20_qwen3.6-27b_spec-decode__before");
    const after = fixture("vllm__v1-0.20_qwen3.6-27b_spec-decode__after");
    // Model A serves the request; model B stays as before; then B serves one too.
    const t0 = work(before + "\n" + second(before)).reading;
    const t1 = work(after + "\n" + second(before)).reading;
    const t2 = work(after + "\n" + second(after)).reading;
    const a = increment(t0, t1);
    expect(a.models.get("qwen3.6-27b-autoround")).toMatchObject({ promptTokens: 16, generatedTokens: 8, requests: 1 });
    expect(a.models.get("lora-b")).toMatchObject({ promptTokens: 0, generatedTokens: 0, requests: 0 });
    const b = increment(t1, t2);
    expect(b.models.get("qwen3.6-27b-autoround")).toMatchObject({ promptTokens: 0, generatedTokens: 0, requests: 0 });
    expect(b.models.get("lora-b")).toMatchObject({ promptTokens: 16, generatedTokens: 8, requests: 1 });
  });

  it("models past MAX_MODELS are summed into one entry", () => {
    const lines = Array.from({ length: MAX_MODELS + 3 }, (_, i) => `vllm:generation_tokens_total{model_name="m${i}"} ${i}`);
    const { reading } = work(lines.join("\n"));
    expect(reading.models.size).toBe(MAX_MODELS + 1);
    expect(reading.models.get(OTHER_MODELS)!.generatedTokens).toBe(MAX_MODELS + MAX_MODELS + 1 + MAX_MODELS + 2);
  });
});

describe("recognition and --work-metric", () => {
  it("an endpoint with none of the known names is said, with its sample count", () => {
    const out = readBody("# TYPE http_requests_total counter\nhttp_requests_total 5\nup 1\n");
    expect(out).toEqual({ status: "failed", kind: "no-known-metrics", message: "2 samples, none with vLLM, SGLang, TGI, llama.cpp or Triton metric names" });
  });

  it("negative and NaN samples are skipped and counted", () => {
    const out = readBody('vllm:generation_tokens_total{model_name="m"} -5\nvllm:prompt_tokens_total{model_name="m"} NaN\nvllm:num_requests_running{model_name="m"} 1\n');
    expect(out.status).toBe("ok");
    if (out.status === "ok") {
      expect(out.rejectedSamples).toBe(2);
      expect(out.reading.models.get("m")).toEqual({ running: 1 });
    }
  });

  it("a custom server's names, a histogram _sum and a model label", () => {
    const spec = parseWorkMetric("generated=my_out_tokens_sum, prompt=my_in_tokens_total,requests=my_requests_total,running=my_inflight,model=deployment");
    const text = 'my_out_tokens_sum{deployment="a"} 40\nmy_out_tokens_sum{deployment="b"} 2\nmy_in_tokens_total{deployment="a"} 7\nmy_requests_total{deployment="a",code="200"} 3\nmy_requests_total{deployment="a",code="500"} 1\nmy_inflight{deployment="a"} 2\n';
    const { reading, engine } = work(text, [spec]);
    expect(engine.id).toBe("custom");
    expect(reading.models.get("a")).toEqual({ generatedTokens: 40, promptTokens: 7, requests: 4, running: 2 });
    expect(reading.models.get("b")).toEqual({ generatedTokens: 2 });
    expect(readBody(fixture("vllm__v0"), [spec])).toMatchObject({ status: "failed", kind: "no-known-metrics", message: expect.stringContaining("--work-metric") });
  });

  it("--work-metric refuses what is not KEY=NAME, naming the flag", () => {
    for (const [text, reason] of [
      ["generated", /not KEY=NAME/],
      ["tokens=a", /unknown key 'tokens'/],
      ["generated=a,generated=b", /given twice/],
      ["generated=1abc", /not a metric name/],
      ["model=a-b,generated=x", /not a label name/],
      ["running=x", /at least one of generated, prompt or requests/],
    ] as const) {
      expect(() => parseWorkMetric(text)).toThrow(expect.objectContaining({ field: "--work-metric", message: expect.stringMatching(reason) }));
    }
  });

  it("recognise prefers the first engine in order; ENGINES lists each engine once", () => {
    expect(new Set(ENGINES.map((e) => e.id)).size).toBe(ENGINES.length);
    const body = parseExposition(fixture("sglang__"));
    if (body.status !== "ok") throw new Error(body.reason);
    expect(recognise(body)?.id).toBe("sglang");
    expect(readWork(body, ENGINES.find((e) => e.id === "sglang")!).reading.models.get("meta-llama/Llama-3.1-8B-Instruct")).toMatchObject({
      promptTokens: 8.128902e6,
      generatedTokens: 7.557572e6,
      running: 162,
    });
  });
});
