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
  ["bench-serving", async () => (await import("./bench-serving.js")).registerBenchServingCommand],
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

/**
 * A unit the shell split from its number: `--max-energy 5 kWh` gives the flag '5' and leaves 'kWh'
 * as an argument of its own (for `run`, the command to run). Looked for in the options before `--`.
 */
export interface SpacedUnit {
  flag: string;
  number: string;
  unit: string;
  /** Index in argv of the unit's token. */
  unitIndex: number;
}

const NUMBER = /^\d+(?:\.\d+)?(?:e[+-]?\d+)?$/i;
// The units of powerprint's flags (energy, mass, duration, power, intensity), as people type them.
const UNIT_WORD = /^(?:[kmg]?j|[mkg]?wh|[mk]?g|t|ms|s|sec|m|min|h|d|[km]?w|g(?:co2e?)?\/kwh)$/i;

/** The first `--flag NUMBER UNIT` (or `--flag=NUMBER UNIT`) before `--` in argv, if any. */
export function findSpacedUnit(argv: readonly string[]): SpacedUnit | undefined {
  for (let i = 2; i < argv.length && argv[i] !== "--"; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) continue;
    const eq = a.indexOf("=");
    const [flag, number, unitIndex] = eq > 0 ? [a.slice(0, eq), a.slice(eq + 1), i + 1] : [a, argv[i + 1], i + 2];
    const unit = argv[unitIndex];
    if (number !== undefined && unit !== undefined && NUMBER.test(number) && UNIT_WORD.test(unit)) return { flag, number, unit, unitIndex };
  }
  return undefined;
}

/** The one line that says what to write instead. */
function spacedUnitMessage(u: SpacedUnit): string {
  return `${u.flag}: '${u.number} ${u.unit}' is two arguments (a space between the number and its unit): write ${u.flag} ${u.number}${u.unit}`;
}

/**
 * Before a command's action: its first argument is the unit split from a flag's number
 * (`run --interval 5 s -- python train.py` would run `s`): a usage error, nothing run.
 */
function checkSpacedUnit(argv: readonly string[], action: Command): void {
  const u = findSpacedUnit(argv);
  if (u && action.args[0] === u.unit) throw new UsageError(u.flag, spacedUnitMessage(u).slice(u.flag.length + 2));
}

/** The one line for a fatal error: what went wrong, and what to do (a suggestion, the help to read). */
export function fatalLine(err: unknown, argv: readonly string[]): string {
  const spaced = findSpacedUnit(argv);
  if (err instanceof CommanderError) {
    const [first, ...rest] = err.message.replace(/^error: /, "").split("\n");
    if (err.code === "commander.excessArguments" && spaced) return spacedUnitMessage(spaced);
    // Commander's "(Did you mean --interval?)" is on a line of its own: kept, on this one.
    const suggestion = /^\(Did you mean (.+)\?\)$/.exec(rest.join(" ").trim())?.[1];
    const command = invokedCommand(argv);
    return `${first.replace(/\.$/, "")}${suggestion ? `: did you mean ${suggestion}?` : ""} (see powerprint${command ? ` ${command}` : ""} --help)`;
  }
  if (err instanceof UsageError && spaced && err.field === spaced.flag) return spacedUnitMessage(spaced);
  return errorMessage(err);
}

/**
 * Entry point: one line `powerprint: error: ...` for every fatal error, exit 2 for usage errors
 * (bad flags, arguments) and 1 for the rest; never a stack trace for expected failures.
 */
export async function main(argv: string[]): Promise<void> {
  const program = await buildProgram(argv);
  program.hook("preAction", (_program, action) => checkSpacedUnit(argv, action));
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError && (err.code === "commander.helpDisplayed" || err.code === "commander.version" || err.code === "commander.help")) {
      process.exitCode = 0;
      return;
    }
    process.stderr.write(`powerprint: error: ${fatalLine(err, argv)}\n`);
    process.exitCode = err instanceof CommanderError || err instanceof UsageError ? 2 : 1;
  }
}
