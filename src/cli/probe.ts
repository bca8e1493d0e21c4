import { Option, type Command } from "commander";
import { collectorOptionsFromEnv, detectCollectors } from "../../collectors/index.js";
import { probeNode, probePod, probeSelector, procReadable, type ModeProbe } from "../agent/probe.js";
import { parseSelector } from "../agent/selector-source.js";
import { UsageError } from "../errors.js";
import { kubeletPodsUrl } from "../k8s/client.js";
import { createStderrLogger } from "../log.js";

interface ProbeFlags {
  json?: boolean;
  agent?: boolean;
  mode?: string;
  procRoot: string;
  sysRoot: string;
  podinfoDir: string;
  kubeletUrl?: string;
  kubeletTokenFile?: string;
  kubeletInsecureSkipTlsVerify?: boolean;
  nodeName?: string;
  matchCmdline?: string;
  matchEnv?: string;
}

/** What each agent mode would find (probe --agent / --mode). */
async function probeModes(opts: ProbeFlags, gpuCount: number): Promise<ModeProbe[]> {
  const modes = opts.mode ? [opts.mode] : ["pod", "node", "selector"];
  for (const m of modes) if (!["pod", "node", "selector"].includes(m)) throw new UsageError("--mode", `'${m}' is not a mode: use pod, node or selector`);
  if (!procReadable(opts.procRoot)) throw new UsageError("--proc-root", `cannot read ${opts.procRoot}/proc/stat: give the directory holding proc/`);
  const nodeName = (opts.nodeName ?? process.env.NODE_NAME)?.trim() || undefined;
  const input = {
    procRoot: opts.procRoot,
    sysRoot: opts.sysRoot,
    podinfoDir: opts.podinfoDir,
    kubeletUrl: opts.kubeletUrl ?? (nodeName ? kubeletPodsUrl(nodeName) : undefined),
    kubeletTokenFile: opts.kubeletTokenFile,
    insecureSkipTlsVerify: opts.kubeletInsecureSkipTlsVerify,
    selector: parseSelector({ matchCmdline: opts.matchCmdline, matchEnv: opts.matchEnv }),
    log: createStderrLogger({ quiet: true, write: () => undefined }),
  };
  const out: ModeProbe[] = [];
  for (const m of modes) out.push(m === "pod" ? probePod(input) : m === "node" ? await probeNode(input) : probeSelector(input));
  for (const p of out) p.findings.push(`${gpuCount} GPU(s) visible to this process${p.mode === "pod" ? " (the agent keeps those in the training container's NVIDIA_VISIBLE_DEVICES)" : ""}`);
  return out;
}

/** `powerprint probe`: every collector, its status, its devices, and for unavailable ones why and how to fix it. */
export function registerProbeCommand(program: Command): void {
  program
    .command("probe")
    .summary("list every hardware source, what it can read, and how to fix the unavailable ones")
    .description("List every hardware source (NVML, nvidia-smi, AMD hwmon, RAPL, the CPU model), which one `run` uses, its devices and methods, and for each unavailable one why and how to fix it.")
    .option("--json", "print JSON on stdout instead of text")
    .option("--agent", "also say what each `powerprint agent` mode (pod, node, selector) would find here")
    .addOption(new Option("--mode <mode>", "with --agent: only this mode (pod, node, selector)"))
    .option("--proc-root <dir>", "agent modes: directory holding proc/", "/")
    .option("--sys-root <dir>", "agent modes: directory holding sys/", "/")
    .option("--podinfo-dir <dir>", "pod mode: the downward API volume", "/etc/podinfo")
    .option("--kubelet-url <url>", "node mode: pod list URL to try")
    .option("--kubelet-token-file <file>", "node mode: bearer token file")
    .option("--kubelet-insecure-skip-tls-verify", "node mode: accept a self-signed kubelet certificate")
    .option("--node-name <name>", "node mode: this node's name (default NODE_NAME)")
    .option("--match-cmdline <regex>", "selector mode: command-line regex")
    .option("--match-env <key[=value]>", "selector mode: environment match")
    .addHelpText(
      "after",
      `
Examples:
  $ powerprint probe
  $ powerprint probe --json
  $ POWERPRINT_SYSFS_ROOT=/host powerprint probe    # the host's /sys mounted at /host/sys
  $ powerprint probe --agent                         # what agent --mode pod/node/selector would find
  $ powerprint probe --mode node --proc-root /host --sys-root /host --kubelet-url https://node-1:10250/pods`,
    )
    .action(async (opts: ProbeFlags) => {
      const entries = await detectCollectors(collectorOptionsFromEnv(process.env));
      const gpus = entries.filter((e) => e.used && e.result.status === "ok").flatMap((e) => (e.result.status === "ok" ? e.result.devices : [])).filter((d) => d.kind === "gpu").length;
      const modes = opts.agent || opts.mode !== undefined ? await probeModes(opts, gpus) : undefined;
      if (opts.json) {
        const collectors = entries.map((e) => ({ collector: e.collector.id, role: e.role, used: e.used, ...(e.found !== undefined && { found: e.found }), ...e.result }));
        process.stdout.write(JSON.stringify(modes ? { collectors, agentModes: modes } : collectors, null, 2) + "\n");
      } else {
        const lines: string[] = [];
        for (const e of entries) {
          const mark = e.used ? "USED" : e.result.status === "ok" ? "ok" : "unavailable";
          lines.push(`${e.collector.id.padEnd(11)} ${mark.padEnd(11)} ${e.role}`);
          if (e.found !== undefined) lines.push(`    found by: ${e.found}`);
          if (e.result.status === "ok") {
            for (const d of e.result.devices) {
              lines.push(
                `    ${d.deviceId} ${d.kind}${d.model ? ` ${d.model}` : ""}${d.uuid ? ` ${d.uuid}` : ""} — method ${d.method}` +
                  (d.energyCounter !== undefined ? `, energy counter ${d.energyCounter ? "supported" : "not supported"}` : "") +
                  (d.detail ? ` (${d.detail})` : ""),
              );
            }
            if (e.result.note) lines.push(`    note: ${e.result.note}`);
          } else {
            lines.push(`    why: ${e.result.reason}`);
            if (e.result.fix) for (const l of e.result.fix.split("\n")) lines.push(`    fix: ${l}`);
          }
        }
        for (const m of modes ?? []) {
          lines.push(`agent --mode ${m.mode.padEnd(9)} ${m.usable ? "would find jobs" : "would find nothing now"}`);
          for (const f of m.findings) lines.push(`    ${f}`);
        }
        process.stdout.write(lines.join("\n") + "\n");
      }
      for (const e of entries) await e.collector.close().catch(() => undefined);
    });
}
