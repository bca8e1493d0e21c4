/**
 * Pod mode where the PID namespace is not a pod's (issue 18): PID 1 is not the pod's sandbox
 * (pause), as on a host (systemd), with hostPID, or in a sidecar without shareProcessNamespace.
 * Pod mode would count every process of the namespace but PID 1 and itself as the pod: outside a
 * pod it refuses to start (exit 2, one line naming PID 1 and the fix), inside one (downward API
 * files, KUBERNETES_SERVICE_HOST) it warns and runs on, since a sidecar that exits fails its pod
 * (src/agent/pod-sandbox.ts). Real PID namespaces (`unshare --pid --fork --mount-proc`), the built CLI.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI } from "../helpers/cli.js";
import { waitFor } from "../helpers/wait.js";

const canUnshare = spawnSync("unshare", ["--pid", "--fork", "--mount-proc", "true"]).status === 0;
/** This environment outside any pod (the tests may run in one: its variables removed). */
const hostEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("KUBERNETES_")));

/** Runs `script` as PID 1 of a new PID namespace (sh, or sh under another name); stdout and stderr. */
function inNamespace(pid1: string, script: string, args: string[]) {
  return spawnSync("unshare", ["--pid", "--fork", "--mount-proc", "--kill-child", pid1, "-c", script, "pid1", ...args], { encoding: "utf8", timeout: 60_000, env: hostEnv });
}

describe.skipIf(!canUnshare)("agent --mode pod in a PID namespace that is not a pod's", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "pp-podns-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("PID 1 is sh, not pause: refused, exit 2, one line naming PID 1 and the fix; nothing served", async () => {
    // PID 1 runs the agent as a child (so PID 1 stays sh) and prints its exit code.
    const r = inNamespace("/bin/sh", '"$1" "$2" agent --mode pod --listen 127.0.0.1:0 --interval 100ms; echo "rc=$?"', [process.execPath, CLI]);
    expect(r.stdout.trim()).toBe("rc=2");
    const lines = r.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^powerprint: error: --mode: pod: PID 1 is 'sh', not a pod's sandbox \(pause, catatonit\): on a host every process would be counted as the pod, .* set shareProcessNamespace: true; on a node use --mode node .* or --mode selector --match-cmdline REGEX; --pod-init NAME accepts another sandbox$/);
    expect(r.stderr).not.toMatch(/health:/);
  });

  it("powerprint itself is PID 1 (as in a sidecar without shareProcessNamespace; here outside a pod): refused, saying so", () => {
    const r = spawnSync("unshare", ["--pid", "--fork", "--mount-proc", "--kill-child", process.execPath, CLI, "agent", "--mode", "pod"], { encoding: "utf8", timeout: 60_000, env: hostEnv });
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split("\n")).toEqual([
      "powerprint: error: --mode: pod: powerprint is PID 1 itself: its container does not share the pod's PID namespace, so the training container's processes are not visible (set shareProcessNamespace: true in the pod spec)",
    ]);
  });

  it("probe --agent says the same of pod mode there", () => {
    const r = inNamespace("/bin/sh", '"$1" "$2" probe --agent --mode pod', [process.execPath, CLI]);
    expect(r.stdout).toMatch(/pod mode would count the wrong processes \(refused outside a pod, warned inside one\): PID 1 is 'sh', not a pod's sandbox/);
  });

  /** Starts `agent --mode pod` under `pid1` in a new namespace; resolves with its stderr once pod mode started (or it exited). */
  async function started(pid1: string, extra: string[], env: NodeJS.ProcessEnv = hostEnv): Promise<string> {
    const child = spawn("unshare", ["--pid", "--fork", "--mount-proc", "--kill-child", pid1, "-c", '"$@"', "pid1", process.execPath, CLI, "agent", "--mode", "pod", "--interval", "100ms", ...extra], { stdio: ["ignore", "ignore", "pipe"], env });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    const exited = new Promise((resolve) => child.on("exit", resolve));
    try {
      await waitFor("pod mode to start", () => /powerprint: pod mode: job /.test(stderr) || child.exitCode !== null, 60_000, 50);
      return stderr;
    } finally {
      child.kill("SIGKILL");
      await exited;
    }
  }

  it("PID 1 named pause (the sandbox) starts, without a warning; so does another name given with --pod-init", async () => {
    const pause = join(dir, "pause");
    symlinkSync("/bin/sh", pause);
    for (const stderr of [await started(pause, []), await started("/bin/sh", ["--pod-init", "sh"])]) {
      expect(stderr).toMatch(/powerprint: pod mode: job /);
      expect(stderr).not.toMatch(/error:|not the pod's/);
    }
  });

  it("inside a pod (its downward API files) with PID 1 not pause: a loud warning, and it runs on (exiting would fail the pod)", async () => {
    const podinfo = join(dir, "podinfo");
    mkdirSync(podinfo);
    writeFileSync(join(podinfo, "name"), "trainer-0");
    writeFileSync(join(podinfo, "namespace"), "ml");
    const stderr = await started("/bin/sh", ["--podinfo-dir", podinfo]);
    expect(stderr).toMatch(/^powerprint: warning: pod mode: this job's figures are not the pod's \(running on: a sidecar that exits fails its pod\): PID 1 is 'sh', not a pod's sandbox/m);
    expect(stderr).toMatch(/powerprint: pod mode: job ml\/trainer-0 /);
    // The same with only the variable every pod container gets.
    const byEnv = await started("/bin/sh", [], { ...hostEnv, KUBERNETES_SERVICE_HOST: "10.96.0.1" });
    expect(byEnv).toMatch(/warning: pod mode: this job's figures are not the pod's/);
  });

  it("--pod-init outside pod mode, or empty: a usage error", () => {
    const r = spawnSync(process.execPath, [CLI, "agent", "--mode", "selector", "--match-cmdline", "x", "--pod-init", "pause"], { encoding: "utf8", env: hostEnv });
    expect(r.status).toBe(2);
    expect(r.stderr).toBe("powerprint: error: --pod-init: only applies to --mode pod\n");
    const empty = spawnSync(process.execPath, [CLI, "agent", "--mode", "pod", "--pod-init", " "], { encoding: "utf8", env: hostEnv });
    expect(empty.status).toBe(2);
    expect(empty.stderr).toBe("powerprint: error: --pod-init: must name a process (its /proc/1/comm, e.g. pause)\n");
  });
});
