/**
 * The agent containers of the rendered manifests run: their args and env, taken from `kubectl
 * kustomize` output, start the real `powerprint agent` (dist/src/cli/main.js) until the manifest's
 * own probe path answers, then SIGTERM ends it cleanly. This proves every flag and value in the
 * manifests exists and is accepted, and that the probes point at the agent's endpoints.
 *
 * What the kubelet would do is emulated, nothing else is changed:
 * - env `valueFrom.fieldRef` gets a fake pod's values; `$(VAR)` in args is expanded from the env;
 * - every volumeMount is materialised under a temporary root (the training container's marks file,
 *   on the shared emptyDir, is the sidecar's --marks: the test writes a mark there as it would): downwardAPI items as files,
 *   emptyDir and writable hostPath as empty directories, read-only hostPath (the host's /proc and
 *   /sys) as links to this machine's; any arg or env value that is a mount path, below one, or a
 *   parent of one (--proc-root /host) is moved under that root;
 * - `0.0.0.0:PORT` binds 127.0.0.1 on a free port (the probes follow the mapping);
 * - the in-cluster URLs (the Collector's Service, the node's kubelet) point at a real
 *   VictoriaMetrics and a loopback kubelet stand-in serving an empty PodList.
 * Until the agent is merged the built CLI has no `agent` command: the tests then skip loudly
 * (they run after the lead merges the agent branch). POWERPRINT_TEST_CLI runs another build.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import type { IIoK8sApiCoreV1Container as Container } from "kubernetes-models/v1/Container";
import type { IIoK8sApiCoreV1PodSpec as PodSpec } from "kubernetes-models/v1/PodSpec";
import { CLI } from "../helpers/cli.js";
import { freePort, receiversSkipReason, startVictoriaMetrics, type Receiver } from "../helpers/receivers.js";
import { containersOf, kubectlBinary, kubernetesDir, kustomize, podTemplates, type K8sObject } from "./k8s.js";
import { waitFor } from "../helpers/wait.js";
import { serveText } from "../serving/endpoint.js";

const cli = process.env.POWERPRINT_TEST_CLI ?? CLI;
// A CLI without the command prints the top-level help instead of the agent's.
const hasAgent = existsSync(cli) && /Usage: powerprint agent/.test(spawnSync(process.execPath, [cli, "agent", "--help"], { encoding: "utf8" }).stdout);
const skip = !hasAgent || kubectlBinary() === undefined || receiversSkipReason("victoria-metrics") !== undefined;
if (!hasAgent) console.warn(`\n*** SKIPPING manifest agent runs: ${cli} has no 'agent' command yet (passes once the agent branch is merged) ***\n`);

/** The fake pod the kubelet would describe. */
const pod = {
  "metadata.name": "train-example-x7k2p",
  "metadata.namespace": "ml",
  "metadata.uid": "0b7e3f5a-2c1d-4e9f-8a6b-5d4c3b2a1f00",
  "metadata.labels": 'app.kubernetes.io/name="train-example"\nbatch.kubernetes.io/job-name="train-example"\njob-name="train-example"\n',
  "spec.nodeName": "node-a",
  "status.hostIP": "127.0.0.1",
};

interface Prepared {
  args: string[];
  env: Record<string, string>;
  /** containerPort → the loopback port it was given. */
  ports: Map<number, number>;
  root: string;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

/** The container's env as the kubelet sets it (fieldRef from the fake pod). */
function containerEnv(c: Container): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) {
    const field = e.valueFrom?.fieldRef?.fieldPath;
    if (e.value !== undefined) env[e.name] = e.value;
    else if (field && field in pod) env[e.name] = pod[field as keyof typeof pod];
    else throw new Error(`env ${e.name}: no emulation for ${JSON.stringify(e.valueFrom)}`);
  }
  return env;
}

/** Materialises the container's mounts under a temp root and rewrites paths, ports and URLs. */
async function prepare(spec: PodSpec, c: Container, urls: Record<string, string>): Promise<Prepared> {
  const root = mkdtempSync(join(tmpdir(), "pp-manifest-"));
  cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  const mountPaths: string[] = [];
  for (const m of c.volumeMounts ?? []) {
    const volume = (spec.volumes ?? []).find((v) => v.name === m.name);
    if (!volume) throw new Error(`mount ${m.name}: no volume`);
    const at = join(root, m.mountPath);
    mkdirSync(dirname(at), { recursive: true });
    mountPaths.push(m.mountPath);
    if (volume.hostPath && m.readOnly) symlinkSync(volume.hostPath.path, at);
    else if (volume.downwardAPI) {
      mkdirSync(at, { recursive: true });
      for (const item of volume.downwardAPI.items ?? []) writeFileSync(join(at, item.path), pod[item.fieldRef?.fieldPath as keyof typeof pod] ?? "");
    } else mkdirSync(at, { recursive: true }); // emptyDir, writable hostPath: empty
  }
  const env = containerEnv(c);
  const ports = new Map<number, number>();
  const rewrite = async (value: string): Promise<string> => {
    if (value in urls) return urls[value];
    const bind = /^0\.0\.0\.0:(\d+)$/.exec(value);
    if (bind) {
      const port = ports.get(Number(bind[1])) ?? (await freePort());
      ports.set(Number(bind[1]), port);
      return `127.0.0.1:${port}`;
    }
    const underMount = mountPaths.some((p) => value === p || value.startsWith(`${p}/`) || p.startsWith(`${value}/`));
    return value.startsWith("/") && underMount ? join(root, value) : value;
  };
  // Kubernetes expands $(VAR) in args from the container's env.
  const expanded = (c.args ?? []).map((a) => a.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, name: string) => env[name] ?? whole));
  const args: string[] = [];
  for (const a of expanded) args.push(await rewrite(a));
  for (const [k, v] of Object.entries(env)) env[k] = await rewrite(v);
  return { args, env, ports, root };
}

/** Runs the agent until `probePath` on the probe's port answers 200, checks `whileUp`, then SIGTERM. */
async function runUntilReady(p: Prepared, probe: { path: string; port: number }, whileUp: () => Promise<void>): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [cli, ...p.args], { env: { ...process.env, ...p.env }, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  cleanups.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  const url = `http://127.0.0.1:${probe.port}${probe.path}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`agent exited ${child.exitCode} before ${url} answered:\n${stderr}`);
    const status = await fetch(url).then((r) => r.status, () => 0);
    if (status === 200) break;
    if (Date.now() > deadline) throw new Error(`${url} did not answer 200 within 60 s:\n${stderr}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  await whileUp();
  child.kill("SIGTERM");
  return { code: await exited, stderr };
}

function agentContainer(obj: K8sObject): { spec: PodSpec; container: Container } {
  const spec = podTemplates(obj)[0].template.spec as PodSpec;
  const found = containersOf(spec).find((c) => c.container.name === "powerprint");
  if (!found) throw new Error("no powerprint container");
  return { spec, container: found.container };
}

function probeOf(c: Container, p: Prepared, kind: "startupProbe" | "readinessProbe"): { path: string; port: number } {
  const get = c[kind]?.httpGet;
  if (!get?.path) throw new Error(`no ${kind}.httpGet`);
  const containerPort = typeof get.port === "number" ? get.port : c.ports?.find((x) => x.name === get.port)?.containerPort;
  const port = containerPort === undefined ? undefined : p.ports.get(containerPort);
  if (port === undefined) throw new Error(`${kind} port ${get.port} is not a port the agent was told to listen on`);
  return { path: get.path, port };
}

describe.skipIf(skip)("the manifests' agent containers run", () => {
  test("sidecar (pod mode): ready on its startup probe, pushes OTLP with the pod's labels, checkpoints on SIGTERM", async () => {
    const vm: Receiver = await startVictoriaMetrics({ prometheusNaming: true });
    cleanups.push(() => vm.stop());
    const { spec, container } = agentContainer(kustomize(join(kubernetesDir, "sidecar")).find((o) => o.kind === "Job")!);
    const p = await prepare(spec, container, { "http://otel-collector.powerprint.svc:4318": `${vm.baseUrl}/opentelemetry` });
    expect(p.args.slice(0, 3)).toEqual(["agent", "--mode", "pod"]);
    // The training container's POWERPRINT_MARKS is the sidecar's --marks (one file, shared emptyDir).
    const marks = p.args[p.args.indexOf("--marks") + 1];
    const train = (spec.containers ?? []).find((c) => c.name === "train");
    expect(join(p.root, train?.env?.find((e) => e.name === "POWERPRINT_MARKS")?.value ?? "?")).toBe(marks);
    const health = probeOf(container, p, "startupProbe");
    const r = await runUntilReady(p, health, async () => {
      const live = container.livenessProbe?.httpGet;
      expect((await fetch(`http://127.0.0.1:${health.port}${live?.path}`)).status).toBe(200);
      // Training starts once the startup probe passed: it opens a phase. A sample taken after the
      // mark was written has read it (marks are read before each sample), so energy the pod gains
      // after such a sample is the phase's: wait for that (the agent's /jobs carries the snapshot's
      // time and the jobs' energy), not for a time (a tick whose reads ran late records nothing).
      writeFileSync(marks, `${JSON.stringify({ phase: "train", step: 0 })}\n`, { flag: "a" });
      // Taken after the write: a tick stamped later began after it, so it read the mark.
      const markedAt = Date.now();
      let atPhaseJoules: number | undefined;
      await waitFor("energy recorded after the mark was read", async () => {
        const view = (await (await fetch(`http://127.0.0.1:${health.port}/jobs`)).json()) as { timeMillis: number; jobs: { energyJoules: number }[] };
        const joules = view.jobs.reduce((a, j) => a + j.energyJoules, 0);
        if (view.timeMillis <= markedAt) return false;
        atPhaseJoules ??= joules;
        return joules > atPhaseJoules;
      }, 30_000, 200);
    });
    expect(r.code, r.stderr).toBe(0);
    // --state-file: the checkpoint is in the state emptyDir.
    const stateFile = p.args[p.args.indexOf("--state-file") + 1];
    expect(stateFile.startsWith(p.root)).toBe(true);
    expect(() => JSON.parse(readFileSync(stateFile, "utf8"))).not.toThrow();
    // --otlp and --podinfo-dir: the final export carries the pod named by the downward API.
    const series = await vm.query(`sum by (k8s_pod_name, k8s_namespace_name) (powerprint_job_energy_joules_total{k8s_pod_name="${pod["metadata.name"]}"})`);
    expect(series.map((s) => s.metric)).toEqual([{ k8s_pod_name: pod["metadata.name"], k8s_namespace_name: pod["metadata.namespace"] }]);
    // --marks: the phase the training container opened has energy.
    const phase = await vm.query(`sum by (powerprint_phase) (powerprint_job_phase_energy_joules_total{k8s_pod_name="${pod["metadata.name"]}"})`);
    const byPhase = Object.fromEntries(phase.map((s) => [s.metric.powerprint_phase, s.value]));
    expect(Object.keys(byPhase).sort()).toEqual(["(before first mark)", "train"]);
    expect(byPhase.train).toBeGreaterThan(0);
  }, 120_000);

  test("serving sidecar (pod mode, --work-from the server's port): tokens per model exported with the pod's labels", async () => {
    const vm: Receiver = await startVictoriaMetrics({ prometheusNaming: true });
    cleanups.push(() => vm.stop());
    const { spec, container } = agentContainer(kustomize(join(kubernetesDir, "serving")).find((o) => o.kind === "Deployment")!);
    const model = (spec.containers ?? []).find((c) => c.name === "vllm")!.args![1];
    // The vLLM container's /metrics, stood in for on a free port: counters growing per scrape.
    let n = 0;
    const server = await serveText(() => {
      n++;
      return `vllm:prompt_tokens_total{model_name="${model}"} ${16 * n}\nvllm:generation_tokens_total{model_name="${model}"} ${8 * n}\nvllm:request_success_total{finished_reason="length",model_name="${model}"} ${n}\nvllm:num_requests_running{model_name="${model}"} 1\n`;
    });
    cleanups.push(() => server.close());
    const workFrom = container.args![container.args!.indexOf("--work-from") + 1];
    const p = await prepare(spec, container, { "http://otel-collector.powerprint.svc:4318": `${vm.baseUrl}/opentelemetry`, [workFrom]: server.url });
    expect(p.args.slice(0, 3)).toEqual(["agent", "--mode", "pod"]);
    const r = await runUntilReady(p, probeOf(container, p, "startupProbe"), async () => {
      await waitFor("four scrapes of the server", () => server.hits >= 4, 30_000, 100);
    });
    expect(r.code, r.stderr).toBe(0);
    const tokens = await vm.query(`sum by (gen_ai_request_model, gen_ai_token_type, k8s_pod_name) (powerprint_job_serving_tokens_total{k8s_pod_name="${pod["metadata.name"]}"})`);
    const byType = Object.fromEntries(tokens.map((t) => [t.metric.gen_ai_token_type, t]));
    expect(byType.output.metric).toMatchObject({ gen_ai_request_model: model, k8s_pod_name: pod["metadata.name"] });
    expect(byType.output.value).toBeGreaterThan(0);
    expect(byType.input.value).toBe(2 * byType.output.value);
  }, 120_000);

  test("node agent (node mode): host roots, kubelet, /metrics and readiness as the DaemonSet says", async () => {
    // Resolves at the kubelet stand-in's first request (the agent's pod-list refresher).
    let kubeletAsked!: () => void;
    const firstKubeletRequest = new Promise<void>((r) => (kubeletAsked = r));
    const kubelet: Server = createServer((req, res) => {
      kubeletAsked();
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ kind: "PodList", apiVersion: "v1", metadata: {}, items: [] }));
    });
    await new Promise<void>((r) => kubelet.listen(0, "127.0.0.1", () => r()));
    cleanups.push(() => new Promise<void>((r) => kubelet.close(() => r())));
    const kubeletUrl = `http://127.0.0.1:${(kubelet.address() as { port: number }).port}/pods`;
    const { spec, container } = agentContainer(kustomize(join(kubernetesDir, "node-agent")).find((o) => o.kind === "DaemonSet")!);
    const p = await prepare(spec, container, { "https://127.0.0.1:10250/pods": kubeletUrl });
    expect(p.args.slice(0, 3)).toEqual(["agent", "--mode", "node"]);
    expect(p.args[p.args.indexOf("--proc-root") + 1]).toBe(join(p.root, "/host"));
    const r = await runUntilReady(p, probeOf(container, p, "readinessProbe"), async () => {
      const metricsPort = p.ports.get(container.ports!.find((x) => x.name === "metrics")!.containerPort)!;
      const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      expect(text).toContain("hw_energy_total");
      await firstKubeletRequest; // the test's own timeout bounds the wait
    });
    expect(r.code, r.stderr).toBe(0);
  }, 120_000);
});
