import { Command, CommanderError } from "commander";
import { UsageError, errorMessage } from "../errors.js";
import { version } from "../version.js";

type Register = (program: Command) => void;
/**
 * The commands, in help order, each loaded only when needed: `powerprint run` must not pay for
 * the agent's, the report merger's or the CSV module's imports (start-up time and RSS of a wrapped job).
 */
const COMMANDS: [name: string, load: () => Promise<Register>][] = [
  ["run", async () => (await import("./run.js")).registerRunCommand],
  ["simulate", async () => (await import("./simulate.js")).registerSimulateCommand],
  ["probe", async () => (await import("./probe.js")).registerProbeCommand],
  ["grid", async () => (await import("./grid.js")).registerGridCommand],
  ["report", async () => (await import("./report.js")).registerReportCommand],
  ["plan", async () => (await import("./plan.js")).registerPlanCommand],
  ["python-path", async () => (await import("./marks-path.js")).registerMarksPathCommand],
  ["agent", async () => (await import("./agent.js")).registerAgentCommand],
];
/** Other names a command answers to (commander aliases). */
const ALIASES: Record<string, string> = { "marks-path": "python-path" };

/** The command `argv` invokes, when it names one (else every command is loaded: top-level help, a typo's suggestion). */
function invokedCommand(argv: readonly string[]): string | undefined {
  const first = argv.slice(2).find((a) => !a.startsWith("-"));
  if (first === undefined || first === "help") return undefined;
  const name = ALIASES[first] ?? first;
  return COMMANDS.some(([n]) => n === name) ? name : undefined;
}

/**
 * Builds the CLI: with `argv`, only the command it invokes (when it names one), else all.
 * Exported for tests that parse arguments without spawning.
 */
export async function buildProgram(argv?: readonly string[]): Promise<Command> {
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
  const only = argv ? invokedCommand(argv) : undefined;
  for (const [name, load] of COMMANDS) if (only === undefined || only === name) (await load())(program);
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
  const program = await buildProgram(argv);
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

