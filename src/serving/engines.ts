/**
 * Which serving engine a `/metrics` body comes from, and its units of work per model: prompt and
 * generated tokens, requests (and, for Triton, inferences) as cumulative counters, requests in
 * flight as a gauge, and the engine's own prefill and decode time counters where it has them.
 *
 * Metric names are the engines' own (docs/serving.md cites each engine's docs and code):
 * - vLLM (v0 and v1 engines; v1 adds an `engine` label per data-parallel engine, summed here):
 *   `vllm:prompt_tokens_total`, `vllm:generation_tokens_total`, `vllm:request_success_total`
 *   (one series per `finished_reason`, summed), gauge `vllm:num_requests_running`, histograms
 *   `vllm:request_prefill_time_seconds` / `vllm:request_decode_time_seconds` (their `_sum`);
 *   model label `model_name`.
 * - SGLang: `sglang:prompt_tokens_total`, `sglang:generation_tokens_total`,
 *   `sglang:num_requests_total`, gauge `sglang:num_running_reqs`; model label `model_name`.
 * - Hugging Face TGI: histograms `tgi_request_input_length` and `tgi_request_generated_tokens`
 *   (their `_sum`: tokens), counter `tgi_request_success`, gauge `tgi_batch_current_size`,
 *   `tgi_batch_forward_duration_sum{method="prefill"|"decode"}`; no model label.
 * - llama.cpp `llama-server --metrics`: `llamacpp:prompt_tokens_total`,
 *   `llamacpp:tokens_predicted_total`, `llamacpp:prompt_seconds_total`,
 *   `llamacpp:tokens_predicted_seconds_total`, gauge `llamacpp:requests_processing`; no request
 *   counter (requests are absent, never guessed) and no model label.
 * - NVIDIA Triton: `nv_inference_request_success` (requests), `nv_inference_count` (inferences),
 *   gauge `nv_inference_pending_request_count`; model label `model` (versions summed); no tokens.
 * - Anything else: `--work-metric generated=NAME,prompt=NAME,requests=NAME[,running=NAME][,model=LABEL]`.
 */
import type { Exposition, Sample } from "./exposition.js";

/** The counters a work reading has per model (cumulative; absent: the engine has no such counter). */
export const WORK_COUNTERS = ["promptTokens", "generatedTokens", "requests", "inferences", "prefillSeconds", "decodeSeconds"] as const;
export type WorkCounter = (typeof WORK_COUNTERS)[number];

/** One metric an engine's figure is read from: a sample name and, optionally, label values it must have. */
export interface MetricRef {
  name: string;
  where?: Readonly<Record<string, string>>;
}

/** How an engine names its work. */
export interface EngineSpec {
  /** "vllm", "sglang", "tgi", "llamacpp", "triton", "custom". */
  id: string;
  /** Label that names the model; absent: one unlabelled model. */
  modelLabel?: string;
  counters: Partial<Record<WorkCounter, readonly MetricRef[]>>;
  /** Requests in flight (a gauge). */
  running?: readonly MetricRef[];
}

const ref = (name: string, where?: Record<string, string>): MetricRef => (where ? { name, where } : { name });

/** The engines recognised by their metric names, tried in this order. */
export const ENGINES: readonly EngineSpec[] = [
  { id: "vllm", modelLabel: "model_name", running: [ref("vllm:num_requests_running")],
    counters: { promptTokens: [ref("vllm:prompt_tokens_total")], generatedTokens: [ref("vllm:generation_tokens_total")], requests: [ref("vllm:request_success_total")], prefillSeconds: [ref("vllm:request_prefill_time_seconds_sum")], decodeSeconds: [ref("vllm:request_decode_time_seconds_sum")] } },
  { id: "sglang", modelLabel: "model_name", running: [ref("sglang:num_running_reqs")],
    counters: { promptTokens: [ref("sglang:prompt_tokens_total")], generatedTokens: [ref("sglang:generation_tokens_total")], requests: [ref("sglang:num_requests_total")] } },
  { id: "tgi", running: [ref("tgi_batch_current_size")],
    counters: { promptTokens: [ref("tgi_request_input_length_sum")], generatedTokens: [ref("tgi_request_generated_tokens_sum")], requests: [ref("tgi_request_success")], prefillSeconds: [ref("tgi_batch_forward_duration_sum", { method: "prefill" })], decodeSeconds: [ref("tgi_batch_forward_duration_sum", { method: "decode" })] } },
  { id: "llamacpp", running: [ref("llamacpp:requests_processing")],
    counters: { promptTokens: [ref("llamacpp:prompt_tokens_total")], generatedTokens: [ref("llamacpp:tokens_predicted_total")], prefillSeconds: [ref("llamacpp:prompt_seconds_total")], decodeSeconds: [ref("llamacpp:tokens_predicted_seconds_total")] } },
  { id: "triton", modelLabel: "model", running: [ref("nv_inference_pending_request_count")],
    counters: { requests: [ref("nv_inference_request_success")], inferences: [ref("nv_inference_count")] } },
];

/** Name of the one model of an engine without a model label (reports show it; metrics leave the attribute out). */
export const UNLABELLED_MODEL = "";

/** Most models kept per endpoint: further ones are summed into OTHER_MODELS (bounded series and report size). */
export const MAX_MODELS = 32;
/** Where models past MAX_MODELS go. */
export const OTHER_MODELS = "(other models)";
/** Longest model name kept, characters (longer ones are cut, with an ellipsis). */
export const MAX_MODEL_NAME_CHARS = 128;

/** Cumulative counters and the running gauge of one model at one scrape. */
export type ModelCounters = Partial<Record<WorkCounter, number>> & { running?: number };

/** One scrape's work, per model. */
export interface WorkReading {
  engine: string;
  models: Map<string, ModelCounters>;
  /** `process_start_time_seconds` when exposed: a changed value is a restart for certain. */
  processStartSeconds?: number;
}

/** Every sample name an engine reads (to keep only those while parsing). */
export function sampleNames(specs: readonly EngineSpec[]): Set<string> {
  const names = new Set<string>(["process_start_time_seconds"]);
  for (const s of specs) {
    for (const refs of Object.values(s.counters)) for (const r of refs ?? []) names.add(r.name);
    for (const r of s.running ?? []) names.add(r.name);
  }
  return names;
}

/** The first engine (of `specs`) with a counter present in the body, or undefined. */
export function recognise(body: Extract<Exposition, { status: "ok" }>, specs: readonly EngineSpec[] = ENGINES): EngineSpec | undefined {
  return specs.find((s) => Object.values(s.counters).some((refs) => refs?.some((r) => body.samples.has(r.name))));
}

function matches(sample: Sample, r: MetricRef): boolean {
  if (!r.where) return true;
  for (const [k, v] of Object.entries(r.where)) if (sample.labels[k] !== v) return false;
  return true;
}

function modelName(spec: EngineSpec, sample: Sample): string {
  if (!spec.modelLabel) return UNLABELLED_MODEL;
  const raw = sample.labels[spec.modelLabel] ?? UNLABELLED_MODEL;
  return raw.length > MAX_MODEL_NAME_CHARS ? `${raw.slice(0, MAX_MODEL_NAME_CHARS - 1)}…` : raw;
}

/**
 * Reads an engine's work per model from a parsed body: each counter summed over the series of a
 * model (finished reasons, data-parallel engines, model versions), the running gauge likewise.
 * Samples that are not finite or are negative are skipped and counted in `rejected` (the caller
 * warns once). Models beyond MAX_MODELS are summed into OTHER_MODELS.
 */
export function readWork(body: Extract<Exposition, { status: "ok" }>, spec: EngineSpec): { reading: WorkReading; rejected: number } {
  const models = new Map<string, ModelCounters>();
  let rejected = 0;
  const modelOf = (sample: Sample): ModelCounters => {
    let name = modelName(spec, sample);
    if (!models.has(name) && models.size >= MAX_MODELS) name = OTHER_MODELS;
    let m = models.get(name);
    if (!m) models.set(name, (m = {}));
    return m;
  };
  const add = (key: WorkCounter | "running", refs: readonly MetricRef[] | undefined) => {
    for (const r of refs ?? []) {
      for (const sample of body.samples.get(r.name) ?? []) {
        if (!matches(sample, r)) continue;
        if (!Number.isFinite(sample.value) || sample.value < 0) {
          rejected++;
          continue;
        }
        const m = modelOf(sample);
        m[key] = (m[key] ?? 0) + sample.value;
      }
    }
  };
  for (const key of WORK_COUNTERS) add(key, spec.counters[key]);
  add("running", spec.running);
  const start = body.samples.get("process_start_time_seconds")?.[0]?.value;
  return { reading: { engine: spec.id, models, ...(start !== undefined && Number.isFinite(start) ? { processStartSeconds: start } : {}) }, rejected };
}
