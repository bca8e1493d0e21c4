/**
 * `powerprint probe`'s typed config: what the collectors are probed with, and with --agent/--mode
 * which agent modes to try and each one's config (their flags come from the mode registry).
 */
import { hostname } from "node:os";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Option, type Command } from "commander";
import type { CollectorOptions } from "../../collectors/index.js";
import { agentModes, type ModeContext } from "../agent/modes/index.js";
import { UsageError } from "../errors.js";
import { declareModeFlags, declareRootFlags, modeChoice, modeNamed, nodeNameOf, type ModeChoice } from "./agent.js";
import { collectorConfig } from "./collectors.js";
import { readEnvironment, type EnvSource } from "./env.js";

/** probe's flags as commander parses them. */
export interface ProbeFlags {
  json?: boolean;
  agent?: boolean;
  mode?: string;
  procRoot: string;
  sysRoot: string;
  nodeName?: string;
  [modeFlag: string]: unknown;
}

/** Everything `probe` needs, validated. */
export interface ProbeConfig {
  json: boolean;
  collectors: CollectorOptions;
  /** The agent modes to try (--agent: all; --mode: one), each with its config; empty without either. */
  modes: ModeChoice[];
  /** Where they look (the ModeContext of their probe()). */
  roots: Pick<ModeContext, "procRoot" | "sysRoot" | "hostName" | "devRoot">;
}

/** Registers probe's flags. */
export function declareProbeFlags(cmd: Command): Command {
  cmd
    .option("--json", "print JSON on stdout instead of text")
    .option("--agent", `also say what each \`powerprint agent\` mode (${agentModes().map((m) => m.name).join(", ")}) would find here`)
    .addOption(new Option("--mode <mode>", `with --agent: only this mode (${agentModes().map((m) => m.name).join(", ")})`));
  declareRootFlags(cmd, { probe: true });
  return declareModeFlags(cmd, { probe: true });
}

/** Validates probe's flags and environment (UsageError naming the flag or variable). */
export function probeConfig(flags: ProbeFlags, source: EnvSource): ProbeConfig {
  const env = readEnvironment(source);
  const collectors = collectorConfig(env);
  const wanted = flags.mode !== undefined ? [modeNamed(flags.mode)] : flags.agent ? [...agentModes()] : [];
  if (wanted.length > 0 && !existsSync(join(flags.procRoot, "proc", "stat"))) {
    throw new UsageError("--proc-root", `cannot read ${flags.procRoot}/proc/stat: give the directory holding proc/`);
  }
  const ctx = { env, realJobs: false, nodeName: nodeNameOf(flags, env), isDefault: (key: string) => flags[key] === undefined };
  return {
    json: flags.json === true,
    collectors,
    modes: wanted.map((mode) => modeChoice(mode, flags, ctx, false)),
    roots: { procRoot: flags.procRoot, sysRoot: flags.sysRoot, hostName: hostname(), devRoot: collectors.devRoot ?? "/" },
  };
}

