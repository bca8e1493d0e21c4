/**
 * A folder where the docs' command lines run nearly as written: `powerprint` on PATH is the built
 * CLI (dist/), `python` is python3, and `train.py` is a stand-in training script (a fraction of a
 * second of counted work, two phases marked through the real marks helper when it is on
 * PYTHONPATH). Commands run under bash, as a user's shell would run them.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { repoRoot } from "./docs.js";

const TRAIN_PY = `# Stand-in for a training script (test/docs/sandbox.ts): TRAIN_SECONDS of counted work (default
# 0.3 s) in phase "train" over 10 steps of 64 samples and 8192 tokens, a third of it in "eval";
# marked through powerprint_marks when it is importable. With TRAIN_GATE set (a test that must see
# the counters mid-way), it waits for the file TRAIN_GATE.mid after step 5 and TRAIN_GATE.end
# before it exits.
import os, time
try:
    from powerprint_marks import mark, phase
except ImportError:
    from contextlib import nullcontext
    def mark(**_): pass
    def phase(_): return nullcontext()
def gate(name):
    path = os.environ.get("TRAIN_GATE")
    while path and not os.path.exists(path + "." + name):
        time.sleep(0.02)
seconds = float(os.environ.get("TRAIN_SECONDS", "0.3"))
n = 0
mark(phase="train", step=0, samples=0, tokens=0)
for step in range(1, 11):
    end = time.monotonic() + seconds / 10
    while time.monotonic() < end:
        n += 1
    mark(phase="train", step=step, samples=64 * step, tokens=8192 * step)
    if step == 5:
        gate("mid")
with phase("eval"):
    end = time.monotonic() + seconds / 3
    while time.monotonic() < end:
        n += 1
gate("end")
`;

export interface Sandbox {
  dir: string;
  /** PATH with `python` (python3) first. */
  pythonPath: string;
  /** PATH with `powerprint` (the built CLI) and `python` first. */
  path: string;
  remove(): void;
}

/** python3: Debian's (/usr/bin/python3, what CI installs) when present, else the first on PATH. */
function python3(): string {
  return existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
}

export function makeSandbox(): Sandbox {
  const dir = mkdtempSync(join(tmpdir(), "pp-docs-"));
  const pyBin = join(dir, ".bin-python");
  const ppBin = join(dir, ".bin");
  mkdirSync(pyBin);
  mkdirSync(ppBin);
  const script = (path: string, body: string) => {
    writeFileSync(path, `#!/bin/sh\n${body}\n`);
    chmodSync(path, 0o755);
  };
  script(join(pyBin, "python"), `exec ${python3()} "$@"`);
  script(join(pyBin, "python3"), `exec ${python3()} "$@"`);
  script(join(ppBin, "powerprint"), `exec "${process.execPath}" "${join(repoRoot, "dist", "src", "cli", "main.js")}" "$@"`);
  writeFileSync(join(dir, "train.py"), TRAIN_PY);
  copyFileSync(join(repoRoot, "test", "fixtures", "scenarios", "design-example.json"), join(dir, "scenario.json"));
  const base = process.env.PATH ?? "";
  return {
    dir,
    pythonPath: [pyBin, base].join(delimiter),
    path: [ppBin, pyBin, base].join(delimiter),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface ShellResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `command` with bash in `cwd`; `whileRunning` is called once it started (e.g. to scrape an endpoint). */
export function runShell(
  command: string,
  opts: { cwd: string; env: NodeJS.ProcessEnv; timeoutMillis?: number; whileRunning?: (done: () => boolean) => Promise<void> },
): Promise<ShellResult> {
  return new Promise((resolve, reject) => {
    const child = spawn("/bin/bash", ["--noprofile", "--norc", "-c", command], { cwd: opts.cwd, env: opts.env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let finished = false;
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`timed out: ${command}\nstderr:\n${stderr}`));
    }, opts.timeoutMillis ?? 120_000);
    const watcher = opts.whileRunning?.(() => finished);
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      finished = true;
      clearTimeout(timer);
      void Promise.resolve(watcher).then(() => setImmediate(() => resolve({ code, signal, stdout, stderr })), reject);
    });
  });
}

/** Starts `command` with bash in the background (its own process group); `stop` signals the group and waits. */
export function startShell(command: string, opts: { cwd: string; env: NodeJS.ProcessEnv }): { child: ChildProcess; output: () => string; stop: (signal?: NodeJS.Signals) => Promise<number | null> } {
  const child = spawn("/bin/bash", ["--noprofile", "--norc", "-c", command], { cwd: opts.cwd, env: opts.env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  let text = "";
  child.stdout?.on("data", (d) => (text += d));
  child.stderr?.on("data", (d) => (text += d));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  return {
    child,
    output: () => text,
    stop: async (signal = "SIGTERM") => {
      if (child.exitCode === null && child.signalCode === null && child.pid) {
        try {
          process.kill(-child.pid, signal);
        } catch {
          // already gone
        }
      }
      return exited;
    },
  };
}
