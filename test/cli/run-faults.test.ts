/**
 * Issue 9, the rows that live in `run`: runtime trouble never harms the job nor loses the figures.
 * Real CLI against loopback servers that accept and never answer, a port already taken, a report
 * folder removed by the command itself, a command line with newlines. No wall-clock windows: the
 * assertions are on what powerprint counted and reported.
 */
import { afterEach, describe, expect, it } from "vitest";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli } from "../helpers/cli.js";

const dirs: string[] = [];
const servers: { server: Server; sockets: Socket[] }[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    for (const sock of s.sockets) sock.destroy();
    await new Promise<void>((resolve) => s.server.close(() => resolve()));
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), "pp-faults-"));
  dirs.push(d);
  return d;
};

/** A TCP server on loopback that accepts every connection and never answers (a hung provider or collector). */
async function silentServer(): Promise<{ url: string; port: number; connections: () => number; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  const server = createServer((sock) => {
    sockets.push(sock);
    sock.on("error", () => undefined);
  });
  servers.push({ server, sockets });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, port, connections: () => sockets.length, sockets };
}

/** One simulated CPU at a constant 100 W. */
function constantScenario(dir: string): string {
  const file = join(dir, "scenario.json");
  writeFileSync(file, JSON.stringify({ name: "constant-100w", durationSeconds: 600, devices: [{ id: "cpu0", kind: "cpu", idleWatts: 100, maxWatts: 100, cores: 4 }] }));
  return file;
}

interface Report {
  complete: boolean;
  sampler: { ticks: number; skippedTicks: number };
  intensity: { source: string; fallbacks: Record<string, number> };
  exportFailures: Record<string, number>;
  totals: { energyJoules: number };
}
const readReport = (f: string) => JSON.parse(readFileSync(f, "utf8")) as Report;

describe("network never inside the tick", () => {
  it("a grid provider that accepts and never answers: no tick is skipped, the run ends with the command, intervals priced by the labelled offline value", async () => {
    const dir = tmp();
    const grid = await silentServer();
    const report = join(dir, "report.json");
    const r = await runCli(
      ["run", "--quiet", "--sim", constantScenario(dir), "--intensity-provider", "uk-carbon-intensity", "--zone", "GB", "--interval", "100ms", "--report", report, "--", "sleep", "1"],
      { env: { POWERPRINT_UK_CARBON_INTENSITY_URL: grid.url }, timeoutMillis: 60_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    const rep = readReport(report);
    // Before the fix each tick awaited the request: ticks piled up behind it and were skipped.
    expect(rep.sampler.skippedTicks).toBe(0);
    expect(rep.sampler.ticks).toBeGreaterThanOrEqual(3);
    expect(grid.connections()).toBeGreaterThanOrEqual(1);
    // Every interval was priced while the provider was silent: by the static table for GB, counted.
    expect(rep.intensity.source).toBe("static-table");
    expect(rep.intensity.fallbacks["static-table"]).toBeGreaterThanOrEqual(rep.sampler.ticks - 1);
    expect(rep.totals.energyJoules).toBeGreaterThan(0);
  });
});

describe("a short job is never held by its exporters", () => {
  it("`run -- true` against an OTLP receiver that accepts and never answers: exits once --flush-timeout passes, the timeout counted in the report and said", async () => {
    const dir = tmp();
    const otlp = await silentServer();
    const report = join(dir, "report.json");
    const r = await runCli(["run", "--sim", constantScenario(dir), "--report", report, "--otlp", otlp.url, "--flush-timeout", "300ms", "--", "true"], {
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: "", OTEL_METRICS_EXPORTER: "", OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: "" },
      timeoutMillis: 60_000,
    });
    expect(r.code, r.stderr).toBe(0);
    // The receiver got the final export's connection and never answers (this server cannot):
    // powerprint exited while it was still silent, on its own deadline.
    expect(otlp.connections()).toBeGreaterThanOrEqual(1);
    const rep = readReport(report);
    expect(rep.exportFailures["otlp:timeout"]).toBe(1);
    expect(rep.complete).toBe(true);
    expect(r.stderr).toMatch(/otlp: final export did not finish within 0\.3 s/);
    expect(r.stderr).toMatch(/export failures: .*otlp:timeout×1/);
  });
});

describe("runtime trouble warns and measures on", () => {
  it("--prometheus on a taken port: the command runs, powerprint warns, exit code the command's", async () => {
    const taken = await silentServer();
    const r = await runCli(["run", "--prometheus", `127.0.0.1:${taken.port}`, "--", "sh", "-c", "echo ran; exit 3"], { timeoutMillis: 30_000 });
    expect(r.stdout).toBe("ran\n");
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/--prometheus: cannot listen on 127\.0\.0\.1:\d+: EADDRINUSE: measuring on without the Prometheus endpoint/);
    expect(r.stderr).toContain("powerprint summary");
  });

  it("the report's folder removed while the command runs: the summary is still printed, the exit code is the command's", async () => {
    const dir = tmp();
    const sub = join(dir, "gone");
    mkdirSync(sub);
    const r = await runCli(["run", "--sim", constantScenario(dir), "--report", join(sub, "r.json"), "--interval", "100ms", "--", "sh", "-c", `rm -rf '${sub}'; exit 3`]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/could not write the report to .*gone\/r\.json: .*ENOENT.*the summary below has the figures/);
    expect(r.stderr).toContain("powerprint summary");
    expect(r.stderr).toMatch(/^host +\S+ \S*Wh IT/m);
  });

  it("a command line with newlines: the summary's job line stays one line (escaped)", async () => {
    const dir = tmp();
    const r = await runCli(["run", "--sim", constantScenario(dir), "--", "sh", "-c", "true\necho injected-line"]);
    expect(r.code, r.stderr).toBe(0);
    const jobLine = r.stderr.split("\n").find((l) => l.startsWith("job "));
    // The newline is escaped where the name is shown (the name may be shortened after it).
    expect(jobLine).toContain("sh -c true\\n");
    expect(r.stderr.split("\n").some((l) => l.startsWith("echo injected-line"))).toBe(false);
  });
});
