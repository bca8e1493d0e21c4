#!/usr/bin/env node
// The `powerprint` executable. Everything else lives in program.ts so tests can import it.
import { main } from "./program.js";

await main(process.argv);
