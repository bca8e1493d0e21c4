#!/usr/bin/env node
// The `powerprint` executable. Everything else lives in program.ts so tests can import it.
import { warmForArgv } from "../cgroup/warm.js";

// First act, before the rest of the CLI loads: `run`'s cgroup migration warm-up (src/cgroup/warm.ts).
warmForArgv(process.argv);
// `powerprint … | head`: a reader that stops early closes the pipe. What was left to print is
// nobody's, so it is dropped (as a C tool's SIGPIPE would end it), never an EPIPE stack trace; a
// command's measuring goes on (run's command writes to its own stdout, not through ours).
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code !== "EPIPE") throw err;
});
const { main } = await import("./program.js");
await main(process.argv);
