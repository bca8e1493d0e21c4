/**
 * Where the cgroup hierarchies are mounted, from `/proc/self/mountinfo` (proc(5)), and what a
 * container's own mountinfo says about it (pod mode: which container and pod am I in).
 *
 * Line format: `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS`;
 * ROOT and MOUNTPOINT escape space, tab, newline and backslash as octal (`\040`).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseCgroupPath, type CgroupIdentity } from "./path.js";

/** One mountinfo line. */
export interface MountInfoEntry {
  mountId: number;
  parentId: number;
  /** Path inside the mounted filesystem that is the mount's root ("/" for a whole filesystem). */
  root: string;
  mountPoint: string;
  fsType: string;
  source: string;
  /** Per-superblock options; for a v1 cgroup mount, the controllers (e.g. "cpu", "cpuacct", "name=systemd"). */
  superOptions: string[];
}

/** The hierarchies found. Mount points are as the reading process sees them. */
export interface CgroupMounts {
  /** The cgroup2 (unified) mount, when there is one. */
  v2?: { mountPoint: string; root: string };
  /** v1 mounts by controller ("cpuacct", "memory", "name=systemd", ...). */
  v1: Map<string, { mountPoint: string; root: string }>;
}

const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/** `path` (as /proc/PID/cgroup shows it) relative to a mount whose root is `mountRoot`. */
export function relativeTo(mountRoot: string, path: string): string {
  if (mountRoot === "/" || mountRoot === "") return path;
  return path.startsWith(mountRoot) ? path.slice(mountRoot.length) || "/" : path;
}

/** Parses mountinfo text; malformed lines are skipped (upstream captures carry stray quotes). Never throws. */
export function parseMountinfo(text: string): MountInfoEntry[] {
  const out: MountInfoEntry[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim().replace(/"$/, "");
    if (line === "") continue;
    const fields = line.split(" ");
    const dash = fields.indexOf("-", 6);
    if (fields.length < 10 || dash < 0 || dash + 3 > fields.length) continue;
    const mountId = Number(fields[0]);
    const parentId = Number(fields[1]);
    if (!Number.isInteger(mountId) || !Number.isInteger(parentId)) continue;
    out.push({
      mountId,
      parentId,
      root: unescape(fields[3]),
      mountPoint: unescape(fields[4]),
      fsType: fields[dash + 1],
      source: fields[dash + 2],
      superOptions: (fields[dash + 3] ?? "").split(","),
    });
  }
  return out;
}

/** Cgroup mounts from mountinfo text. The last mount of a kind wins (a later mount hides an earlier one). */
export function findCgroupMounts(text: string): CgroupMounts {
  const out: CgroupMounts = { v1: new Map() };
  for (const e of parseMountinfo(text)) {
    if (e.fsType === "cgroup2") out.v2 = { mountPoint: e.mountPoint, root: e.root };
    else if (e.fsType === "cgroup") {
      for (const opt of e.superOptions) {
        if (opt === "rw" || opt === "ro" || opt === "xattr" || opt.startsWith("release_agent=")) continue;
        out.v1.set(opt, { mountPoint: e.mountPoint, root: e.root });
      }
    }
  }
  return out;
}

/**
 * Cgroup mounts from `<procRoot>/proc/<pid>/mountinfo` (pid default "self"; a DaemonSet reading
 * the host's /proc at /host/proc passes pid 1, the host's init, to see the host's mounts). With
 * `sysRoot` (the host's /sys mounted elsewhere, e.g. "/host/sys"), mount points under /sys are
 * rebased on it. Empty when unreadable.
 */
export function readCgroupMounts(opts: { procRoot?: string; sysRoot?: string; pid?: number | "self" } = {}): CgroupMounts {
  let text: string;
  try {
    text = readFileSync(join(opts.procRoot ?? "/", "proc", String(opts.pid ?? "self"), "mountinfo"), "utf8");
  } catch {
    return { v1: new Map() };
  }
  const mounts = findCgroupMounts(text);
  const sysRoot = opts.sysRoot;
  if (!sysRoot || sysRoot === "/" || sysRoot === "/sys") return mounts;
  const rebase = (p: string): string => (p === "/sys" || p.startsWith("/sys/") ? join(sysRoot, p.slice(4)) : p);
  if (mounts.v2) mounts.v2 = { ...mounts.v2, mountPoint: rebase(mounts.v2.mountPoint) };
  for (const [k, v] of mounts.v1) mounts.v1.set(k, { ...v, mountPoint: rebase(v.mountPoint) });
  return mounts;
}

const FILES_FROM_RUNTIME = new Set(["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"]);
const DOCKER_CONTAINER_DIR = /[/-]containers\/([0-9a-f]{64})\//;
const KUBELET_POD_DIR = /\/pods\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\//;

/**
 * Which container and pod a process is in, from its own mountinfo (cgroup v2 hides the path: the
 * process's /proc/self/cgroup reads "0::/"). In order: the root of a cgroup mount (the container's
 * cgroup, bind-mounted by the runtime); else, outside Kubernetes only, the directory the runtime
 * mounted /etc/hostname from (Docker `containers/<id>/`, Podman/CRI-O `overlay-containers/<id>/`).
 * In a pod that directory is the pod sandbox's (`sandboxes/<id>`, or the pause container's under
 * Docker), not the container's, so it is not used. The pod UID comes from the cgroup root or from
 * the kubelet's `pods/<uid>/` directory behind /etc/hosts and the termination log.
 */
export function identityFromMountinfo(text: string): CgroupIdentity {
  const entries = parseMountinfo(text);
  let fromCgroup: CgroupIdentity = {};
  for (const e of entries) {
    if ((e.fsType === "cgroup" || e.fsType === "cgroup2") && e.root !== "/") {
      const id = parseCgroupPath(e.root);
      if (id.containerId !== undefined) {
        fromCgroup = id;
        break;
      }
      if (id.podUid !== undefined && fromCgroup.podUid === undefined) fromCgroup = id;
    }
  }
  const out: CgroupIdentity = { ...fromCgroup };
  if (out.podUid === undefined) {
    for (const e of entries) {
      const m = KUBELET_POD_DIR.exec(e.root + "/");
      if (m) {
        out.podUid = m[1];
        break;
      }
    }
  }
  if (out.containerId === undefined && out.podUid === undefined) {
    for (const e of entries) {
      if (!FILES_FROM_RUNTIME.has(e.mountPoint) || e.root.includes("/sandboxes/")) continue;
      const m = DOCKER_CONTAINER_DIR.exec(e.root);
      if (m) {
        out.containerId = m[1];
        // containers/storage (Podman and CRI-O share it) does not say which runtime.
        if (!e.root.includes("overlay-containers/")) out.runtime = "docker";
        break;
      }
    }
  }
  return out;
}
