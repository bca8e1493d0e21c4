// Training stand-in: forks two CPU burners, waits until both have burned their share and measured
// their own CPU time, then writes train.json (its own PID and CPU, the burners' PIDs and CPU) and
// idles with them until the pod ends. PIDs are those of its PID namespace.
import { fork } from "node:child_process";
import { appendFileSync, openSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const dir = process.argv[2];
if (process.argv[3] === "burn") {
  const target = Number(process.argv[4]);
  const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };
  let x = 0;
  while (cpu() < target) for (let i = 0; i < 1e5; i++) x += Math.sqrt(i);
  process.send({ pid: process.pid, cpuSeconds: cpu(), x: x > 0 });
  setInterval(() => undefined, 1 << 30);
} else {
  // A CUDA process holds its GPU's device node open: GPU_DEVICE_NODE stands in for /dev/nvidia<minor>.
  if (process.env.GPU_DEVICE_NODE) openSync(process.env.GPU_DEVICE_NODE, "r");
  // Training-loop marks, as a training container with POWERPRINT_MARKS on a shared volume writes them.
  appendFileSync(join(dir, "marks.jsonl"), JSON.stringify({ phase: "train", step: 0 }) + "\n");
  const results = [];
  for (let k = 0; k < 2; k++) {
    const child = fork(new URL(import.meta.url).pathname, [dir, "burn", "0.6"]);
    child.on("message", (m) => {
      results.push(m);
      if (results.length === 2) {
        const u = process.cpuUsage();
        writeFileSync(join(dir, "train.json.tmp"), JSON.stringify({ pid: process.pid, cpuSeconds: (u.user + u.system) / 1e6, children: results }));
        appendFileSync(join(dir, "marks.jsonl"), JSON.stringify({ phase: "eval", step: 100 }) + "\n");
        renameSync(join(dir, "train.json.tmp"), join(dir, "train.json"));
      }
    });
  }
  setInterval(() => undefined, 1 << 30);
}
