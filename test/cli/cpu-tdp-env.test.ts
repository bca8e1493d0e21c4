import { describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.js";

// The CPU model's TDP from POWERPRINT_CPU_TDP_WATTS: what the "not in TDP table" warning tells users to set.
// An empty sysfs root (this directory has no sys/class/powercap) forces the CPU model on any host.
const env = { POWERPRINT_SYSFS_ROOT: import.meta.dirname };

describe("POWERPRINT_CPU_TDP_WATTS", () => {
  it("sets the CPU model's TDP per package, and probe says it was configured", async () => {
    const r = await runCli(["probe", "--json"], { env: { ...env, POWERPRINT_CPU_TDP_WATTS: "123" } });
    expect(r.code).toBe(0);
    const entries = JSON.parse(r.stdout) as { collector: string; used: boolean; devices?: { deviceId: string; detail?: string }[] }[];
    const model = entries.find((e) => e.collector === "cpu-model");
    expect(model?.used).toBe(true);
    expect(model?.devices?.find((d) => d.deviceId === "cpu-model:0")?.detail).toMatch(/configured 123 W per socket/);
  });

  it.each(["abc", "0", "-5"])("refuses %j: exit 2, one line naming the variable, command not run", async (value) => {
    const r = await runCli(["run", "--", "sh", "-c", "echo ran"], { env: { ...env, POWERPRINT_CPU_TDP_WATTS: value } });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr.trim().split("\n")).toEqual([expect.stringMatching(/^powerprint: error: POWERPRINT_CPU_TDP_WATTS: must be the TDP of one CPU package/)]);
  });
});
