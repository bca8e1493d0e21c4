import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { UsageError } from "../../src/errors.js";
import {
  createFixedProvider,
  createStaticTableProvider,
  intensityTableRows,
  isKnownZone,
  worldAverage,
} from "../../src/grid/static.js";
import { dataPath } from "../../src/paths.js";

const owidPath = fileURLToPath(new URL("../fixtures/grid-api/owid_carbon_intensity_elec_2019plus.csv", import.meta.url));
const scriptPath = fileURLToPath(new URL("../../scripts/grid/build-intensity-table.mjs", import.meta.url));

/** Latest-year value per OWID code or country name, read straight from the OWID extract. */
function owidLatest(key: string): { year: number; value: number } {
  let best: { year: number; value: number } | undefined;
  for (const line of readFileSync(owidPath, "utf8").trim().split("\n").slice(1)) {
    const [country, iso3, year, value] = line.split(",");
    if ((iso3 === key || country === key) && value !== "" && (!best || Number(year) > best.year)) {
      best = { year: Number(year), value: Number(value) };
    }
  }
  if (!best) throw new Error(`no OWID row for ${key}`);
  return best;
}

describe("data/grid_intensity.csv", () => {
  it("is exactly what the build script makes from the OWID extract", () => {
    const built = execFileSync(process.execPath, [scriptPath, owidPath], { encoding: "utf8" });
    expect(built).toBe(readFileSync(dataPath("grid_intensity.csv"), "utf8"));
  });

  it("has one row per zone, plausible values, and the world row", () => {
    const rows = intensityTableRows();
    expect(new Set(rows.map((r) => r.zone)).size).toBe(rows.length);
    expect(rows.length).toBeGreaterThan(200);
    for (const r of rows) {
      expect(r.intensityGramsPerKwh).toBeGreaterThanOrEqual(0);
      expect(r.intensityGramsPerKwh).toBeLessThan(1500);
      expect(r.year).toBeGreaterThanOrEqual(2019);
    }
    expect(rows.some((r) => r.zone === "WORLD")).toBe(true);
  });
});

describe("createStaticTableProvider", () => {
  const provider = createStaticTableProvider();
  const t = new Date("2025-03-01T12:00:00Z");

  it.each([
    ["DE", "DEU"],
    ["de", "DEU"],
    ["DEU", "DEU"],
    ["FR", "FRA"],
    ["US", "USA"],
    ["GB", "GBR"],
    ["UK", "GBR"],
    ["gbr", "GBR"],
    ["EL", "GRC"],
    ["XK", "OWID_KOS"],
    ["WORLD", "World"],
  ])("%s → latest OWID value of %s", async (zone, owidKey) => {
    const expected = owidLatest(owidKey);
    const r = await provider.at(zone, t);
    expect(provider.id).toBe("static-table");
    expect(r.source).toBe("static-table");
    expect(r.zone).toBe(zone);
    expect(r.year).toBe(expected.year);
    expect(r.intensityGramsPerKwh).toBeCloseTo(expected.value, 3);
    expect(r.fallback).toBeUndefined();
  });

  it("uses the country value for a provider sub-zone and says so", async () => {
    const r = await provider.at("US-CAL-CISO", t);
    expect(r.intensityGramsPerKwh).toBeCloseTo(owidLatest("USA").value, 3);
    expect(r.note).toMatch(/sub-zone US-CAL-CISO/);
  });

  it("rejects an unknown zone with a UsageError naming --zone", async () => {
    await expect(provider.at("ZZ", t)).rejects.toThrow(UsageError);
    await expect(provider.at("ZZ", t)).rejects.toThrow(/^--zone: unknown zone 'ZZ': use an ISO 3166 country code/);
    expect(isKnownZone("ZZ")).toBe(false);
    expect(isKnownZone("Germany")).toBe(false);
    expect(isKnownZone("DE")).toBe(true);
    expect(isKnownZone("uk")).toBe(true);
  });
});

describe("fixed provider and world average", () => {
  it("returns the fixed value for any zone", async () => {
    const p = createFixedProvider(123.5);
    const r = await p.at("anything", new Date());
    expect(p.id).toBe("fixed");
    expect(r).toMatchObject({ intensityGramsPerKwh: 123.5, source: "fixed", zone: "anything" });
  });

  it("rejects a negative or NaN fixed value", () => {
    expect(() => createFixedProvider(-1)).toThrow(/--intensity: must be a number >= 0/);
    expect(() => createFixedProvider(Number.NaN)).toThrow(UsageError);
  });

  it("names the world average as such", () => {
    const w = worldAverage();
    const expected = owidLatest("World");
    expect(w.source).toBe("world-average");
    expect(w.fallback).toBe("world-average");
    expect(w.year).toBe(expected.year);
    expect(w.intensityGramsPerKwh).toBeCloseTo(expected.value, 3);
    expect(w.note).toMatch(/world average/);
  });
});
