import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";

/**
 * The folder holding powerprint_marks.py (shipped in the package's `python/`), found from this
 * file's location: dist/src/cli → the package root.
 */
export function pythonHelperDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, "python", "powerprint_marks.py"))) return join(dir, "python");
    dir = dirname(dir);
  }
  throw new Error("python/powerprint_marks.py is missing from this installation");
}

/** `powerprint python-path` (alias `marks-path`): prints the folder to put on PYTHONPATH. */
export function registerMarksPathCommand(program: Command): void {
  program
    .command("python-path")
    .alias("marks-path")
    .summary("print the folder of the Python marks helper (powerprint_marks.py), for PYTHONPATH")
    .addHelpText(
      "after",
      `
Example:
  $ PYTHONPATH="$(powerprint python-path)" powerprint run -- python train.py
  # in train.py:  from powerprint_marks import mark, phase`,
    )
    .action(() => {
      process.stdout.write(pythonHelperDir() + "\n");
    });
}
