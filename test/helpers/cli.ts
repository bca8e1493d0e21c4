import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";

/**
 * Path of the built CLI (test/global-setup.ts builds it). POWERPRINT_TEST_CLI points the CLI tests
 * at another build (e.g. main's, to show that a new test fails there).
 */
export const CLI = process.env.POWERPRINT_TEST_CLI || join(import.meta.dirname, "..", "..", "dist", "src", "cli", "main.js");

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `powerprint ARGS` as a real process; resolves when it exits. */
export function runCli(
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMillis?: number; onSpawn?: (child: ChildProcess) => void } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`powerprint ${args.join(" ")} timed out; stderr:\n${stderr}`));
    }, opts.timeoutMillis ?? 30_000);
    opts.onSpawn?.(child);
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      // Let the pipes drain.
      setImmediate(() => resolve({ code, signal, stdout, stderr }));
    });
  });
}
