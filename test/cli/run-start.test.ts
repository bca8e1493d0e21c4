/**
 * Issue 10 item 1 "start at once": the command is spawned before the hardware is probed, and
 * probing runs while it starts. Proven causally, without timing: a stand-in nvidia-smi (the
 * fallback probe when NVML is unavailable) looks for a file the wrapped command creates as its
 * first action. Probing first, it could never see it (the command is not running yet: it gives up
 * after a bounded wait, before the probe's own timeout); spawning first, it does.
 */
import { afterEach, describe, expect, it } from "vitest";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli } from "../helpers/cli.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe("run: the command starts before the hardware is probed", () => {
  it("a probe helper sees the already running command; the run measures and exits with the command's code", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pp-start-"));
    dirs.push(dir);
    const ready = join(dir, "command-started");
    const saw = join(dir, "probe-saw-command");
    // Waits at most 8 s (the nvidia-smi probe's timeout is 10 s) for the command's file, then fails the probe.
    writeFileSync(
      join(dir, "nvidia-smi"),
      `#!/bin/sh\ni=0\nwhile [ ! -e "${ready}" ] && [ $i -lt 160 ]; do sleep 0.05; i=$((i+1)); done\n[ -e "${ready}" ] && echo seen > "${saw}"\nexit 9\n`,
    );
    chmodSync(join(dir, "nvidia-smi"), 0o755);
    // A device node stand-in, so a build that probes NVIDIA only where /dev/nvidia* exists probes here too.
    mkdirSync(join(dir, "root", "dev"), { recursive: true });
    writeFileSync(join(dir, "root", "dev", "nvidia0"), "");
    const r = await runCli(
      ["run", "--quiet", "--interval", "100ms", "--", "sh", "-c", `touch "${ready}"; i=0; while [ ! -e "${saw}" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; exit 4`],
      {
        env: { PATH: `${dir}:${process.env.PATH}`, POWERPRINT_NVML_LIBRARY: join(dir, "no-libnvidia-ml.so.1"), POWERPRINT_DEV_ROOT: join(dir, "root") },
        timeoutMillis: 60_000,
      },
    );
    expect(r.code, r.stderr).toBe(4);
    expect(existsSync(saw)).toBe(true);
  });
});
