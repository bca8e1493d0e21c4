import type { Command } from "commander";
import { declareProbeFlags, probeConfig, type ProbeConfig, type ProbeFlags } from "../config/probe.js";
import type { ModeProbe } from "../agent/modes/index.js";
import type { ProbeEntry } from "../../collectors/index.js";
import { createStderrLogger } from "../log.js";
import { addCommand, type CommandSpec } from "./command.js";

/** What each agent mode asked for would find (probe --agent / --mode). */
async function probeModes(c: ProbeConfig, gpuCount: number): Promise<ModeProbe[]> {
  const log = createStderrLogger({ quiet: true, write: () => undefined });
  const out: ModeProbe[] = [];
  for (const { mode, config } of c.modes) out.push(await mode.probe(config, { ...c.roots, log, identity: {} }));
  for (const p of out) p.findings.push(`${gpuCount} GPU(s) visible to this process${p.mode === "pod" ? " (the agent keeps those in the training container's NVIDIA_VISIBLE_DEVICES)" : ""}`);
  return out;
}

function formatText(entries: readonly ProbeEntry[], modes: readonly ModeProbe[]): string {
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
  for (const m of modes) {
    lines.push(`agent --mode ${m.mode.padEnd(9)} ${m.usable ? "would find jobs" : "would find nothing now"}`);
    for (const f of m.findings) lines.push(`    ${f}`);
  }
  return lines.join("\n") + "\n";
}

/** `powerprint probe`: every collector, its status, its devices, and for unavailable ones why and how to fix it. */
export function registerProbeCommand(program: Command): void {
  const spec = {
    name: "probe",
    summary: "list every hardware source, what it can read, and how to fix the unavailable ones",
    description: "List every hardware source (NVML, nvidia-smi, AMD hwmon, RAPL, the CPU model), which one `run` uses, its devices and methods, and for each unavailable one why and how to fix it.",
    helpAfter: `
Examples:
  $ powerprint probe
  $ powerprint probe --json
  $ POWERPRINT_SYSFS_ROOT=/host powerprint probe    # the host's /sys mounted at /host/sys
  $ powerprint probe --agent                         # what agent --mode pod/node/selector would find
  $ powerprint probe --mode node --proc-root /host --sys-root /host --kubelet-url https://node-1:10250/pods`,
  } satisfies CommandSpec;
  addCommand(program, spec, declareProbeFlags).action(async (opts: ProbeFlags) => {
    const c = probeConfig(opts, process.env);
    const { detectCollectors } = await import("../../collectors/index.js");
    const entries = await detectCollectors(c.collectors);
    const gpus = entries.filter((e) => e.used && e.result.status === "ok").flatMap((e) => (e.result.status === "ok" ? e.result.devices : [])).filter((d) => d.kind === "gpu").length;
    const modes = c.modes.length > 0 ? await probeModes(c, gpus) : undefined;
    if (c.json) {
      const collectors = entries.map((e) => ({ collector: e.collector.id, role: e.role, used: e.used, ...(e.found !== undefined && { found: e.found }), ...e.result }));
      process.stdout.write(JSON.stringify(modes ? { collectors, agentModes: modes } : collectors, null, 2) + "\n");
    } else {
      process.stdout.write(formatText(entries, modes ?? []));
    }
    for (const e of entries) await e.collector.close().catch(() => undefined);
  });
}
