/**
 * Checks for the Kubernetes manifests in deploy/kubernetes, each a pure function over rendered
 * objects that returns its problems (empty: fine), so a test can feed it a broken copy and see it
 * fail. Rendering is the real `kubectl kustomize`; schema validation is kubernetes-models'
 * `.validate()` (the Kubernetes OpenAPI schemas, compiled); unknown fields are caught against a JSON
 * schema generated from kubernetes-models' type declarations with additionalProperties: false
 * (kubernetes-models itself accepts unknown fields).
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { delimiter, join, resolve } from "node:path";
import { Ajv, type ValidateFunction } from "ajv";
import { parseAllDocuments } from "yaml";
import type { IPodTemplateSpec } from "kubernetes-models/v1/PodTemplateSpec";
import type { IIoK8sApiCoreV1Container as Container } from "kubernetes-models/v1/Container";
import type { IIoK8sApiCoreV1PodSpec as PodSpec } from "kubernetes-models/v1/PodSpec";

export const repoRoot = resolve(import.meta.dirname, "..", "..");
export const kubernetesDir = join(repoRoot, "deploy", "kubernetes");

/** A rendered Kubernetes object (only what the checks read is typed). */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
  [field: string]: unknown;
}

/** `kind/namespace/name`, for messages. */
export function objectName(obj: K8sObject): string {
  return `${obj.kind}/${obj.metadata?.namespace ?? "-"}/${obj.metadata?.name ?? "?"}`;
}

/** The kubectl on PATH (Debian's kubectl or the machine's), or undefined. */
export function kubectlBinary(): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    const candidate = join(dir, "kubectl");
    if (dir && existsSync(candidate)) return candidate;
  }
  return undefined;
}

/** Renders a kustomization directory with the real `kubectl kustomize`; throws with kubectl's stderr. */
export function kustomize(dir: string): K8sObject[] {
  const kubectl = kubectlBinary();
  if (!kubectl) throw new Error("kubectl not found on PATH (.ci/run installs Debian's kubectl)");
  const r = spawnSync(kubectl, ["kustomize", dir], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`kubectl kustomize ${dir} failed (${r.status}): ${r.stderr}`);
  return parseYamlObjects(r.stdout);
}

/** Every document of a multi-document YAML stream, as objects; YAML errors throw. */
export function parseYamlObjects(text: string): K8sObject[] {
  const out: K8sObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`YAML: ${doc.errors[0].message}`);
    const value = doc.toJS() as K8sObject | null;
    if (value) out.push(value);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Schema: kubernetes-models .validate()

type ModelClass = new (data: unknown) => { validate(): void };

async function modelClass(obj: K8sObject): Promise<ModelClass | undefined> {
  switch (`${obj.apiVersion}/${obj.kind}`) {
    case "batch/v1/Job":
      return (await import("kubernetes-models/batch/v1")).Job as unknown as ModelClass;
    case "apps/v1/DaemonSet":
      return (await import("kubernetes-models/apps/v1")).DaemonSet as unknown as ModelClass;
    case "apps/v1/Deployment":
      return (await import("kubernetes-models/apps/v1")).Deployment as unknown as ModelClass;
    case "v1/Service":
      return (await import("kubernetes-models/v1")).Service as unknown as ModelClass;
    case "v1/ServiceAccount":
      return (await import("kubernetes-models/v1")).ServiceAccount as unknown as ModelClass;
    case "v1/Namespace":
      return (await import("kubernetes-models/v1")).Namespace as unknown as ModelClass;
    case "rbac.authorization.k8s.io/v1/ClusterRole":
      return (await import("kubernetes-models/rbac.authorization.k8s.io/v1")).ClusterRole as unknown as ModelClass;
    case "rbac.authorization.k8s.io/v1/ClusterRoleBinding":
      return (await import("kubernetes-models/rbac.authorization.k8s.io/v1")).ClusterRoleBinding as unknown as ModelClass;
    case "monitoring.coreos.com/v1/ServiceMonitor":
      return (await import("@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor")).ServiceMonitor as unknown as ModelClass;
    default:
      return undefined;
  }
}

/**
 * Problems kubernetes-models' OpenAPI validation finds. A PyTorchJob (a CRD without a model) has
 * each replica's pod template validated as a real PodTemplateSpec; its envelope is covered by the
 * unknown-field schema (k8s-types.ts, from the training operator's Go types).
 */
export async function schemaProblems(obj: K8sObject): Promise<string[]> {
  const run = (what: string, validate: () => void): string[] => {
    try {
      validate();
      return [];
    } catch (error) {
      return [`${what}: ${(error as Error).message}`];
    }
  };
  if (`${obj.apiVersion}/${obj.kind}` === "kubeflow.org/v1/PyTorchJob") {
    const { PodTemplateSpec } = await import("kubernetes-models/v1");
    return podTemplates(obj).flatMap(({ where, template }) =>
      run(`${objectName(obj)} ${where}`, () => new PodTemplateSpec(template as never).validate()),
    );
  }
  const Model = await modelClass(obj);
  if (!Model) return [`${objectName(obj)}: no schema for ${obj.apiVersion} ${obj.kind}`];
  return run(objectName(obj), () => new Model(obj).validate());
}

// ---------------------------------------------------------------------------------------------
// Unknown fields: JSON schema from kubernetes-models' declarations, additionalProperties false

let strictValidators: Promise<Map<string, ValidateFunction>> | undefined;

async function buildStrictValidators(): Promise<Map<string, ValidateFunction>> {
  const { createGenerator } = await import("ts-json-schema-generator");
  const schema = createGenerator({
    path: join(import.meta.dirname, "k8s-types.ts"),
    type: "ManifestKinds",
    skipTypeCheck: true,
    expose: "export",
    additionalProperties: false,
    topRef: false,
    jsDoc: "none",
  }).createSchema("ManifestKinds");
  const ajv = new Ajv({ allErrors: true, strict: false });
  const validators = new Map<string, ValidateFunction>();
  for (const [key, ref] of Object.entries(schema.properties ?? {})) {
    validators.set(key, ajv.compile({ ...(ref as object), definitions: schema.definitions }));
  }
  return validators;
}

/** Fields the object's type does not declare (and kinds the manifests may not hold). */
export async function unknownFieldProblems(obj: K8sObject): Promise<string[]> {
  strictValidators ??= buildStrictValidators();
  const validate = (await strictValidators).get(`${obj.apiVersion}/${obj.kind}`);
  if (!validate) return [`${objectName(obj)}: ${obj.apiVersion} ${obj.kind} is not a kind the manifests may hold (test/deploy/k8s-types.ts)`];
  if (validate(obj)) return [];
  return (validate.errors ?? []).map((e) =>
    e.keyword === "additionalProperties"
      ? `${objectName(obj)}: unknown field ${e.instancePath}/${(e.params as { additionalProperty: string }).additionalProperty}`
      : `${objectName(obj)}: ${e.instancePath} ${e.message}`,
  );
}

// ---------------------------------------------------------------------------------------------
// Pod templates and containers

/** The pod templates an object carries (workloads, and each replica of a PyTorchJob). */
export function podTemplates(obj: K8sObject): { where: string; template: IPodTemplateSpec }[] {
  const spec = obj.spec as Record<string, unknown> | undefined;
  if (!spec) return [];
  if (obj.kind === "PyTorchJob") {
    const replicas = (spec.pytorchReplicaSpecs ?? {}) as Record<string, { template?: IPodTemplateSpec }>;
    return Object.entries(replicas)
      .filter(([, r]) => r.template)
      .map(([role, r]) => ({ where: `spec.pytorchReplicaSpecs.${role}.template`, template: r.template as IPodTemplateSpec }));
  }
  const template = spec.template as IPodTemplateSpec | undefined;
  return template ? [{ where: "spec.template", template }] : [];
}

/** Every container of a pod spec, init containers (native sidecars included) first. */
export function containersOf(pod: PodSpec): { where: string; container: Container }[] {
  return [
    ...(pod.initContainers ?? []).map((c) => ({ where: `initContainers[${c.name}]`, container: c })),
    ...(pod.containers ?? []).map((c) => ({ where: `containers[${c.name}]`, container: c })),
  ];
}

function eachContainer(obj: K8sObject): { where: string; pod: PodSpec; container: Container }[] {
  return podTemplates(obj).flatMap(({ where, template }) =>
    template.spec ? containersOf(template.spec).map((c) => ({ where: `${objectName(obj)} ${where} ${c.where}`, pod: template.spec as PodSpec, container: c.container })) : [],
  );
}

/** Containers without cpu and memory requests and limits. */
export function resourceProblems(obj: K8sObject): string[] {
  const problems: string[] = [];
  for (const { where, container } of eachContainer(obj)) {
    for (const kind of ["limits", "requests"] as const) {
      for (const resource of ["cpu", "memory"]) {
        if (container.resources?.[kind]?.[resource] === undefined) problems.push(`${where}: no resources.${kind}.${resource}`);
      }
    }
  }
  return problems;
}

/**
 * Containers allowed to run as UID 0, with the reason (each must still drop every capability).
 * Key: `kind/namespace/name container`.
 */
export const rootAllowed: Record<string, string> = {
  "DaemonSet/powerprint/powerprint-agent powerprint": "RAPL energy_uj is readable by root only since CVE-2020-8694",
};

/** Capabilities a container may add back, with why (none today: every mode works without). */
export const capabilitiesAllowed: Record<string, string> = {};

/**
 * Containers without the security settings: allowPrivilegeEscalation false, readOnlyRootFilesystem
 * true, capabilities drop ALL (adds only from capabilitiesAllowed), not privileged, a RuntimeDefault
 * or Localhost seccomp profile, and runAsNonRoot (container or pod) unless in rootAllowed.
 */
export function securityProblems(obj: K8sObject): string[] {
  const problems: string[] = [];
  for (const { where, pod, container } of eachContainer(obj)) {
    const sc = container.securityContext ?? {};
    const podSc = pod.securityContext ?? {};
    if (sc.allowPrivilegeEscalation !== false) problems.push(`${where}: allowPrivilegeEscalation is not false`);
    if (sc.readOnlyRootFilesystem !== true) problems.push(`${where}: readOnlyRootFilesystem is not true`);
    if (sc.privileged === true) problems.push(`${where}: privileged`);
    if (!(sc.capabilities?.drop ?? []).includes("ALL")) problems.push(`${where}: capabilities.drop lacks ALL`);
    for (const cap of sc.capabilities?.add ?? []) {
      if (!(cap in capabilitiesAllowed)) problems.push(`${where}: capability ${cap} added without a reason in capabilitiesAllowed`);
    }
    const seccomp = (sc.seccompProfile ?? podSc.seccompProfile)?.type;
    if (seccomp !== "RuntimeDefault" && seccomp !== "Localhost") problems.push(`${where}: no RuntimeDefault/Localhost seccompProfile`);
    const nonRoot = sc.runAsNonRoot ?? podSc.runAsNonRoot;
    const key = `${objectName(obj)} ${container.name}`;
    if (nonRoot !== true && !(key in rootAllowed)) problems.push(`${where}: runAsNonRoot is not true`);
    if (key in rootAllowed && (sc.runAsUser ?? podSc.runAsUser) !== 0) problems.push(`${where}: allowed as root, but runAsUser 0 is not explicit`);
  }
  return problems;
}

/** Volume mounts naming a volume the pod does not declare, and declared volumes nobody mounts. */
export function volumeProblems(obj: K8sObject): string[] {
  const problems: string[] = [];
  for (const { where, template } of podTemplates(obj)) {
    const pod = template.spec;
    if (!pod) continue;
    const declared = new Set((pod.volumes ?? []).map((v) => v.name));
    const mounted = new Set<string>();
    for (const { where: cWhere, container } of containersOf(pod)) {
      for (const m of container.volumeMounts ?? []) {
        mounted.add(m.name);
        if (!declared.has(m.name)) problems.push(`${objectName(obj)} ${where} ${cWhere}: mounts volume '${m.name}', which is not declared`);
      }
    }
    for (const name of declared) if (!mounted.has(name)) problems.push(`${objectName(obj)} ${where}: volume '${name}' is declared but never mounted`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Selectors

interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

/** Whether a label selector selects these labels (Kubernetes semantics; an empty selector selects all). */
export function selects(selector: LabelSelector, labels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = e.key in labels;
    const inValues = has && (e.values ?? []).includes(labels[e.key]);
    if (e.operator === "In" && !inValues) return false;
    if (e.operator === "NotIn" && inValues) return false;
    if (e.operator === "Exists" && !has) return false;
    if (e.operator === "DoesNotExist" && has) return false;
  }
  return true;
}

/**
 * Selectors that miss: a workload's spec.selector and its own template's labels; a Service's
 * selector and the pod templates of its namespace (and its named targetPorts their container
 * ports); a ServiceMonitor's selector and the Services it may watch (and its endpoint ports).
 */
export function selectorProblems(objects: K8sObject[]): string[] {
  const problems: string[] = [];
  const templates = objects.flatMap((obj) => podTemplates(obj).map((t) => ({ obj, template: t.template })));
  for (const obj of objects) {
    const spec = (obj.spec ?? {}) as { selector?: unknown };
    if (["DaemonSet", "Deployment", "StatefulSet", "ReplicaSet"].includes(obj.kind) || (obj.kind === "Job" && spec.selector)) {
      const labels = podTemplates(obj)[0]?.template.metadata?.labels ?? {};
      const selector = spec.selector as LabelSelector | undefined;
      if (!selector || Object.keys(selector).length === 0) problems.push(`${objectName(obj)}: no spec.selector`);
      else if (!selects(selector, labels)) problems.push(`${objectName(obj)}: spec.selector does not match its template's labels`);
    }
    if (obj.kind === "Service") problems.push(...serviceProblems(obj, templates));
    if (obj.kind === "ServiceMonitor") problems.push(...serviceMonitorProblems(obj, objects));
  }
  return problems;
}

function serviceProblems(service: K8sObject, templates: { obj: K8sObject; template: IPodTemplateSpec }[]): string[] {
  const spec = service.spec as { selector?: Record<string, string>; ports?: { name?: string; targetPort?: number | string }[] };
  if (!spec.selector) return [];
  const ns = service.metadata?.namespace;
  const matched = templates.filter((t) => t.obj.metadata?.namespace === ns && selects({ matchLabels: spec.selector }, t.template.metadata?.labels ?? {}));
  if (matched.length === 0) return [`${objectName(service)}: selector matches no pod template in namespace ${ns}`];
  const problems: string[] = [];
  for (const port of spec.ports ?? []) {
    if (typeof port.targetPort !== "string") continue;
    const named = matched.some((t) => containersOf(t.template.spec ?? { containers: [] }).some((c) => (c.container.ports ?? []).some((p) => p.name === port.targetPort)));
    if (!named) problems.push(`${objectName(service)}: targetPort '${port.targetPort}' is no container port name of the selected pods`);
  }
  return problems;
}

function serviceMonitorProblems(monitor: K8sObject, objects: K8sObject[]): string[] {
  const spec = monitor.spec as { selector: LabelSelector; namespaceSelector?: { matchNames?: string[] }; endpoints?: { port?: string }[] };
  const namespaces = spec.namespaceSelector?.matchNames ?? [monitor.metadata?.namespace];
  const services = objects.filter((o) => o.kind === "Service" && namespaces.includes(o.metadata?.namespace) && selects(spec.selector, o.metadata?.labels ?? {}));
  if (services.length === 0) return [`${objectName(monitor)}: selector matches no Service`];
  const problems: string[] = [];
  for (const endpoint of spec.endpoints ?? []) {
    const ok = services.some((s) => ((s.spec as { ports?: { name?: string }[] }).ports ?? []).some((p) => p.name === endpoint.port));
    if (!ok) problems.push(`${objectName(monitor)}: endpoint port '${endpoint.port}' is no port name of the selected Services`);
  }
  return problems;
}
