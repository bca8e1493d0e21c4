/**
 * Pod mode's precondition: the PID namespace it reads is a pod's, shared by its containers
 * (`shareProcessNamespace: true`), whose PID 1 is the pod's sandbox process (Kubernetes' pause
 * container; catatonit in a Podman pod). Pod mode counts every process of the namespace but PID 1
 * and the agent as the pod's job, so anywhere else it is wrong without a sound:
 *
 * - in the host's PID namespace (a bare host, `hostPID: true`, `docker run --pid=host`), PID 1 is
 *   systemd or another init and every process of the host would be counted as the pod;
 * - in a pod without a shared namespace, PID 1 is the agent (or its container's init) and the
 *   training container's processes are not visible at all.
 *
 * Outside Kubernetes (no downward API files, no KUBERNETES_SERVICE_HOST: a host, a plain
 * container) pod mode refuses to start there: exit 2, one line naming PID 1 and the fix (a node
 * agent, a selector). Inside a pod it warns instead, once at start and in the report, and runs on:
 * a sidecar that exits fails its pod (restartPolicy: Never), which would fail or retry the very
 * training job it is there to measure, and runtime trouble must never harm the job.
 * `--pod-init NAME` accepts another sandbox process's name.
 */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { UsageError } from "../errors.js";

/** PID 1's names (comm) of a pod sandbox: Kubernetes' pause (containerd, CRI-O), Podman's catatonit. */
export const POD_SANDBOX_NAMES: readonly string[] = ["pause", "catatonit"];

/** What PID 1 of `procRoot` tells about pod mode. */
export type PodNamespace =
  | { status: "pod"; init: string }
  | { status: "not-pod"; init: string; reason: string }
  | { status: "unknown"; reason: string };

/**
 * Reads PID 1's name under `procRoot`/proc and says whether it is a pod's sandbox. `selfPid`:
 * this process's PID as `procRoot` shows it (the agent being PID 1 is the unshared-sidecar case).
 */
export function podNamespace(procRoot: string, o: { accept?: readonly string[]; selfPid?: number } = {}): PodNamespace {
  let init: string;
  try {
    init = readFileSync(join(procRoot, "proc", "1", "comm"), "utf8").trim();
  } catch (err) {
    return { status: "unknown", reason: `cannot read PID 1's name (${(err as NodeJS.ErrnoException).code ?? "error"})` };
  }
  const accepted = [...POD_SANDBOX_NAMES, ...(o.accept ?? [])];
  if (accepted.includes(init)) return { status: "pod", init };
  const selfPid = o.selfPid ?? (resolve(procRoot) === "/" ? process.pid : undefined);
  if (selfPid === 1) {
    return {
      status: "not-pod",
      init,
      reason: "powerprint is PID 1 itself: its container does not share the pod's PID namespace, so the training container's processes are not visible (set shareProcessNamespace: true in the pod spec)",
    };
  }
  return {
    status: "not-pod",
    init,
    reason:
      `PID 1 is '${init}', not a pod's sandbox (${accepted.join(", ")}): on a host every process would be counted as the pod, ` +
      "in a pod without shareProcessNamespace: true the training container is not visible. In a pod set shareProcessNamespace: true; " +
      "on a node use --mode node (pods by cgroup) or --mode selector --match-cmdline REGEX; --pod-init NAME accepts another sandbox",
  };
}

/**
 * Pod mode's check at start. Where PID 1 is no pod sandbox: outside a pod (`inPod` false) throws
 * UsageError("--mode"); inside one returns the finding for the caller to warn about. `unknown`
 * (hidepid or a restricted /proc: nothing to tell from) is returned for the caller to say once.
 */
export function checkPodNamespace(procRoot: string, o: { accept?: readonly string[]; selfPid?: number; inPod: boolean }): PodNamespace {
  const ns = podNamespace(procRoot, o);
  if (ns.status === "not-pod" && !o.inPod) throw new UsageError("--mode", `pod: ${ns.reason}`);
  return ns;
}

/** Whether this process runs in a Kubernetes pod: its downward API files, or the variables every pod container gets. */
export function runsInPod(o: { downwardApiName?: string; kubernetesServiceHost?: string }): boolean {
  return o.downwardApiName !== undefined || (o.kubernetesServiceHost ?? "").trim() !== "";
}
