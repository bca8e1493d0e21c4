// Marks the CLI entry point executable after tsc writes it (tsc does not keep modes).
import { chmodSync, existsSync } from "node:fs";
const entry = new URL("../dist/src/cli/main.js", import.meta.url);
if (existsSync(entry)) chmodSync(entry, 0o755);
