// A worker of the exit-tail test: burns CPU until its own CPU time (process.cpuUsage, from its
// start) reaches SECONDS, writes that figure to DIR/NAME.cpu (whole, then renamed) and exits.
// Usage: node tail-worker.mjs DIR NAME SECONDS
import { renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const [dir, name, seconds] = process.argv.slice(2);
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
let x = 0;
while (cpu() < Number(seconds)) for (let i = 0; i < 1e5; i++) x += Math.sqrt(i + x);
const file = join(dir, `${name}.cpu`);
writeFileSync(file + ".tmp", String(cpu()));
renameSync(file + ".tmp", file);
