// A CPU burner that measures itself. Usage: node burner.mjs ROLE DIR NAME
//   ROLE "launcher": spawns a "middle" (setsid, detached) and waits for it to exit, then exits.
//   ROLE "middle":   spawns the "worker" (setsid, detached) and exits at once: a double fork.
//   ROLE "worker":   writes DIR/NAME.pid, burns CPU until DIR/stop exists, then writes its own CPU
//                    seconds (process.cpuUsage) to DIR/cpu-<pid> and idles until killed.
//   ROLE "direct":   as worker, without the forks (a plain process the test moves itself).
// Every role writes its own CPU seconds to DIR/cpu-<pid> when it exits or stops burning, so the
// test can compare the cgroup's counter with what the processes measured themselves.
import { spawn } from "node:child_process";
import { existsSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const [role, dir, name] = process.argv.slice(2);
const self = fileURLToPath(import.meta.url);
const cpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
// Written whole then renamed: a reader never sees a half-written (empty) file.
const publish = (file, text) => {
  writeFileSync(file + ".tmp", text);
  renameSync(file + ".tmp", file);
};
const report = () => publish(join(dir, `cpu-${process.pid}`), String(cpuSeconds()));

if (role === "launcher" || role === "middle") {
  const child = spawn(process.execPath, [self, role === "launcher" ? "middle" : "worker", dir, name], { detached: true, stdio: "ignore" });
  if (role === "middle") {
    child.unref();
    report();
    process.exit(0);
  }
  child.on("exit", () => {
    report();
    process.exit(0);
  });
} else {
  publish(join(dir, `${name}.pid`), String(process.pid));
  const stop = join(dir, "stop");
  for (;;) {
    const until = Date.now() + 20;
    let x = 0;
    while (Date.now() < until) x += Math.sqrt(x + 1);
    if (existsSync(stop)) break;
  }
  report();
  publish(join(dir, `${name}.done`), "1");
  setInterval(() => {}, 1 << 30);
}
