// A small process tree for test/agent/selector-mode.test.ts: the root forks two children; every
// process burns CPU, measures what it burned itself (process.cpuUsage()), writes
// OUTDIR/<tag>-<pid>.json and then idles until killed. Usage: node job-tree.mjs TAG OUTDIR [child]
import { spawn } from "node:child_process";
import { renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const [tag, outDir, role] = process.argv.slice(2);
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const children = [];
if (role !== "child") {
  for (let i = 0; i < 2; i++) children.push(spawn(process.execPath, [new URL(import.meta.url).pathname, tag, outDir, "child"], { stdio: "ignore" }));
}
let x = 0;
while (cpu() < 0.3) for (let i = 0; i < 1e5; i++) x += Math.sqrt(i);
const file = join(outDir, `${tag}-${process.pid}.json`);
writeFileSync(file + ".tmp", JSON.stringify({ tag, pid: process.pid, ppid: process.ppid, role: role ?? "root", cpuSeconds: cpu(), x: x > 0 }));
renameSync(file + ".tmp", file);
process.on("SIGTERM", () => {
  for (const c of children) c.kill("SIGTERM");
  process.exit(0);
});
setInterval(() => undefined, 1 << 30);
