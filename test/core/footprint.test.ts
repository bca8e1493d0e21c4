import { describe, expect, it } from "vitest";
import {
  MILLIS_PER_YEAR,
  costAmount,
  embodiedDefaultFor,
  embodiedEmissionsGrams,
  facilityEnergyJoules,
  operationalEmissionsGrams,
  waterBreakdown,
  waterIntensityDefaultFor,
  waterLiters,
  wueDefault,
} from "../../src/core/footprint.js";
import { loadEmbodiedTable } from "../../src/pipeline/footprint.js";

// The shipped table (data/embodied.json), loaded at the edge and passed in as every caller does.
const table = loadEmbodiedTable();

// Hand-computed examples: 1 kWh = 3.6e6 J.
describe("footprint arithmetic (hand-computed)", () => {
  it.each([
    // itJ, pue, facilityJ
    [3_600_000, 1.2, 4_320_000],
    [0, 1.5, 0],
    [1000, 1, 1000],
  ])("facility energy of %d J at PUE %d is %d J", (itJ, pue, expected) => {
    expect(facilityEnergyJoules(itJ, pue)).toBeCloseTo(expected, 9);
  });

  it.each([
    // facilityJ, g/kWh, grams
    [3_600_000, 380, 380], // 1 kWh at 380 g/kWh
    [4_320_000, 100, 120], // 1.2 kWh at 100 g/kWh
    [1_800_000, 44.179, 22.0895], // 0.5 kWh in France 2024
  ])("emissions of %d J at %d g/kWh = %d g", (facJ, intensity, expected) => {
    expect(operationalEmissionsGrams(facJ, intensity)).toBeCloseTo(expected, 9);
  });

  it("water: 2 kWh IT at PUE 1.25 with WUE 0.5 and EWIF 3.14 → 1 L on site + 7.85 L off site", () => {
    const itJ = 7_200_000; // 2 kWh
    const facJ = facilityEnergyJoules(itJ, 1.25); // 2.5 kWh
    const w = waterBreakdown(itJ, facJ, 0.5, 3.14);
    expect(w.onSiteLiters).toBeCloseTo(1.0, 12);
    expect(w.offSiteLiters).toBeCloseTo(7.85, 12);
    expect(w.totalLiters).toBeCloseTo(8.85, 12);
    expect(waterLiters(itJ, facJ, 0.5, 3.14)).toBeCloseTo(8.85, 12);
  });

  it("embodied (SCI M): a 150 kg GPU over 4 years, held 6 h at full share → 25.667 g", () => {
    // 150000 g × 6 h / (4 × 8766 h) = 150000 × 6 / 35064 = 25.6674...
    const g = embodiedEmissionsGrams({
      totalEmbodiedGrams: 150_000,
      lifetimeMillis: 4 * MILLIS_PER_YEAR,
      heldMillis: 6 * 3_600_000,
      share: 1,
    });
    expect(g).toBeCloseTo(25.66735, 4);
  });

  it("embodied scales with share and is 0 for a zero lifetime", () => {
    const base = { totalEmbodiedGrams: 1000, lifetimeMillis: 1000, heldMillis: 100 };
    expect(embodiedEmissionsGrams({ ...base, share: 0.25 })).toBeCloseTo(25, 12);
    expect(embodiedEmissionsGrams({ ...base, lifetimeMillis: 0, share: 1 })).toBe(0);
  });

  it("cost: 12.5 kWh facility energy at 0.30 per kWh = 3.75", () => {
    expect(costAmount(12.5 * 3_600_000, 0.3)).toBeCloseTo(3.75, 12);
  });
});

describe("documented defaults", () => {
  it("GPU default from Cloud Carbon Footprint, A100 from Chien et al. 2023", () => {
    const gpu = embodiedDefaultFor(table, "gpu", "NVIDIA H100 80GB HBM3");
    expect(gpu).toMatchObject({ totalGrams: 150_000, lifetimeYears: 4, matchedBy: "kind" });
    expect(gpu.source).toMatch(/Cloud Carbon Footprint/);
    const a100 = embodiedDefaultFor(table, "gpu", "NVIDIA A100-SXM4-80GB");
    expect(a100).toMatchObject({ totalGrams: 318_000, matchedBy: "model" });
    expect(a100.source).toMatch(/Chien/);
    expect(embodiedDefaultFor(table, "cpu").totalGrams).toBe(100_000);
  });

  it("memory has no invented default, and says so", () => {
    const mem = embodiedDefaultFor(table, "memory");
    expect(mem.totalGrams).toBe(0);
    expect(mem.source).toMatch(/no per-device default/);
    expect(() => embodiedDefaultFor(table, "toaster")).toThrow(/toaster/);
  });

  it("water defaults name their source and the zone they stand in for", () => {
    const w = waterIntensityDefaultFor("DE");
    expect(w.litersPerKwh).toBe(3.14);
    expect(w.source).toMatch(/Li et al\. 2023/);
    expect(w.source).toMatch(/zone DE/);
    expect(wueDefault().source).toMatch(/--wue/);
  });
});
