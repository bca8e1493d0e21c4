import { inspect } from "node:util";
import { Command } from "commander";
import { afterEach, describe, expect, it } from "vitest";
import { UsageError } from "../../src/errors.js";
import { registerGridCommand } from "../../src/cli/grid.js";
import { declareGridFlags, gridConfig } from "../../src/config/grid.js";
import { declareStartFlags, startConfig } from "../../src/config/start.js";
import { staticReading } from "../../src/grid/static.js";
import { formatPlain } from "../../src/units.js";
import { fixture, recordingLogger, startReplayServer, type ReplayServer } from "./replay-server.js";

/** Parses argv through the real commander wiring, then validates. */
function configFor(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const cmd = declareGridFlags(new Command("run").exitOverride());
  cmd.parse(argv, { from: "user" });
  return gridConfig(cmd.opts(), env);
}

/** The grid flags and run's carbon-aware start flags, validated as run does (grid first, then the start against it). */
async function startFor(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const cmd = declareStartFlags(declareGridFlags(new Command("run").exitOverride()));
  cmd.parse(argv, { from: "user" });
  const grid = gridConfig(cmd.opts(), env);
  return { grid, start: await startConfig(cmd.opts(), grid) };
}

describe("grid options", () => {
  it("writes a static-table zone given in lower case as the ISO code (--zone de → DE)", () => {
    const c = configFor(["--zone", "de"]);
    expect(c.provider).toBe("static-table");
    expect(c.zone).toBe("DE");
  });

  it.each([
    [["--intensity", "abc"], "--intensity: must be a number >= 0, got 'abc'"],
    [["--intensity", "-5"], "--intensity: must be a number >= 0, got '-5'"],
    [["--wue", "x"], "--wue: must be a number >= 0"],
    [["--water-intensity", ""], "--water-intensity: must be a number >= 0"],
    [["--price-per-kwh", "0.3", "--currency", "euro"], "--currency: must be an ISO 4217 code"],
    [["--currency", "EUR"], "--currency: needs --price-per-kwh"],
    [["--zone", "Germany"], "--zone: unknown zone 'Germany'"],
    [["--intensity-provider", "foo"], "--intensity-provider: unknown provider 'foo'"],
    [["--intensity-provider", "electricitymaps", "--zone", "DE"], "--intensity-provider: electricitymaps needs ELECTRICITYMAPS_API_KEY"],
    [["--intensity-provider", "watttime", "--zone", "CAISO_NORTH"], "watttime needs WATTTIME_USERNAME and WATTTIME_PASSWORD"],
    [["--intensity-provider", "carbon-aware-sdk", "--zone", "eastus"], "carbon-aware-sdk needs CARBON_AWARE_SDK_URL"],
    [["--intensity-provider", "uk-carbon-intensity"], "--zone: --intensity-provider uk-carbon-intensity needs a --zone"],
    [["--intensity", "100", "--intensity-provider", "watttime"], "--intensity: a fixed value and --intensity-provider watttime exclude each other"],
    [["--zone", "DE", "--start-within", "6h"], "--start-within: needs a forecast"],
    [["--zone", "GB", "--intensity-provider", "uk", "--start-within", "soon"], "--start-within: must be a duration"],
    [["--zone", "DE", "--below", "150"], "--below: needs --start-within"],
  ])("%j → %s", async (argv, message) => {
    let err: unknown;
    try {
      await startFor(argv);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toContain(message);
  });

  it("defaults: static table for a zone, labelled water defaults, no cost", () => {
    const c = configFor(["--zone", "de"]);
    expect(c.provider).toBe("static-table");
    expect(c.wueLitersPerKwh).toBe(0.55);
    expect(c.wueSource).toMatch(/^default: /);
    expect(c.waterIntensityLitersPerKwh).toBe(3.14);
    expect(c.waterIntensitySource).toMatch(/zone DE/);
    expect(c.pricePerKwh).toBeUndefined();
  });

  it("flags win and are labelled as flags", () => {
    const c = configFor(["--intensity", "120.5", "--wue", "0.2", "--water-intensity", "1.1", "--price-per-kwh", "0.25", "--currency", "eur"]);
    expect(c).toMatchObject({
      provider: "fixed",
      fixedIntensityGramsPerKwh: 120.5,
      wueLitersPerKwh: 0.2,
      wueSource: "--wue",
      waterIntensityLitersPerKwh: 1.1,
      pricePerKwh: 0.25,
      currency: "EUR",
    });
    expect(configFor(["--price-per-kwh", "0.1"]).currency).toBe("USD");
  });

  it("carbon-aware start options with a live provider", async () => {
    const c = await startFor(["--zone", "GB", "--intensity-provider", "gb", "--start-within", "1h30m", "--below", "150"]);
    expect(c.grid.provider).toBe("uk-carbon-intensity");
    expect(c.start).toEqual({ withinMillis: 90 * 60_000, belowGramsPerKwh: 150 });
  });

  it("credentials come from the environment and never show in JSON or inspect", () => {
    const env = { ELECTRICITYMAPS_API_KEY: "very-secret-key-0042", WATTTIME_PASSWORD: "pw-0043-secret", WATTTIME_USERNAME: "me" };
    const c = configFor(["--zone", "DE", "--intensity-provider", "electricitymaps"], env);
    expect(c.credentials.electricityMapsApiKey).toBe("very-secret-key-0042");
    for (const text of [JSON.stringify(c), inspect(c, { depth: 10 }), String(JSON.stringify(c.credentials))]) {
      expect(text).not.toContain("very-secret-key-0042");
      expect(text).not.toContain("pw-0043-secret");
    }
    expect(JSON.stringify(c)).toContain("[set]");
  });

  it("has no flag that takes a key", () => {
    const cmd = declareGridFlags(new Command("run"));
    for (const o of cmd.options) expect(o.long ?? "").not.toMatch(/key|token|password|secret/i);
  });
});

let server: ReplayServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe("powerprint grid", () => {
  async function runGrid(argv: string[], env: NodeJS.ProcessEnv, now = new Date()) {
    const out: string[] = [];
    const log = recordingLogger();
    const program = new Command("powerprint").exitOverride();
    registerGridCommand(program, { env, now: () => now, write: (t) => void out.push(t), log });
    await program.parseAsync(["grid", ...argv], { from: "user" });
    return { text: out.join(""), log };
  }

  it("prints the static-table value for a zone", async () => {
    const { text } = await runGrid(["--zone", "FR"], {});
    expect(text).toContain(`${formatPlain(staticReading("FR").intensityGramsPerKwh)} gCO2e/kWh`);
    expect(text).toContain("source static-table");
  });

  it("prints the current value and the forecast from a live provider", async () => {
    const national = fixture<{ data: { intensity: { actual: number; forecast: number } }[] }>("uk-carbonintensity__intensity_national.json");
    server = await startReplayServer((req) => ({ body: national, status: req.path.startsWith("/intensity") ? 200 : 404 }));
    const { text } = await runGrid(["--zone", "GB", "--intensity-provider", "uk-carbon-intensity", "--forecast"], {
      POWERPRINT_UK_CARBON_INTENSITY_URL: server.url,
    }, new Date("2023-07-04T23:40:00Z"));
    expect(text).toContain(`${formatPlain(national.data[0].intensity.actual)} gCO2e/kWh`);
    expect(text).toContain("forecast, 2 points");
    // Periods already past carry their actual value, which wins over the forecast.
    expect(text).toMatch(new RegExp(`lowest: ${formatPlain(Math.min(...national.data.map((d) => d.intensity.actual ?? d.intensity.forecast)))} gCO2e/kWh`));
    expect(server.requests.some((r) => /^\/intensity\/2023-07-04T23:40Z\/fw24h$/.test(r.path))).toBe(true);
  });

  it("labels a fallback when the provider is down", async () => {
    server = await startReplayServer(() => ({ status: 500, body: {} }));
    const { text, log } = await runGrid(["--zone", "DE", "--intensity-provider", "electricitymaps"], {
      ELECTRICITYMAPS_API_KEY: "zz-secret-99",
      POWERPRINT_ELECTRICITYMAPS_URL: server.url,
    });
    expect(text).toContain("FALLBACK static-table");
    expect(text + log.lines.join("\n")).not.toContain("zz-secret-99");
  });
});
