/**
 * The serving flags of `run` and `agent`, declared and parsed before anything runs (`run` validates
 * them before the spawn, so this module imports nothing heavier than the error class):
 * `--work-from URL` and
 * `--work-metric generated=NAME,prompt=NAME,requests=NAME[,running=NAME][,model=LABEL]`, into a
 * WorkConfig. src/serving reads the endpoint (and node mode's annotations, through parseWorkFrom).
 */
import type { Command } from "commander";
import type { EngineSpec, MetricRef, WorkCounter } from "../serving/engines.js";
import { UsageError } from "../errors.js";

/**
 * Parses a --work-from URL: http(s) only; a URL without a path scrapes `/metrics`. UsageError
 * naming the flag otherwise.
 */
export function parseWorkFrom(text: string, flag = "--work-from"): URL {
  const example = "e.g. --work-from http://127.0.0.1:8000/metrics";
  if (text.length > 2048) throw new UsageError(flag, "is longer than 2048 characters");
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(flag, `'${text.slice(0, 100)}' is not a URL (${example})`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new UsageError(flag, `'${url.protocol}' is not http: or https: (${example})`);
  if (url.username || url.password) throw new UsageError(flag, "must not carry credentials");
  if (url.pathname === "/" && url.search === "") url.pathname = "/metrics";
  return url;
}

/** Keys of --work-metric and the counter each names. */
const WORK_METRIC_KEYS: Record<string, WorkCounter | "running" | "model"> = {
  generated: "generatedTokens",
  prompt: "promptTokens",
  requests: "requests",
  running: "running",
  model: "model",
};
const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/**
 * Parses `--work-metric generated=NAME,prompt=NAME,requests=NAME[,running=NAME][,model=LABEL]`
 * into an engine spec ("custom"). NAME is a sample name as exposed (a histogram's `_sum` is fine);
 * LABEL names the model. UsageError naming the flag on anything else.
 */
export function parseWorkMetric(text: string): EngineSpec {
  const flag = "--work-metric";
  const example = "e.g. --work-metric generated=myserver_output_tokens_total,requests=myserver_requests_total";
  if (text.length > 2048) throw new UsageError(flag, "is longer than 2048 characters");
  const spec: EngineSpec = { id: "custom", counters: {} };
  const seen = new Set<string>();
  for (const part of text.split(",")) {
    const m = /^\s*([a-z]+)\s*=\s*(\S+)\s*$/.exec(part);
    if (!m) throw new UsageError(flag, `'${part.slice(0, 80)}' is not KEY=NAME (${example})`);
    const [, key, name] = m;
    const target = WORK_METRIC_KEYS[key];
    if (!target) throw new UsageError(flag, `unknown key '${key}': use generated, prompt, requests, running or model (${example})`);
    if (seen.has(key)) throw new UsageError(flag, `'${key}' given twice`);
    seen.add(key);
    if (target === "model") {
      if (!LABEL_NAME.test(name)) throw new UsageError(flag, `model=${name.slice(0, 80)}: not a label name`);
      spec.modelLabel = name;
      continue;
    }
    if (!METRIC_NAME.test(name)) throw new UsageError(flag, `${key}=${name.slice(0, 80)}: not a metric name`);
    const r: MetricRef = { name };
    if (target === "running") spec.running = [r];
    else spec.counters[target] = [r];
  }
  if (!spec.counters.generatedTokens && !spec.counters.promptTokens && !spec.counters.requests) {
    throw new UsageError(flag, `name at least one of generated, prompt or requests (${example})`);
  }
  return spec;
}

/** What --work-from and --work-metric ask for: the endpoint and, with --work-metric, its names. */
export interface WorkConfig {
  url: URL;
  /** One custom spec from --work-metric; absent: the known engines. */
  engines?: EngineSpec[];
}

/** The serving flags as commander parses them. */
export interface WorkFlags {
  workFrom?: string;
  workMetric?: string;
}

/** Declares --work-from and --work-metric on a command (run, agent). */
export function declareWorkFlags(cmd: Command): Command {
  return cmd
    .option("--work-from <url>", "units of work (tokens, requests) from this Prometheus endpoint of the measured server, e.g. http://127.0.0.1:8000/metrics: energy per token and per request (docs/serving.md)")
    .option("--work-metric <names>", "with --work-from: the server's own metric names, generated=NAME,prompt=NAME,requests=NAME[,running=NAME][,model=LABEL] (vLLM, SGLang, TGI, llama.cpp and Triton are recognised without it)");
}

/** The work config of the flags, or undefined without --work-from; UsageError naming the flag. */
export function workConfig(flags: WorkFlags): WorkConfig | undefined {
  if (flags.workFrom === undefined) {
    if (flags.workMetric !== undefined) throw new UsageError("--work-metric", "needs --work-from URL (the endpoint to read those metrics from)");
    return undefined;
  }
  const url = parseWorkFrom(String(flags.workFrom));
  return flags.workMetric !== undefined ? { url, engines: [parseWorkMetric(String(flags.workMetric))] } : { url };
}
