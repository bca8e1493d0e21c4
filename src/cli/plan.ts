/**
 * `powerprint plan REPORT... --zones Z1,Z2 --within DURATION [--deadline T]`: when and where to run
 * a job again, from its own measured profile (the reports' time series; the mean of several runs)
 * and each zone's intensity forecast. Lifecycle only: config (src/config/plan.ts) → profile →
 * zones' series → plan → out.
 */
import type { Command } from "commander";
import { writeTextAtomic } from "../../exporters/report-json.js";
import { readReportFile } from "../../exporters/report-schema.js";
import { UsageError, errorMessage } from "../errors.js";
import { createProviderFromConfig } from "../grid/config.js";
import { declarePlanFlags, planConfig, type PlanConfig, type PlanFlags, type PlanWindow } from "../config/plan.js";
import { isKnownZone, staticReading } from "../grid/static.js";
import { buildPlan, describeKinds, kindsMixed } from "../plan/plan.js";
import { meanProfile, profileFromReport, type JobProfile } from "../plan/profile.js";
import { planHtml, planJson, planTable } from "../plan/output.js";
import { zoneSeries, type ZoneSeries } from "../plan/zones.js";
import { formatDuration } from "../units.js";
import { version } from "../version.js";
import { addCommand, type CommandSpec } from "./command.js";

/** The job must fit in the window (UsageError naming the flag that set its end). */
function checkJobFits(window: PlanWindow, profile: JobProfile): void {
  const windowMillis = window.endMillis - window.startMillis;
  if (windowMillis < profile.durationSeconds * 1000) {
    throw new UsageError(window.endFlag, `the window (${formatDuration(windowMillis / 1000)}) is shorter than the job (${formatDuration(profile.durationSeconds)}): the job must fit in it; give a longer one`);
  }
}

/** The job's profile from the reports (one, or the mean of several). */
function loadProfile(files: string[], job: string | undefined): JobProfile {
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
export async function runPlan(c: PlanConfig): Promise<void> {
  const profile = loadProfile(c.files, c.job);
  const window = c.window;
  checkJobFits(window, profile);
  const series: ZoneSeries[] = [];
  for (const { grid } of c.zones) {
    const provider = createProviderFromConfig(grid, { now: () => new Date(window.startMillis) });
    const sources = { provider, staticReading: (zone: string) => (isKnownZone(zone) ? staticReading(zone) : undefined) };
    series.push(await zoneSeries(grid.zone!, sources, window.startMillis, window.endMillis));
  }
  if (kindsMixed(series) && c.mixedKinds === "refuse") {
    throw new UsageError(
      "--zones",
      `the zones mix intensity kinds (${describeKinds(series)}): marginal and average gCO2e/kWh are not comparable; plan them separately, or add --mixed-kinds label to list them side by side (ranked only against zones of the first zone's kind)`,
    );
  }
  const plan = buildPlan({ profile, series, windowStartMillis: window.startMillis, windowEndMillis: window.endMillis });
  if (plan.zones.every((z) => z.candidates.length === 0)) {
    throw new Error(`no zone's data covers a ${formatDuration(profile.durationSeconds)} job inside the window (${plan.zones.map((z) => z.series.note).join("; ")})`);
  }
  if (c.htmlPath !== undefined) writeTextAtomic(c.htmlPath, planHtml(plan));
  process.stdout.write(c.json ? `${JSON.stringify(planJson(plan, version()), null, 2)}\n` : `${planTable(plan)}\n`);
}

const EXAMPLES = `
Examples:
  $ powerprint plan run.json --zones uk-carbon-intensity:GB --within 24h
  $ powerprint plan sweep-1.json sweep-2.json --zones uk:GB,DE --within 30h --html plan.html`;

/** `powerprint plan` */
export function registerPlanCommand(program: Command): void {
  const spec = { name: "plan", summary: "when and where to run a job again: expected CO2e by start time and zone, from its measured profile", argument: ["<reports...>", "JSON reports of past runs of the job (run/simulate --report); several: their mean profile"], helpAfter: EXAMPLES } satisfies CommandSpec;
  addCommand(program, spec, declarePlanFlags).action(async (files: string[], flags: PlanFlags) => {
    try {
      await runPlan(planConfig(files, flags, process.env));
    } catch (err) {
      if (err instanceof UsageError) throw err;
      throw new Error(`plan: ${errorMessage(err)}`, { cause: err });
    }
  });
}
