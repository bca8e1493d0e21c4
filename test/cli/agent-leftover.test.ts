/**
 * Leftover empty pod cgroups (a stuck pod cleanup) under `agent --mode node`, on real cgroup2
 * trees: a pod whose processes all exited is finished once, dropped after its retention and never
 * found again while it stays empty (no "rebirth" that would count its whole CPU history in one
 * tick and take that tick's energy from live pods); a leftover present when the agent starts
 * never counts its CPU from before; a process appearing in a dropped leftover makes it a job again
 * that counts from then. A live pod beside them keeps the CPU it measured itself.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { readCgroupMounts } from "../../src/cgroup/mounts.js";
import { makeLayout, movePid, podPaths, removeTree, type PodSpec } from "../cgroup/kube-layout.js";
import { killAgents, startAgent, waitFor } from "./agent-helpers.js";

const burner = fileURLToPath(new URL("../cgroup/scripts/pod-burner.mjs", import.meta.url));
const v2 = readCgroupMounts().v2;
const canRun = !!v2 && process.getuid?.() === 0;

const uid = (n: number) => `${(process.pid % 0xffffffff).toString(16).padStart(8, "0")}-0000-4000-a000-${String(n).padStart(12, "0")}`;
const pod = (n: number): PodSpec => ({ uid: uid(n), qos: "burstable", containers: [String(n).repeat(64).slice(0, 64)] });
const LIVE = pod(1);
const GHOST = pod(2);
const OLD = pod(3);

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  // A failed assertion must not leave an agent running.
  await killAgents();
  for (const c of cleanups.reverse()) await c();
});

/** This test's pods (other tests may make kubepods trees on this host at the same time). */
const ours = new Set([LIVE.uid, GHOST.uid, OLD.uid]);

interface View {
  timeMillis: number;
  dropped: number;
  jobs: { id: string; cpuSeconds: number; energyJoules: number; finishedMillis: number | null; pids: number[] }[];
}

describe.skipIf(!canRun)("agent --mode node: leftover empty pod cgroups", () => {
  it("finished once and never reborn while empty; its CPU history never counted again; revived by a new process, counting from then", async () => {
    const top = join(v2!.mountPoint, `pp-agent-leftover-${process.pid}`);
    cleanups.push(() => removeTree(top));
    const work = mkdtempSync(join(tmpdir(), "pp-agent-leftover-"));
    cleanups.push(() => rmSync(work, { recursive: true, force: true }));
    const children: ChildProcess[] = [];
    cleanups.push(() => children.forEach((c) => c.kill("SIGKILL")));
    /** A burner moved into `spec`'s container that burns `seconds` of CPU when `go` is written; resolves with its PID. */
    const burnerIn = async (spec: PodSpec, name: string, seconds: number): Promise<{ pid: number; child: ChildProcess }> => {
      const dir = join(work, name);
      mkdirSync(dir);
      const child = spawn(process.execPath, [burner, dir, name, String(seconds)], { stdio: "ignore" });
      children.push(child);
      const pid = Number(await waitFor(`${name} ready`, () => (existsSync(join(dir, `${name}.ready`)) ? readFileSync(join(dir, `${name}.ready`), "utf8") : undefined)));
      movePid(join(top, podPaths("systemd", spec).containers[0]), pid);
      return { pid, child };
    };
    const burnt = (name: string) => waitFor(`${name} burnt`, () => (existsSync(join(work, name, `${name}.cpu`)) ? Number(readFileSync(join(work, name, `${name}.cpu`), "utf8")) : undefined));
    const go = (name: string) => writeFileSync(join(work, name, "go"), "1");
    const killed = (c: ChildProcess) => new Promise((r) => (c.kill("SIGKILL"), c.once("exit", r)));

    // OLD: a leftover from before the agent: 0.3 s of CPU history, then empty.
    makeLayout(top, "systemd", [LIVE, OLD]);
    const old = await burnerIn(OLD, "old", 0.3);
    go("old");
    await burnt("old");
    await killed(old.child);
    // LIVE: burns all along the test (more than it can use up: its own CPU is read at the end).
    const live = await burnerIn(LIVE, "live", 1000);

    const agent = startAgent(["--mode", "node", "--listen", "127.0.0.1:0", "--interval", "100ms", "--retention", "500ms"]);
    const health = await agent.line(/health: (\S+)\/healthz/);
    const view = async () => {
      const v = (await (await fetch(`${health}/jobs`)).json()) as View;
      return { ...v, jobs: v.jobs.filter((j) => ours.has(j.id)) };
    };
    const first = await waitFor("the live pod in /jobs", async () => {
      const v = await view();
      return v.jobs.some((j) => j.id === LIVE.uid) ? v : undefined;
    });
    // OLD's CPU is from before the agent looked: never counted (while it is still listed).
    expect(first.jobs.find((j) => j.id === OLD.uid)?.cpuSeconds ?? 0).toBe(0);
    go("live");

    // GHOST: appears while the agent runs, burns 0.4 s, and is left empty.
    makeLayout(top, "systemd", [GHOST]);
    const ghost = await burnerIn(GHOST, "ghost", 0.4);
    go("ghost");
    const ghostCpu = await burnt("ghost");
    await killed(ghost.child);

    // The ghost is seen, finishes (no process left) and is dropped after its retention; OLD too.
    const seen = await waitFor("ghost counted", async () => (await view()).jobs.find((j) => j.id === GHOST.uid && j.finishedMillis !== null));
    // All its CPU, once (it appeared after the agent's first look: its CPU is the interval's).
    expect(seen.cpuSeconds).toBeGreaterThanOrEqual(ghostCpu * 0.95 - 0.02);
    expect(seen.cpuSeconds).toBeLessThanOrEqual(ghostCpu * 1.05 + 0.02);
    let lastView: View | undefined;
    const atDrop = await waitFor("ghost and old dropped", async () => {
      const v = (lastView = await view());
      return !v.jobs.some((j) => j.id === GHOST.uid || j.id === OLD.uid) ? v : undefined;
    }).catch((err: Error) => {
      throw new Error(`${err.message}: last /jobs ${JSON.stringify(lastView)}`);
    });
    expect(atDrop.jobs.map((j) => j.id)).toEqual([LIVE.uid]);

    // Never reborn: over ten retention periods, neither comes back (a rebirth would be listed for
    // at least its 500 ms retention; /jobs is read every 50 ms).
    const until = atDrop.timeMillis + 10 * 600;
    for (let v = await view(); v.timeMillis < until; v = await view()) {
      expect(v.jobs.map((j) => j.id)).toEqual([LIVE.uid]);
      await new Promise((r) => setTimeout(r, 50));
    }

    // Revived: a process in the dropped ghost pod makes it a job again, counting only its own CPU.
    const again = await burnerIn(GHOST, "again", 0.2);
    go("again");
    const againCpu = await burnt("again");
    const revived = await waitFor("ghost back with the new process's CPU", async () => {
      const v = await view();
      const j = v.jobs.find((x) => x.id === GHOST.uid);
      return j && j.cpuSeconds >= againCpu * 0.95 - 0.02 ? { v, j } : undefined;
    });
    expect(revived.j.cpuSeconds).toBeLessThanOrEqual(againCpu * 1.05 + 0.02);
    expect(revived.j.pids).toEqual([again.pid]);

    // The live pod kept what it measured itself (read when it stopped burning).
    await killed(again.child);
    writeFileSync(join(work, "live", "stop"), "");
    live.child.kill("SIGSTOP");
    const liveView = await waitFor("two samples after the stop", async () => {
      const t0 = (await view()).timeMillis;
      return waitFor("later", async () => {
        const v = await view();
        return v.timeMillis > t0 + 250 ? v : undefined;
      });
    });
    const liveStat = readFileSync(`/proc/${live.pid}/stat`, "utf8");
    const f = liveStat.slice(liveStat.lastIndexOf(")") + 2).split(" ");
    const liveSelf = (Number(f[11]) + Number(f[12])) / 100;
    const liveJob = liveView.jobs.find((j) => j.id === LIVE.uid)!;
    expect(liveJob.cpuSeconds).toBeGreaterThanOrEqual(liveSelf * 0.95 - 0.05);
    expect(liveJob.cpuSeconds).toBeLessThanOrEqual(liveSelf * 1.05 + 0.05);
    live.child.kill("SIGCONT");
    expect(await agent.stop()).toBe(0);
  }, 180_000);
});
