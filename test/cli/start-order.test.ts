// "Start at once" (issue 10): `powerprint run` execs the command before it loads its measuring
// pipeline (run-measure, the Monitor, the collectors), in both tracking modes. Observed from the
// outside with strace (-f: every process, syscalls in the order they completed): the command's
// process is exec'd (the command itself, or the cgroup handshake's shell, released at once)
// before powerprint opens any of those modules.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CLI } from "../helpers/cli.js";

const straceMissing = spawnSync("strace", ["-V"]).error !== undefined;
const isRoot = process.getuid?.() === 0;

/** strace's lines for one run of `powerprint run ARGS -- /bin/echo start-order`. */
function traced(args: string[]): string[] {
  const dir = mkdtempSync(join(tmpdir(), "pp-start-order-"));
  try {
    const log = join(dir, "strace.log");
    const r = spawnSync("strace", ["-f", "-qq", "-e", "trace=execve,openat", "-o", log, process.execPath, CLI, "run", "-q", ...args, "--", "/bin/echo", "start-order"], { encoding: "utf8", timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe("start-order\n");
    return readFileSync(log, "utf8").split("\n");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function order(lines: string[]): { exec: number; pipeline: number; runStart: number } {
  // The command's process starting: /bin/echo itself (/proc tracking), or the cgroup handshake's
  // shell that execs it (its argv names /bin/echo). The shell is released (fd 3 closed) right
  // after the spawn, before run.ts awaits anything, so its exec of echo may be logged after
  // powerprint's next syscalls: the shell's own execve is the event that orders the two.
  // (Not powerprint's own execve, whose argv names /bin/echo too.)
  const powerprintPid = lines[0].split(" ")[0];
  const exec = lines.findIndex((l) => !l.startsWith(`${powerprintPid} `) && l.includes("execve(") && l.includes('"/bin/echo"'));
  // The measuring side: its bundle chunks, or the unbundled modules if the build is not bundled.
  const pipeline = lines.findIndex((l) => /openat\(.*(run-measure[-.][^"]*m?js|core\/monitor\.js|monitor-[^"]*\.mjs|cpu-model[-.][^"]*m?js)"/.test(l));
  const runStart = lines.findIndex((l) => /openat\(.*(run-start-[^"]*\.mjs|cli\/run\.js)"/.test(l));
  return { exec, pipeline, runStart };
}

describe.skipIf(straceMissing)("run starts the command before loading the measuring pipeline (strace)", () => {
  it.each([["procfs"], ...(isRoot ? [["cgroup"]] : [])])("--tracking %s", (tracking) => {
    const o = order(traced(["--tracking", tracking]));
    // Each was found (the check can fail), and in this order: run's own code, the command, the pipeline.
    expect(o.runStart).toBeGreaterThanOrEqual(0);
    expect(o.exec).toBeGreaterThan(o.runStart);
    expect(o.pipeline).toBeGreaterThan(o.exec);
  });
});
