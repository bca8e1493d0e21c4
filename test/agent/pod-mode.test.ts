/**
 * Pod mode in a real PID namespace: `unshare --pid --fork --mount-proc` makes the "pod"; its PID 1
 * (scripts/pod.sh) stands in for pause and starts the built agent (`agent --mode pod`) and, on the
 * test's word, a training stand-in with two CPU-burning children. The job must hold exactly the
 * training processes (not PID 1, not the agent), its CPU seconds must match what those processes
 * measured themselves, and its identity must come from the downward API files.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI } from "../helpers/cli.js";
import { waitFor } from "../helpers/wait.js";

const SCRIPTS = join(import.meta.dirname, "scripts");
const canUnshare = spawnSync("unshare", ["--pid", "--fork", "--mount-proc", "true"]).status === 0;
/**
 * The pod's PID 1 runs the test's script with /bin/sh under the name a pod sandbox's PID 1 has
 * (`pause`): pod mode refuses a namespace whose PID 1 is not one (src/agent/pod-sandbox.ts).
 */
function pauseStandIn(folder: string): string {
  const path = join(folder, "pause");
  if (!existsSync(path)) symlinkSync("/bin/sh", path);
  return path;
}

interface JobsView {
  timeMillis: number;
  agentPid: number;
  jobs: { id: string; name: string; attributes: Record<string, string>; pids: number[]; cpuSeconds: number; energyJoules: number }[];
}

describe.skipIf(!canUnshare)("agent --mode pod in a real PID namespace", () => {
  let dir: string;
  let pod: ChildProcess;
  let exited: Promise<number | null>;
  const control = (fifo: "go" | "stop") => writeFile(join(dir, fifo), "next\n");

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "pp-pod-"));
    mkdirSync(join(dir, "podinfo"));
    writeFileSync(join(dir, "podinfo", "name"), "trainer-0");
    writeFileSync(join(dir, "podinfo", "namespace"), "ml");
    writeFileSync(join(dir, "podinfo", "uid"), "6f1c2b9e-3d4a-4b5c-8d7e-0a1b2c3d4e5f");
    writeFileSync(join(dir, "podinfo", "labels"), 'batch.kubernetes.io/job-name="resnet"\napp="trainer"\n');
    spawnSync("mkfifo", [join(dir, "go"), join(dir, "stop")]);
    pod = spawn("unshare", ["--pid", "--fork", "--mount-proc", "--kill-child", pauseStandIn(dir), join(SCRIPTS, "pod.sh"), dir, process.execPath, CLI, SCRIPTS], { stdio: "ignore" });
    exited = new Promise((resolve) => pod.on("exit", (code) => resolve(code)));
  });

  afterAll(async () => {
    if (pod.exitCode === null && pod.signalCode === null) pod.kill("SIGKILL");
    await exited;
    rmSync(dir, { recursive: true, force: true });
  });

  it("the job holds exactly the training processes, with their CPU seconds, named from the downward API", async () => {
    const url = await waitFor("the agent's health URL", () => {
      const err = existsSync(join(dir, "agent.err")) ? readFileSync(join(dir, "agent.err"), "utf8") : "";
      return /health: (http:\/\/127\.0\.0\.1:\d+)\/healthz/.exec(err)?.[1];
    });
    await waitFor("/readyz", async () => ((await fetch(`${url}/readyz`).catch(() => undefined))?.status === 200 ? true : undefined));
    const before = (await (await fetch(`${url}/jobs`)).json()) as JobsView;
    expect(before.jobs.map((j) => j.id)).toEqual(["ml/trainer-0"]);
    // Nothing but PID 1 and the agent yet: the job has no process.
    expect(before.jobs[0].pids).toEqual([]);

    await control("go"); // start training
    const trained = await waitFor("train.json", () =>
      existsSync(join(dir, "train.json")) ? (JSON.parse(readFileSync(join(dir, "train.json"), "utf8")) as { pid: number; cpuSeconds: number; children: { pid: number; cpuSeconds: number }[] }) : undefined,
    );
    // Two samples that began after the training processes measured themselves.
    const t0 = ((await (await fetch(`${url}/jobs`)).json()) as JobsView).timeMillis;
    let seen = 0;
    const view = await waitFor("two later samples", async () => {
      const v = (await (await fetch(`${url}/jobs`)).json()) as JobsView;
      if (v.timeMillis > t0) {
        seen++;
        if (seen >= 2) return v;
      }
      return undefined;
    });
    const job = view.jobs.find((j) => j.id === "ml/trainer-0")!;
    const trainingPids = [trained.pid, ...trained.children.map((c) => c.pid)].sort((a, b) => a - b);
    expect(job.pids).toEqual(trainingPids);
    expect(job.pids).not.toContain(1);
    expect(job.pids).not.toContain(view.agentPid);
    const selfMeasured = trained.cpuSeconds + trained.children.reduce((s, c) => s + c.cpuSeconds, 0);
    // They measured themselves a little before the agent's sample (idle since): within 5 %, plus
    // one clock tick per process of /proc rounding.
    expect(job.cpuSeconds).toBeGreaterThanOrEqual(selfMeasured * 0.95 - 0.03);
    expect(job.cpuSeconds).toBeLessThanOrEqual(selfMeasured * 1.05 + 0.03);
    expect(job.energyJoules).toBeGreaterThan(0);
    expect(job.attributes).toMatchObject({
      "k8s.pod.name": "trainer-0",
      "k8s.namespace.name": "ml",
      "k8s.pod.uid": "6f1c2b9e-3d4a-4b5c-8d7e-0a1b2c3d4e5f",
      "k8s.job.name": "resnet",
    });

    await control("stop"); // stop: PID 1 SIGTERMs the agent and records its exit code
    expect(await exited).toBe(0);
    expect(readFileSync(join(dir, "agent.rc"), "utf8").trim()).toBe("0");
    type Saved = { id: string; cpuSeconds: number; energyJoules: { total: number }; phases?: { name: string; energyJoules: number; steps?: number }[] };
    const state = JSON.parse(readFileSync(join(dir, "state.json"), "utf8")) as { final?: boolean; ledger: { jobs: Saved[] } };
    expect(state.final).toBe(true);
    const saved = state.ledger.jobs.find((j) => j.id === "ml/trainer-0")!;
    expect(saved.cpuSeconds).toBeGreaterThanOrEqual(job.cpuSeconds);
    // The training container's marks (--marks): the burn happened in "train", 100 steps of it.
    const train = saved.phases?.find((p) => p.name === "train");
    expect(train?.energyJoules).toBeGreaterThan(0);
    expect(train?.steps).toBe(100);
    expect(saved.phases!.reduce((s, p) => s + p.energyJoules, 0)).toBeCloseTo(saved.energyJoules.total, 6);
  }, 120_000);
});
