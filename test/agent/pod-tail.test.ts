/**
 * Exit tails in pod mode, in a real PID namespace (`unshare --pid --fork --mount-proc`): a 3 s job
 * (two workers burning 1.5 CPU-seconds each) whose top-level process, a shell whose parent is the
 * pod's PID 1, reaps the workers and exits at once, between two samples 500 ms apart. Its last
 * CPU must not be lost with it: the job holds, within 2 %, the CPU the workers measured
 * themselves (the agent reads a small job's processes every 20 ms between samples).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI } from "../helpers/cli.js";
import { waitFor } from "../helpers/wait.js";

const SCRIPTS = join(import.meta.dirname, "scripts");
const canUnshare = spawnSync("unshare", ["--pid", "--fork", "--mount-proc", "true"]).status === 0;

interface JobsView {
  timeMillis: number;
  jobs: { id: string; pids: number[]; cpuSeconds: number }[];
}

describe.skipIf(!canUnshare)("agent --mode pod: a job's tail when its top-level process exits", () => {
  let dir: string;
  let pod: ChildProcess;
  let exited: Promise<number | null>;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "pp-pod-tail-"));
    mkdirSync(join(dir, "podinfo"));
    writeFileSync(join(dir, "podinfo", "name"), "tail-0");
    writeFileSync(join(dir, "podinfo", "namespace"), "ml");
    spawnSync("mkfifo", [join(dir, "go"), join(dir, "stop")]);
    pod = spawn("unshare", ["--pid", "--fork", "--mount-proc", "--kill-child", "/bin/sh", join(SCRIPTS, "tail-pod.sh"), dir, process.execPath, CLI, SCRIPTS, "1.5"], { stdio: "ignore" });
    exited = new Promise((resolve) => pod.on("exit", (code) => resolve(code)));
  });

  afterAll(async () => {
    if (pod.exitCode === null && pod.signalCode === null) pod.kill("SIGKILL");
    await exited;
    rmSync(dir, { recursive: true, force: true });
  });

  it("the workers reaped by the top-level process just before it exits: counted within 2 % of their own CPU", async () => {
    const url = await waitFor("the agent's health URL", () => {
      const err = existsSync(join(dir, "agent.err")) ? readFileSync(join(dir, "agent.err"), "utf8") : "";
      return /health: (http:\/\/127\.0\.0\.1:\d+)\/healthz/.exec(err)?.[1];
    });
    await waitFor("/readyz", async () => ((await fetch(`${url}/readyz`).catch(() => undefined))?.status === 200 ? true : undefined));
    const view = async () => (await (await fetch(`${url}/jobs`)).json()) as JobsView;
    await control("go");
    // The job runs, the launcher reaps its workers and exits: then two samples after that.
    await waitFor("the launcher done", () => existsSync(join(dir, "launcher.done")), 120_000);
    const t0 = (await view()).timeMillis;
    const v = await waitFor("two samples after the job ended", async () => {
      const x = await view();
      return x.timeMillis > t0 + 500 ? x : undefined;
    });
    const job = v.jobs.find((j) => j.id === "ml/tail-0")!;
    expect(job.pids).toEqual([]);
    const workers = ["a", "b"].map((n) => Number(readFileSync(join(dir, `${n}.cpu`), "utf8")));
    const measured = workers[0] + workers[1];
    expect(measured).toBeGreaterThanOrEqual(3);
    expect(job.cpuSeconds).toBeGreaterThanOrEqual(measured * 0.98);
    expect(job.cpuSeconds).toBeLessThanOrEqual(measured * 1.02);
    await control("stop");
    expect(await exited).toBe(0);
    expect(readFileSync(join(dir, "agent.rc"), "utf8").trim()).toBe("0");
  }, 180_000);

  const control = (fifo: "go" | "stop") => writeFile(join(dir, fifo), "next\n");
});
