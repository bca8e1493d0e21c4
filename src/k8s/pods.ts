/**
 * Pod metadata as the agent needs it, and the validation of a Kubernetes PodList (kubelet `/pods`
 * or API server `/api/v1/pods`). Real responses carry null entries, empty objects, Pending pods
 * without containerStatuses, terminated short-lived pods, `docker://` and `containerd://` ids: a
 * bad entry is skipped and counted, never fatal.
 */
import { z } from "zod";
import { boundAttributes, boundText, MAX_ATTRIBUTE_VALUE_CHARS } from "../core/bounds.js";

/** Containers kept per pod (init containers first): more than any real pod has. */
const MAX_CONTAINERS = 64;

/** One container of a pod. */
export interface PodContainer {
  name: string;
  /** Container id without its runtime scheme ("docker://", "containerd://", "cri-o://"). */
  id?: string;
  /** The scheme: "docker", "containerd", "cri-o". */
  runtime?: string;
  /** "running" | "terminated" | "waiting", from the container's state. */
  state?: string;
  init?: boolean;
}

/** What the agent keeps of one pod. */
export interface PodMetadata {
  uid: string;
  name: string;
  namespace: string;
  labels: Readonly<Record<string, string>>;
  nodeName?: string;
  /** Pending, Running, Succeeded, Failed, Unknown. */
  phase?: string;
  /** The pod's `powerprint.io/work-from` annotation (its server's metrics endpoint, docs/serving.md), at most 512 characters. */
  workFrom?: string;
  /** status.podIP, for a work-from annotation that names only a port (kept for annotated pods only). */
  podIp?: string;
  containers: PodContainer[];
}

/** The annotation a pod names its inference server's metrics endpoint with (node mode, docs/serving.md). */
export const WORK_FROM_ANNOTATION = "powerprint.io/work-from";

/** Looks pods up by UID (the cgroup tree names pods by UID). */
export interface PodMetadataLookup {
  byUid(uid: string): PodMetadata | undefined;
}

const stateSchema = z
  .object({ running: z.unknown().optional(), terminated: z.unknown().optional(), waiting: z.unknown().optional() })
  .partial()
  .nullish();
const containerStatusSchema = z.object({
  name: z.string(),
  containerID: z.string().nullish(),
  state: stateSchema,
});
const podSchema = z.object({
  metadata: z.object({
    uid: z.string().min(1),
    name: z.string().min(1),
    namespace: z.string().nullish(),
    labels: z.record(z.string(), z.string()).nullish(),
    annotations: z.record(z.string(), z.string()).nullish(),
  }),
  spec: z.object({ nodeName: z.string().nullish() }).partial().nullish(),
  status: z
    .object({
      phase: z.string().nullish(),
      podIP: z.string().nullish(),
      containerStatuses: z.array(containerStatusSchema).nullish(),
      initContainerStatuses: z.array(containerStatusSchema).nullish(),
    })
    .partial()
    .nullish(),
});
// `items` must be there (Go writes an empty list as null); a Status object (an error body) is not a PodList.
const podListSchema = z.object({ kind: z.literal("PodList").optional(), items: z.array(z.unknown()).nullable() });

/** Splits "containerd://<id>" into runtime and id. */
export function parseContainerId(value: string): { runtime?: string; id: string } {
  const m = /^([a-z0-9-]+):\/\/(.+)$/.exec(value);
  return m ? { runtime: m[1], id: m[2] } : { id: value };
}

function containersOf(list: z.infer<typeof containerStatusSchema>[] | null | undefined, init: boolean): PodContainer[] {
  return (list ?? []).map((c) => {
    const out: PodContainer = { name: c.name };
    if (c.containerID) Object.assign(out, parseContainerId(c.containerID));
    const s = c.state;
    if (s) out.state = s.running ? "running" : s.terminated ? "terminated" : s.waiting ? "waiting" : undefined;
    if (out.state === undefined) delete out.state;
    if (init) out.init = true;
    return out;
  });
}

/** Result of parsing a PodList body. */
export type PodListParse = { status: "ok"; pods: PodMetadata[]; skipped: number } | { status: "error"; reason: string };

/** Validates a parsed PodList JSON body. Bad entries are skipped (counted in `skipped`). */
export function parsePodList(body: unknown): PodListParse {
  const list = podListSchema.safeParse(body);
  if (!list.success) return { status: "error", reason: "not a PodList (no items array)" };
  const pods: PodMetadata[] = [];
  let skipped = 0;
  for (const item of list.data.items ?? []) {
    const p = podSchema.safeParse(item);
    if (!p.success) {
      skipped++;
      continue;
    }
    const { metadata, spec, status } = p.data;
    // Bounded on the way in (src/core/bounds.ts): a hostile or broken list never puts a megabyte
    // label into a job id, an attribute or the state file.
    const pod: PodMetadata = {
      uid: boundText(metadata.uid, MAX_ATTRIBUTE_VALUE_CHARS),
      name: boundText(metadata.name, MAX_ATTRIBUTE_VALUE_CHARS),
      namespace: boundText(metadata.namespace ?? "default", MAX_ATTRIBUTE_VALUE_CHARS),
      labels: boundAttributes(metadata.labels ?? {}),
      containers: [...containersOf(status?.initContainerStatuses, true), ...containersOf(status?.containerStatuses, false)].slice(0, MAX_CONTAINERS),
    };
    if (spec?.nodeName) pod.nodeName = boundText(spec.nodeName, MAX_ATTRIBUTE_VALUE_CHARS);
    if (status?.phase) pod.phase = status.phase;
    const workFrom = metadata.annotations?.[WORK_FROM_ANNOTATION];
    if (workFrom !== undefined && workFrom.length <= 512) {
      pod.workFrom = workFrom;
      // Only needed to resolve the annotation: kept for those pods only.
      if (status?.podIP && status.podIP.length <= 64) pod.podIp = status.podIP;
    }
    pods.push(pod);
  }
  return { status: "ok", pods, skipped };
}
