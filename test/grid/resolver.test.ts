import { inspect } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { createResolverFromConfig } from "../../src/grid/config.js";
import { gridConfig } from "../../src/config/grid.js";
import { createIntensityResolver } from "../../src/grid/resolver.js";
import { staticReading, worldAverage } from "../../src/grid/static.js";
import { fixture, fixtureText, recordingLogger, startReplayServer, type RecordedRequest, type Reply, type ReplayServer } from "./replay-server.js";

const EM_KEY = "em-key-7c1e55aa";
const WT_USER = "wt-user";
const WT_PASS = "wt-Pa55-9911";
const SECRETS = [EM_KEY, WT_PASS, Buffer.from(`${WT_USER}:${WT_PASS}`).toString("base64"), "wt-token-1"];

let server: ReplayServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

type Fault = "none" | "500" | "429" | "timeout" | "malformed" | "wrong-key";

interface ProviderCase {
  name: string;
  zone: string;
  /** The path of the data request (the one faults hit). */
  dataPath: string;
  good: () => Reply;
  env: (url: string) => NodeJS.ProcessEnv;
  /** What the wrong-key fault looks like for this provider. */
  wrongKey: (req: RecordedRequest) => Reply | undefined;
}

const cases: ProviderCase[] = [
  {
    name: "electricitymaps",
    zone: "DE",
    dataPath: "/v3/carbon-intensity/latest",
    good: () => ({ body: fixture("electricitymaps__v3_carbon-intensity_latest__lifecycle.json") }),
    env: (url) => ({ ELECTRICITYMAPS_API_KEY: EM_KEY, POWERPRINT_ELECTRICITYMAPS_URL: `${url}/v3` }),
    wrongKey: () => ({ status: 401, body: { message: `Invalid auth-token ${EM_KEY}` } }),
  },
  {
    name: "watttime",
    zone: "CAISO_NORTH",
    dataPath: "/v3/forecast",
    good: () => ({ body: fixture("watttime__v3_historical__doc-example.json") }),
    env: (url) => ({ WATTTIME_USERNAME: WT_USER, WATTTIME_PASSWORD: WT_PASS, POWERPRINT_WATTTIME_URL: url }),
    wrongKey: (req) => (req.path === "/login" ? { status: 403, body: { error: "invalid credentials" } } : undefined),
  },
  {
    name: "uk-carbon-intensity",
    zone: "GB",
    dataPath: "/intensity",
    good: () => ({ body: fixture("uk-carbonintensity__intensity_national.json") }),
    env: (url) => ({ POWERPRINT_UK_CARBON_INTENSITY_URL: url }),
    // The GB API has no key; a 4xx stands in for "wrong key".
    wrongKey: () => ({ status: 403, body: { error: { code: "403", message: "Forbidden" } } }),
  },
  {
    name: "carbon-aware-sdk",
    zone: "eastus",
    dataPath: "/emissions/bylocation",
    good: () => ({ body: fixture("carbon-aware-sdk__emissions_bylocation__doc-example.json") }),
    env: (url) => ({ CARBON_AWARE_SDK_URL: url }),
    wrongKey: () => ({ status: 401, body: { title: "Unauthorized" } }),
  },
];

/**
 * The global fetch, with the resolver's own deadline (its AbortSignal) kept only while `hanging()`:
 * this test is about what the resolver does with each fault, not about deadlines (hostile.test.ts
 * is), and a 300 ms deadline on every answer turned a slow HTTP 500 into "timeout" on a loaded
 * machine. The hang still meets the resolver's real 300 ms deadline.
 */
function deadlineOnlyWhenHanging(hanging: () => boolean): typeof fetch {
  return (input, init) => globalThis.fetch(input, hanging() ? init : { ...init, signal: undefined });
}

function faultyServer(c: ProviderCase) {
  let fault: Fault = "none";
  const handler = (req: RecordedRequest): Reply => {
    if (fault === "wrong-key") {
      const r = c.wrongKey(req);
      if (r) return r;
    }
    if (req.path === "/login") return { body: { token: "wt-token-1" } };
    if (req.path !== c.dataPath) return { status: 404, body: { error: `no route ${req.path}` } };
    switch (fault) {
      case "500":
        return { status: 500, body: { error: "internal" } };
      case "429":
        return { status: 429, headers: { "retry-after": "120" }, body: { error: "slow down" } };
      case "timeout":
        return { hang: true };
      case "malformed":
        return { body: '{"zone": "DE", "carbonIntensity": 3' };
      default:
        return c.good();
    }
  };
  return { handler, setFault: (f: Fault) => void (fault = f), faulted: () => fault !== "none" };
}

function expectNoSecrets(texts: string[]): void {
  for (const t of texts) for (const s of SECRETS) expect(t).not.toContain(s);
}

const faults: Exclude<Fault, "none">[] = ["500", "429", "timeout", "malformed", "wrong-key"];

describe.each(cases)("resolver over $name", (c) => {
  it.each(faults)("fault %s after a good value: stale, labelled and counted; the run goes on; no secret printed", async (fault) => {
    const s = faultyServer(c);
    server = await startReplayServer(s.handler);
    const log = recordingLogger();
    let clock = Date.parse("2025-06-01T12:00:00Z");
    const config = gridConfig({ zone: c.zone, intensityProvider: c.name }, c.env(server.url));
    const resolver = createResolverFromConfig(config, { now: () => new Date(clock), log, timeoutMillis: 300, fetch: deadlineOnlyWhenHanging(() => fault === "timeout" && s.faulted()) });

    const first = await resolver.at(new Date(clock));
    expect(first.source).toBe(c.name);
    expect(first.fallback).toBeUndefined();
    const dataRequests = () => server!.count(c.dataPath);
    expect(dataRequests()).toBe(1);

    s.setFault(fault);
    clock += 60 * 60_000; // past any validity: the resolver must ask again
    const r1 = await resolver.at(new Date(clock));
    expect(r1.fallback).toBe("stale");
    expect(r1.staleAgeSeconds).toBe(3600);
    expect(r1.intensityGramsPerKwh).toBe(first.intensityGramsPerKwh);
    // Further ticks within the back-off do not hit the provider but are still counted.
    const before = server.requests.length;
    for (let i = 0; i < 3; i++) {
      clock += 1000;
      const r = await resolver.at(new Date(clock));
      expect(r.fallback).toBe("stale");
    }
    expect(server.requests.length).toBe(before);
    const kind = { "500": "http", "429": "rate-limit", timeout: "timeout", malformed: "malformed", "wrong-key": "auth" }[fault];
    // The fallback is counted with the reason the provider's answer was not used.
    expect(resolver.fallbackCounts()).toEqual({ [`stale (${kind})`]: 4 });
    expect(resolver.errorCounts()).toEqual({ [kind]: 1 });
    const warnings = log.lines.filter((l) => l.startsWith("warn:"));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(c.name);
    if (fault === "wrong-key") expect(warnings[0]).toMatch(/credentials/);
    if (fault === "429") expect(warnings[0]).toMatch(/retrying in 120 s/);
    expectNoSecrets([...log.lines, resolver.describe(), JSON.stringify(config), inspect(config, { depth: 5 }), JSON.stringify(r1)]);
  });

  it("never a good value: static table for a country zone, else the world average, counted", async () => {
    const s = faultyServer(c);
    s.setFault("500");
    server = await startReplayServer(s.handler);
    let clock = Date.parse("2025-06-01T12:00:00Z");
    const config = gridConfig({ zone: c.zone, intensityProvider: c.name }, c.env(server.url));
    const resolver = createResolverFromConfig(config, { now: () => new Date(clock), log: recordingLogger() });
    const r = await resolver.at(new Date(clock));
    clock += 1000;
    await resolver.at(new Date(clock));
    const knownToTable = ["DE", "GB"].includes(c.zone);
    if (knownToTable) {
      expect(r.fallback).toBe("static-table");
      expect(r.intensityGramsPerKwh).toBe(staticReading(c.zone).intensityGramsPerKwh);
      expect(resolver.fallbackCounts()).toEqual({ "static-table (http)": 2 });
    } else {
      expect(r.fallback).toBe("world-average");
      expect(r.intensityGramsPerKwh).toBe(worldAverage().intensityGramsPerKwh);
      expect(resolver.fallbackCounts()).toEqual({ "world-average (http)": 2 });
    }
  });
});

describe("resolver caching and retry", () => {
  it("asks the provider at most once per validity period, whatever the tick rate", async () => {
    // Electricity Maps values are hourly: 3600 one-second ticks inside one hour → one request.
    const body = fixture<{ datetime: string }>("electricitymaps__v3_carbon-intensity_latest__lifecycle.json");
    server = await startReplayServer(() => ({ body }));
    const start = Date.parse(body.datetime);
    let clock = start;
    const config = gridConfig({ zone: "US-MIDW-MISO", intensityProvider: "electricitymaps" }, {
      ELECTRICITYMAPS_API_KEY: EM_KEY,
      POWERPRINT_ELECTRICITYMAPS_URL: `${server.url}/v3`,
    });
    const resolver = createResolverFromConfig(config, { now: () => new Date(clock) });
    for (let i = 0; i < 3600; i++) {
      clock = start + i * 1000;
      await resolver.at(new Date(clock));
    }
    expect(server.requests).toHaveLength(1);
    clock = start + 3_600_000; // next hour
    await resolver.at(new Date(clock));
    expect(server.requests).toHaveLength(2);
    expect(resolver.fallbackCounts()).toEqual({});
  });

  it("honours Retry-After: no request before it has passed, one after", async () => {
    let limited = true;
    server = await startReplayServer(() =>
      limited ? { status: 429, headers: { "retry-after": "120" }, body: {} } : { body: fixture("uk-carbonintensity__intensity_national.json") },
    );
    let clock = Date.parse("2023-07-04T23:35:00Z");
    const config = gridConfig({ zone: "GB", intensityProvider: "uk-carbon-intensity" }, { POWERPRINT_UK_CARBON_INTENSITY_URL: server.url });
    const resolver = createResolverFromConfig(config, { now: () => new Date(clock) });
    expect((await resolver.at(new Date(clock))).fallback).toBe("static-table");
    limited = false;
    clock += 119_000;
    expect((await resolver.at(new Date(clock))).fallback).toBe("static-table");
    expect(server.requests).toHaveLength(1);
    clock += 2000;
    const r = await resolver.at(new Date(clock));
    expect(server.requests).toHaveLength(2);
    expect(r.fallback).toBeUndefined();
    expect(r.source).toBe("uk-carbon-intensity");
  });

  it("a wrong key stops asking for the rest of the run", async () => {
    server = await startReplayServer(() => ({ status: 401, body: {} }));
    let clock = Date.parse("2025-01-01T00:00:00Z");
    const log = recordingLogger();
    const config = gridConfig({ zone: "FR", intensityProvider: "electricitymaps" }, {
      ELECTRICITYMAPS_API_KEY: EM_KEY,
      POWERPRINT_ELECTRICITYMAPS_URL: `${server.url}/v3`,
    });
    const resolver = createResolverFromConfig(config, { now: () => new Date(clock), log });
    for (let i = 0; i < 10; i++) {
      clock += 3_600_000;
      expect((await resolver.at(new Date(clock))).fallback).toBe("static-table");
    }
    expect(server.requests).toHaveLength(1);
    expect(log.lines.filter((l) => l.startsWith("warn:"))).toHaveLength(1);
    expect(resolver.fallbackCounts()).toEqual({ "static-table (auth)": 10 });
  });

  it("a stale value older than maxStale gives way to the static table", async () => {
    let up = true;
    server = await startReplayServer(() => (up ? { body: fixture("electricitymaps__v3_carbon-intensity_latest__direct.json") } : { status: 503, body: {} }));
    let clock = Date.parse("2025-01-01T00:00:00Z");
    const { createElectricityMapsProvider } = await import("../../src/grid/electricitymaps.js");
    const resolver = createIntensityResolver({
      provider: createElectricityMapsProvider({ apiKey: EM_KEY, baseUrl: `${server.url}/v3` }),
      zone: "US",
      now: () => new Date(clock),
      maxStaleMillis: 2 * 3_600_000,
      retryAfterMillis: 1000,
    });
    await resolver.at(new Date(clock));
    up = false;
    clock += 3_600_000;
    expect((await resolver.at(new Date(clock))).fallback).toBe("stale");
    clock += 3_600_001;
    const r = await resolver.at(new Date(clock));
    expect(r.fallback).toBe("static-table");
    expect(r.intensityGramsPerKwh).toBe(staticReading("US").intensityGramsPerKwh);
    expect(resolver.fallbackCounts()).toEqual({ "stale (http)": 1, "static-table (http)": 1 });
  });
});

describe("resolver without a live provider", () => {
  it("no zone, no value: the world average, named and counted", async () => {
    const resolver = createIntensityResolver({});
    const r = await resolver.at(new Date());
    await resolver.at(new Date());
    expect(r.source).toBe("world-average");
    expect(r.fallback).toBe("world-average");
    expect(resolver.fallbackCounts()).toEqual({ "world-average": 2 });
    expect(resolver.describe()).toMatch(/world average/);
  });

  it("a zone: the static table, not a fallback", async () => {
    const resolver = createIntensityResolver({ zone: "FR" });
    const r = await resolver.at(new Date());
    expect(r).toMatchObject({ source: "static-table", intensityGramsPerKwh: staticReading("FR").intensityGramsPerKwh });
    expect(r.fallback).toBeUndefined();
    expect(resolver.fallbackCounts()).toEqual({});
  });

  it("a fixed value wins", async () => {
    const resolver = createIntensityResolver({ zone: "DE", fixedGramsPerKwh: 42 });
    expect(await resolver.at(new Date())).toMatchObject({ source: "fixed", intensityGramsPerKwh: 42 });
    expect(resolver.describe()).toMatch(/fixed 42/);
  });

  it("an unknown zone for the static table is a usage error at once", () => {
    expect(() => createIntensityResolver({ zone: "XX" })).toThrow(/--zone: unknown zone 'XX'/);
  });
});

// The CASDK forecast fixture must stay unparseable as stored (the tests strip its elision).
it("fixture sanity: the CASDK forecast example is not valid JSON upstream", () => {
  expect(() => JSON.parse(fixtureText("carbon-aware-sdk__emissions_forecasts_current__doc-example.jsonc.txt"))).toThrow();
});
