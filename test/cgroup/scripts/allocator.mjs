// Holds MIB mebibytes of anonymous memory it has written to (so every page is resident), then
// writes DIR/ready-<pid> and idles until killed. Usage: node allocator.mjs DIR MIB
import { renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const [dir, mib] = process.argv.slice(2);
const held = Buffer.allocUnsafeSlow(Number(mib) * 1024 * 1024);
// One write per page: an untouched page of a fresh mapping is not resident.
for (let i = 0; i < held.length; i += 4096) held[i] = 1;
const ready = join(dir, `ready-${process.pid}`);
writeFileSync(ready + ".tmp", String(held.length));
renameSync(ready + ".tmp", ready);
setInterval(() => held[0]++, 60_000);
