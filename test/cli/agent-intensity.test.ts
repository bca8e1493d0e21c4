/**
 * The agent keeps the network out of its tick as `run` does: a live intensity provider is asked in
 * the background (src/core/intensity-cache.ts, wired by the pipeline), the tick answers from
 * memory. Against a loopback provider that accepts the connection and never answers, the real
 * agent records interval after interval while that one request is still open (asked inside the
 * tick, no interval could be recorded until the request gave up at its 10 s deadline), prices them
 * with the labelled offline fallback, and exits 0 at SIGTERM with the request still open. No
 * wall-clock windows: what is asserted is the order of events (ticks published before the request
 * ended) and what the report says.
 */
import { afterEach, describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { staticReading } from "../../src/grid/static.js";
import { waitFor } from "../helpers/wait.js";
import { killAgents, startAgent } from "./agent-helpers.js";

const scenario = join(import.meta.dirname, "..", "fixtures", "scenarios", "constant-shared-gpu.json");

let server: Server | undefined;
const sockets: Socket[] = [];
let dir: string | undefined;
afterEach(async () => {
  await killAgents();
  for (const s of sockets.splice(0)) s.destroy();
  if (server) await new Promise<void>((resolve) => server!.close(() => resolve()));
  server = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

/** A loopback provider that accepts every connection and never answers; each connection says whether it is still open. */
async function hangingProvider(): Promise<{ url: string; connections: { open: boolean }[] }> {
  const connections: { open: boolean }[] = [];
  server = createServer((sock) => {
    const c = { open: true };
    connections.push(c);
    sockets.push(sock);
    sock.on("error", () => undefined);
    sock.on("close", () => (c.open = false));
  });
  await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, connections };
}

describe("agent: a live intensity provider that hangs never delays a tick", () => {
  it("intervals are recorded while the provider's request is open, priced with the labelled fallback; SIGTERM exits 0 at once", async () => {
    const provider = await hangingProvider();
    dir = mkdtempSync(join(tmpdir(), "pp-agent-intensity-"));
    const report = join(dir, "agent.json");
    // The scenario has no grid series: the grid config's provider prices its intervals.
    const agent = startAgent(
      ["--sim", scenario, "--intensity-provider", "uk-carbon-intensity", "--zone", "GB", "--listen", "127.0.0.1:0", "--interval", "100ms", "--report", report],
      { POWERPRINT_UK_CARBON_INTENSITY_URL: provider.url },
    );
    const health = await agent.line(/health: (\S+)\/healthz/);
    type View = { timeMillis: number; ready: boolean };
    // Asked inside the tick, an interval could be recorded only once the request gave up (the
    // provider's 10 s HTTP deadline, warned as "timed out after"): count the snapshots published
    // (one per tick) while the request is still open and no such line was written.
    const gaveUp = () => /timed out after/.test(agent.stderr()) || provider.connections.some((c) => !c.open);
    const published = new Set<number>();
    await waitFor("3 intervals recorded while the provider's request is open", async () => {
      if (provider.connections.length === 0) return undefined;
      if (gaveUp()) throw new Error(`the provider's request ended before 3 intervals were recorded:\n${agent.stderr()}`);
      const view = (await (await fetch(`${health}/jobs`)).json()) as View;
      if (view.ready && !gaveUp()) published.add(view.timeMillis);
      return published.size >= 3;
    });
    // Not asked again meanwhile (one refresh in flight at most).
    expect(provider.connections.map((c) => c.open)).toEqual([true]);
    expect(await agent.stop()).toBe(0);

    const written = JSON.parse(readFileSync(report, "utf8"));
    // Every interval so far priced with the zone's static value, counted as a fallback and labelled.
    expect(written.intensity.fallbacks["static-table"]).toBeGreaterThanOrEqual(3);
    const gb = staticReading("GB").intensityGramsPerKwh;
    const job = written.jobs.find((j: { facilityEnergyJoules: number }) => j.facilityEnergyJoules > 0);
    expect(job.emissionsGrams).toBeCloseTo((job.facilityEnergyJoules / 3.6e6) * gb, 9);
    expect(agent.stderr()).not.toMatch(/grid intensity refresh failed/);
  }, 120_000);
});
