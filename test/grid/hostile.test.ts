// Grid providers that misbehave on purpose: a server that accepts and never answers, a value
// no grid can have, a 20 MB body. Each is refused as a fallback, labelled with its reason in the
// resolver's fallback counts and warned once. Loopback servers only (127.0.0.1, port 0).
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createResolverFromConfig } from "../../src/grid/config.js";
import { gridConfig } from "../../src/config/grid.js";
import { MAX_RESPONSE_BYTES } from "../../src/grid/http.js";
import { staticReading } from "../../src/grid/static.js";
import { fixture, recordingLogger, startReplayServer, type ReplayServer } from "./replay-server.js";

const EM_KEY = "em-key-hostile-1";
const T0 = Date.parse("2025-06-01T12:00:00Z");
let replay: ReplayServer | undefined;
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await replay?.close();
  replay = undefined;
  for (const c of closers.splice(0)) await c();
});

function emResolver(url: string, log = recordingLogger(), timeoutMillis?: number) {
  const config = gridConfig(
    { zone: "DE", intensityProvider: "electricitymaps" },
    { ELECTRICITYMAPS_API_KEY: EM_KEY, POWERPRINT_ELECTRICITYMAPS_URL: `${url}/v3` },
  );
  return { log, resolver: createResolverFromConfig(config, { now: () => new Date(T0), log, timeoutMillis }) };
}
const warnings = (log: ReturnType<typeof recordingLogger>) => log.lines.filter((l) => l.startsWith("warn:"));

describe("a provider that accepts the connection and never answers", () => {
  it("the request meets its deadline: static-table fallback labelled 'timeout', warned once", async () => {
    const sockets: Socket[] = [];
    const tcp: NetServer = createNetServer((s) => void sockets.push(s)); // accepts, reads, never writes
    await new Promise<void>((r) => tcp.listen(0, "127.0.0.1", r));
    closers.push(async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => tcp.close(() => r()));
    });
    const { log, resolver } = emResolver(`http://127.0.0.1:${(tcp.address() as AddressInfo).port}`, recordingLogger(), 200);
    const r = await resolver.at(new Date(T0));
    // The kernel accepted the connection; the server's callback may run only after the deadline.
    await expect.poll(() => sockets.length).toBe(1);
    expect(r.fallback).toBe("static-table");
    expect(r.intensityGramsPerKwh).toBe(staticReading("DE").intensityGramsPerKwh);
    expect(resolver.fallbackCounts()).toEqual({ "static-table (timeout)": 1 });
    expect(resolver.errorCounts()).toEqual({ timeout: 1 });
    expect(warnings(log)).toHaveLength(1);
    expect(warnings(log)[0]).toMatch(/timed out after 200 ms/);
  });
});

describe("physically implausible intensities", () => {
  const body = (value: unknown) => ({ ...fixture<Record<string, unknown>>("electricitymaps__v3_carbon-intensity_latest__lifecycle.json"), carbonIntensity: value });

  it.each([1e9, 2501, -1, "NaN"])("Electricity Maps carbonIntensity %s is refused: fallback labelled, warned once", async (value) => {
    replay = await startReplayServer(() => ({ body: body(value) }));
    const { log, resolver } = emResolver(replay.url);
    const r = await resolver.at(new Date(T0));
    expect(r.fallback).toBe("static-table");
    expect(r.intensityGramsPerKwh).toBe(staticReading("DE").intensityGramsPerKwh);
    const reason = typeof value === "number" && value > 0 ? "implausible value" : "malformed";
    expect(resolver.fallbackCounts()).toEqual({ [`static-table (${reason})`]: 1 });
    expect(warnings(log)).toHaveLength(1);
  });

  it("2,500 g/kWh, the bound itself, is accepted", async () => {
    replay = await startReplayServer(() => ({ body: body(2500) }));
    const r = await emResolver(replay.url).resolver.at(new Date(T0));
    expect(r.fallback).toBeUndefined();
    expect(r.intensityGramsPerKwh).toBe(2500);
  });

  it("WattTime MOER is bounded after the lbs/MWh → g/kWh conversion (1e9 lbs/MWh refused)", async () => {
    const forecast = fixture<{ data: { value: number }[] }>("watttime__v3_historical__doc-example.json");
    for (const p of forecast.data) p.value = 1e9;
    replay = await startReplayServer((req) => (req.path === "/login" ? { body: { token: "t-1" } } : { body: forecast }));
    const log = recordingLogger();
    const config = gridConfig(
      { zone: "CAISO_NORTH", intensityProvider: "watttime" },
      { WATTTIME_USERNAME: "u", WATTTIME_PASSWORD: "p-secret", POWERPRINT_WATTTIME_URL: replay.url },
    );
    const resolver = createResolverFromConfig(config, { now: () => new Date(T0), log });
    const r = await resolver.at(new Date(T0));
    expect(r.fallback).toBeDefined();
    expect(Object.keys(resolver.fallbackCounts())).toEqual([expect.stringMatching(/\(implausible value\)$/)]);
    expect(warnings(log)[0]).toMatch(/outside the plausible range 0\.\.2500; refused/);
  });
});

describe("a 20 MB body", () => {
  const TOTAL = 20 * 1024 * 1024;
  async function bigServer(declareLength: boolean) {
    const sent = { bytes: 0, closed: false };
    const http: HttpServer = createHttpServer((req, res) => {
      res.writeHead(200, { "content-type": "application/json", ...(declareLength ? { "content-length": String(TOTAL) } : {}) });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      res.write("{");
      const pump = () => {
        while (sent.bytes < TOTAL && !res.destroyed) {
          sent.bytes += chunk.length;
          if (!res.write(chunk)) return void res.once("drain", pump);
        }
        if (!res.destroyed) res.end("}");
      };
      res.on("close", () => (sent.closed = true));
      pump();
    });
    await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
    closers.push(async () => {
      http.closeAllConnections();
      await new Promise<void>((r) => http.close(() => r()));
    });
    return { url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`, sent };
  }

  it.each([
    ["streamed without a length", false],
    ["with Content-Length 20 MiB", true],
  ])("%s: refused as 'response too large' without reading it all", async (_name, declare) => {
    const srv = await bigServer(declare);
    const { log, resolver } = emResolver(srv.url);
    const r = await resolver.at(new Date(T0));
    expect(r.fallback).toBe("static-table");
    expect(resolver.fallbackCounts()).toEqual({ "static-table (response too large)": 1 });
    expect(warnings(log)).toHaveLength(1);
    expect(warnings(log)[0]).toMatch(/response too large/);
    // The client hung up: the server could not push the rest. What it did push is bounded by the
    // cap plus the kernel's socket buffers, far from the 20 MiB it had.
    await expect.poll(() => srv.sent.closed).toBe(true);
    expect(srv.sent.bytes).toBeLessThan(TOTAL / 2);
    expect(MAX_RESPONSE_BYTES).toBe(1 << 20);
  });
});
