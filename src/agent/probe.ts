/**
 * `powerprint probe --agent` / `probe --mode MODE`: what each agent mode would find here, without
 * starting it: the PID namespace and downward API (pod), the cgroup version, kubelet cgroup driver,
 * pods and pod-list endpoint (node), matching processes (selector), and the GPUs visible.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "../core/contracts.js";
import { fetchPods } from "../k8s/client.js";
import { readDownwardApi } from "../k8s/downward.js";
import { listPids } from "../procfs/reader.js";
import { probeNodeMode } from "./node-source.js";
import { SelectorJobSource, type Selector } from "./selector-source.js";

export interface ModeProbe {
  mode: "pod" | "node" | "selector";
  /** Whether the mode would find jobs here now. */
  usable: boolean;
  findings: string[];
}

export interface AgentProbeInput {
  procRoot: string;
  sysRoot: string;
  podinfoDir: string;
  kubeletUrl?: string;
  kubeletTokenFile?: string;
  insecureSkipTlsVerify?: boolean;
  selector: Selector;
  log: Logger;
}

function comm(procRoot: string, pid: number): string | undefined {
  try {
    return readFileSync(join(procRoot, "proc", String(pid), "comm"), "utf8").trim();
  } catch {
    return undefined;
  }
}

export function probePod(i: AgentProbeInput): ModeProbe {
  const findings: string[] = [];
  const pids = listPids(i.procRoot);
  const init = comm(i.procRoot, 1);
  const others = pids.filter((p) => p !== 1 && p !== process.pid);
  const shared = init === "pause";
  findings.push(`PID 1 is ${init ?? "unreadable"}${shared ? " (a pod sandbox: shareProcessNamespace is on)" : " (not pause: shareProcessNamespace off, or not in a pod)"}; ${others.length} other process(es) visible`);
  const info = readDownwardApi(i.podinfoDir);
  const present = (["name", "namespace", "uid", "nodeName"] as const).filter((k) => info[k] !== undefined);
  findings.push(
    present.length > 0
      ? `downward API in ${i.podinfoDir}: ${present.map((k) => `${k}=${info[k]}`).join(", ")}; ${Object.keys(info.labels).length} label(s)`
      : `no downward API files in ${i.podinfoDir}: the pod would be named by the hostname`,
  );
  return { mode: "pod", usable: shared || present.length > 0, findings };
}

export async function probeNode(i: AgentProbeInput): Promise<ModeProbe> {
  const findings: string[] = [];
  const fetch = i.kubeletUrl ? () => fetchPods({ url: i.kubeletUrl!, tokenFile: i.kubeletTokenFile, insecureSkipTlsVerify: i.insecureSkipTlsVerify, timeoutMillis: 3000 }) : undefined;
  const p = await probeNodeMode({ procRoot: i.procRoot, sysRoot: join(i.sysRoot, "sys"), log: i.log, fetchPods: fetch });
  if (p.cgroup.status === "ok") {
    findings.push(`kubelet cgroups: ${p.cgroup.kubepods.join(", ")} (cgroup v${p.cgroup.version}${p.cgroup.driver ? `, ${p.cgroup.driver} driver` : ""})`);
    findings.push(`${p.cgroup.pods} pod(s) found`);
  } else {
    findings.push(p.cgroup.reason);
  }
  if (!p.podMetadata) findings.push("no --kubelet-url and no --node-name/NODE_NAME: pods would be named by UID");
  else if (p.podMetadata.status === "ok") findings.push(`pod list ${i.kubeletUrl}: ${p.podMetadata.pods} pod(s), ${p.podMetadata.matched} of those found here`);
  else findings.push(`pod list ${i.kubeletUrl}: ${p.podMetadata.reason} (pods would be named by UID)`);
  return { mode: "node", usable: p.cgroup.status === "ok" && p.cgroup.pods > 0, findings };
}

export function probeSelector(i: AgentProbeInput): ModeProbe {
  if (!i.selector.cmdline && !i.selector.env) return { mode: "selector", usable: false, findings: ["needs --match-cmdline REGEX or --match-env KEY[=VALUE]"] };
  const source = new SelectorJobSource({ procRoot: i.procRoot, selector: i.selector });
  // The first sample finds the trees, the second reports them.
  source.sample();
  const s = source.sample();
  const jobs = [...(s.jobs?.keys() ?? [])];
  return { mode: "selector", usable: jobs.length > 0, findings: [`${jobs.length} matching process tree job(s)${jobs.length ? `: ${jobs.slice(0, 10).join(", ")}${jobs.length > 10 ? ", ..." : ""}` : ""}`] };
}

/** Whether a /proc is readable at `procRoot`. */
export function procReadable(procRoot: string): boolean {
  return existsSync(join(procRoot, "proc", "stat"));
}
