import { exitProcess } from "../guarded-read.js";

/**
 * How a long-running command (run, agent, bench-serving) ends: with its code, as soon as stderr is
 * flushed. A stray handle (a socket of a receiver that never answered) must not keep the user's
 * pipeline waiting after the work is done and everything was flushed.
 */
export function exitAfterStderr(code: number): void {
  process.exitCode = code;
  // exitProcess: a hardware read stuck in the kernel must not hold the exit (src/guarded-read.ts).
  process.stderr.write("", () => exitProcess(code, (m) => process.stderr.write(`powerprint: warning: ${m}\n`)));
}
