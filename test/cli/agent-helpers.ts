/** Helpers for tests of the long-running `powerprint agent` (the built CLI as a real process). */
import { spawn, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { CLI } from "../helpers/cli.js";

export interface RunningAgent {
  child: ChildProcess;
  stderr(): string;
  /** Resolves with the first capture of `re` in stderr (waits for it; rejects if the agent exits first). */
  line(re: RegExp, timeoutMillis?: number): Promise<string>;
  /** Sends `signal` and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of live) c.kill("SIGKILL");
});

/** SIGKILLs every agent still running (afterEach: a failed assertion must not leave one behind). */
export async function killAgents(): Promise<void> {
  const waits = [...live].map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(null) : c.once("exit", r))));
  for (const c of live) c.kill("SIGKILL");
  await Promise.all(waits);
}

export function startAgent(args: string[], env: NodeJS.ProcessEnv = {}): RunningAgent {
  return watchAgent(spawn(process.execPath, [CLI, "agent", ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] }));
}

/**
 * An agent started some other way (e.g. through `unshare … sh -c '… exec "$@"'`), its stderr piped:
 * watched as startAgent's are (its stderr kept, lines waited for, killed by killAgents()).
 */
export function watchAgent(child: ChildProcess): RunningAgent {
  live.add(child);
  let err = "";
  const waiters: (() => void)[] = [];
  child.stderr!.on("data", (d) => {
    err += d;
    for (const w of waiters.splice(0)) w();
  });
  child.stdout?.resume();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => {
      live.delete(child);
      setImmediate(() => {
        for (const w of waiters.splice(0)) w();
        resolve({ code, signal });
      });
    }),
  );
  let done = false;
  void exited.then(() => (done = true));
  return {
    child,
    exited,
    stderr: () => err,
    line(re, timeoutMillis = 60_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no line ${re} in agent stderr:\n${err}`)), timeoutMillis);
        const check = () => {
          const m = re.exec(err);
          if (m) {
            clearTimeout(timer);
            resolve(m[1] ?? m[0]);
          } else if (done) {
            clearTimeout(timer);
            reject(new Error(`agent exited before ${re}; stderr:\n${err}`));
          } else waiters.push(check);
        };
        check();
      });
    },
    async stop(signal = "SIGTERM") {
      if (!done) child.kill(signal);
      return (await exited).code;
    },
  };
}

/**
 * Writes, in `dir`, the scenario of a short job (1 s) beside a long one (the hour), each a busy
 * core on a 4-core CPU: for retention and self-metric tests. Returns its path.
 */
export function shortAndLong(dir: string): string {
  const scenario = join(dir, "short.json");
  writeFileSync(
    scenario,
    JSON.stringify({
      name: "short-and-long",
      durationSeconds: 3600,
      devices: [{ id: "cpu0", kind: "cpu", idleWatts: 10, maxWatts: 110, cores: 4 }],
      processes: [
        { pid: 10, job: "short", endSeconds: 1, cpu: [[0, 1]] },
        { pid: 20, job: "long", cpu: [[0, 1]] },
      ],
    }),
  );
  return scenario;
}

/** Sum of a counter's samples in Prometheus text whose labels include all of `labels`. */
export function promValue(text: string, metric: string, labels: Record<string, string>): number | undefined {
  let sum: number | undefined;
  for (const line of text.split("\n")) {
    if (!line.startsWith(metric + "{")) continue;
    const close = line.lastIndexOf("}");
    const labelText = line.slice(metric.length + 1, close);
    if (!Object.entries(labels).every(([k, v]) => labelText.includes(`${k}="${v}"`))) continue;
    sum = (sum ?? 0) + Number(line.slice(close + 1).trim());
  }
  return sum;
}

export async function scrape(url: string): Promise<string> {
  const res = await fetch(url);
  return res.text();
}

export { waitFor } from "../helpers/wait.js";
