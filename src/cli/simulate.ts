import type { Command } from "commander";
import { addGridOptions, createResolverFromConfig, gridConfigFromOptions } from "../grid/config.js";
import { createStderrLogger } from "../log.js";
import { UsageError } from "../errors.js";
import { version } from "../version.js";
import { addMeasureOptions, parseMeasureOptions, type MeasureOptions } from "./common.js";
import { footprintFromGrid } from "./footprint.js";
import { addFileOutputOptions, prepareOutputs } from "./outputs.js";

const EXAMPLES = `
Examples:
  $ powerprint simulate scenario.json
  $ powerprint simulate scenario.yaml --report out.json --idle-policy separate

Runs the scenario in virtual time (fast, deterministic) through the same sampler, attribution and
ledger as real runs. The report has the same schema as 'powerprint run --report'.`;

/** `powerprint simulate <scenario>` */
export function registerSimulateCommand(program: Command): void {
  const cmd = program
    .command("simulate")
    .summary("run a scenario of simulated devices and processes in virtual time")
    .argument("<scenario>", "scenario file (JSON, or YAML with .yaml/.yml)");
  addMeasureOptions(cmd);
  addGridOptions(cmd);
  addFileOutputOptions(cmd);
  // Carbon-aware start waits in wall time for a real command: nothing to wait for in virtual time.
  for (const o of cmd.options) if (o.long === "--start-within" || o.long === "--below" || o.long === "--profile") o.hideHelp();
  cmd.addHelpText("after", EXAMPLES).action(async (file: string, opts: MeasureOptions & Record<string, unknown>) => {
    const log = createStderrLogger({ verbose: opts.verbose, quiet: opts.quiet });
    for (const [key, flag] of [["startWithin", "--start-within"], ["below", "--below"]] as const) {
      if (opts[key] !== undefined) throw new UsageError(flag, "applies to 'powerprint run' only (carbon-aware start of a real command); simulate runs in virtual time");
    }
    const measure = parseMeasureOptions(opts);
    // The report schema (zod), the scenario parser (zod, yaml) and the simulator load only when
    // this command runs, not for every other command's start-up.
    const [{ buildReport, checkReportPath, writeJsonAtomic }, { formatSummary }, { gridOptionsWithScenarioZone, loadScenario }, { simulate }] = await Promise.all([
      import("../../exporters/report-json.js"),
      import("../../exporters/summary.js"),
      import("../sim/scenario.js"),
      import("../sim/simulate.js"),
    ]);
    const reportPath = opts.report !== undefined ? checkReportPath(opts.report) : undefined;
    const outputs = await prepareOutputs(opts, { log });
    const scenario = loadScenario(file);
    const grid = gridConfigFromOptions(gridOptionsWithScenarioZone(opts, scenario, file), process.env);
    const resolver = createResolverFromConfig(grid, { log });
    const fp = footprintFromGrid(grid);
    const result = await simulate(scenario, {
      idlePolicy: measure.idlePolicy,
      ledger: { pue: measure.pue, ...fp.ledger },
      pueFromFlag: measure.pueOrigin === "flag",
      intensity: resolver,
      idle: measure.idle,
      log,
      onTick: (snap) => outputs.exporters.forEach((e) => e.update?.(snap)),
    });
    for (const e of outputs.exporters) await e.shutdown(result.snapshot);
    const report = buildReport(result.snapshot, {
      version: version(),
      mode: "simulate",
      scenario: scenario.name,
      idlePolicy: measure.idlePolicy,
      pueOrigin: result.pueOrigin,
      intensityDescription: result.intensitySource === "scenario" ? `scenario series (zone ${scenario.grid?.zone ?? "scenario"})` : resolver.describe(),
      intensityZone: scenario.grid?.zone ?? grid.zone ?? "none",
      intensitySource: result.intensitySource === "scenario" ? "scenario" : "none",
      fallbacks: result.intensitySource === "scenario" ? {} : resolver.fallbackCounts(),
      ...fp.report,
      warnings: log.warnings,
      sampler: { ticks: result.stats.ticks, skippedTicks: result.stats.skippedTicks, failures: result.stats.collectorFailures, intervalMillis: scenario.intervalMillis },
      exportFailures: {},
      // The simulated host's logical CPUs (CSV cpu_count): its CPU devices' cores.
      logicalCpus: scenario.devices.reduce((n, d) => n + (d.kind === "cpu" ? (d.cores ?? 0) : 0), 0) || undefined,
      ...outputs.context(),
    });
    if (reportPath) writeJsonAtomic(reportPath, report);
    await outputs.write(report);
    process.stderr.write(formatSummary(report, { verbose: opts.verbose }) + "\n");
  });
}
