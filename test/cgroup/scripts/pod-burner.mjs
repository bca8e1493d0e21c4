// A "pod" workload that measures itself. Usage: node pod-burner.mjs DIR NAME TARGET_CPU_SECONDS
// Writes DIR/NAME.ready, idles until DIR/go exists, then burns CPU until its own CPU time since
// "go" (process.cpuUsage) reaches TARGET, writes that figure to DIR/NAME.cpu and idles until killed.
import { existsSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const [dir, name, target] = process.argv.slice(2);
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
// Written whole then renamed: a reader never sees a half-written (empty) file.
const publish = (file, text) => {
  writeFileSync(file + ".tmp", text);
  renameSync(file + ".tmp", file);
};
publish(join(dir, `${name}.ready`), String(process.pid));
const wait = () => {
  if (!existsSync(join(dir, "go"))) return void setTimeout(wait, 10);
  const start = cpu();
  let x = 0;
  while (cpu() - start < Number(target)) for (let i = 0; i < 1e5; i++) x += Math.sqrt(i + x);
  publish(join(dir, `${name}.cpu`), String(cpu() - start));
  setInterval(() => {}, 1 << 30);
};
wait();
