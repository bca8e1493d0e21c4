import type { Command } from "commander";
import { declareSimulateFlags, simulateConfig, type SimulateFlags } from "../config/simulate.js";
import { createStderrLogger } from "../log.js";
import { version } from "../version.js";
import { prepareOutputs } from "./outputs.js";
import { addCommand, type CommandSpec } from "./command.js";

const EXAMPLES = `
Examples:
  $ powerprint simulate scenario.json
  $ powerprint simulate scenario.yaml --report out.json --idle-policy separate

Runs the scenario in virtual time (fast, deterministic) through the same sampler, attribution and
ledger as real runs. The report has the same schema as 'powerprint run --report'.`;

/** `powerprint simulate <scenario>` */
export function registerSimulateCommand(program: Command): void {
  const spec = {
    name: "simulate",
    summary: "run a scenario of simulated devices and processes in virtual time",
    argument: ["<scenario>", "scenario file (JSON, or YAML with .yaml/.yml)"],
    helpAfter: EXAMPLES,
  } satisfies CommandSpec;
  addCommand(program, spec, declareSimulateFlags).action(async (file: string, opts: SimulateFlags) => {
    const log = createStderrLogger({ verbose: opts.verbose, quiet: opts.quiet });
    const c = await simulateConfig(file, opts, process.env);
    // The report schema (zod), the simulator and the pipeline load only when this command runs,
    // not for every other command's start-up.
    const [{ buildReport, writeJsonAtomic }, { detailsFileOf, formatSummary }, { simulate }, { createPipeline }] = await Promise.all([
      import("../../exporters/report-json.js"),
      import("../../exporters/summary.js"),
      import("../sim/simulate.js"),
      import("../pipeline/index.js"),
    ]);
    const outputs = prepareOutputs(c.outputs, { log });
    // The pipeline's constants and report fields; simulate() wires the scenario in virtual time.
    const pipeline = await createPipeline({ ...c, collectors: {} }, { log, time: { kind: "virtual" } });
    const result = await simulate(c.scenario, {
      idlePolicy: c.measure.idlePolicy,
      ledger: { ...pipeline.ledgerOptions, pue: c.measure.pue },
      pueFromFlag: c.measure.pueOrigin === "flag",
      intensity: pipeline.intensity.intensity,
      idle: c.measure.idle,
      log,
      onTick: (snap) => outputs.exporters.forEach((e) => e.update?.(snap)),
      parts: pipeline.scenario,
    });
    for (const e of outputs.exporters) await e.shutdown(result.snapshot);
    const report = buildReport(result.snapshot, {
      version: version(),
      mode: "simulate",
      ...pipeline.reportFields(),
      warnings: log.warnings,
      sampler: { ticks: result.stats.ticks, skippedTicks: result.stats.skippedTicks, failures: result.stats.collectorFailures, intervalMillis: c.scenario.intervalMillis },
      exportFailures: {},
      ...outputs.context(),
    });
    if (c.reportPath) writeJsonAtomic(c.reportPath, report);
    await outputs.write(report);
    process.stderr.write(formatSummary(report, { verbose: opts.verbose, detailsFile: detailsFileOf({ reportPath: c.reportPath, htmlPath: c.outputs.htmlPath }) }) + "\n");
  });
}
