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
import { buildStubNvml, buildStuckFuse } from "../native/build-stub.mjs";
import { readCgroupMounts } from "../../src/cgroup/mounts.js";
import { makeLayout, movePid, podPaths, removeTree } from "../cgroup/kube-layout.js";
import { startReplayServer } from "../grid/replay-server.js";
import { startAgent, watchAgent } from "./agent-helpers.js";

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

/** The agent in a mount namespace of its own: stuck-fuse mounted, `victims` sleeping processes whose cmdline is the FUSE file. */
function startInNamespace(victims: number) {
  const fuse = join(dir, "fuse");
  mkdirSync(fuse);
  const state = join(dir, "state.json");
  const pidsFile = join(dir, "pids");
  const script = [
    '"$1" "$2" & echo $! > "$3"',
    'while [ ! -e "$2/stuck" ]; do sleep 0.05; done',
    'i=0; while [ $i -lt "$4" ]; do sleep 600 & echo $! >> "$3"; mount --bind "$2/stuck" "/proc/$!/cmdline" || exit 98; i=$((i+1)); done',
    'echo go >> "$3"',
    "shift 4",
    'exec "$@"',
  ].join("\n");
  const child: ChildProcess = spawn(
    "unshare",
    [
      "--mount", "--propagation", "private", "sh", "-c", script, "sh", buildStuckFuse(), fuse, pidsFile, String(victims),
      process.execPath, CLI, "agent", "--mode", "selector", "--match-cmdline", "pp-proc-hung-(\\w+)",
      "--interval", "200ms", "--listen", "127.0.0.1:0", "--state-file", state, "--flush-timeout", "2s",
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  const agent = watchAgent(child);
  const pids = async (): Promise<{ daemon: number; victims: number[] }> => {
    const lines = await waitFor("the namespace's processes", () => {
      const l = existsSync(pidsFile) ? readFileSync(pidsFile, "utf8").trim().split("\n") : [];
      return l.at(-1) === "go" ? l.slice(0, -1).map(Number) : undefined;
    });
    killed.push(...lines);
    return { daemon: lines[0], victims: lines.slice(1) };
  };
  return { ...agent, exited: agent.exited.then((e) => e.code), state, pids };
}

/** A process whose command line matches the agent's --match-cmdline (job `name`), burning CPU until `stop` exists. */
function startJob(name: string, stop: string): ChildProcess {
  const job = spawn(process.execPath, ["-e", `const fs = require("fs"); while (!fs.existsSync(process.argv[1])) for (let i = 0; i < 1e6; i++);`, stop, `pp-proc-hung-${name}`], { stdio: "ignore" });
  killed.push(job.pid!);
  return job;
}

/** Kills what the test started (the FUSE daemon before the agent is waited for: a process in its read cannot finish dying before). */
async function cleanUp(agent: { child: ChildProcess; exited: Promise<number | null> }): Promise<void> {
  for (const pid of [...killed].reverse()) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone already
    }
  }
  if (agent.child.exitCode === null && agent.child.signalCode === null) agent.child.kill("SIGKILL");
  await agent.exited;
}

describe("a /proc/PID/cmdline whose read never returns", () => {
  it.skipIf(!canMountFuse)("selector mode: said, ticks go on, a job started after it is found and measured, /healthz 200, SIGTERM exits 0", async () => {
    const agent = startInNamespace(1);
    try {
      const url = await agent.line(/health: (\S+)\/healthz/);
      const { daemon, victims } = await agent.pids();
      await waitFor("/readyz", async () => ((await fetch(`${url}/readyz`)).status === 200 ? true : undefined));
      const victim = victims[0];
      await waitFor("the stuck read said", () => new RegExp(`selector: /proc/${victim}'s command line or environment did not come within 1 s`).test(agent.stderr()));

      // A matching job started now is found (its read is not behind the stuck one) and its CPU counted.
      const stop = join(dir, "stop");
      startJob("job1", stop);
      const found = await waitFor("job1 measured", async () => (await jobsView(url)).jobs.find((j) => j.id === "job1" && j.cpuSeconds > 0));
      expect(found.cpuSeconds).toBeGreaterThan(0);
      const t0 = (await jobsView(url)).timeMillis;
      await waitFor("a later sample", async () => ((await jobsView(url)).timeMillis > t0 ? true : undefined));
      const h = await fetch(`${url}/healthz`);
      expect(h.status, await h.text()).toBe(200);
      writeFileSync(stop, "");

      agent.child.kill("SIGTERM");
      // The agent ends itself without waiting for the read (its final checkpoint written first).
      await waitFor("the exit past the stuck read", () =>
        new RegExp(`warning: a read of /proc/${victim}/cmdline has not returned for \\d+ s \\(stuck in the kernel\\): exiting without waiting for it`).test(agent.stderr()),
      );
      expect(JSON.parse(readFileSync(agent.state, "utf8")).final).toBe(true);
      // A FUSE read already sent to its daemon holds even a dying process in the kernel (a real
      // mmap-lock wait is killable): the process is gone once the daemon is.
      process.kill(daemon, "SIGKILL");
      expect(await agent.exited, agent.stderr()).toBe(0);
    } finally {
      await cleanUp(agent);
    }
  }, 180_000);

  it.skipIf(!canMountFuse)("three such processes: two reads stuck hold the pool's threads, no third is started (said) and no new job matched; once they return, a new job is found", async () => {
    const agent = startInNamespace(3);
    try {
      const url = await agent.line(/health: (\S+)\/healthz/);
      const { daemon } = await agent.pids();
      await waitFor("/readyz", async () => ((await fetch(`${url}/readyz`)).status === 200 ? true : undefined));
      await waitFor("the cap said", () => /selector: 2 reads of processes' command lines or environments are stuck in the kernel: no new process is matched until one returns/.test(agent.stderr()));
      const stop = join(dir, "stop");
      startJob("job2", stop);
      // Several samples later (events, not time), job2 is still unmatched: its read was never started.
      for (let i = 0; i < 5; i++) {
        const t = (await jobsView(url)).timeMillis;
        await waitFor("a later sample", async () => ((await jobsView(url)).timeMillis > t ? true : undefined));
      }
      expect((await jobsView(url)).jobs.map((j) => j.id)).not.toContain("job2");
      // The daemon gone, the stuck reads return (ENOTCONN): reads start again and job2 is found.
      process.kill(daemon, "SIGKILL");
      await waitFor("job2 measured", async () => (await jobsView(url)).jobs.find((j) => j.id === "job2" && j.cpuSeconds > 0));
      writeFileSync(stop, "");
      agent.child.kill("SIGTERM");
      expect(await agent.exited, agent.stderr()).toBe(0);
      expect(agent.stderr()).not.toMatch(/has not returned/);
    } finally {
      await cleanUp(agent);
    }
  }, 180_000);

  it("off the loop, a job's root still gives its device assignment: CUDA_VISIBLE_DEVICES read with its environment gives it gpu0's energy while NVML lists only PIDs it cannot see", async () => {
    const script = join(dir, "stub.txt");
    const env = { POWERPRINT_NVML_LIBRARY: buildStubNvml(), STUB_NVML_SCRIPT: script, STUB_NVML_READ_LOG: join(dir, "reads.log") };
    writeFileSync(script, "count 1\ngpu0.name NVIDIA H100 80GB HBM3\ngpu0.energy_mj 5000000\n");
    const state = join(dir, "state.json");
    const agent = startAgent(["--mode", "selector", "--match-env", "PP_PROC_HUNG_DEV_JOB", "--interval", "200ms", "--listen", "127.0.0.1:0", "--state-file", state], env);
    const url = await agent.line(/health: (\S+)\/healthz/);
    await waitFor("/readyz", async () => ((await fetch(`${url}/readyz`)).status === 200 ? true : undefined));
    // The GPU job of nvml-pipeline's container case: gpu0 busy, its process a PID this namespace lacks.
    const job = spawn(process.execPath, [join(import.meta.dirname, "..", "fixtures", "scripts", "gpu-job.mjs")], {
      env: { ...process.env, ...env, PP_PROC_HUNG_DEV_JOB: "dev1", CUDA_VISIBLE_DEVICES: "0", GPU_JOB_PID: "4000001", GPU_JOB_MILLIS: "3000" },
      stdio: "ignore",
    });
    killed.push(job.pid!);
    await new Promise((r) => job.once("exit", r));
    await waitFor("dev1 finished", async () => (await jobsView(url)).jobs.find((j) => j.id === "PP_PROC_HUNG_DEV_JOB=dev1" && (j as { finishedMillis?: number | null }).finishedMillis != null));
    expect(await agent.stop()).toBe(0);
    const saved = JSON.parse(readFileSync(state, "utf8")) as { ledger: { jobs: { id: string; energyJoules: Record<string, number> }[] } };
    const dev1 = saved.ledger.jobs.find((j) => j.id === "PP_PROC_HUNG_DEV_JOB=dev1")!;
    expect(dev1.energyJoules.gpu).toBeGreaterThan(0);
  }, 180_000);

  const v2 = readCgroupMounts().v2;
  it.skipIf(!canMountFuse || !v2)("node mode: a pod process's environ that never answers (read for the pod's CUDA_VISIBLE_DEVICES): ticks go on, the other pod is measured, /healthz 200, SIGTERM exits 0", async () => {
    const uid = (n: number) => `${(process.pid % 0xffffffff).toString(16).padStart(8, "0")}-0000-4000-9100-${String(n).padStart(12, "0")}`;
    const pods = [
      { uid: uid(1), qos: "besteffort" as const, containers: ["a".repeat(64)], name: "stuck-0" },
      { uid: uid(2), qos: "besteffort" as const, containers: ["b".repeat(64)], name: "busy-0" },
    ];
    const top = join(v2!.mountPoint, `pp-agent-proc-hung-${process.pid}`);
    makeLayout(top, "systemd", pods);
    const victim = spawn("sleep", ["600"], { stdio: "ignore" });
    killed.push(victim.pid!);
    const stop = join(dir, "stop");
    const busy = startJob("busy", stop);
    movePid(join(top, podPaths("systemd", pods[0]).containers[0]), victim.pid!);
    movePid(join(top, podPaths("systemd", pods[1]).containers[0]), busy.pid!);
    const kubelet = await startReplayServer((req) =>
      req.path === "/pods"
        ? {
            body: {
              kind: "PodList",
              apiVersion: "v1",
              items: pods.map((p) => ({
                metadata: { uid: p.uid, name: p.name, namespace: "ml" },
                spec: { nodeName: "node-a" },
                status: { phase: "Running", containerStatuses: [{ name: "main", containerID: `containerd://${p.containers[0]}`, state: { running: {} } }] },
              })),
            },
          }
        : { status: 404, body: "no" },
    );
    const fuse = join(dir, "fuse");
    mkdirSync(fuse);
    const daemonPidFile = join(dir, "daemon.pid");
    const state = join(dir, "state.json");
    const script = ['"$1" "$2" & echo $! > "$3"', 'while [ ! -e "$2/stuck" ]; do sleep 0.05; done', 'mount --bind "$2/stuck" "/proc/$4/environ" || exit 98', "shift 4", 'exec "$@"'].join("\n");
    const child: ChildProcess = spawn(
      "unshare",
      [
        "--mount", "--propagation", "private", "sh", "-c", script, "sh", buildStuckFuse(), fuse, daemonPidFile, String(victim.pid),
        process.execPath, CLI, "agent", "--mode", "node", "--kubelet-url", `${kubelet.url}/pods`, "--interval", "200ms",
        "--listen", "127.0.0.1:0", "--state-file", state, "--flush-timeout", "2s",
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    const agent = watchAgent(child);
    const exited = agent.exited.then((e) => e.code);
    try {
      const url = await agent.line(/health: (\S+)\/healthz/);
      const daemon = Number(await waitFor("the FUSE daemon", () => (existsSync(daemonPidFile) ? readFileSync(daemonPidFile, "utf8").trim() || undefined : undefined)));
      killed.push(daemon);
      await waitFor("/readyz", async () => ((await fetch(`${url}/readyz`)).status === 200 ? true : undefined));
      // The busy pod's CPU counted, samples after samples.
      const first = await waitFor("busy-0 measured", async () => (await jobsView(url)).jobs.find((j) => j.id === pods[1].uid && j.cpuSeconds > 0));
      await waitFor("busy-0 measured further", async () => ((await jobsView(url)).jobs.find((j) => j.id === pods[1].uid)!.cpuSeconds > first.cpuSeconds ? true : undefined));
      expect((await jobsView(url)).jobs.map((j) => j.id)).toContain(pods[0].uid);
      const h = await fetch(`${url}/healthz`);
      expect(h.status, await h.text()).toBe(200);
      writeFileSync(stop, "");
      child.kill("SIGTERM");
      await waitFor("the exit past the stuck read", () =>
        new RegExp(`warning: a read of /proc/${victim.pid}/environ has not returned for \\d+ s \\(stuck in the kernel\\): exiting without waiting for it`).test(agent.stderr()),
      );
      expect(JSON.parse(readFileSync(state, "utf8")).final).toBe(true);
      process.kill(daemon, "SIGKILL");
      expect(await exited, agent.stderr()).toBe(0);
    } finally {
      await cleanUp({ child, exited });
      await kubelet.close();
      await removeTree(top);
    }
  }, 180_000);
});
