import { Option, type Command } from "commander";
import { parseDurationFlag, parseIdlePolicy, parseIdleWatts, parsePue } from "../config/options.js";
import type { IdlePolicy } from "../core/types.js";
import type { IdleConfig } from "../core/energy.js";

/** Options shared by `run` and `simulate`: accounting and attribution. */
export function addMeasureOptions(cmd: Command): Command {
  return cmd
    .option("--pue <ratio>", "power usage effectiveness of the facility, >= 1.0 (default 1.0, reported as a default)")
    .addOption(new Option("--idle-policy <policy>", "attribute: idle power is shared by the jobs using a device; separate: it goes to the `idle` bucket").choices(["attribute", "separate"]).default("attribute"))
    .option("--idle-watts <device=watts>", "idle power of a device kind (cpu, gpu, memory) or device id; repeatable", collect, [] as string[])
    .option("--report <file>", "write the JSON report (schema v1) to FILE, atomically")
    .option("-q, --quiet", "print only warnings and the summary on stderr (no progress messages, no live line)")
    .option("-v, --verbose", "debug messages on stderr, and each device's provenance in the summary");
}

export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export interface MeasureOptions {
  pue?: string;
  idlePolicy: string;
  idleWatts: string[];
  report?: string;
  quiet?: boolean;
  verbose?: boolean;
}

/** Validated measure options (UsageError naming the flag otherwise). */
export function parseMeasureOptions(o: MeasureOptions): { pue: number; pueOrigin: "flag" | "default"; idlePolicy: IdlePolicy; idle: IdleConfig } {
  const pue = o.pue !== undefined ? parsePue(o.pue) : 1.0;
  return { pue, pueOrigin: o.pue !== undefined ? "flag" : "default", idlePolicy: parseIdlePolicy(o.idlePolicy), idle: parseIdleWatts(o.idleWatts) };
}

export { parseDurationFlag };
