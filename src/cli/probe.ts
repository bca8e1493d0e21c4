import type { Command } from "commander";
import { collectorOptionsFromEnv, detectCollectors } from "../../collectors/index.js";

/** `powerprint probe`: every collector, its status, its devices, and for unavailable ones why and how to fix it. */
export function registerProbeCommand(program: Command): void {
  program
    .command("probe")
    .summary("list every hardware source, what it can read, and how to fix the unavailable ones")
    .description("List every hardware source (NVML, nvidia-smi, AMD hwmon, RAPL, the CPU model), which one `run` uses, its devices and methods, and for each unavailable one why and how to fix it.")
    .option("--json", "print JSON on stdout instead of text")
    .addHelpText(
      "after",
      `
Examples:
  $ powerprint probe
  $ powerprint probe --json
  $ POWERPRINT_SYSFS_ROOT=/host powerprint probe    # the host's /sys mounted at /host/sys`,
    )
    .action(async (opts: { json?: boolean }) => {
      const entries = await detectCollectors(collectorOptionsFromEnv(process.env));
      if (opts.json) {
        process.stdout.write(JSON.stringify(entries.map((e) => ({ collector: e.collector.id, role: e.role, used: e.used, ...e.result })), null, 2) + "\n");
      } else {
        const lines: string[] = [];
        for (const e of entries) {
          const mark = e.used ? "USED" : e.result.status === "ok" ? "ok" : "unavailable";
          lines.push(`${e.collector.id.padEnd(11)} ${mark.padEnd(11)} ${e.role}`);
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
        process.stdout.write(lines.join("\n") + "\n");
      }
      for (const e of entries) await e.collector.close().catch(() => undefined);
    });
}
