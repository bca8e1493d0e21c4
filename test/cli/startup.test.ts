// Lean start-up: on a host with no sign of an NVIDIA GPU (no device nodes, no WSL2 /dev/dxg, no
// nvidia-smi on PATH, no NVML for the loader), `run` and `probe` spawn no helper process
// (nvidia-smi, lscpu, dmidecode): fakes of lscpu and dmidecode first on PATH, and of nvidia-smi
// given explicitly or put on PATH, append to a log when run.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.js";

const xeonRoot = fileURLToPath(new URL("../fixtures/cpu/host-xeon-2s/", import.meta.url));

describe("start-up spawns no hardware helper where the hardware is plainly absent", () => {
  let dir: string;
  let log: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "powerprint-startup-"));
    log = join(dir, "spawned.log");
    const bin = join(dir, "bin");
    mkdirSync(bin);
    // nvidia-smi apart: on PATH it is a sign of a GPU and is probed (the last test).
    mkdirSync(join(dir, "gpu-bin"));
    for (const [folder, name] of [["bin", "lscpu"], ["bin", "dmidecode"], ["gpu-bin", "nvidia-smi"]]) {
      writeFileSync(join(dir, folder, name), `#!/bin/sh\necho "${name} $*" >> "${log}"\nexit 1\n`);
      chmodSync(join(dir, folder, name), 0o755);
    }
    // An empty dev/ root: no nvidia[0-9]* node whatever the test machine has.
    mkdirSync(join(dir, "dev"));
    env = { PATH: `${bin}:${process.env.PATH}`, POWERPRINT_DEV_ROOT: dir };
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("the fakes really log when run (the check can fail)", async () => {
    const { execFileSync } = await import("node:child_process");
    expect(() => execFileSync("lscpu", [], { env: { ...process.env, ...env } })).toThrow();
    expect(readFileSync(log, "utf8")).toBe("lscpu \n");
    rmSync(log);
  });

  it("run -- true on the real /proc: nothing spawned but the command; CPU model still found", async () => {
    const report = join(dir, "run.json");
    const r = await runCli(["run", "-q", "--report", report, "--", "true"], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(log) ? readFileSync(log, "utf8") : "").toBe("");
    const cpuModel = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1];
    const text = readFileSync(report, "utf8");
    if (cpuModel !== undefined) expect(text).toContain(JSON.stringify(cpuModel));
  });

  it("probe on a fixture root: model and memory from its cpuinfo/meminfo, NVIDIA sources unavailable for want of device nodes", async () => {
    const r = await runCli(["probe", "--json"], { env: { ...env, POWERPRINT_SYSFS_ROOT: xeonRoot } });
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(log) ? readFileSync(log, "utf8") : "").toBe("");
    const entries = JSON.parse(r.stdout) as { collector: string; status: string; reason?: string; devices?: { kind: string; model?: string; detail?: string }[] }[];
    const byId = new Map(entries.map((e) => [e.collector, e]));
    expect(byId.get("nvml")).toMatchObject({
      status: "unavailable",
      reason: `no NVIDIA device (no ${join(dir, "dev", "nvidia[0-9]*")}, no ${join(dir, "dev", "dxg")}, no nvidia-smi on PATH, no libnvidia-ml.so.1 for the loader)`,
    });
    expect(byId.get("nvidia-smi")).toMatchObject({ status: "unavailable" });
    const model = byId.get("cpu-model");
    expect(model?.devices?.[0]).toMatchObject({ kind: "cpu", model: "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz" });
    expect(model?.devices?.[1].detail).toBe("62.5 GiB × 0.392 W/GiB");
  });

  it("an explicit POWERPRINT_NVIDIA_SMI is still probed without device nodes (the guard only skips the default)", async () => {
    const r = await runCli(["probe", "--json"], { env: { ...env, POWERPRINT_NVIDIA_SMI: join(dir, "gpu-bin", "nvidia-smi") } });
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(log, "utf8")).toBe("nvidia-smi -q -x\n");
    rmSync(log);
  });

  it("nvidia-smi on PATH without device nodes is tried, and probe says that is how it was found", async () => {
    const smi = join(dir, "gpu-bin", "nvidia-smi");
    const r = await runCli(["probe", "--json"], { env: { ...env, PATH: `${join(dir, "gpu-bin")}:${env.PATH}` } });
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(log, "utf8")).toBe("nvidia-smi -q -x\n");
    rmSync(log);
    const entries = JSON.parse(r.stdout) as { collector: string; status: string; found?: string; reason?: string }[];
    const bySmi = entries.find((e) => e.collector === "nvidia-smi");
    expect(bySmi).toMatchObject({ status: "unavailable", found: `nvidia-smi on PATH (${smi}), no device node` });
    expect(bySmi?.reason).toMatch(/^.*nvidia-smi -q -x failed/);
  });
});

