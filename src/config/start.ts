/**
 * The carbon-aware start of `run` (--start-within, --below, --profile): its flags and their
 * validation into a StartConfig, the earlier run's profile (--profile) read and checked here, before
 * anything runs (exit 2 naming the flag or file). Only `run` starts a command it can delay:
 * `simulate` (virtual time) and `agent` (jobs already running) declare the flags hidden, so they
 * are neither offered in --help nor taken silently, and refuse them in one line (refuseStartFlags).
 * Part of run's pre-spawn chunk: the report schema and the profile load only with --profile.
 */
import type { Command } from "commander";
import { UsageError } from "../errors.js";
import type { JobProfile } from "../plan/profile.js";
import { LIVE_PROVIDERS, type GridConfig } from "./grid.js";
import { parseDurationFlag, parseNonNegative } from "./values.js";

/** The carbon-aware start flags as commander parses them. */
export interface StartFlags {
  startWithin?: unknown;
  below?: unknown;
  profile?: unknown;
}

/** A validated carbon-aware start. */
export interface StartConfig {
  /** The longest wait, ms (--start-within). */
  withinMillis: number;
  /** Start as soon as the intensity is below this, gCO2e/kWh (--below). */
  belowGramsPerKwh?: number;
  /** The measured profile of an earlier run of the job (--profile), and the report it came from. */
  profile?: JobProfile;
  profilePath?: string;
}

/** The flags' names, by key. */
const START_FLAGS = [
  ["startWithin", "--start-within"],
  ["below", "--below"],
  ["profile", "--profile"],
] as const;

/** Registers the carbon-aware start flags; `hidden`: declared to be refused (refuseStartFlags), not offered. */
export function declareStartFlags(cmd: Command, o: { hidden?: boolean } = {}): Command {
  cmd
    .option("--start-within <duration>", "carbon-aware start: wait at most this long (e.g. 6h, 90m) for the lowest-intensity forecast slot")
    .option("--below <gPerKwh>", "carbon-aware start: start as soon as the intensity is below this, gCO2e/kWh (needs --start-within)")
    .option("--profile <report>", "carbon-aware start: plan with the measured profile of an earlier run of this job (its JSON report) instead of the lowest slot (needs --start-within)");
  if (o.hidden) for (const [, flag] of START_FLAGS) cmd.options.find((opt) => opt.long === flag)!.hideHelp();
  return cmd;
}

/** UsageError naming the first carbon-aware start flag given to a command that has no start to delay (`why` says why). */
export function refuseStartFlags(flags: StartFlags, why: string): void {
  for (const [key, flag] of START_FLAGS) if (flags[key] !== undefined) throw new UsageError(flag, `applies to 'powerprint run' only (carbon-aware start of a real command); ${why}`);
}

/**
 * Validates the carbon-aware start flags against the grid config (a forecast needs a live provider
 * and a zone) and reads --profile's report. undefined without --start-within (--below and
 * --profile need it: UsageError naming them).
 */
export async function startConfig(flags: StartFlags, grid: Pick<GridConfig, "provider" | "zone">): Promise<StartConfig | undefined> {
  const below = parseNonNegative(flags.below, "--below");
  let withinMillis: number | undefined;
  if (flags.startWithin !== undefined) {
    withinMillis = parseDurationFlag(String(flags.startWithin), "--start-within", 1);
    if (!grid.provider || !LIVE_PROVIDERS.includes(grid.provider)) {
      // The GB API needs no key: name it when the zone is British, so the fix is one flag away.
      const hint = grid.zone && /^(GB|UK)(-|$)/i.test(grid.zone) ? " (for GB zones: --intensity-provider uk-carbon-intensity, no key needed)" : "";
      throw new UsageError("--start-within", `needs a forecast: use --intensity-provider ${LIVE_PROVIDERS.join("|")} with --zone${hint}`);
    }
  }
  if (below !== undefined && withinMillis === undefined) {
    throw new UsageError("--below", "needs --start-within (the longest wait), e.g. --start-within 6h --below 150");
  }
  const profilePath = typeof flags.profile === "string" && flags.profile.trim() !== "" ? flags.profile : undefined;
  if (flags.profile !== undefined && (profilePath === undefined || withinMillis === undefined)) {
    throw new UsageError("--profile", "needs --start-within and a JSON report of an earlier run, e.g. --start-within 12h --profile last-run.json");
  }
  if (withinMillis === undefined) return undefined;
  return { withinMillis, belowGramsPerKwh: below, profilePath, profile: profilePath !== undefined ? await readStartProfile(profilePath) : undefined };
}

/** The measured profile of an earlier run (--profile): a file that is not a report is a UsageError naming it. */
async function readStartProfile(path: string): Promise<JobProfile> {
  const [{ readReportFile }, { profileFromReport }] = await Promise.all([import("../../exporters/report-schema.js"), import("../plan/profile.js")]);
  try {
    return profileFromReport(readReportFile(path), path);
  } catch (err) {
    throw err instanceof RangeError ? new UsageError("--profile", err.message) : err;
  }
}
