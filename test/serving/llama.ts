/**
 * A real llama.cpp server for the serving tests: Debian sid's llama-server, unpacked by
 * .ci/install-llama.sh into .cache/llama.cpp/, started through sid's own loader (sid's binaries
 * need a newer glibc than this system's), on 127.0.0.1, with a tiny random-weight model that
 * test/serving/tiny-gguf.py writes at test time (never committed). It produces gibberish, but
 * real tokens that the server counts in its /metrics exactly as for a real model.
 *
 * Missing install: outside CI the tests skip with a loud reason; under CI=true they run and fail
 * (.ci/run installs it, so a missing one is a bug there).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync } from "node:fs";
import { join, resolve } from "node:path";
import { freePort } from "../helpers/receivers.js";
import { waitFor } from "../helpers/wait.js";

const repoRoot = resolve(import.meta.dirname, "..", "..");
const dir = process.env.POWERPRINT_LLAMA_DIR ?? join(repoRoot, ".cache", "llama.cpp");
const root = join(dir, "root");
const lib = join(root, "usr", "lib", "x86_64-linux-gnu");
const loader = join(lib, "ld-linux-x86-64.so.2");
const server = join(root, "usr", "bin", "llama-server");
const pythonPath = join(root, "usr", "lib", "python3", "dist-packages");

/** Why the llama.cpp tests must skip, or undefined to run them (always undefined under CI). */
export function llamaSkipReason(): string | undefined {
  if (existsSync(server) && existsSync(loader) && existsSync(join(pythonPath, "gguf"))) return undefined;
  if (process.env.CI === "true" || process.env.CI === "1") return undefined;
  const reason = `SKIPPING llama.cpp server tests: ${server} not found (run: bash .ci/install-llama.sh)`;
  console.warn(`\n*** ${reason} ***\n`);
  return reason;
}

let model: string | undefined;

/**
 * The tiny model, written by the committed generator (deterministic: one file per version of the
 * generator, shared by the test processes; written under a temporary name and renamed).
 */
export function tinyModel(): string {
  if (model && existsSync(model)) return model;
  const generator = join(import.meta.dirname, "tiny-gguf.py");
  const out = join(repoRoot, "test", ".artifacts", "serving");
  mkdirSync(out, { recursive: true });
  const path = join(out, `tiny-${createHash("sha256").update(readFileSync(generator)).digest("hex").slice(0, 12)}.gguf`);
  if (existsSync(path)) return (model = path);
  const r = spawnSync("/usr/bin/python3", [generator, `${path}.${process.pid}.tmp`], {
    env: { ...process.env, PYTHONPATH: pythonPath },
    encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(`tiny-gguf.py failed (${r.status}): ${r.stderr}`);
  renameSync(`${path}.${process.pid}.tmp`, path);
  model = path;
  return path;
}

export interface LlamaOptions {
  port: number;
  /** Slots (parallel requests): -np (default 1). */
  parallel?: number;
  /** Context per server, tokens: -c (default 256 per slot). */
  contextTokens?: number;
}

/** argv of llama-server on 127.0.0.1:port with the tiny model (`--metrics`, no prompt cache, no web UI). */
export function llamaServerArgv(o: LlamaOptions): string[] {
  const parallel = o.parallel ?? 1;
  return [
    loader,
    "--library-path",
    `${lib}:${join(lib, "llama")}`,
    server,
    "-m",
    tinyModel(),
    "--metrics",
    "--host",
    "127.0.0.1",
    "--port",
    String(o.port),
    "-c",
    String(o.contextTokens ?? 256 * parallel),
    "-t",
    "1",
    "-np",
    String(parallel),
    "--no-cache-prompt",
    "--no-webui",
  ];
}

export interface Llama {
  base: string;
  port: number;
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of running) c.kill("SIGKILL");
});

/** Starts llama-server directly (not under powerprint) and waits until /health answers ok. */
export async function startLlama(o: Partial<LlamaOptions> = {}): Promise<Llama> {
  const port = o.port ?? (await freePort());
  const argv = llamaServerArgv({ ...o, port });
  const child = spawn(argv[0], argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
  running.add(child);
  let text = "";
  const append = (b: Buffer) => (text = (text + b.toString()).slice(-20_000));
  child.stdout!.on("data", append);
  child.stderr!.on("data", append);
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const base = `http://127.0.0.1:${port}`;
  await waitFor(`llama-server on ${base}: ${text.slice(-500)}`, async () => {
    if (child.exitCode !== null) throw new Error(`llama-server exited ${child.exitCode}:\n${text}`);
    return healthy(base);
  });
  return {
    base,
    port,
    child,
    output: () => text,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
        await exited;
        clearTimeout(timer);
      }
      running.delete(child);
    },
  };
}

/** Whether the server at `base` answers /health with 200. */
export async function healthy(base: string): Promise<boolean> {
  try {
    return (await fetch(`${base}/health`)).ok;
  } catch {
    return false;
  }
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
}

/** One /v1/completions request of exactly `maxTokens` generated tokens (ignore_eos); its usage. */
export async function complete(base: string, prompt: string, maxTokens: number): Promise<Usage> {
  const res = await fetch(`${base}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ prompt, max_tokens: maxTokens, ignore_eos: true, temperature: 0 }),
  });
  if (!res.ok) throw new Error(`completion failed: HTTP ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { usage: Usage };
  return body.usage;
}
