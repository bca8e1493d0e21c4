/**
 * Parsing a powerprint command line through the real CLI (src/cli/program.ts buildProgram) without
 * running it: every command's action is replaced by a recorder, so commander checks the command
 * name, every flag, option values with choices or parsers, and the arguments, and nothing runs.
 */
import { CommanderError, type Command } from "commander";
import { buildProgram } from "../../src/cli/program.js";

/** What a parse reached: the command and its options, or commander's help/version output. */
export interface Parsed {
  command: string;
  options: Record<string, unknown>;
  args: unknown[];
}

/** Parses `argv` (the words after `powerprint`); throws commander's error for bad input. */
export async function parseOnly(argv: string[]): Promise<Parsed> {
  const full = ["node", "powerprint", ...argv];
  const program = await buildProgram(full);
  let parsed: Parsed | undefined;
  for (const c of program.commands) {
    c.configureOutput({ writeOut: () => {}, writeErr: () => {}, outputError: () => {} });
    c.action((...args: unknown[]) => {
      const cmd = args.at(-1) as Command;
      parsed = { command: c.name(), options: cmd.opts(), args: args.slice(0, -2) };
    });
  }
  program.configureOutput({ writeOut: () => {}, writeErr: () => {}, outputError: () => {} });
  try {
    await program.parseAsync(full);
  } catch (err) {
    if (err instanceof CommanderError && ["commander.helpDisplayed", "commander.version", "commander.help"].includes(err.code)) {
      return { command: err.code, options: {}, args: [] };
    }
    throw err;
  }
  if (!parsed) throw new Error(`powerprint ${argv.join(" ")}: no command ran`);
  return parsed;
}

/** Long options of each command (and of the program itself, under ""), commander's --help included. */
export async function optionsByCommand(): Promise<Map<string, Set<string>>> {
  const program = await buildProgram();
  const out = new Map<string, Set<string>>();
  const longs = (c: Command) => new Set([...c.options.map((o) => o.long).filter((l): l is string => !!l), "--help"]);
  out.set("", longs(program));
  for (const c of program.commands) {
    const names = longs(c);
    out.set(c.name(), names);
    for (const alias of c.aliases()) out.set(alias, names);
  }
  return out;
}
