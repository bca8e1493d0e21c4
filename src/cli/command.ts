/**
 * How a command's file in src/cli registers it: what --help says about it (summary, description,
 * usage, its argument, the text after the options) here; its flags from its config module
 * (src/config, `declare*Flags`); its action, the lifecycle, in the command's file.
 */
import type { Command } from "commander";

/** What a command shows in --help. */
export interface CommandSpec {
  name: string;
  /** One line in `powerprint --help`'s list (else the description's). */
  summary?: string;
  description?: string;
  usage?: string;
  /** Its positional argument: syntax and help. */
  argument?: [syntax: string, help: string];
  /** After the options in --help: examples, behaviour (a function: computed when shown). */
  helpAfter?: string | ((context: { command: Command }) => string);
  /** Everything after the argument is the argument's (`run -- python train.py --epochs 3`). */
  passThrough?: boolean;
}

/** Adds the command of `spec` to `program`, its flags declared by `declareFlags`; returns it for its action. */
export function addCommand(program: Command, spec: CommandSpec, declareFlags: (cmd: Command) => Command): Command {
  const cmd = program.command(spec.name);
  if (spec.summary !== undefined) cmd.summary(spec.summary);
  if (spec.description !== undefined) cmd.description(spec.description);
  if (spec.usage !== undefined) cmd.usage(spec.usage);
  if (spec.argument) cmd.argument(...spec.argument);
  declareFlags(cmd);
  if (spec.passThrough) cmd.passThroughOptions();
  const after = spec.helpAfter;
  if (typeof after === "string") cmd.addHelpText("after", after);
  else if (after) cmd.addHelpText("after", after);
  return cmd;
}
