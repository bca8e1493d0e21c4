/**
 * The load of `powerprint bench-serving`: OpenAI-compatible completions (or chat completions) sent
 * by `concurrency` workers until `requests` are done, each request's timing and `usage` kept; and
 * the steady-state window's figures (pure functions, tested on plain tables).
 *
 * The method is ML.ENERGY's (Zeus) made a tool for any server: measure only while the server is
 * kept at the concurrency asked, never the ramp-up and the drain. The window runs from the first
 * sample after the warm-up requests have finished and every worker is busy, to the last sample
 * before the first worker runs out of requests; its energy is the server's (measured as `run`
 * measures a job), and its tokens are each request's generated tokens in proportion to the part
 * of the request inside the window (a request generates at an even rate: an estimate, said so).
 */
import { UsageError } from "../errors.js";

/** One request's outcome. */
export interface RequestRecord {
  /** Wall clock, epoch ms. */
  startMillis: number;
  endMillis: number;
  ok: boolean;
  promptTokens: number;
  generatedTokens: number;
  /** Why it failed (HTTP status, network). */
  error?: string;
}

export interface LoadOptions {
  /** The server's base URL (`http://127.0.0.1:8000`). */
  base: string;
  concurrency: number;
  requests: number;
  maxTokens: number;
  prompts: readonly string[];
  /** `/v1/chat/completions` instead of `/v1/completions`. */
  chat?: boolean;
  /** The `model` field (vLLM requires the served name). */
  model?: string;
  /** Deadline of one request, ms. */
  requestTimeoutMillis: number;
  /** Called when every worker has started its first measured request (the load is at full concurrency). */
  onSaturated?: () => void;
  /** Called when the first worker finds no request left (the drain starts). */
  onDraining?: () => void;
  nowMillis?: () => number;
  fetch?: typeof fetch;
}

/** Most prompts read from --prompt-file, and the longest one, characters. */
export const MAX_PROMPTS = 10_000;
export const MAX_PROMPT_CHARS = 65_536;

/** Built-in prompts: short English sentences (any server's tokenizer takes them). */
export const DEFAULT_PROMPTS = [
  "Explain in a few sentences why the sky is blue.",
  "Write a short poem about a lighthouse keeper.",
  "List three uses of a paperclip that are not holding paper.",
  "Summarise the water cycle for a ten year old.",
  "What are the trade-offs between trains and planes for a 500 km trip?",
];

/** Parses --prompt-file's text: one prompt per non-empty line, bounded; UsageError naming the flag. */
export function parsePrompts(text: string, flag = "--prompt-file"): string[] {
  const prompts = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== "");
  if (prompts.length === 0) throw new UsageError(flag, "has no prompt: write one prompt per line");
  if (prompts.length > MAX_PROMPTS) throw new UsageError(flag, `has ${prompts.length} prompts; at most ${MAX_PROMPTS}`);
  const long = prompts.findIndex((p) => p.length > MAX_PROMPT_CHARS);
  if (long >= 0) throw new UsageError(flag, `prompt ${long + 1} is longer than ${MAX_PROMPT_CHARS} characters`);
  return prompts;
}

/** One request: the body asks for exactly `maxTokens` (ignore_eos, as vLLM, SGLang and llama.cpp take it). */
async function send(o: LoadOptions, prompt: string): Promise<RequestRecord> {
  const now = o.nowMillis ?? Date.now;
  const startMillis = now();
  const body: Record<string, unknown> = o.chat ? { messages: [{ role: "user", content: prompt }] } : { prompt };
  Object.assign(body, { max_tokens: o.maxTokens, temperature: 0, ignore_eos: true, stream: false }, o.model ? { model: o.model } : {});
  try {
    const res = await (o.fetch ?? globalThis.fetch)(`${o.base}${o.chat ? "/v1/chat/completions" : "/v1/completions"}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(o.requestTimeoutMillis),
    });
    const text = await res.text();
    if (!res.ok) return { startMillis, endMillis: now(), ok: false, promptTokens: 0, generatedTokens: 0, error: `HTTP ${res.status}` };
    const usage = (JSON.parse(text) as { usage?: { prompt_tokens?: unknown; completion_tokens?: unknown } }).usage;
    const count = (v: unknown) => (typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : 0);
    return { startMillis, endMillis: now(), ok: true, promptTokens: count(usage?.prompt_tokens), generatedTokens: count(usage?.completion_tokens) };
  } catch (err) {
    return { startMillis, endMillis: now(), ok: false, promptTokens: 0, generatedTokens: 0, error: (err as Error).name === "TimeoutError" ? "timeout" : ((err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message) };
  }
}

/** Sends `requests` requests with `concurrency` workers; the records in completion order. */
export async function driveLoad(o: LoadOptions): Promise<RequestRecord[]> {
  const records: RequestRecord[] = [];
  let next = 0;
  let started = 0;
  let draining = false;
  const worker = async () => {
    for (;;) {
      if (next >= o.requests) {
        if (!draining) {
          draining = true;
          o.onDraining?.();
        }
        return;
      }
      const prompt = o.prompts[next % o.prompts.length];
      next++;
      if (++started === Math.min(o.concurrency, o.requests)) o.onSaturated?.();
      records.push(await send(o, prompt));
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.concurrency, o.requests) }, worker));
  return records;
}

/** The p-th percentile (0..100) of `values` (nearest rank); undefined for none. */
export function percentile(values: readonly number[], p: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** Generated tokens and completed requests inside [fromMillis, toMillis], each request pro rata of its time inside. */
export function windowWork(records: readonly RequestRecord[], fromMillis: number, toMillis: number): { generatedTokens: number; requests: number } {
  let generatedTokens = 0;
  let requests = 0;
  for (const r of records) {
    if (!r.ok) continue;
    const span = r.endMillis - r.startMillis;
    const inside = Math.max(0, Math.min(r.endMillis, toMillis) - Math.max(r.startMillis, fromMillis));
    const share = span > 0 ? inside / span : r.endMillis >= fromMillis && r.endMillis <= toMillis ? 1 : 0;
    generatedTokens += r.generatedTokens * share;
    requests += share;
  }
  return { generatedTokens, requests };
}
