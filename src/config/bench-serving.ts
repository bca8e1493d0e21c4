/**
 * `powerprint bench-serving`'s typed config: the load (--url, --concurrency, --requests, --warmup,
 * --max-tokens, --prompt-file, --model, --chat), its timing (--idle, --startup-timeout,
 * --request-timeout), its outputs (--json, --html), and the run that measures the server, built by
 * runConfig from the shared measure and grid flags and --interval (the server is started as `run`
 * starts a command). Validated before the server is started (UsageError naming the flag, nothing
 * run or written).
 */
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { checkReportPath } from "../../exporters/report-json.js";
import { errorMessage, UsageError } from "../errors.js";
import { DEFAULT_PROMPTS, parsePrompts } from "../serving/load.js";
import type { EnvSource } from "./env.js";
import { declareGridFlags, type GridFlags } from "./grid.js";
import { declareMeasureFlags, type MeasureFlags } from "./measure.js";
import { runConfig, type RunConfig } from "./run.js";
import { parseDurationFlag } from "./values.js";

/** Bounds on the load (user-controlled counts). */
export const BENCH_LIMITS = { levels: 16, concurrency: 1024, requests: 100_000, maxTokens: 1_000_000 } as const;

/** bench-serving's flags as commander parses them. */
export interface BenchServingFlags extends MeasureFlags, GridFlags {
  url?: string;
  concurrency?: string;
  requests: string;
  warmup?: string;
  maxTokens: string;
  promptFile?: string;
  model?: string;
  chat?: boolean;
  idle: string;
  interval: string;
  startupTimeout: string;
  requestTimeout: string;
  json?: string;
  html?: string;
}

/** Everything `bench-serving` needs, validated. */
export interface BenchServingConfig {
  /** The run that starts and measures the server (its command, measure and grid settings). */
  run: RunConfig;
  /** The server's base URL, without a trailing slash. */
  base: string;
  /** Concurrency levels, in order. */
  levels: number[];
  /** Measured requests per level. */
  requests: number;
  /** Warm-up requests per level (undefined: the level's concurrency). */
  warmup?: number;
  maxTokens: number;
  prompts: string[];
  /** --model (undefined: the first of GET /v1/models). */
  model?: string;
  chat: boolean;
  idleMillis: number;
  startupMillis: number;
  requestMillis: number;
  jsonPath?: string;
  htmlPath?: string;
}

/** Registers bench-serving's flags: its own, then the measure and grid flags (no carbon-aware start: the startup timeout would run out waiting). */
export function declareBenchServingFlags(cmd: Command): Command {
  cmd
    .option("--url <base>", "the server's base URL, e.g. http://127.0.0.1:8000 (POST <base>/v1/completions)")
    .option("--concurrency <list>", "comma-separated concurrency levels (default: 1,4,16)")
    .option("--requests <n>", "measured requests per level (after the warm-up)", "64")
    .option("--warmup <n>", "warm-up requests per level, not measured (default: the level's concurrency)")
    .option("--max-tokens <n>", "tokens generated per request (max_tokens, with ignore_eos)", "128")
    .option("--prompt-file <file>", "prompts, one per line (default: a few built-in sentences)")
    .option("--model <name>", "the request's model field (default: the first of GET <base>/v1/models)")
    .option("--chat", "use /v1/chat/completions instead of /v1/completions")
    .option("--idle <duration>", "how long the idle server is measured before the load", "5s")
    .option("--interval <duration>", "sampling interval (shorter: finer steady-state windows)", "500ms")
    .option("--startup-timeout <duration>", "how long to wait for the server to answer", "10m")
    .option("--request-timeout <duration>", "deadline of one request", "5m")
    .option("--json <file>", "write the results as JSON to FILE")
    .option("--html <file>", "write an HTML page with the table and a chart of J/token against concurrency");
  declareMeasureFlags(cmd);
  return declareGridFlags(cmd);
}

function positiveInt(value: string | undefined, flag: string, max: number): number {
  if (value === undefined || !/^\d+$/.test(value) || Number(value) < 1 || Number(value) > max) throw new UsageError(flag, `must be a whole number from 1 to ${max}, got '${value}'`);
  return Number(value);
}

function readPromptFile(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new UsageError("--prompt-file", `cannot read '${path}': ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`);
  }
}

function parseBase(url: string | undefined): string {
  if (url === undefined) throw new UsageError("--url", "missing: the server's base URL, e.g. --url http://127.0.0.1:8000");
  let base: URL;
  try {
    base = new URL(url);
  } catch {
    throw new UsageError("--url", `'${url.slice(0, 100)}' is not a URL (e.g. --url http://127.0.0.1:8000)`);
  }
  if (base.protocol !== "http:" && base.protocol !== "https:") throw new UsageError("--url", "must be http: or https:");
  return base.href.replace(/\/$/, "");
}

/** Validates bench-serving's server command, flags and environment (UsageError naming the flag or variable). */
export async function benchServingConfig(command: string[], f: BenchServingFlags, source: EnvSource): Promise<BenchServingConfig> {
  if (command.length === 0) throw new UsageError("command", "missing: put the server command after --, e.g. powerprint bench-serving --url http://127.0.0.1:8000 -- vllm serve MODEL");
  const base = parseBase(f.url);
  const levels = (f.concurrency ?? "1,4,16").split(",").map((s) => positiveInt(s.trim(), "--concurrency", BENCH_LIMITS.concurrency));
  if (levels.length > BENCH_LIMITS.levels) throw new UsageError("--concurrency", `at most ${BENCH_LIMITS.levels} levels`);
  const prompts = f.promptFile !== undefined ? parsePrompts(readPromptFile(f.promptFile)) : DEFAULT_PROMPTS;
  for (const [flag, path] of [["--json", f.json], ["--html", f.html]] as const) if (path !== undefined) checkReportPath(path, flag);
  const config = {
    base,
    levels,
    requests: positiveInt(f.requests, "--requests", BENCH_LIMITS.requests),
    warmup: f.warmup !== undefined ? (f.warmup === "0" ? 0 : positiveInt(f.warmup, "--warmup", BENCH_LIMITS.requests)) : undefined,
    maxTokens: positiveInt(f.maxTokens, "--max-tokens", BENCH_LIMITS.maxTokens),
    prompts,
    model: f.model,
    chat: f.chat === true,
    idleMillis: parseDurationFlag(f.idle, "--idle", 0),
    startupMillis: parseDurationFlag(f.startupTimeout, "--startup-timeout", 1),
    requestMillis: parseDurationFlag(f.requestTimeout, "--request-timeout", 1),
    jsonPath: f.json,
    htmlPath: f.html,
  };
  // The server's run: the measure and grid flags and --interval as `run` takes them; its own
  // timings fixed (the server is stopped by bench-serving, not by a user's signal), no live line.
  // --json and --html are bench-serving's outputs, not the run's.
  const run = await runConfig(command, {
    pue: f.pue,
    idlePolicy: f.idlePolicy,
    idleWatts: f.idleWatts,
    report: f.report,
    quiet: f.quiet,
    verbose: f.verbose,
    zone: f.zone,
    intensity: f.intensity,
    intensityProvider: f.intensityProvider,
    wue: f.wue,
    waterIntensity: f.waterIntensity,
    pricePerKwh: f.pricePerKwh,
    currency: f.currency,
    interval: f.interval,
    grace: "10s",
    checkpointInterval: "30s",
    flushTimeout: "2s",
    live: false,
  }, source);
  return { run, ...config };
}
