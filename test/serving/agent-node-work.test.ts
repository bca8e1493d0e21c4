// `agent --mode node`: each pod names its server's metrics endpoint in the `powerprint.io/work-from`
// annotation (here `:PORT/metrics` on its status.podIP). A kubelet-shaped cgroup tree on this
// machine's cgroup2 holds two "pods" (a real process each), a loopback kubelet lists them: the
// annotated pod's tokens per model are exported with its pod labels; the pod whose annotation is
// not a URL is said once and measured as before. Also the annotation forms (flags.ts).
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { readCgroupMounts } from "../../src/cgroup/mounts.js";
import { parsePodList } from "../../src/k8s/pods.js";
import { workFromAnnotation } from "../../src/serving/agent-work.js";
import { makeLayout, movePid, podPaths, removeTree, type PodSpec } from "../cgroup/kube-layout.js";
import { startReplayServer } from "../grid/replay-server.js";
import { promValue, scrape, startAgent, waitFor } from "../cli/agent-helpers.js";
import { serveText } from "./endpoint.js";

describe("the powerprint.io/work-from annotation", () => {
  it("a URL, or a port (and path) on the pod's IP; anything else is nothing", () => {
    expect(workFromAnnotation("http://10.1.2.3:8000/metrics", undefined)?.href).toBe("http://10.1.2.3:8000/metrics");
    expect(workFromAnnotation(":8000/metrics", "10.1.2.3")?.href).toBe("http://10.1.2.3:8000/metrics");
    expect(workFromAnnotation("8080", "10.1.2.3")?.href).toBe("http://10.1.2.3:8080/metrics");
    expect(workFromAnnotation(":8000/custom", "fd00::5")?.href).toBe("http://[fd00::5]:8000/custom");
    expect(workFromAnnotation(":8000", undefined)).toBeUndefined();
    for (const bad of ["not a url", "ftp://h/x", ":99999", "http://u:p@h/x"]) expect(workFromAnnotation(bad, "10.1.2.3"), bad).toBeUndefined();
  });

  it("is read from the kubelet's pod list with status.podIP (bounded)", () => {
    const r = parsePodList({
      kind: "PodList",
      items: [
        { metadata: { uid: "u1", name: "llm-0", annotations: { "powerprint.io/work-from": ":8000/metrics", other: "x" } }, status: { podIP: "10.0.0.7" } },
        { metadata: { uid: "u2", name: "llm-1", annotations: { "powerprint.io/work-from": "x".repeat(600) } } },
      ],
    });
    if (r.status !== "ok") throw new Error(r.reason);
    expect(r.pods[0]).toMatchObject({ workFrom: ":8000/metrics", podIp: "10.0.0.7" });
    expect(r.pods[1].workFrom).toBeUndefined();
  });
});

const burner = fileURLToPath(new URL("../cgroup/scripts/pod-burner.mjs", import.meta.url));
const v2 = readCgroupMounts().v2;
const canRun = !!v2 && process.getuid?.() === 0;
const uid = (n: number) => `${(process.pid % 0xffffffff).toString(16).padStart(8, "0")}-0000-4000-9100-${String(n).padStart(12, "0")}`;

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

describe.skipIf(!canRun)("agent --mode node with powerprint.io/work-from", () => {
  it("the annotated pod's tokens per model, with its pod labels; a bad annotation said once", async () => {
    let n = 0;
    const server = await serveText(() => {
      n++;
      return `vllm:prompt_tokens_total{model_name="llama-8b"} ${30 * n}\nvllm:generation_tokens_total{model_name="llama-8b"} ${10 * n}\nvllm:num_requests_running{model_name="llama-8b"} 1\n`;
    });
    cleanups.push(() => server.close());
    const pods: (PodSpec & { name: string; annotation: string })[] = [
      { uid: uid(1), qos: "burstable", containers: ["a".repeat(64)], name: "llm-server-0", annotation: `:${new URL(server.url).port}/metrics` },
      { uid: uid(2), qos: "burstable", containers: ["b".repeat(64)], name: "llm-server-1", annotation: "not a url" },
    ];
    const top = join(v2!.mountPoint, `pp-serving-node-${process.pid}`);
    makeLayout(top, "systemd", pods);
    cleanups.push(() => removeTree(top));
    const work = mkdtempSync(join(tmpdir(), "pp-serving-node-"));
    cleanups.push(() => rmSync(work, { recursive: true, force: true }));
    const children: ChildProcess[] = [];
    cleanups.push(() => children.forEach((c) => c.kill("SIGKILL")));
    for (const p of pods) {
      const child = spawn(process.execPath, [burner, work, p.name, "0.01"], { stdio: "ignore" });
      children.push(child);
      const pid = Number(await waitFor(`${p.name} ready`, () => (existsSync(join(work, `${p.name}.ready`)) ? readFileSync(join(work, `${p.name}.ready`), "utf8") : undefined)));
      movePid(join(top, podPaths("systemd", p).containers[0]), pid);
    }
    const podList = {
      kind: "PodList",
      apiVersion: "v1",
      items: pods.map((p) => ({
        metadata: { uid: p.uid, name: p.name, namespace: "inference", labels: { app: "llm" }, annotations: { "powerprint.io/work-from": p.annotation } },
        spec: { nodeName: "node-a" },
        status: { phase: "Running", podIP: "127.0.0.1", containerStatuses: [{ name: "vllm", containerID: `containerd://${p.containers[0]}`, state: { running: {} } }] },
      })),
    };
    const kubelet = await startReplayServer((req) => (req.path === "/pods" ? { body: podList } : { status: 404, body: "no" }));
    cleanups.push(() => kubelet.close());
    const agent = startAgent(["--mode", "node", "--kubelet-url", `${kubelet.url}/pods`, "--prometheus", "127.0.0.1:0", "--interval", "100ms"]);
    cleanups.push(() => void agent.stop("SIGKILL"));
    const metrics = await agent.line(/serving metrics at (\S+)/);
    const labels = { powerprint_job_id: pods[0].uid, k8s_pod_name: pods[0].name, k8s_namespace_name: "inference", gen_ai_request_model: "llama-8b" };
    const output = await waitFor("the annotated pod's generated tokens", async () => {
      const v = promValue(await scrape(metrics), "powerprint_job_serving_tokens_total", { ...labels, gen_ai_token_type: "output" });
      return v !== undefined && v >= 30 ? v : undefined;
    });
    const text = await scrape(metrics);
    // Counted from the baseline on: input grows 3 tokens per output token, as the server counted.
    expect(promValue(text, "powerprint_job_serving_tokens_total", { ...labels, gen_ai_token_type: "input" })).toBeGreaterThanOrEqual(3 * output);
    expect(promValue(text, "powerprint_job_serving_tokens_total", { powerprint_job_id: pods[1].uid, gen_ai_token_type: "output" })).toBeUndefined();
    expect(promValue(text, "powerprint_job_energy_total", { powerprint_job_id: pods[1].uid, k8s_pod_name: pods[1].name })).toBeGreaterThanOrEqual(0);
    expect(await agent.stop()).toBe(0);
    const said = agent.stderr().split("\n").filter((l) => l.includes("powerprint.io/work-from"));
    expect(said).toHaveLength(1);
    expect(said[0]).toContain(`pod inference/${pods[1].name}`);
  }, 120_000);
});
