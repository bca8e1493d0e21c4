// A Windows ML engineer's GPU under WSL2 (issue 18): there is no /dev/nvidia*, the GPU is /dev/dxg
// and the NVIDIA driver's Linux user-space (libnvidia-ml.so.1, nvidia-smi) is in /usr/lib/wsl/lib.
// A fixture root (POWERPRINT_DEV_ROOT) with dev/dxg and a stand-in nvidia-smi there printing a
// captured `nvidia-smi -q -x` (an A10G at 25.58 W) is probed, says how it was found, and measured.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.js";
import { reportSchemaV1 } from "../../exporters/report-schema.js";

const capture = join(import.meta.dirname, "..", "fixtures", "nvidia-smi", "telegraf__a10g_drv515.xml");
const POWER_WATTS = 25.58;

describe("WSL2: /dev/dxg and NVIDIA's files in /usr/lib/wsl/lib (fixture root)", () => {
  let root: string;
  let env: NodeJS.ProcessEnv;
  let log: string;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), "pp-wsl2-"));
    log = join(root, "smi.log");
    mkdirSync(join(root, "dev"));
    writeFileSync(join(root, "dev", "dxg"), "");
    const wsl = join(root, "usr", "lib", "wsl", "lib");
    mkdirSync(wsl, { recursive: true });
    writeFileSync(join(wsl, "nvidia-smi"), `#!/bin/sh\necho "$*" >> "${log}"\ncat "${capture}"\n`);
    chmodSync(join(wsl, "nvidia-smi"), 0o755);
    // No libnvidia-ml.so.1 in the fixture and none for this machine's loader: nvidia-smi is the source.
    env = { POWERPRINT_DEV_ROOT: root, POWERPRINT_NVML_LIBRARY: "", LD_LIBRARY_PATH: "" };
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it("probe: nvidia-smi from usr/lib/wsl/lib is used, found by WSL2's /dev/dxg", async () => {
    const r = await runCli(["probe"], { env });
    expect(r.code, r.stderr).toBe(0);
    const found = `found by: WSL2: ${root}/dev/dxg, NVIDIA driver in ${root}/usr/lib/wsl/lib (nvidia-smi)`;
    expect(r.stdout).toMatch(/^nvidia-smi\s+USED\s+NVIDIA GPUs \(fallback: NVML unavailable\)$/m);
    expect(r.stdout).toContain(found);
    expect(r.stdout).toMatch(/NVIDIA A10G GPU-9a9a6c50-2a47-2f51-a902-b82c3b127e94 — method power/);
    const json = JSON.parse((await runCli(["probe", "--json"], { env })).stdout) as { collector: string; used: boolean; found?: string }[];
    expect(json.find((e) => e.collector === "nvidia-smi")).toMatchObject({ used: true, found: found.slice("found by: ".length) });
    expect(readFileSync(log, "utf8")).toMatch(/^-q -x\n/);
  });

  it("run: the GPU is measured (power integrated from the spawn to the end)", async () => {
    const report = join(root, "r.json");
    const r = await runCli(["run", "-q", "--interval", "200ms", "--report", report, "--", "sleep", "0.6"], { env });
    expect(r.code, r.stderr).toBe(0);
    const rep = reportSchemaV1.parse(JSON.parse(readFileSync(report, "utf8")));
    const gpu = rep.devices.find((d) => d.kind === "gpu");
    expect(gpu).toMatchObject({ source: "nvidia-smi", method: "power", model: "NVIDIA A10G" });
    // 25.58 W held over the whole run (the capture does not change): energy = power × duration.
    expect(gpu!.energyJoules / rep.durationSeconds).toBeCloseTo(POWER_WATTS, 0);
    expect(gpu!.energyJoules).toBeGreaterThan(POWER_WATTS * 0.6 * 0.9);
  });
});
