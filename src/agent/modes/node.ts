/**
 * Node mode (`agent --mode node`): a DaemonSet agent. Each pod on the node is a job (or each value
 * of --group-by-label), found by the kubelet's cgroup tree; names and labels come from the
 * kubelet's pod list, when one can be had.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { UsageError } from "../../errors.js";
import { PodMetadataCache } from "../../k8s/cache.js";
import { SERVICE_ACCOUNT_TOKEN_FILE, fetchPods, kubeletPodsUrl } from "../../k8s/client.js";
import { createNodeJobSource, probeNodeMode } from "../node-source.js";
import { nodeWorkUrls } from "../../serving/agent-work.js";
import type { AgentMode } from "./registry.js";

/** Node mode's validated flags. */
export interface NodeModeConfig {
  groupByLabel?: string;
  /** The pod list: --kubelet-url, else https://NODE_NAME:10250/pods when the node name is known. */
  kubeletUrl?: string;
  kubeletTokenFile?: string;
  kubeletCaFile?: string;
  insecureSkipTlsVerify: boolean;
}

/** --kubelet-url: an http(s) URL (the kubelet's /pods or the API server's pod list). */
function checkKubeletUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError("--kubelet-url", `'${text}' is not a URL (e.g. https://$NODE_NAME:10250/pods)`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") throw new UsageError("--kubelet-url", `'${text}': only https:// and http:// are supported (e.g. https://$NODE_NAME:10250/pods)`);
  return text;
}

/** The first pod list is awaited this long at most before the first sample, ms (later ones refresh in the background). */
const FIRST_POD_LIST_MILLIS = 5_000;

export const nodeMode: AgentMode<NodeModeConfig> = {
  name: "node",
  summary: "DaemonSet, by cgroup",
  noWorkFrom: "node mode reads each pod's endpoint from its powerprint.io/work-from annotation (docs/serving.md)",
  flags: [
    { flags: "--group-by-label <key>", description: "node mode: one job per value of this pod label (e.g. training.kubeflow.org/job-name)", exclusive: true },
    { flags: "--kubelet-url <url>", description: "node mode: pod list URL (default https://$NODE_NAME:10250/pods when the node name is known)", probe: true },
    { flags: "--kubelet-token-file <file>", description: `node mode: bearer token file (default ${SERVICE_ACCOUNT_TOKEN_FILE} when present)`, probe: true },
    { flags: "--kubelet-ca-file <file>", description: "node mode: CA of the kubelet's serving certificate" },
    { flags: "--kubelet-insecure-skip-tls-verify", description: "node mode: accept the kubelet's self-signed certificate", probe: true },
  ],
  parse(flags, ctx) {
    const groupByLabel = typeof flags.groupByLabel === "string" ? flags.groupByLabel : undefined;
    if (groupByLabel !== undefined && groupByLabel.trim() === "") throw new UsageError("--group-by-label", "must not be empty (e.g. training.kubeflow.org/job-name)");
    const url = typeof flags.kubeletUrl === "string" ? checkKubeletUrl(flags.kubeletUrl) : undefined;
    return {
      groupByLabel,
      kubeletUrl: url ?? (ctx.nodeName ? kubeletPodsUrl(ctx.nodeName) : undefined),
      kubeletTokenFile: typeof flags.kubeletTokenFile === "string" ? flags.kubeletTokenFile : undefined,
      kubeletCaFile: typeof flags.kubeletCaFile === "string" ? flags.kubeletCaFile : undefined,
      insecureSkipTlsVerify: flags.kubeletInsecureSkipTlsVerify === true,
    };
  },
  create(c, ctx) {
    let cache: PodMetadataCache | undefined;
    if (c.kubeletUrl) {
      const url = c.kubeletUrl;
      const tokenFile = c.kubeletTokenFile ?? (existsSync(SERVICE_ACCOUNT_TOKEN_FILE) ? SERVICE_ACCOUNT_TOKEN_FILE : undefined);
      cache = new PodMetadataCache({
        fetch: () => fetchPods({ url, tokenFile, caFile: c.kubeletCaFile, insecureSkipTlsVerify: c.insecureSkipTlsVerify }),
        log: ctx.log,
      });
    } else {
      ctx.log.warnOnce("node:no-kubelet", "node mode: no --kubelet-url and no --node-name/NODE_NAME: pods are named by their UID");
    }
    const setup = createNodeJobSource({ procRoot: ctx.procRoot, sysRoot: join(ctx.sysRoot, "sys"), log: ctx.log, pods: cache, groupByLabel: c.groupByLabel });
    const lifecycle = {
      // The first pod list (bounded: the client has its own deadline) before the first sample, so
      // pods are named from the start.
      start: async () => void (cache && (await Promise.race([cache.start(), new Promise((r) => setTimeout(r, FIRST_POD_LIST_MILLIS).unref())]))),
      stop: () => cache?.stop(),
    };
    if (setup.status !== "ok") {
      ctx.log.warn(`node mode: ${setup.reason}; no pods will be found (everything is counted as system)`);
      return lifecycle;
    }
    ctx.log.info(`node mode: pods under ${setup.kubepods.join(", ")} (cgroup v${setup.hierarchy.version}${setup.driver ? `, ${setup.driver} driver` : ""})`);
    // Each pod may name its inference server's metrics endpoint (powerprint.io/work-from, docs/serving.md).
    return { source: setup.source, ...lifecycle, ...(cache && { workUrls: nodeWorkUrls(setup.source, cache, ctx.log) }) };
  },
  async probe(c, ctx) {
    const findings: string[] = [];
    const url = c.kubeletUrl;
    const fetch = url ? () => fetchPods({ url, tokenFile: c.kubeletTokenFile, insecureSkipTlsVerify: c.insecureSkipTlsVerify, timeoutMillis: 3000 }) : undefined;
    const p = await probeNodeMode({ procRoot: ctx.procRoot, sysRoot: join(ctx.sysRoot, "sys"), log: ctx.log, fetchPods: fetch });
    if (p.cgroup.status === "ok") {
      findings.push(`kubelet cgroups: ${p.cgroup.kubepods.join(", ")} (cgroup v${p.cgroup.version}${p.cgroup.driver ? `, ${p.cgroup.driver} driver` : ""})`);
      findings.push(`${p.cgroup.pods} pod(s) found`);
    } else {
      findings.push(p.cgroup.reason);
    }
    if (!p.podMetadata) findings.push("no --kubelet-url and no --node-name/NODE_NAME: pods would be named by UID");
    else if (p.podMetadata.status === "ok") findings.push(`pod list ${url}: ${p.podMetadata.pods} pod(s), ${p.podMetadata.matched} of those found here`);
    else findings.push(`pod list ${url}: ${p.podMetadata.reason} (pods would be named by UID)`);
    return { mode: "node", usable: p.cgroup.status === "ok" && p.cgroup.pods > 0, findings };
  },
};
