/**
 * Pure parsers of cgroup membership: `/proc/PID/cgroup` lines (v1 `ID:controllers:path`, v2
 * `0::path`, hybrid files holding both) and cgroup paths, to the container and pod they name.
 *
 * Shapes recognised (real samples: test/fixtures/cgroup):
 * - Kubernetes, systemd driver: `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid
 *   with _>.slice/cri-containerd-<id>.scope` (also `crio-`, `docker-`), nested (`kubelet.slice/
 *   kubelet-kubepods.slice/...` in kind), and containerd ≥1.5's `...-pod<uid>.slice:cri-containerd:<id>`;
 * - Kubernetes, cgroupfs driver: `kubepods/burstable/pod<uid>/<id>` (guaranteed pods sit directly
 *   under `kubepods`);
 * - Docker (`/docker/<id>`, `docker-<id>.scope`), Podman (`libpod-<id>.scope[/container]`,
 *   `libpod-payload-<id>`), CRI-O (`crio-<id>.scope`), containerd (`/containerd/<id>`), ECS
 *   (`/ecs/<task>/<id>`, Fargate `<32hex>-<n>`), Cloud Foundry garden (`8-4-4-4-4` hex).
 * A UUID is taken as a container id only when it is a whole path segment (`/uuid/<uuid>`): systemd
 * scopes such as `tmux-spawn-<uuid>.scope` or `vte-spawn-<uuid>.scope` are not containers.
 */

/** cgroup hierarchy version of a /proc/PID/cgroup line: "0::" is the v2 unified hierarchy. */
export type CgroupVersion = 1 | 2;

/** One line of /proc/PID/cgroup. */
export interface ProcCgroupLine {
  /** Hierarchy id (0 for the v2 unified hierarchy). undefined for a bare path (no `ID:controllers:` prefix). */
  hierarchyId?: number;
  /** Controllers bound to the hierarchy (v1), e.g. ["cpu", "cpuacct"] or ["name=systemd"]; [] on v2. */
  controllers: string[];
  /** Path relative to the hierarchy's root, e.g. "/kubepods/burstable/pod.../<id>". */
  path: string;
  /** 2 for "0::", 1 for a v1 line, undefined for a bare path. */
  version?: CgroupVersion;
}

/** Container runtime that named the cgroup, when the name says so. */
export type ContainerRuntime = "containerd" | "cri-o" | "docker" | "podman" | "ecs" | "garden";
/** Kubernetes cgroup driver: systemd (`.slice`/`.scope` units) or cgroupfs (plain directories). */
export type CgroupDriver = "systemd" | "cgroupfs";
/** Kubernetes pod QoS class, from the `burstable`/`besteffort` level (guaranteed: no level). */
export type QosClass = "guaranteed" | "burstable" | "besteffort";

/** What a cgroup path names. Every field is absent when the path does not say. */
export interface CgroupIdentity {
  containerId?: string;
  /** Pod UID in its canonical dashed form (systemd escapes `-` as `_`; this undoes it). */
  podUid?: string;
  qosClass?: QosClass;
  runtime?: ContainerRuntime;
  /** Only set for Kubernetes pod paths. */
  driver?: CgroupDriver;
}

const LINE_RE = /^(\d+):([^:]*):(.*)$/;
const UUID = "[0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12}";
/** Pod segment: `pod<uid>` alone (cgroupfs) or after a dash (systemd slice), uid a UUID or a static pod's 32-hex hash. */
const POD_RE = new RegExp(`(?:^|-)pod(${UUID}|[0-9a-f]{32})(?:\\.slice)?$`);
const BARE_UUID_RE = new RegExp(`^${UUID}$`);
const HEX_PREFIXED_RE = /^[0-9a-f]{8,}$/;
const HEX_BARE_RE = /^[0-9a-f]{32,}$/;
const ECS_TASK_RE = /^[0-9a-f]{32}-\d+$/;
const GARDEN_RE = /^[0-9a-f]{8}(?:-[0-9a-f]{4}){4}$/;

/** Runtime prefixes of a container's cgroup name, longest first. */
const PREFIXES: readonly (readonly [string, ContainerRuntime])[] = [
  ["cri-containerd-", "containerd"],
  ["libpod-payload-", "podman"],
  ["containerd-", "containerd"],
  ["libpod-", "podman"],
  ["docker-", "docker"],
  ["crio-", "cri-o"],
  ["cri-o-", "cri-o"],
];

/** Runtime named by a directory above the id (`/docker/<id>`, `/ecs/...`). */
const PARENT_RUNTIME: Record<string, ContainerRuntime> = {
  docker: "docker",
  containerd: "containerd",
  ecs: "ecs",
  garden: "garden",
  libpod_parent: "podman",
};

/**
 * Parses /proc/PID/cgroup text. Lines are trimmed; a line without the `ID:controllers:` prefix is
 * kept as a bare path (some callers hand over paths); empty lines are dropped. Never throws.
 */
export function parseProcCgroup(text: string): ProcCgroupLine[] {
  const out: ProcCgroupLine[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "") continue;
    const m = LINE_RE.exec(line);
    if (!m) {
      out.push({ controllers: [], path: line });
      continue;
    }
    const hierarchyId = Number(m[1]);
    const controllers = m[2] === "" ? [] : m[2].split(",");
    out.push({ hierarchyId, controllers, path: m[3], version: hierarchyId === 0 && controllers.length === 0 ? 2 : 1 });
  }
  return out;
}

/** Pod UID in canonical form: systemd slice names escape "-" as "_". */
export function normalizePodUid(uid: string): string {
  return uid.replace(/_/g, "-");
}

/** The container id a single path segment names, with the runtime its prefix says. */
function containerOfSegment(segment: string): { id: string; runtime?: ContainerRuntime } | undefined {
  // containerd ≥1.5 with the systemd driver: "<pod slice>:cri-containerd:<id>" in one segment.
  const parts = segment.split(":");
  let last = parts[parts.length - 1];
  let runtime: ContainerRuntime | undefined;
  if (parts.length >= 3) runtime = runtimeOfPrefix(parts[parts.length - 2] + "-");
  const dot = last.indexOf(".");
  if (dot > 0) last = last.slice(0, dot); // ".scope", ".extra": unit suffixes, never part of an id
  for (const [prefix, rt] of PREFIXES) {
    if (last.startsWith(prefix)) {
      const rest = last.slice(prefix.length);
      return HEX_PREFIXED_RE.test(rest) ? { id: rest, runtime: rt } : undefined;
    }
  }
  // The colon form names its runtime, so a short id is as trustworthy as a prefixed one.
  if (runtime && HEX_PREFIXED_RE.test(last)) return { id: last, runtime };
  if (HEX_BARE_RE.test(last) || ECS_TASK_RE.test(last) || BARE_UUID_RE.test(last) || GARDEN_RE.test(last)) {
    return { id: last, runtime };
  }
  return undefined;
}

function runtimeOfPrefix(prefix: string): ContainerRuntime | undefined {
  for (const [p, rt] of PREFIXES) if (p === prefix) return rt;
  return undefined;
}

/** QoS class named by the segments above a pod segment, or by the pod segment's own slice name. */
function qosOf(segments: readonly string[], podIndex: number): QosClass {
  const pod = segments[podIndex];
  if (/-burstable-pod/.test(pod)) return "burstable";
  if (/-besteffort-pod/.test(pod)) return "besteffort";
  const above = podIndex > 0 ? segments[podIndex - 1] : "";
  if (above === "burstable" || above.endsWith("-burstable.slice")) return "burstable";
  if (above === "besteffort" || above.endsWith("-besteffort.slice")) return "besteffort";
  return "guaranteed";
}

/**
 * What one cgroup path names. The container is the innermost segment that is a container id
 * (nested runtimes: kind nodes inside Docker name the inner one); scanning stops at a pod segment,
 * so a pod-level cgroup has a pod UID and no container. Pure; never throws.
 */
export function parseCgroupPath(path: string): CgroupIdentity {
  const segments = path.split("/").filter((s) => s !== "");
  const out: CgroupIdentity = {};
  let podIndex = -1;
  for (let i = segments.length - 1; i >= 0; i--) {
    const seg = segments[i];
    const podMatch = POD_RE.exec(seg.split(":")[0]);
    if (podMatch) {
      out.podUid = normalizePodUid(podMatch[1]);
      podIndex = i;
      // "pod slice:cri-containerd:<id>" holds the container in the same segment.
      if (out.containerId === undefined && seg.includes(":")) {
        const c = containerOfSegment(seg);
        if (c) {
          out.containerId = c.id;
          if (c.runtime) out.runtime = c.runtime;
        }
      }
      break;
    }
    if (out.containerId !== undefined) continue;
    const c = containerOfSegment(seg);
    if (c) {
      out.containerId = c.id;
      const runtime = c.runtime ?? (i > 0 ? PARENT_RUNTIME[segments[i - 1]] ?? PARENT_RUNTIME[segments[0]] : undefined);
      if (runtime) out.runtime = runtime;
    }
  }
  if (podIndex >= 0) {
    out.qosClass = qosOf(segments, podIndex);
    out.driver = segments[podIndex].endsWith(".slice") || segments[podIndex].includes(".slice:") ? "systemd" : "cgroupfs";
  }
  return out;
}

/**
 * What a whole /proc/PID/cgroup file names. A line naming a pod wins (a process in a pod may also
 * sit in unrelated cgroups of other hierarchies, e.g. a sandbox's memory cgroup named by a hash),
 * then the first line naming a container (hybrid files often have "0::/" next to v1 lines that
 * carry the path). Junk lines are ignored.
 */
export function identityFromProcCgroup(text: string): CgroupIdentity {
  let container: CgroupIdentity | undefined;
  let podOnly: CgroupIdentity | undefined;
  for (const line of parseProcCgroup(text)) {
    const id = parseCgroupPath(line.path);
    if (id.podUid !== undefined && id.containerId !== undefined) return id;
    if (id.podUid !== undefined) podOnly ??= id;
    else if (id.containerId !== undefined) container ??= id;
  }
  return podOnly ?? container ?? {};
}
