// What `powerprint grid` prints, as a user runs it: one line per reading (the static table's
// value used to be printed twice, once as the reading and once as the resolver's description),
// and a live provider that cannot be reached is said once, with its cause and without promising
// a retry the command (which exits at once) never makes.
import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.js";
import { staticReading } from "../../src/grid/static.js";
import { formatPlain } from "../../src/units.js";

/** A loopback port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe("powerprint grid", () => {
  it("--zone DE: the reading once, on one line", async () => {
    const r = await runCli(["grid", "--zone", "DE"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe("");
    const value = `${formatPlain(staticReading("DE").intensityGramsPerKwh)} gCO2e/kWh`;
    expect(r.stdout.trim().split("\n")).toHaveLength(1);
    expect(r.stdout.split(value)).toHaveLength(2);
    expect(r.stdout).toMatch(/^\d+ gCO2e\/kWh, zone DE, source static-table, year \d{4}, average \(annual average of Germany/);
  });

  it("UK Carbon Intensity unreachable: one warning naming the cause, no retry promised; the fallback and its chain", async () => {
    const port = await closedPort();
    const r = await runCli(["grid", "--zone", "GB", "--intensity-provider", "uk-carbon-intensity"], { env: { POWERPRINT_UK_CARBON_INTENSITY_URL: `http://127.0.0.1:${port}` } });
    expect(r.code, r.stderr).toBe(0);
    const warnings = r.stderr.trim().split("\n");
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^powerprint: warning: grid intensity: uk-carbon-intensity: .*ECONNREFUSED.*; using the fallback below$/);
    expect(r.stderr).not.toMatch(/retry/);
    const lines = r.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^\d+ gCO2e\/kWh, zone GB, source static-table, .*FALLBACK static-table/);
    expect(lines[1]).toMatch(/^\(uk-carbon-intensity zone GB \(fallbacks: /);
    expect(lines).toHaveLength(2);
  });
});
