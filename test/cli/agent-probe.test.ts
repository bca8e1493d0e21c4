/** `powerprint probe --agent / --mode`: what each agent mode would find here (the built CLI). */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.js";
import { startReplayServer } from "../grid/replay-server.js";

interface ModeProbe {
  mode: string;
  usable: boolean;
  findings: string[];
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "pp-probe-agent-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const modesOf = (stdout: string) => (JSON.parse(stdout) as { agentModes: ModeProbe[] }).agentModes;

describe("probe --agent", () => {
  it("pod mode: reads the downward API directory it is given", async () => {
    writeFileSync(join(dir, "name"), "trainer-0");
    writeFileSync(join(dir, "namespace"), "ml");
    writeFileSync(join(dir, "labels"), 'job-name="resnet"\n');
    const r = await runCli(["probe", "--json", "--mode", "pod", "--podinfo-dir", dir]);
    expect(r.code).toBe(0);
    const [pod] = modesOf(r.stdout);
    expect(pod.mode).toBe("pod");
    // Usable where agent --mode pod would start: this namespace's PID 1 is a pod sandbox (not on a plain host).
    const sandbox = ["pause", "catatonit"].includes(readFileSync("/proc/1/comm", "utf8").trim());
    expect(pod.usable).toBe(sandbox);
    if (!sandbox) expect(pod.findings[0]).toMatch(/^pod mode would count the wrong processes /);
    expect(pod.findings.join("\n")).toMatch(/downward API in .*: name=trainer-0, namespace=ml; 1 label\(s\)/);
    expect(pod.findings.join("\n")).toMatch(/GPU\(s\) visible/);
  });

  it("node mode: says why the pod list endpoint failed (401 from a loopback kubelet)", async () => {
    const kubelet = await startReplayServer(() => ({ status: 401, body: "Unauthorized" }));
    try {
      const r = await runCli(["probe", "--json", "--mode", "node", "--kubelet-url", `${kubelet.url}/pods`]);
      expect(r.code).toBe(0);
      const [node] = modesOf(r.stdout);
      expect(node.findings.join("\n")).toMatch(/cgroup|kubepods/);
      expect(node.findings.join("\n")).toMatch(new RegExp(`pod list ${kubelet.url}/pods: .*401.*\\(pods would be named by UID\\)`));
      expect(kubelet.count("/pods")).toBe(1);
    } finally {
      await kubelet.close();
    }
  });

  it("selector mode: counts the matching process trees", async () => {
    const key = `PP_PROBE_${process.pid}`;
    const child = spawn("sleep", ["60"], { env: { ...process.env, [key]: "run-7" }, stdio: "ignore" });
    try {
      const r = await runCli(["probe", "--json", "--mode", "selector", "--match-env", key]);
      const [sel] = modesOf(r.stdout);
      expect(sel.usable).toBe(true);
      expect(sel.findings[0]).toBe(`1 matching process tree job(s): ${key}=run-7`);
    } finally {
      child.kill("SIGKILL");
    }
  });

  it("an unknown mode: exit 2 naming --mode", async () => {
    const r = await runCli(["probe", "--mode", "daemonset"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe("powerprint: error: --mode: 'daemonset' is not a mode: use pod, node or selector\n");
  });
});
