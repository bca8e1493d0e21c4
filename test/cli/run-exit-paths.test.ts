// `powerprint run` at the edges of the command's life: a sample still in flight when the command
// exits, and a tick step that fails (fail-open). Real CLI, real commands, loopback server only.
import { afterEach, describe, expect, it } from "vitest";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli } from "../helpers/cli.js";
import { reportSchemaV1 } from "../../exporters/report-schema.js";

const dirs: string[] = [];
const servers: Server[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
});
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), "pp-exit-"));
  dirs.push(d);
  return d;
};

/** One simulated CPU whose power is a constant 100 W (idle = max): energy = 100 W × duration. */
const CONSTANT_100W = { name: "constant-100w", durationSeconds: 600, devices: [{ id: "cpu0", kind: "cpu", idleWatts: 100, maxWatts: 100, cores: 4 }] };

/** A GB Carbon Intensity API stand-in that answers every request after `delayMillis`. */
async function slowIntensityServer(delayMillis: number): Promise<string> {
  const halfHour = 30 * 60_000;
  const start = Math.floor(Date.now() / halfHour) * halfHour;
  const iso = (ms: number) => new Date(ms).toISOString().slice(0, 16) + "Z";
  const body = JSON.stringify({ data: [{ from: iso(start), to: iso(start + halfHour), intensity: { forecast: 200, actual: 200, index: "moderate" } }] });
  const server = createServer((_req, res) => {
    setTimeout(() => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(body);
    }, delayMillis);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe("powerprint run: exit paths", () => {
  it("takes the final sample after a sample still in flight when the command exits (slow intensity source)", async () => {
    const dir = tmp();
    const scenario = join(dir, "scenario.json");
    writeFileSync(scenario, JSON.stringify(CONSTANT_100W));
    const report = join(dir, "report.json");
    // The second sample waits 2.5 s for the grid intensity; the command is done after 0.5 s.
    const url = await slowIntensityServer(2_500);
    const r = await runCli(
      ["run", "--quiet", "--sim", scenario, "--intensity-provider", "uk-carbon-intensity", "--zone", "GB", "--interval", "100ms", "--report", report, "--", "sleep", "0.5"],
      { env: { POWERPRINT_UK_CARBON_INTENSITY_URL: url }, timeoutMillis: 40_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    const rep = reportSchemaV1.parse(JSON.parse(readFileSync(report, "utf8")));
    // The figures reach the command's exit: at least its 0.5 s at 100 W (before the fix, the
    // final sample was skipped as overlapping and the report held no interval at all). The first
    // sample, at the spawn, only sets the baseline: energy starts there, a few ms after startedAt.
    expect(rep.durationSeconds).toBeGreaterThanOrEqual(0.5);
    const device = rep.devices.find((d) => d.id === "cpu0");
    expect(device?.energyJoules).toBeGreaterThanOrEqual(100 * 0.5);
    expect(device!.energyJoules).toBeLessThanOrEqual(100 * rep.durationSeconds + 1e-6);
    expect(rep.totals.energyJoules).toBeCloseTo(device!.energyJoules, 9);
    expect(rep.intensity.source).not.toBe("none");
  });

  // The marks reader ignores anything but a regular file at the path (it used to throw inside the
  // tick): the command runs on, its exit code wins, the summary is printed.
  it("keeps running the command when its marks file is replaced by a directory, and exits with its code", async () => {
    const r = await runCli(
      ["run", "--interval", "100ms", "--", "sh", "-c", 'rm "$POWERPRINT_MARKS" && mkdir "$POWERPRINT_MARKS" && sleep 0.5 && echo child-done && exit 3'],
      { timeoutMillis: 20_000 },
    );
    expect(r.stdout).toBe("child-done\n");
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toContain("powerprint summary");
  });

  it("leaves the job's CPU alone when a probe helper still runs at the spawn (hung nvidia-smi, reaped later)", async () => {
    const dir = tmp();
    // An nvidia-smi that outlives the collector's 10 s probe timeout, then burns ~1 s of CPU and
    // exits: powerprint reaps it while the command runs, so its CPU lands in powerprint's cutime.
    writeFileSync(join(dir, "nvidia-smi"), `#!/bin/sh\nsleep 10.5\nexec "${process.execPath}" -e "const end = Date.now() + 1000; while (Date.now() < end);"\n`);
    chmodSync(join(dir, "nvidia-smi"), 0o755);
    const report = join(dir, "report.json");
    const r = await runCli(["run", "--quiet", "--interval", "500ms", "--report", report, "--", "sleep", "3"], {
      env: { PATH: `${dir}:${process.env.PATH}`, POWERPRINT_NVML_LIBRARY: join(dir, "no-libnvidia-ml.so.1") },
      timeoutMillis: 50_000,
    });
    expect(r.code, r.stderr).toBe(0);
    const rep = reportSchemaV1.parse(JSON.parse(readFileSync(report, "utf8")));
    // `sleep 3` uses almost no CPU; before the fix the helper's second was charged to the job.
    expect(rep.jobs[0].cpuSeconds).toBeLessThan(0.3);
  });

  it("names the scenario as the intensity source even when no interval was recorded (command not found)", async () => {
    const dir = tmp();
    const scenario = join(dir, "scenario.json");
    writeFileSync(scenario, JSON.stringify({ ...CONSTANT_100W, grid: { zone: "FR", intensity: [[0, 60]] } }));
    const report = join(dir, "report.json");
    const r = await runCli(["run", "--quiet", "--sim", scenario, "--report", report, "--", "no-such-command-xyz"]);
    expect(r.code, r.stderr).toBe(127);
    const rep = reportSchemaV1.parse(JSON.parse(readFileSync(report, "utf8")));
    expect(rep.intensity.source).toBe("scenario");
  });
});
