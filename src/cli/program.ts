import { Command, CommanderError } from "commander";
import { UsageError, errorMessage } from "../errors.js";
import { version } from "../version.js";
import { registerRunCommand } from "./run.js";
import { registerSimulateCommand } from "./simulate.js";
import { registerProbeCommand } from "./probe.js";
import { registerGridCommand } from "./grid.js";
import { registerReportCommand } from "./report.js";
import { registerMarksPathCommand } from "./marks-path.js";

/** Builds the CLI. Exported for tests that parse arguments without spawning. */
export function buildProgram(): Command {
  const program = new Command("powerprint")
    .description("Energy, carbon, water and cost of ML jobs, per job, measured where hardware allows and modelled (and labelled) where not.")
    .version(version(), "-V, --version")
    .enablePositionalOptions()
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      // Commander's own error lines are replaced by one line of ours (see main()).
      outputError: () => {},
    });
  registerRunCommand(program);
  registerSimulateCommand(program);
  registerProbeCommand(program);
  registerGridCommand(program);
  registerReportCommand(program);
  registerMarksPathCommand(program);
  program.addHelpText(
    "after",
    `
Examples:
  $ powerprint run -- python train.py
  $ powerprint run --zone FR --report run.json --otlp -- python train.py
  $ powerprint simulate scenario.json --report out.json
  $ powerprint probe
  $ powerprint grid --zone GB --forecast`,
  );
  for (const c of program.commands) c.exitOverride().configureOutput({ outputError: () => {} });
  return program;
}

/** Entry point: exit 2 with one line for usage errors; never a stack trace for expected failures. */
export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === "commander.helpDisplayed" || err.code === "commander.version" || err.code === "commander.help") {
        process.exitCode = 0;
        return;
      }
      const msg = err.message.replace(/^error: /, "").split("\n")[0];
      process.stderr.write(`powerprint: ${msg} (see powerprint --help)\n`);
      process.exitCode = 2;
      return;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`powerprint: ${err.message}\n`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`powerprint: error: ${errorMessage(err)}\n`);
    process.exitCode = 1;
  }
}

