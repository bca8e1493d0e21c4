/**
 * Another process's /proc/PID/cmdline whose read blocks in the kernel (as it does while that
 * process is stuck in D state holding its mmap lock: `ps` hangs there), through the built CLI:
 * selector mode, in a mount namespace of the agent's own where a bind mount puts a FUSE file whose
 * read never returns, whatever the open flags (test/native/stuck-fuse.c), over a sleeping
 * process's cmdline. The agent
 * reads command lines on the thread pool with a deadline (src/agent/selector-source.ts): it says
 * so, ticks go on, a matching job started afterwards is found and measured, /healthz stays 200,
 * and SIGTERM ends it (exit 0, final checkpoint) without waiting for the stuck read. With the read
 * on the event loop the agent never answered at all.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CLI } from "../helpers/cli.js";
import { waitFor } from "../helpers/wait.js";
import { buildStuckFuse } from "../native/build-stub.mjs";

const canMountFuse = process.getuid?.() === 0 && existsSync("/dev/fuse") && spawnSync("unshare", ["--mount", "--propagation", "private", "true"]).status === 0;

let dir: string;
const killed: number[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "pp-agent-proc-hung-"));
});
afterEach(() => {
  for (const pid of killed.splice(0)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone already
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

type JobsView = { timeMillis: number; jobs: { id: string; cpuSeconds: number }[] };
const jobsView = async (url: string): Promise<JobsView> => (await (await fetch(`${url}/jobs`)).json()) as JobsView;

describe("a /proc/PID/cmdline whose read never returns", () => {
  it.skipIf(!canMountFuse)("selector mode: said, ticks go on, a job started after it is found and measured, /healthz 200, SIGTERM exits 0", async () => {
    const fuse = join(dir, "fuse");
    mkdirSync(fuse);
    const state = join(dir, "state.json");
    const victimPidFile = join(dir, "victim.pid");
    const daemonPidFile = join(dir, "daemon.pid");
    // In the agent's mount namespace: stuck-fuse mounted, a sleeping process whose cmdline is the
    // FUSE file, then the agent.
    const script = [
      '"$1" "$2" & echo $! > "$3"',
      'while [ ! -e "$2/stuck" ]; do sleep 0.05; done',
      "sleep 600 &",
      'echo $! > "$4"',
      'mount --bind "$2/stuck" "/proc/$!/cmdline" || exit 98',
      "shift 4",
      'exec "$@"',
    ].join("\n");
    const child: ChildProcess = spawn(
      "unshare",
      [
        "--mount", "--propagation", "private", "sh", "-c", script, "sh", buildStuckFuse(), fuse, daemonPidFile, victimPidFile,
        process.execPath, CLI, "agent", "--mode", "selector", "--match-cmdline", "pp-proc-hung-(\\w+)",
        "--interval", "200ms", "--listen", "127.0.0.1:0", "--state-file", state, "--flush-timeout", "2s",
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    let err = "";
    child.stderr!.on("data", (d) => (err += d));
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    let job: ChildProcess | undefined;
    try {
      const url = await waitFor("the agent's health URL", () => /health: (\S+)\/healthz/.exec(err)?.[1]);
      killed.push(Number(readFileSync(victimPidFile, "utf8")), Number(readFileSync(daemonPidFile, "utf8")));
      await waitFor("/readyz", async () => ((await fetch(`${url}/readyz`)).status === 200 ? true : undefined));
      const [victim, daemon] = killed;
      await waitFor("the stuck read said", () => new RegExp(`selector: /proc/${victim}'s command line or environment did not come within 1 s`).test(err));

      // A matching job started now is found (its read is not behind the stuck one) and its CPU counted.
      const stop = join(dir, "stop");
      job = spawn(process.execPath, ["-e", `const fs = require("fs"); while (!fs.existsSync(process.argv[1])) for (let i = 0; i < 1e6; i++);`, stop, "pp-proc-hung-job1"], { stdio: "ignore" });
      killed.push(job.pid!);
      const found = await waitFor("job1 measured", async () => (await jobsView(url)).jobs.find((j) => j.id === "job1" && j.cpuSeconds > 0));
      expect(found.cpuSeconds).toBeGreaterThan(0);
      const t0 = (await jobsView(url)).timeMillis;
      await waitFor("a later sample", async () => ((await jobsView(url)).timeMillis > t0 ? true : undefined));
      const h = await fetch(`${url}/healthz`);
      expect(h.status, await h.text()).toBe(200);
      writeFileSync(stop, "");

      child.kill("SIGTERM");
      // The agent ends itself without waiting for the read (its final checkpoint written first).
      await waitFor("the exit past the stuck read", () =>
        new RegExp(`warning: a read of /proc/${victim}/cmdline has not returned for \\d+ s \\(stuck in the kernel\\): exiting without waiting for it`).test(err),
      );
      expect(JSON.parse(readFileSync(state, "utf8")).final).toBe(true);
      // A FUSE read already sent to its daemon holds even a dying process in the kernel (a real
      // mmap-lock wait is killable): the process is gone once the daemon is.
      process.kill(daemon, "SIGKILL");
      expect(await exited, err).toBe(0);
    } finally {
      // The daemon before the agent is waited for: a process in its read cannot finish dying before.
      for (const pid of [...killed].reverse()) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // gone already
        }
      }
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
      for (const pid of killed.splice(0)) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // gone already
        }
      }
    }
  }, 180_000);
});
