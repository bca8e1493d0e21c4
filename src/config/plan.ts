/**
 * `powerprint plan`'s typed config: the zones to compare (each a GridConfig, through the one grid
 * validation, credentials from the environment), the window (--within, --deadline, --from) and the
 * outputs, validated into a PlanConfig before any report is read or provider asked (UsageError
 * naming the flag). Whether the job fits in the window is known only from its profile: src/cli/plan.ts
 * checks that, naming the flag that set the window's end.
 */
import type { Command } from "commander";
import { checkReportPath } from "../../exporters/report-json.js";
import { UsageError } from "../errors.js";
import { formatDuration } from "../units.js";
import type { EnvSource } from "./env.js";
import { gridConfig, type GridConfig } from "./grid.js";
import { parseDurationFlag } from "./values.js";

/** Bounds on what a user controls. */
export const PLAN_LIMITS = { reports: 1000, zones: 20, windowMillis: 14 * 86_400_000 } as const;

/** plan's flags as commander parses them. */
export interface PlanFlags {
  zones: string;
  within?: string;
  deadline?: string;
  from?: string;
  intensityProvider?: string;
  job?: string;
  json?: boolean;
  html?: string;
  mixedKinds: string;
}

/** One zone to plan: the --zones entry as given and its validated grid config. */
export interface PlanZone {
  entry: string;
  grid: GridConfig;
}

/** The window [startMillis, endMillis) the job must start and finish in, and the flag that set its end. */
export interface PlanWindow {
  startMillis: number;
  endMillis: number;
  endFlag: "--within" | "--deadline";
}

/** Everything `plan` needs, validated. */
export interface PlanConfig {
  /** The reports of past runs, as given. */
  files: string[];
  zones: PlanZone[];
  window: PlanWindow;
  /** --job: the job of the reports to plan (default: all together). */
  job?: string;
  json: boolean;
  htmlPath?: string;
  mixedKinds: "refuse" | "label";
}

/** Registers plan's flags. */
export function declarePlanFlags(cmd: Command): Command {
  return cmd
    .requiredOption("--zones <list>", "zones to compare, the first being where it would run now: ZONE or PROVIDER:ZONE, e.g. uk:GB,watttime:CAISO_NORTH,DE")
    .option("--within <duration>", "the job must start and finish within this window from now (or --from), e.g. 24h")
    .option("--deadline <time>", "the job must finish by this time (ISO 8601 with zone, e.g. 2025-06-01T18:00Z)")
    .option("--from <time>", "plan as if now were this time (ISO 8601 with zone; default: now)")
    .option("--intensity-provider <name>", "provider for zones given without PROVIDER: (default: the static table); credentials from the environment as for run")
    .option("--job <id>", "the job of the reports to plan (default: all their jobs together)")
    .option("--json", "print the plan as JSON instead of the table")
    .option("--html <file>", "write a chart of expected CO2e by start time per zone to FILE")
    .option("--mixed-kinds <how>", "zones with different intensity kinds (average, marginal): refuse, or label them and rank only like with like", "refuse");
}

/** An absolute time with its zone (Z or ±hh:mm): a time without one would be read in local time. */
export function parseInstant(flag: string, text: string): number {
  const t = text.trim();
  const ms = /(?:Z|[+-]\d\d:?\d\d)$/i.test(t) ? Date.parse(t) : Number.NaN;
  if (!Number.isFinite(ms)) throw new UsageError(flag, `must be an ISO 8601 time with its zone, e.g. 2025-06-01T18:00Z, got '${text}'`);
  return ms;
}

/** One --zones entry: ZONE, or PROVIDER:ZONE (provider names as --intensity-provider takes them). */
function planZone(entry: string, defaultProvider: string | undefined, env: EnvSource): PlanZone {
  const m = /^([A-Za-z][\w-]*):(.+)$/.exec(entry);
  const [provider, zone] = m ? [m[1], m[2]] : [defaultProvider, entry];
  let grid: GridConfig;
  try {
    grid = gridConfig({ zone, intensityProvider: provider }, env);
  } catch (err) {
    if (err instanceof UsageError) throw new UsageError("--zones", `${entry}: ${err.message}`);
    throw err;
  }
  if (grid.provider === "fixed") throw new UsageError("--zones", "a fixed --intensity has nothing to plan: give zones with a provider or the static table");
  return { entry, grid };
}

/** The window [from, end) from the flags (the job's own length is checked against it later). */
function planWindow(flags: PlanFlags, nowMillis: number): PlanWindow {
  const startMillis = flags.from !== undefined ? parseInstant("--from", flags.from) : nowMillis;
  let endMillis = Number.POSITIVE_INFINITY;
  let endFlag: PlanWindow["endFlag"] = "--within";
  if (flags.within !== undefined) endMillis = startMillis + parseDurationFlag(flags.within, "--within", 1);
  if (flags.deadline !== undefined) {
    const deadline = parseInstant("--deadline", flags.deadline);
    if (deadline <= startMillis) throw new UsageError("--deadline", `${flags.deadline} is not after the window's start ${new Date(startMillis).toISOString()}`);
    if (deadline < endMillis) [endMillis, endFlag] = [deadline, "--deadline"];
  }
  if (!Number.isFinite(endMillis)) throw new UsageError("--within", "give the window: --within DURATION (e.g. 24h) and/or --deadline TIME");
  if (endMillis - startMillis > PLAN_LIMITS.windowMillis) throw new UsageError(endFlag, `the window is longer than ${formatDuration(PLAN_LIMITS.windowMillis / 1000)}: forecasts do not reach that far`);
  return { startMillis, endMillis, endFlag };
}

/** Validates plan's arguments, flags and environment (UsageError naming the flag or variable). `nowMillis`: the window's start without --from. */
export function planConfig(files: string[], flags: PlanFlags, source: EnvSource, nowMillis = Date.now()): PlanConfig {
  if (flags.mixedKinds !== "refuse" && flags.mixedKinds !== "label") throw new UsageError("--mixed-kinds", `must be refuse or label, got '${flags.mixedKinds}'`);
  if (flags.html !== undefined) checkReportPath(flags.html, "--html");
  const entries = flags.zones.split(",").map((z) => z.trim()).filter(Boolean);
  if (entries.length === 0) throw new UsageError("--zones", "give at least one zone, e.g. --zones GB or --zones uk:GB,watttime:CAISO_NORTH");
  if (entries.length > PLAN_LIMITS.zones) throw new UsageError("--zones", `at most ${PLAN_LIMITS.zones} zones, got ${entries.length}`);
  const zones = entries.map((e) => planZone(e, flags.intensityProvider, source));
  if (files.length > PLAN_LIMITS.reports) throw new UsageError("REPORT", `at most ${PLAN_LIMITS.reports} reports, got ${files.length}`);
  return { files, zones, window: planWindow(flags, nowMillis), job: flags.job, json: flags.json === true, htmlPath: flags.html, mixedKinds: flags.mixedKinds };
}
