// A real process tree for test/jobs/tracker.test.ts. Every process burns CPU (measured on its own
// clock: process.cpuUsage(), i.e. getrusage(RUSAGE_SELF)), then writes what it burned to
// OUTDIR/<role>-<pid>.json, independently of /proc. Usage: node tree.mjs ROLE OUTDIR [cpuSeconds]
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

const [role, outDir, cpuArg] = process.argv.slice(2);
const self = new URL(import.meta.url).pathname;
const cpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const burn = (targetCpuSeconds) => {
  let x = 0;
  while (cpuSeconds() < targetCpuSeconds) for (let i = 0; i < 20000; i++) x += Math.sqrt(i);
  return x;
};
const report = () =>
  writeFileSync(join(outDir, `${role}-${process.pid}.json`), JSON.stringify({ role, pid: process.pid, ppid: process.ppid, cpuSeconds: cpuSeconds() }));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const child = (r, cpu, opts = {}) => spawn(process.execPath, [self, r, outDir, String(cpu)], { stdio: "ignore", ...opts });
const exited = (cp) => new Promise((r) => cp.on("exit", r));

switch (role) {
  case "root": {
    const waits = [];
    // Two long CPU burners in parallel.
    waits.push(exited(child("burner", 0.8)), exited(child("burner", 0.8)));
    // One that ignores SIGTERM: it is sent SIGTERM and keeps burning to the end of its work.
    const stubborn = child("stubborn", 0.6, { stdio: ["ignore", "ignore", "ignore", "ipc"] });
    waits.push(exited(stubborn));
    stubborn.on("message", () => stubborn.kill("SIGTERM"));
    // A double fork: "middle" starts a detached grandchild and exits; the grandchild is re-parented.
    waits.push(exited(child("middle", 0.05)));
    // Short-lived children (~0.2 s each), spawned and reaped one after another.
    waits.push(
      (async () => {
        for (let i = 0; i < 6; i++) await exited(child("short", 0.1));
      })(),
    );
    await Promise.all(waits);
    await sleep(300);
    report();
    break;
  }
  case "stubborn":
    process.on("SIGTERM", () => {});
    // Tell the parent the handler is in place, then work; SIGTERM arrives meanwhile and is ignored.
    process.send("ready", () => {
      burn(Number(cpuArg));
      report();
      process.disconnect();
    });
    break;
  case "middle": {
    const orphan = child("orphan", 0.6, { detached: true });
    orphan.unref();
    burn(Number(cpuArg));
    await sleep(300);
    report();
    process.exit(0);
  }
  case "orphan":
    await sleep(400); // its parent exits meanwhile: re-parented
    burn(Number(cpuArg));
    report();
    // Stay a little after the work so the tracker's last look at it holds its final CPU time.
    await sleep(400);
    break;
  default:
    burn(Number(cpuArg));
    report();
}
