/**
 * `powerprint bench-serving --url BASE [--concurrency 1,4,16] [--requests N] [--max-tokens N]
 * [--prompt-file F] -- <server command...>`: starts the server under measurement exactly as `run`
 * does (its process tree, its energy), waits until it answers, measures its idle power, then
 * drives OpenAI-compatible load at each concurrency level (a warm-up first) and reports, over each
 * level's steady-state window only (src/serving/load.ts): generated tokens/s, requests/s, p50/p95
 * latency, J per generated token, J per request, CO2e per 1,000 tokens. A table on stdout; JSON
 * (--json) and an HTML chart of J/token against concurrency (--html).
 */
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import type { Exporter } from "../core/contracts.js";
import type { LedgerSnapshot } from "../core/types.js";
import { UsageError, errorMessage } from "../errors.js";
import { declareGridFlags } from "../config/grid.js";
import { createStderrLogger } from "../log.js";
import { DEFAULT_PROMPTS, driveLoad, parsePrompts, type RequestRecord } from "../serving/load.js";
import { benchLevel, type BenchResult, type BenchLevel } from "../serving/bench.js";
import { declareMeasureFlags } from "../config/measure.js";
import type { RunFlags } from "../config/run.js";
import { parseDurationFlag } from "../config/values.js";
import { exitAfterStderr } from "./exit.js";

const EXAMPLES = `
Examples:
  $ powerprint bench-serving --url http://127.0.0.1:8000 --concurrency 1,4,16 --requests 200 -- vllm serve Qwen/Qwen2.5-0.5B-Instruct --port 8000
  $ powerprint bench-serving --url http://127.0.0.1:8080 --max-tokens 64 --json bench.json --html bench.html -- llama-server -m model.gguf --port 8080 -np 4

The server must answer OpenAI-compatible POST /v1/completions (or /v1/chat/completions with --chat)
and honour max_tokens with ignore_eos (vLLM, SGLang, llama.cpp do), so every request generates
exactly --max-tokens tokens. See docs/serving.md.`;

interface BenchFlags extends RunFlags {
  url?: string;
  concurrency?: string;
  requests: string;
  warmup?: string;
  maxTokens: string;
  promptFile?: string;
  model?: string;
  chat?: boolean;
  idle: string;
  startupTimeout: string;
  requestTimeout: string;
  json?: string;
  html?: string;
}

/** `powerprint bench-serving` */
export function registerBenchServingCommand(program: Command): void {
  const cmd = program
    .command("bench-serving")
    .summary("benchmark an inference server: J per token and per request at each concurrency, measured as run measures a job")
    .description("Start SERVER under measurement (as run does), wait until BASE answers, measure its idle power, then drive OpenAI-compatible load at each concurrency and report per level, over its steady-state window: tokens/s, requests/s, p50/p95 latency, J per generated token and per request.")
    .usage("--url <base> [options] -- <server command...>")
    .argument("[command...]", "the server command and its arguments (put them after --)")
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
  declareGridFlags(cmd);
  cmd.passThroughOptions().addHelpText("after", EXAMPLES);
  cmd.action(async (command: string[], flags: BenchFlags) => exitAfterStderr(await benchServing(command, flags, process.env)));
}

function positiveInt(value: string | undefined, flag: string, max: number): number {
  if (value === undefined || !/^\d+$/.test(value) || Number(value) < 1 || Number(value) > max) throw new UsageError(flag, `must be a whole number from 1 to ${max}, got '${value}'`);
  return Number(value);
}

/** Everything checked before the server is started (exit 2 on bad input, nothing run). */
async function validate(command: string[], f: BenchFlags) {
  if (command.length === 0) throw new UsageError("command", "missing: put the server command after --, e.g. powerprint bench-serving --url http://127.0.0.1:8000 -- vllm serve MODEL");
  if (f.url === undefined) throw new UsageError("--url", "missing: the server's base URL, e.g. --url http://127.0.0.1:8000");
  let base: URL;
  try {
    base = new URL(f.url);
  } catch {
    throw new UsageError("--url", `'${f.url.slice(0, 100)}' is not a URL (e.g. --url http://127.0.0.1:8000)`);
  }
  if (base.protocol !== "http:" && base.protocol !== "https:") throw new UsageError("--url", "must be http: or https:");
  const levels = (f.concurrency ?? "1,4,16").split(",").map((s) => positiveInt(s.trim(), "--concurrency", 1024));
  if (levels.length > 16) throw new UsageError("--concurrency", "at most 16 levels");
  const prompts = f.promptFile !== undefined ? parsePrompts(readPromptFile(f.promptFile)) : DEFAULT_PROMPTS;
  const { checkReportPath } = await import("../../exporters/report-json.js");
  for (const [flag, path] of [["--json", f.json], ["--html", f.html]] as const) if (path !== undefined) checkReportPath(path, flag);
  return {
    base: base.href.replace(/\/$/, ""),
    levels,
    requests: positiveInt(f.requests, "--requests", 100_000),
    warmup: f.warmup !== undefined ? Number(f.warmup === "0" ? 0 : positiveInt(f.warmup, "--warmup", 100_000)) : undefined,
    maxTokens: positiveInt(f.maxTokens, "--max-tokens", 1_000_000),
    prompts,
    idleMillis: parseDurationFlag(f.idle, "--idle", 0),
    intervalMillis: parseDurationFlag(f.interval, "--interval", 10),
    startupMillis: parseDurationFlag(f.startupTimeout, "--startup-timeout", 1),
    requestMillis: parseDurationFlag(f.requestTimeout, "--request-timeout", 1),
  };
}

function readPromptFile(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new UsageError("--prompt-file", `cannot read '${path}': ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`);
  }
}

/**
 * The run's snapshots, kept as they come (a bounded history: the load's windows are read from it)
 * and awaited by time.
 */
class SnapshotTap implements Exporter {
  readonly id = "bench-serving";
  readonly history: LedgerSnapshot[] = [];
  private waiters: { afterMillis: number; resolve: (s: LedgerSnapshot) => void }[] = [];

  update(s: LedgerSnapshot): void {
    this.history.push(s);
    if (this.history.length > 100_000) this.history.splice(0, 50_000);
    this.waiters = this.waiters.filter((w) => (s.timeMillis > w.afterMillis ? (w.resolve(s), false) : true));
  }

  async shutdown(): Promise<void> {}

  /** The first snapshot taken after `afterMillis` (wall clock). */
  next(afterMillis: number): Promise<LedgerSnapshot> {
    const have = this.history.find((s) => s.timeMillis > afterMillis);
    if (have) return Promise.resolve(have);
    return new Promise((resolve) => this.waiters.push({ afterMillis, resolve }));
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Whether the server answers: GET /health, else /v1/models. */
async function answers(base: string): Promise<boolean> {
  for (const path of ["/health", "/v1/models"]) {
    try {
      if ((await fetch(`${base}${path}`, { signal: AbortSignal.timeout(2_000) })).ok) return true;
    } catch {
      /* not yet */
    }
  }
  return false;
}

/** The first model of GET /v1/models (undefined when the server does not say). */
async function firstModel(base: string): Promise<string | undefined> {
  try {
    const body = (await (await fetch(`${base}/v1/models`, { signal: AbortSignal.timeout(5_000) })).json()) as { data?: { id?: unknown }[] };
    const id = body.data?.[0]?.id;
    return typeof id === "string" ? id : undefined;
  } catch {
    return undefined;
  }
}

/** Runs the benchmark; the exit code (0: done; the server's own code when it exits early; 1 when it never answered). */
export async function benchServing(command: string[], flags: BenchFlags, env: NodeJS.ProcessEnv): Promise<number> {
  const log = createStderrLogger({ verbose: flags.verbose, quiet: flags.quiet });
  const v = await validate(command, flags);
  const tap = new SnapshotTap();
  let stop: ((signal: NodeJS.Signals) => void) | undefined;
  let exited: number | undefined;
  // Loaded here, not imported: program.ts loads run.js lazily, and a static import beside that is
  // a build error (scripts/postbuild.mjs, INEFFECTIVE_DYNAMIC_IMPORT).
  const { runCommand } = await import("./run.js");
  const run = runCommand(
    command,
    { ...flags, interval: `${v.intervalMillis}ms`, grace: "10s", checkpointInterval: "30s", flushTimeout: "2s", tracking: "auto", live: false },
    env,
    { exporters: [tap], onStarted: (c) => (stop = c.stop) },
  ).then((code) => (exited = code));
  const deadline = Date.now() + v.startupMillis;
  while (!(await answers(v.base))) {
    if (exited !== undefined) {
      log.warn(`bench-serving: the server exited (code ${exited}) before ${v.base} answered`);
      return exited;
    }
    if (Date.now() > deadline) {
      log.warn(`bench-serving: ${v.base} did not answer within ${v.startupMillis / 1000} s (GET /health or /v1/models); stopping the server`);
      stop?.("SIGTERM");
      await run;
      return 1;
    }
    await sleep(200);
  }
  const model = flags.model ?? (await firstModel(v.base));
  log.info(`bench-serving: ${v.base} answers${model ? ` (model ${model})` : ""}; measuring ${v.idleMillis / 1000} s idle`);
  let result: BenchResult | undefined;
  try {
    const idleFrom = await tap.next(Date.now());
    const idleTo = await tap.next(idleFrom.timeMillis + v.idleMillis - 1);
    const levels: BenchLevel[] = [];
    for (const concurrency of v.levels) {
      const common = { base: v.base, concurrency, maxTokens: v.maxTokens, prompts: v.prompts, chat: flags.chat, model, requestTimeoutMillis: v.requestMillis };
      await driveLoad({ ...common, requests: v.warmup ?? concurrency });
      let saturatedMillis = Number.NaN;
      let drainingMillis = Number.NaN;
      const records: RequestRecord[] = await driveLoad({
        ...common,
        requests: v.requests,
        onSaturated: () => (saturatedMillis = Date.now()),
        onDraining: () => (drainingMillis = Date.now()),
      });
      // The samples after the drain are not needed; the one after the last response makes sure the window's last is in.
      await tap.next(Date.now());
      const level = benchLevel(concurrency, records, tap.history, saturatedMillis, drainingMillis);
      levels.push(level);
      log.info(`bench-serving: concurrency ${concurrency}: ${level.note ?? "measured"}`);
    }
    result = { base: v.base, model: model ?? null, maxTokens: v.maxTokens, requestsPerLevel: v.requests, intervalMillis: v.intervalMillis, idlePowerWatts: idlePower(idleFrom, idleTo), levels };
  } catch (err) {
    log.warn(`bench-serving: ${errorMessage(err)}`);
  } finally {
    stop?.("SIGTERM");
  }
  const code = await run;
  if (!result) return code === 0 ? 1 : code;
  const { benchTable, writeBenchJson, writeBenchHtml } = await import("../../exporters/bench-serving.js");
  process.stdout.write(benchTable(result) + "\n");
  if (flags.json !== undefined) writeBenchJson(flags.json, result);
  if (flags.html !== undefined) writeBenchHtml(flags.html, result);
  return 0;
}

/** The job's average power between two snapshots, watts (null when no time passed). */
function idlePower(a: LedgerSnapshot, b: LedgerSnapshot): number | null {
  const ja = a.jobs[0]?.energyJoules.total ?? 0;
  const jb = b.jobs[0]?.energyJoules.total ?? 0;
  const seconds = (b.timeMillis - a.timeMillis) / 1000;
  return seconds > 0 ? (jb - ja) / seconds : null;
}
