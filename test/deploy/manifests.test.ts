/**
 * deploy/kubernetes: every variant renders with the real `kubectl kustomize`, every object passes
 * kubernetes-models' OpenAPI validation and the checks of k8s.ts (unknown fields, selectors,
 * resource limits, security settings, volumes); each check is also fed a broken copy and must fail.
 */
import { beforeAll, describe, expect, test } from "vitest";
import { join } from "node:path";
import {
  containersOf,
  kubectlBinary,
  kubernetesDir,
  kustomize,
  podTemplates,
  resourceProblems,
  schemaProblems,
  securityProblems,
  selectorProblems,
  unknownFieldProblems,
  volumeProblems,
  type K8sObject,
} from "./k8s.js";

/** Every kustomization a user may apply, with the kinds it must render. */
const variants: Record<string, string[]> = {
  sidecar: ["Job"],
  "sidecar/pytorchjob": ["PyTorchJob"],
  "node-agent": ["ClusterRole", "ClusterRoleBinding", "DaemonSet", "Namespace", "Service", "ServiceAccount"],
  "node-agent-servicemonitor": ["ClusterRole", "ClusterRoleBinding", "DaemonSet", "Namespace", "Service", "ServiceAccount", "ServiceMonitor"],
  serving: ["Deployment", "Service"],
};

const kubectlMissing = kubectlBinary() === undefined && process.env.CI !== "true";
if (kubectlMissing) console.warn("\n*** SKIPPING deploy/kubernetes tests: kubectl not on PATH (.ci/run installs it) ***\n");

const clone = <T>(value: T): T => structuredClone(value);

describe.skipIf(kubectlMissing)("deploy/kubernetes", () => {
  const rendered: Record<string, K8sObject[]> = {};
  beforeAll(() => {
    for (const dir of Object.keys(variants)) rendered[dir] = kustomize(join(kubernetesDir, dir));
  });
  const all = () => Object.values(rendered).flat();
  const find = (dir: string, kind: string): K8sObject => {
    const obj = rendered[dir].find((o) => o.kind === kind);
    if (!obj) throw new Error(`${dir} renders no ${kind}`);
    return obj;
  };

  test("each variant renders the kinds it promises", () => {
    for (const [dir, kinds] of Object.entries(variants)) {
      expect(rendered[dir].map((o) => o.kind).sort(), dir).toEqual(kinds);
    }
  });

  test("every object validates against the Kubernetes OpenAPI schemas (kubernetes-models)", async () => {
    const problems = (await Promise.all(all().map(schemaProblems))).flat();
    expect(problems).toEqual([]);
  });

  test("no unknown fields (schema from kubernetes-models' type declarations, additionalProperties false)", async () => {
    const problems = (await Promise.all(all().map(unknownFieldProblems))).flat();
    expect(problems).toEqual([]);
  });

  test("selectors match their templates; Service and ServiceMonitor reach their pods and ports", () => {
    for (const dir of Object.keys(variants)) expect(selectorProblems(rendered[dir]), dir).toEqual([]);
  });

  test("every container has cpu/memory requests and limits, the security settings, and declared volumes", () => {
    const objects = all();
    expect(objects.flatMap(resourceProblems)).toEqual([]);
    expect(objects.flatMap(securityProblems)).toEqual([]);
    expect(objects.flatMap(volumeProblems)).toEqual([]);
    // Guard against the checks passing because they saw nothing.
    // Job, PyTorchJob Master + Worker, the DaemonSet of node-agent and of node-agent-servicemonitor, the serving Deployment.
    expect(objects.flatMap((o) => podTemplates(o)).length).toBe(6);
  });

  test("the PyTorchJob's sidecar is the Job's sidecar (one agent definition, copied exactly)", () => {
    const jobSidecar = podTemplates(find("sidecar", "Job"))[0].template.spec?.initContainers;
    for (const { where, template } of podTemplates(find("sidecar/pytorchjob", "PyTorchJob"))) {
      expect(template.spec?.initContainers, where).toEqual(jobSidecar);
      expect(template.spec?.volumes, where).toEqual(podTemplates(find("sidecar", "Job"))[0].template.spec?.volumes);
      expect(template.spec?.shareProcessNamespace, where).toBe(true);
      expect(template.spec?.containers.map((c) => c.name), where).toEqual(["pytorch"]);
    }
  });

  test("the serving Deployment's sidecar is the Job's agent in pod mode plus --work-from on the server's own port", () => {
    const serving = podTemplates(find("serving", "Deployment"))[0].template.spec!;
    const job = podTemplates(find("sidecar", "Job"))[0].template.spec!;
    const agent = serving.initContainers!.find((c) => c.name === "powerprint")!;
    const jobAgent = job.initContainers!.find((c) => c.name === "powerprint")!;
    const args = agent.args!;
    const url = new URL(args[args.indexOf("--work-from") + 1]);
    expect(url.hostname).toBe("127.0.0.1");
    const server = serving.containers.find((c) => c.name === "vllm")!;
    expect(server.ports!.map((p) => p.containerPort)).toContain(Number(url.port));
    // Everything else as the training sidecar: same image, env, probes, limits, security, mounts it shares.
    const { args: _a, volumeMounts: _v, ...rest } = agent;
    const { args: _b, volumeMounts: _w, ...jobRest } = jobAgent;
    expect(rest).toEqual(jobRest);
    const strip = (a: string[]) => a.filter((x, i) => !["--work-from", "--marks"].includes(x) && !["--work-from", "--marks"].includes(a[i - 1]));
    expect(strip(args)).toEqual(strip(jobAgent.args!));
    expect(serving.shareProcessNamespace).toBe(true);
    // The Service reaches the server's API port by name.
    const svc = find("serving", "Service").spec as { ports: { targetPort: string }[] };
    expect(server.ports!.map((p) => p.name)).toContain(svc.ports[0].targetPort);
  });

  test("the sidecar variants need nothing of the host (Pod Security 'restricted': no host namespaces, no hostPath)", () => {
    for (const obj of [find("sidecar", "Job"), find("sidecar/pytorchjob", "PyTorchJob"), find("serving", "Deployment")]) {
      for (const { where, template } of podTemplates(obj)) {
        const pod = template.spec!;
        expect([pod.hostPID, pod.hostNetwork, pod.hostIPC].filter(Boolean), where).toEqual([]);
        expect((pod.volumes ?? []).filter((v) => v.hostPath).map((v) => v.name), where).toEqual([]);
        expect(pod.shareProcessNamespace, where).toBe(true);
        for (const { container } of containersOf(pod)) expect(container.securityContext?.capabilities?.add ?? [], container.name).toEqual([]);
      }
    }
  });

  test("the node agent mounts the host's /proc and /sys read-only at /host/proc and /host/sys", () => {
    const ds = find("node-agent", "DaemonSet");
    const pod = podTemplates(ds)[0].template.spec;
    const agent = pod?.containers.find((c) => c.name === "powerprint");
    const hostPath = (name: string) => pod?.volumes?.find((v) => v.name === name)?.hostPath?.path;
    const mounts = Object.fromEntries((agent?.volumeMounts ?? []).map((m) => [m.mountPath, { path: hostPath(m.name), readOnly: m.readOnly }]));
    expect(mounts["/host/proc"]).toEqual({ path: "/proc", readOnly: true });
    expect(mounts["/host/sys"]).toEqual({ path: "/sys", readOnly: true });
    const args = agent?.args ?? [];
    expect(args[args.indexOf("--proc-root") + 1]).toBe("/host");
    expect(args[args.indexOf("--sys-root") + 1]).toBe("/host");
    expect(pod?.hostPID).not.toBe(true);
  });

  test("RBAC is read-only: nodes/proxy get (the kubelet /pods path the agent calls), nothing else", () => {
    const role = find("node-agent", "ClusterRole") as K8sObject & { rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[] };
    const grants = role.rules.flatMap((r) => r.resources.flatMap((res) => r.verbs.map((v) => `${r.apiGroups.join(",")}:${res}:${v}`))).sort();
    expect(grants).toEqual([":nodes/proxy:get"]);
  });

  describe("each check fails on a broken copy", () => {
    const daemonSet = () => clone(find("node-agent", "DaemonSet"));
    const agentOf = (obj: K8sObject) => containersOf(podTemplates(obj)[0].template.spec!)[0].container;

    test("schema: a wrong type", async () => {
      const broken = daemonSet();
      (podTemplates(broken)[0].template.spec as { containers: unknown }).containers = "powerprint";
      expect((await schemaProblems(broken)).join("\n")).toMatch(/containers/);
      const job = clone(find("sidecar/pytorchjob", "PyTorchJob"));
      (agentOf(job) as { image: unknown }).image = 42;
      expect((await schemaProblems(job)).join("\n")).toMatch(/image/);
    });

    test("unknown field: a typo in a container, in metadata, and in the PyTorchJob envelope", async () => {
      const broken = daemonSet();
      (agentOf(broken) as unknown as Record<string, unknown>).volumeMount = [];
      expect(await unknownFieldProblems(broken)).toEqual([expect.stringMatching(/unknown field \/spec\/template\/spec\/containers\/0\/volumeMount$/)]);
      const meta = daemonSet();
      (meta.metadata as Record<string, unknown>).label = { a: "b" };
      expect((await unknownFieldProblems(meta)).join("\n")).toMatch(/unknown field \/metadata\/label/);
      const job = clone(find("sidecar/pytorchjob", "PyTorchJob"));
      ((job.spec as { pytorchReplicaSpecs: Record<string, unknown> }).pytorchReplicaSpecs.Master as Record<string, unknown>).replica = 1;
      expect((await unknownFieldProblems(job)).join("\n")).toMatch(/unknown field \/spec\/pytorchReplicaSpecs\/Master\/replica/);
      expect(await unknownFieldProblems({ apiVersion: "v1", kind: "Pod" })).toEqual([expect.stringMatching(/not a kind the manifests may hold/)]);
    });

    test("selector not matching the template, Service and ServiceMonitor missing", () => {
      const objects = clone(rendered["node-agent-servicemonitor"]);
      const ds = objects.find((o) => o.kind === "DaemonSet")!;
      podTemplates(ds)[0].template.metadata!.labels!["app.kubernetes.io/name"] = "other";
      const problems = selectorProblems(objects).join("\n");
      expect(problems).toMatch(/DaemonSet.*spec.selector does not match/);
      expect(problems).toMatch(/Service\/powerprint\/powerprint-agent: selector matches no pod template/);
      const renamed = clone(rendered["node-agent-servicemonitor"]);
      (renamed.find((o) => o.kind === "Service")!.spec as { ports: { name: string }[] }).ports[0].name = "http";
      expect(selectorProblems(renamed).join("\n")).toMatch(/endpoint port 'metrics' is no port name/);
      const port = clone(rendered["node-agent"]);
      ((port.find((o) => o.kind === "Service")!.spec as { ports: { targetPort: string }[] }).ports[0]).targetPort = "metric";
      expect(selectorProblems(port).join("\n")).toMatch(/targetPort 'metric'/);
    });

    test("a missing resource limit", () => {
      const broken = clone(find("sidecar", "Job"));
      delete containersOf(podTemplates(broken)[0].template.spec!)[0].container.resources!.limits!.memory;
      expect(resourceProblems(broken)).toEqual([expect.stringMatching(/initContainers\[powerprint\]: no resources.limits.memory/)]);
    });

    test("a container without the security settings", () => {
      const broken = clone(find("sidecar", "Job"));
      const pod = podTemplates(broken)[0].template.spec!;
      const train = pod.containers[0];
      train.securityContext = { ...train.securityContext, readOnlyRootFilesystem: false, runAsNonRoot: undefined, capabilities: { add: ["SYS_ADMIN"] } };
      delete pod.securityContext!.runAsNonRoot;
      delete pod.securityContext!.seccompProfile;
      const problems = securityProblems(broken).join("\n");
      for (const what of ["readOnlyRootFilesystem", "drop lacks ALL", "SYS_ADMIN", "runAsNonRoot", "seccompProfile"]) expect(problems).toContain(what);
      const ds = daemonSet();
      delete agentOf(ds).securityContext!.allowPrivilegeEscalation;
      expect(securityProblems(ds)).toEqual([expect.stringMatching(/allowPrivilegeEscalation is not false/)]);
      // Root is allowed for the node agent only, and only said explicitly.
      const root = daemonSet();
      delete agentOf(root).securityContext!.runAsUser;
      expect(securityProblems(root)).toEqual([expect.stringMatching(/runAsUser 0 is not explicit/)]);
      const renamed = daemonSet();
      renamed.metadata!.name = "other-agent";
      expect(securityProblems(renamed)).toEqual([expect.stringMatching(/runAsNonRoot is not true/)]);
    });

    test("a volume mounted but not declared", () => {
      const broken = clone(find("sidecar", "Job"));
      const pod = podTemplates(broken)[0].template.spec!;
      pod.volumes = pod.volumes!.filter((v) => v.name !== "podinfo");
      expect(volumeProblems(broken)).toEqual([expect.stringMatching(/mounts volume 'podinfo', which is not declared/)]);
    });
  });
});
