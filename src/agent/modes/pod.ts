/**
 * Pod mode (`agent --mode pod`): the sidecar of a pod with shareProcessNamespace. The pod is one
 * job (named from the downward API); its processes are those of the pod's PID namespace but the
 * agent and PID 1; the GPUs counted are those the training container sees; its training-loop
 * marks come from a shared file.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { UsageError } from "../../errors.js";
import { readDownwardApi } from "../../k8s/downward.js";
import { listPids } from "../../procfs/reader.js";
import { PodGpuFilter, VISIBLE_DEVICE_VARIABLES } from "../gpu-filter.js";
import { PodJobSource, podJobIdentity } from "../pod-source.js";
import { boundJob } from "../../core/bounds.js";
import type { AgentMode, ModeContext, ModeProbe } from "./registry.js";

/** Pod mode's validated flags. */
export interface PodModeConfig {
  podinfoDir: string;
  /** The marks file (resolved), if given. */
  marks?: string;
}

function comm(procRoot: string, pid: number): string | undefined {
  try {
    return readFileSync(join(procRoot, "proc", String(pid), "comm"), "utf8").trim();
  } catch {
    return undefined;
  }
}

function probePod(c: PodModeConfig, ctx: ModeContext): ModeProbe {
  const findings: string[] = [];
  const pids = listPids(ctx.procRoot);
  const init = comm(ctx.procRoot, 1);
  const others = pids.filter((p) => p !== 1 && p !== process.pid);
  const shared = init === "pause";
  findings.push(`PID 1 is ${init ?? "unreadable"}${shared ? " (a pod sandbox: shareProcessNamespace is on)" : " (not pause: shareProcessNamespace off, or not in a pod)"}; ${others.length} other process(es) visible`);
  const info = readDownwardApi(c.podinfoDir);
  const present = (["name", "namespace", "uid", "nodeName"] as const).filter((k) => info[k] !== undefined);
  findings.push(
    present.length > 0
      ? `downward API in ${c.podinfoDir}: ${present.map((k) => `${k}=${info[k]}`).join(", ")}; ${Object.keys(info.labels).length} label(s)`
      : `no downward API files in ${c.podinfoDir}: the pod would be named by the hostname`,
  );
  return { mode: "pod", usable: shared || present.length > 0, findings };
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
  ],
  parse(flags, ctx) {
    const podinfoDir = String(flags.podinfoDir ?? "/etc/podinfo");
    // An explicit --podinfo-dir must be a directory; the default may be absent (said at start).
    if (ctx.realJobs && !ctx.isDefault("podinfoDir") && !(existsSync(podinfoDir) && statSync(podinfoDir).isDirectory())) {
      throw new UsageError("--podinfo-dir", `${podinfoDir} is not a directory (mount the downward API volume there, or leave the flag out)`);
    }
    return { podinfoDir, ...(typeof flags.marks === "string" && { marks: resolve(flags.marks) }) };
  },
  create(c, ctx) {
    const info = readDownwardApi(c.podinfoDir);
    for (const file of info.cut ?? []) ctx.log.warn(`pod mode: ${file} is larger than 1 MiB: read up to 1 MiB, a label cut there is left out`);
    if (!info.name) ctx.log.warnOnce("pod:no-downward-api", `pod mode: no downward API files in ${c.podinfoDir} (name, namespace, uid, labels): the pod is named by the hostname`);
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
      collectors: (collectors) => collectors.map((col) => new PodGpuFilter(col, () => source.trainingEnvironment(VISIBLE_DEVICE_VARIABLES), ctx.log, view)),
      ...(c.marks !== undefined && { marks: { path: c.marks, jobId: job.id } }),
    };
  },
  probe: probePod,
};
