/**
 * `powerprint bench-serving --url BASE [--concurrency 1,4,16] [--requests N] [--max-tokens N]
 * [--prompt-file F] -- <server command...>`: starts the server under measurement exactly as `run`
 * does (its process tree, its energy), waits until it answers, measures its idle power, then
 * drives OpenAI-compatible load at each concurrency level (a warm-up first) and reports, over each
 * level's steady-state window only (src/serving/load.ts): generated tokens/s, requests/s, p50/p95
 * latency, J per generated token, J per request, CO2e per 1,000 tokens. A table on stdout; JSON
 * (--json) and an HTML chart of J/token against concurrency (--html).
 */
import type { Command } from "commander";
import type { Exporter } from "../core/contracts.js";
import type { LedgerSnapshot } from "../core/types.js";
import { errorMessage } from "../errors.js";
import { benchServingConfig, declareBenchServingFlags, type BenchServingConfig, type BenchServingFlags } from "../config/bench-serving.js";
import { createStderrLogger } from "../log.js";
import { driveLoad, type RequestRecord } from "../serving/load.js";
import { benchLevel, type BenchResult, type BenchLevel } from "../serving/bench.js";
import { exitAfterStderr } from "./exit.js";
import { addCommand, type CommandSpec } from "./command.js";

const EXAMPLES = `
Examples:
  $ powerprint bench-serving --url http://127.0.0.1:8000 --concurrency 1,4,16 --requests 200 -- vllm serve Qwen/Qwen2.5-0.5B-Instruct --port 8000
  $ powerprint bench-serving --url http://127.0.0.1:8080 --max-tokens 64 --json bench.json --html bench.html -- llama-server -m model.gguf --port 8080 -np 4

The server must answer OpenAI-compatible POST /v1/completions (or /v1/chat/completions with --chat)
and honour max_tokens with ignore_eos (vLLM, SGLang, llama.cpp do), so every request generates
exactly --max-tokens tokens. See docs/serving.md.`;

/** `powerprint bench-serving` */
export function registerBenchServingCommand(program: Command): void {
  const spec = {
    name: "bench-serving",
    summary: "benchmark an inference server: J per token and per request at each concurrency, measured as run measures a job",
    description:
      "Start SERVER under measurement (as run does), wait until BASE answers, measure its idle power, then drive OpenAI-compatible load at each concurrency and report per level, over its steady-state window: tokens/s, requests/s, p50/p95 latency, J per generated token and per request.",
    usage: "--url <base> [options] -- <server command...>",
    argument: ["[command...]", "the server command and its arguments (put them after --)"],
    helpAfter: EXAMPLES,
    passThrough: true,
  } satisfies CommandSpec;
  addCommand(program, spec, declareBenchServingFlags).action(async (command: string[], flags: BenchServingFlags) => exitAfterStderr(await benchServing(await benchServingConfig(command, flags, process.env), process.env)));
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

/**
 * Runs the benchmark of a validated config (`env`: the server's environment, as run passes it on).
 * Returns the exit code (0: done; the server's own code when it exits early; 1 when it never answered).
 */
export async function benchServing(v: BenchServingConfig, env: NodeJS.ProcessEnv): Promise<number> {
  const log = createStderrLogger({ verbose: v.run.verbose, quiet: v.run.quiet });
  const tap = new SnapshotTap();
  let stop: ((signal: NodeJS.Signals) => void) | undefined;
  let exited: number | undefined;
  // Loaded here, not imported: program.ts loads run.js lazily, and a static import beside that is
  // a build error (scripts/postbuild.mjs, INEFFECTIVE_DYNAMIC_IMPORT).
  const { runValidated } = await import("./run.js");
  const run = runValidated(v.run, env, { exporters: [tap], onStarted: (c) => (stop = c.stop) }).then((code) => (exited = code));
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
  const model = v.model ?? (await firstModel(v.base));
  log.info(`bench-serving: ${v.base} answers${model ? ` (model ${model})` : ""}; measuring ${v.idleMillis / 1000} s idle`);
  let result: BenchResult | undefined;
  try {
    const idleFrom = await tap.next(Date.now());
    const idleTo = await tap.next(idleFrom.timeMillis + v.idleMillis - 1);
    const levels: BenchLevel[] = [];
    for (const concurrency of v.levels) {
      const common = { base: v.base, concurrency, maxTokens: v.maxTokens, prompts: v.prompts, chat: v.chat, model, requestTimeoutMillis: v.requestMillis };
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
    result = { base: v.base, model: model ?? null, maxTokens: v.maxTokens, requestsPerLevel: v.requests, intervalMillis: v.run.intervalMillis, idlePowerWatts: idlePower(idleFrom, idleTo), levels };
  } catch (err) {
    log.warn(`bench-serving: ${errorMessage(err)}`);
  } finally {
    stop?.("SIGTERM");
  }
  const code = await run;
  if (!result) return code === 0 ? 1 : code;
  const { benchTable, writeBenchJson, writeBenchHtml } = await import("../../exporters/bench-serving.js");
  process.stdout.write(benchTable(result) + "\n");
  if (v.jsonPath !== undefined) writeBenchJson(v.jsonPath, result);
  if (v.htmlPath !== undefined) writeBenchHtml(v.htmlPath, result);
  return 0;
}

/** The job's average power between two snapshots, watts (null when no time passed). */
function idlePower(a: LedgerSnapshot, b: LedgerSnapshot): number | null {
  const ja = a.jobs[0]?.energyJoules.total ?? 0;
  const jb = b.jobs[0]?.energyJoules.total ?? 0;
  const seconds = (b.timeMillis - a.timeMillis) / 1000;
  return seconds > 0 ? (jb - ja) / seconds : null;
}
