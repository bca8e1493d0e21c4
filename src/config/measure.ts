/**
 * The accounting and attribution flags shared by `run`, `simulate` and `agent` (--pue,
 * --idle-policy, --idle-watts) and the flags every measuring command has (--report, -q, -v).
 */
import { Option, type Command } from "commander";
import type { IdlePolicy } from "../core/types.js";
import { collect, parseIdlePolicy, parseIdleWatts, parsePue, type IdleWatts } from "./values.js";

/** The flags as commander parses them (declareMeasureFlags). */
export interface MeasureFlags {
  pue?: string;
  idlePolicy: string;
  idleWatts: string[];
  report?: string;
  quiet?: boolean;
  verbose?: boolean;
}

/** Validated accounting and attribution settings. */
export interface MeasureConfig {
  /** Power usage effectiveness, >= 1. */
  pue: number;
  /** "flag" when --pue was given, else "default" (a scenario's own PUE may then apply). */
  pueOrigin: "flag" | "default";
  idlePolicy: IdlePolicy;
  /** --idle-watts, W by device kind and by device id. */
  idle: IdleWatts;
}

/** Registers the measure flags on a command (run, simulate, agent). */
export function declareMeasureFlags(cmd: Command): Command {
  return cmd
    .option("--pue <ratio>", "power usage effectiveness of the facility, >= 1.0 (default 1.0, reported as a default)")
    .addOption(new Option("--idle-policy <policy>", "attribute: idle power is shared by the jobs using a device; separate: it goes to the `idle` bucket").choices(["attribute", "separate"]).default("attribute"))
    .option("--idle-watts <device=watts>", "idle power of a device kind (cpu, gpu, memory) or device id; repeatable", collect, [] as string[])
    .option("--report <file>", "write the JSON report (schema v1) to FILE, atomically")
    .option("-q, --quiet", "print only warnings and the summary on stderr (no progress messages, no live line)")
    .option("-v, --verbose", "debug messages on stderr, and each device's provenance in the summary");
}

/** Validates the measure flags (UsageError naming the flag). */
export function measureConfig(flags: MeasureFlags): MeasureConfig {
  const pue = flags.pue !== undefined ? parsePue(flags.pue) : 1.0;
  return { pue, pueOrigin: flags.pue !== undefined ? "flag" : "default", idlePolicy: parseIdlePolicy(flags.idlePolicy), idle: parseIdleWatts(flags.idleWatts) };
}
