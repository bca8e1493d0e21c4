#!/usr/bin/env node
// The `powerprint` executable. Everything else lives in program.ts so tests can import it.
import { warmForArgv } from "../cgroup/warm.js";

// First act, before the rest of the CLI loads: `run`'s cgroup migration warm-up (src/cgroup/warm.ts).
warmForArgv(process.argv);
const { main } = await import("./program.js");
await main(process.argv);
