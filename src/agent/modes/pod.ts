/**
 * Pod mode (`agent --mode pod`): the sidecar of a pod with shareProcessNamespace. The pod is one
 * job (named from the downward API); its processes are those of the pod's PID namespace but the
 * agent and PID 1; the GPUs counted are those the training container sees; its training-loop
 * marks come from a shared file.
 */
import { existsSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { UsageError } from "../../errors.js";
import { readDownwardApi } from "../../k8s/downward.js";
import { listPids } from "../../procfs/reader.js";
import { PodGpuFilter, VISIBLE_DEVICE_VARIABLES } from "../gpu-filter.js";
import { PodJobSource, podJobIdentity } from "../pod-source.js";
import { checkPodNamespace, podNamespace, runsInPod } from "../pod-sandbox.js";
import { boundJob } from "../../core/bounds.js";
import type { AgentMode, ModeContext, ModeProbe } from "./registry.js";

/** Pod mode's validated flags. */
export interface PodModeConfig {
  podinfoDir: string;
  /** The marks file (resolved), if given. */
  marks?: string;
  /** --pod-init: another name of the pod's sandbox process (PID 1), besides pause and catatonit. */
  podInit?: string;
}

/** Pod-sandbox names accepted for `c`'s PID 1. */
const accepted = (c: PodModeConfig): string[] => (c.podInit !== undefined ? [c.podInit] : []);

function probePod(c: PodModeConfig, ctx: ModeContext): ModeProbe {
  const findings: string[] = [];
  const pids = listPids(ctx.procRoot);
  const others = pids.filter((p) => p !== 1 && p !== process.pid);
  // The rule `agent --mode pod` applies at start (src/agent/pod-sandbox.ts).
  const ns = podNamespace(ctx.procRoot, { accept: accepted(c) });
  const shared = ns.status === "pod";
  findings.push(
    ns.status === "pod"
      ? `PID 1 is ${ns.init} (a pod sandbox: shareProcessNamespace is on); ${others.length} other process(es) visible`
      : ns.status === "not-pod"
        ? `pod mode would count the wrong processes (refused outside a pod, warned inside one): ${ns.reason}`
        : `${ns.reason}; ${others.length} other process(es) visible`,
  );
  const info = readDownwardApi(c.podinfoDir);
  const present = (["name", "namespace", "uid", "nodeName"] as const).filter((k) => info[k] !== undefined);
  findings.push(
    present.length > 0
      ? `downward API in ${c.podinfoDir}: ${present.map((k) => `${k}=${info[k]}`).join(", ")}; ${Object.keys(info.labels).length} label(s)`
      : `no downward API files in ${c.podinfoDir}: the pod would be named by the hostname`,
  );
  return { mode: "pod", usable: ns.status !== "not-pod" && (shared || present.length > 0), findings };
}

export const podMode: AgentMode<PodModeConfig> = {
  name: "pod",
  summary: "sidecar with shareProcessNamespace",
  flags: [
    { flags: "--podinfo-dir <dir>", description: "pod mode: the downward API volume (files name, namespace, uid, labels)", default: "/etc/podinfo", probe: true },
    {
      flags: "--marks <file>",
      description: "pod mode: training-loop marks file the training container appends to (its POWERPRINT_MARKS, on a shared emptyDir)",
      exclusive: "run sets POWERPRINT_MARKS itself",
    },
    {
      flags: "--pod-init <name>",
      description:
        "pod mode: the name of the pod's PID 1 when its sandbox is not pause or catatonit (where PID 1 is no sandbox, pod mode refuses to start outside a pod and warns inside one: docs/kubernetes.md)",
      probe: true,
      exclusive: true,
    },
  ],
  parse(flags, ctx) {
    const podinfoDir = String(flags.podinfoDir ?? "/etc/podinfo");
    // An explicit --podinfo-dir must be a directory; the default may be absent (said at start).
    if (ctx.realJobs && !ctx.isDefault("podinfoDir") && !(existsSync(podinfoDir) && statSync(podinfoDir).isDirectory())) {
      throw new UsageError("--podinfo-dir", `${podinfoDir} is not a directory (mount the downward API volume there, or leave the flag out)`);
    }
    const podInit = typeof flags.podInit === "string" ? flags.podInit.trim() : undefined;
    if (podInit === "") throw new UsageError("--pod-init", "must name a process (its /proc/1/comm, e.g. pause)");
    return { podinfoDir, ...(typeof flags.marks === "string" && { marks: resolve(flags.marks) }), ...(podInit !== undefined && { podInit }) };
  },
  precheck(c, ctx) {
    // Where PID 1 is no pod sandbox: refused outside a pod (exit 2), said loudly inside one (create()).
    const inPod = runsInPod({ downwardApiName: readDownwardApi(c.podinfoDir).name, kubernetesServiceHost: ctx.env.KUBERNETES_SERVICE_HOST });
    checkPodNamespace(ctx.procRoot, { accept: accepted(c), inPod });
  },
  create(c, ctx) {
    const info = readDownwardApi(c.podinfoDir);
    for (const file of info.cut ?? []) ctx.log.warn(`pod mode: ${file} is larger than 1 MiB: read up to 1 MiB, a label cut there is left out`);
    if (!info.name) ctx.log.warnOnce("pod:no-downward-api", `pod mode: no downward API files in ${c.podinfoDir} (name, namespace, uid, labels): the pod is named by the hostname`);
    // Past precheck(): a PID 1 that is no sandbox here means a pod, where exiting would fail it (and the job).
    const ns = podNamespace(ctx.procRoot, { accept: accepted(c) });
    if (ns.status === "not-pod") ctx.log.warn(`pod mode: this job's figures are not the pod's (running on: a sidecar that exits fails its pod): ${ns.reason}`);
    if (ns.status === "unknown") ctx.log.warn(`pod mode: ${ns.reason}: cannot check that this is a pod's shared PID namespace`);
    let job = podJobIdentity(info, ctx.hostName);
    if (ctx.identity.jobId?.trim()) job.id = ctx.identity.jobId.trim();
    if (ctx.identity.jobName?.trim()) job.name = ctx.identity.jobName.trim();
    job = boundJob(job);
    ctx.log.info(`pod mode: job ${job.id} (${Object.entries(job.attributes).map(([k, v]) => `${k}=${v}`).join(", ")})`);
    const source = new PodJobSource({ procRoot: ctx.procRoot, job });
    // Shared GPUs: the pod's processes holding a GPU's /dev/nvidia<minor> are counted against NVML's list.
    const view = { procRoot: ctx.procRoot, devRoot: ctx.devRoot, podPids: () => source.memberPids() };
    return {
      source,
      jobId: job.id,
      collectors: (collectors) => collectors.map((col) => new PodGpuFilter(col, () => source.trainingEnvironmentAsync(VISIBLE_DEVICE_VARIABLES), ctx.log, view)),
      ...(c.marks !== undefined && { marks: { path: c.marks, jobId: job.id } }),
    };
  },
  probe: probePod,
};
