/**
 * `powerprint plan REPORT... --zones Z1,Z2 --within DURATION [--deadline T]`: when and where to run
 * a job again, from its own measured profile (the reports' time series; the mean of several runs)
 * and each zone's intensity forecast. Lifecycle only: flags → profile → zones' series → plan → out.
 */
import type { Command } from "commander";
import { checkReportPath, writeTextAtomic } from "../../exporters/report-json.js";
import { UsageError, errorMessage } from "../errors.js";
import { createProviderFromConfig } from "../grid/config.js";
import { gridConfig } from "../config/grid.js";
import { isKnownZone, staticReading } from "../grid/static.js";
import { buildPlan, describeKinds, kindsMixed } from "../plan/plan.js";
import { meanProfile, profileFromReport, type JobProfile } from "../plan/profile.js";
import { planHtml, planJson, planTable } from "../plan/output.js";
import { zoneSeries, type ZoneSeries } from "../plan/zones.js";
import { formatDuration } from "../units.js";
import { parseDurationFlag } from "../config/values.js";
import { version } from "../version.js";
import { readReportFile } from "./report.js";

/** Bounds on what a user controls. */
export const PLAN_LIMITS = { reports: 1000, zones: 20, windowMillis: 14 * 86_400_000 } as const;

interface PlanFlags {
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

/** An absolute time with its zone (Z or ±hh:mm): a time without one would be read in local time. */
export function parseInstant(flag: string, text: string): number {
  const t = text.trim();
  const ms = /(?:Z|[+-]\d\d:?\d\d)$/i.test(t) ? Date.parse(t) : Number.NaN;
  if (!Number.isFinite(ms)) throw new UsageError(flag, `must be an ISO 8601 time with its zone, e.g. 2025-06-01T18:00Z, got '${text}'`);
  return ms;
}

/** One --zones entry: ZONE, or PROVIDER:ZONE (provider names as --intensity-provider takes them). */
function zoneConfig(entry: string, defaultProvider: string | undefined, env: NodeJS.ProcessEnv) {
  const m = /^([A-Za-z][\w-]*):(.+)$/.exec(entry);
  const [provider, zone] = m ? [m[1], m[2]] : [defaultProvider, entry];
  try {
    return gridConfig({ zone, intensityProvider: provider }, env);
  } catch (err) {
    if (err instanceof UsageError) throw new UsageError("--zones", `${entry}: ${err.message}`);
    throw err;
  }
}

/** The window [from, end) from the flags, checked against the job's duration. */
function planWindow(flags: PlanFlags, profile: JobProfile): { startMillis: number; endMillis: number } {
  const startMillis = flags.from !== undefined ? parseInstant("--from", flags.from) : Date.now();
  let endMillis = Number.POSITIVE_INFINITY;
  let flag = "--within";
  if (flags.within !== undefined) {
    endMillis = startMillis + parseDurationFlag(flags.within, "--within", 1);
  }
  if (flags.deadline !== undefined) {
    const deadline = parseInstant("--deadline", flags.deadline);
    if (deadline <= startMillis) throw new UsageError("--deadline", `${flags.deadline} is not after the window's start ${new Date(startMillis).toISOString()}`);
    if (deadline < endMillis) [endMillis, flag] = [deadline, "--deadline"];
  }
  if (!Number.isFinite(endMillis)) throw new UsageError("--within", "give the window: --within DURATION (e.g. 24h) and/or --deadline TIME");
  if (endMillis - startMillis > PLAN_LIMITS.windowMillis) throw new UsageError(flag, `the window is longer than ${formatDuration(PLAN_LIMITS.windowMillis / 1000)}: forecasts do not reach that far`);
  const jobMillis = profile.durationSeconds * 1000;
  if (endMillis - startMillis < jobMillis) {
    throw new UsageError(flag, `the window (${formatDuration((endMillis - startMillis) / 1000)}) is shorter than the job (${formatDuration(profile.durationSeconds)}): the job must fit in it; give a longer one`);
  }
  return { startMillis, endMillis };
}

/** The job's profile from the reports (one, or the mean of several). */
function loadProfile(files: string[], job: string | undefined): JobProfile {
  if (files.length > PLAN_LIMITS.reports) throw new UsageError("REPORT", `at most ${PLAN_LIMITS.reports} reports, got ${files.length}`);
  const profiles = files.map((file) => {
    try {
      return profileFromReport(readReportFile(file), file, job);
    } catch (err) {
      if (err instanceof RangeError) throw new UsageError(job !== undefined ? "--job" : file, err.message);
      throw err;
    }
  });
  return meanProfile(profiles);
}

/** Runs the command; the output goes to stdout (table or JSON) and --html. */
export async function runPlan(files: string[], flags: PlanFlags, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  if (!["refuse", "label"].includes(flags.mixedKinds)) throw new UsageError("--mixed-kinds", `must be refuse or label, got '${flags.mixedKinds}'`);
  if (flags.html !== undefined) checkReportPath(flags.html, "--html");
  const entries = flags.zones.split(",").map((z) => z.trim()).filter(Boolean);
  if (entries.length === 0) throw new UsageError("--zones", "give at least one zone, e.g. --zones GB or --zones uk:GB,watttime:CAISO_NORTH");
  if (entries.length > PLAN_LIMITS.zones) throw new UsageError("--zones", `at most ${PLAN_LIMITS.zones} zones, got ${entries.length}`);
  const configs = entries.map((e) => zoneConfig(e, flags.intensityProvider, env));
  const profile = loadProfile(files, flags.job);
  const window = planWindow(flags, profile);
  const series: ZoneSeries[] = [];
  for (const config of configs) {
    if (config.provider === "fixed") throw new UsageError("--zones", "a fixed --intensity has nothing to plan: give zones with a provider or the static table");
    const provider = createProviderFromConfig(config, { now: () => new Date(window.startMillis) });
    const sources = { provider, staticReading: (zone: string) => (isKnownZone(zone) ? staticReading(zone) : undefined) };
    series.push(await zoneSeries(config.zone!, sources, window.startMillis, window.endMillis));
  }
  if (kindsMixed(series) && flags.mixedKinds === "refuse") {
    throw new UsageError(
      "--zones",
      `the zones mix intensity kinds (${describeKinds(series)}): marginal and average gCO2e/kWh are not comparable; plan them separately, or add --mixed-kinds label to list them side by side (ranked only against zones of the first zone's kind)`,
    );
  }
  const plan = buildPlan({ profile, series, windowStartMillis: window.startMillis, windowEndMillis: window.endMillis });
  if (plan.zones.every((z) => z.candidates.length === 0)) {
    throw new Error(`no zone's data covers a ${formatDuration(profile.durationSeconds)} job inside the window (${plan.zones.map((z) => z.series.note).join("; ")})`);
  }
  if (flags.html !== undefined) writeTextAtomic(flags.html, planHtml(plan));
  process.stdout.write(flags.json ? `${JSON.stringify(planJson(plan, version()), null, 2)}\n` : `${planTable(plan)}\n`);
}

/** `powerprint plan` */
export function registerPlanCommand(program: Command): void {
  program
    .command("plan")
    .summary("when and where to run a job again: expected CO2e by start time and zone, from its measured profile")
    .argument("<reports...>", "JSON reports of past runs of the job (run/simulate --report); several: their mean profile")
    .requiredOption("--zones <list>", "zones to compare, the first being where it would run now: ZONE or PROVIDER:ZONE, e.g. uk:GB,watttime:CAISO_NORTH,DE")
    .option("--within <duration>", "the job must start and finish within this window from now (or --from), e.g. 24h")
    .option("--deadline <time>", "the job must finish by this time (ISO 8601 with zone, e.g. 2025-06-01T18:00Z)")
    .option("--from <time>", "plan as if now were this time (ISO 8601 with zone; default: now)")
    .option("--intensity-provider <name>", "provider for zones given without PROVIDER: (default: the static table); credentials from the environment as for run")
    .option("--job <id>", "the job of the reports to plan (default: all their jobs together)")
    .option("--json", "print the plan as JSON instead of the table")
    .option("--html <file>", "write a chart of expected CO2e by start time per zone to FILE")
    .option("--mixed-kinds <how>", "zones with different intensity kinds (average, marginal): refuse, or label them and rank only like with like", "refuse")
    .addHelpText(
      "after",
      `
Examples:
  $ powerprint plan run.json --zones uk-carbon-intensity:GB --within 24h
  $ powerprint plan sweep-1.json sweep-2.json --zones uk:GB,DE --within 30h --html plan.html`,
    )
    .action(async (files: string[], flags: PlanFlags) => {
      try {
        await runPlan(files, flags);
      } catch (err) {
        if (err instanceof UsageError) throw err;
        throw new Error(`plan: ${errorMessage(err)}`, { cause: err });
      }
    });
}
