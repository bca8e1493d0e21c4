// Test helper: kubelet-shaped cgroup trees on this machine's real hierarchies (cgroup2 and v1
// cpuacct), under a unique top directory per test process, removed afterwards (members killed).
import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export type Driver = "systemd" | "cgroupfs";
export type Qos = "guaranteed" | "burstable" | "besteffort";

export interface PodSpec {
  uid: string;
  qos: Qos;
  /** Container ids (64 hex). */
  containers: string[];
}

/** Relative path of a pod's cgroup and of each of its containers', as the kubelet names them. */
export function podPaths(driver: Driver, pod: PodSpec): { pod: string; containers: string[] } {
  if (driver === "systemd") {
    const u = pod.uid.replace(/-/g, "_");
    const podDir =
      pod.qos === "guaranteed"
        ? `kubepods.slice/kubepods-pod${u}.slice`
        : `kubepods.slice/kubepods-${pod.qos}.slice/kubepods-${pod.qos}-pod${u}.slice`;
    return { pod: podDir, containers: pod.containers.map((id) => `${podDir}/cri-containerd-${id}.scope`) };
  }
  const podDir = pod.qos === "guaranteed" ? `kubepods/pod${pod.uid}` : `kubepods/${pod.qos}/pod${pod.uid}`;
  return { pod: podDir, containers: pod.containers.map((id) => `${podDir}/${id}`) };
}

/** Creates every directory of the layout under `top` (made first). */
export function makeLayout(top: string, driver: Driver, pods: PodSpec[]): void {
  mkdirSync(top, { recursive: true });
  for (const p of pods) for (const c of podPaths(driver, p).containers) mkdirSync(join(top, c), { recursive: true });
}

/** Moves a PID into a cgroup directory. (Writing 0 would move the writer itself: refused.) */
export function movePid(dir: string, pid: number): void {
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`movePid: not a PID: ${pid}`);
  writeFileSync(join(dir, "cgroup.procs"), String(pid));
}

const childDirs = (dir: string): string[] => {
  try {
    return readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => join(dir, d.name));
  } catch {
    return [];
  }
};

const procsOf = (dir: string): number[] => {
  try {
    return readFileSync(join(dir, "cgroup.procs"), "utf8").split("\n").filter(Boolean).map(Number);
  } catch {
    return [];
  }
};

/** Kills every member of every cgroup below (and at) `top`, then removes the tree bottom-up. */
export async function removeTree(top: string): Promise<void> {
  if (!existsSync(top)) return;
  const all: string[] = [];
  const walk = (d: string): void => {
    for (const c of childDirs(d)) walk(c);
    all.push(d);
  };
  walk(top);
  const deadline = Date.now() + 10_000;
  for (;;) {
    // Never this process (were it moved in by mistake, killing it would leave the tree behind).
    const pids = all.flatMap(procsOf).filter((p) => p !== process.pid && p > 0);
    if (pids.length === 0 || Date.now() > deadline) break;
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone
      }
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  for (const d of all) {
    for (let i = 0; ; i++) {
      try {
        rmdirSync(d);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT" || i > 100) break;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }
}
