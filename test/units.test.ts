import { describe, expect, it } from "vitest";
import { formatCount, formatDuration, formatEnergy, formatGrams, formatPlain, formatSi, parseEnergyJoules, parseMassGrams } from "../src/units.js";

// One number format for everything people read: 3 significant digits, SI prefix, no exponent.
describe("formatSi", () => {
  it.each([
    [0, "0 W"],
    [1, "1.00 W"],
    [12, "12.0 W"],
    [350, "350 W"],
    [999.4, "999 W"],
    [999.6, "1.00 kW"], // rounds up into the next prefix, never "1000 W"
    [1234, "1.23 kW"],
    [0.000412, "412 µW"],
    [3.48e-7, "348 nW"], // the "3.48e-7 g"
    [-0.5, "-500 mW"],
    [1e-13, "0 W"], // float residue
    [1.234e16, "12.3 PW"],
  ])("%s → %s", (v, text) => {
    expect(formatSi(v, "W")).toBe(text);
    expect(text).not.toMatch(/e[+-]?\d/);
  });
});

describe("formatEnergy / formatGrams / formatDuration / formatPlain", () => {
  it.each([
    [0, "0 Wh"],
    [3600, "1.00 Wh"],
    [3.6e6 * 1.5, "1.50 kWh"],
    [29.6, "8.22 mWh"],
    [1.3e-13, "0 Wh"], // float residue of a bucket (jobs + system + idle = E): never "3.6e-17 Wh"
  ])("energy %s J → %s", (j, text) => expect(formatEnergy(j)).toBe(text));
  it.each([
    [0.000412, "412 µg"],
    [12.34, "12.3 g"],
    [1500, "1.50 kg"],
    [2e6, "2.00 t"],
  ])("mass %s g → %s", (g, text) => expect(formatGrams(g)).toBe(text));
  it.each([
    [4.2, "4.20 s"],
    [90, "1.50 min"],
    [4000, "1.11 h"],
    [30 * 86400, "30.0 d"],
  ])("duration %s s → %s", (s, text) => expect(formatDuration(s)).toBe(text));
  it.each([
    [0.000123, "0.000123"],
    [1234.5, "1230"],
    [1.5, "1.50"],
    [0, "0"],
  ])("plain %s → %s", (v, text) => expect(formatPlain(v)).toBe(text));
});

// Counts of work (samples, tokens, requests) are never rounded to 3 digits; a fraction (a custom
// counter's) is kept, not dropped.
describe("formatCount", () => {
  it.each([
    [0, "0"],
    [7, "7"],
    [4096, "4,096"],
    [98_304, "98,304"],
    [1_234_567_890, "1,234,567,890"],
    [1234.5, "1,234.5"],
    [0.25, "0.25"],
    [2.0004, "2"],
    [999.9996, "1,000"],
    [-1234, "-1,234"],
  ])("%s → %s", (n, text) => expect(formatCount(n)).toBe(text));
});

describe("parseEnergyJoules / parseMassGrams (budget flags)", () => {
  it.each([
    ["5kWh", 5 * 3.6e6],
    ["5 kwh", 5 * 3.6e6],
    ["500Wh", 500 * 3600],
    ["2.5MJ", 2.5e6],
    ["1MWh", 3.6e9],
    ["100mWh", 360],
    ["1e3J", 1000],
  ])("%s → %s J", (t, j) => expect(parseEnergyJoules(t)).toBeCloseTo(j, 6));
  it.each(["5", "kWh", "-1kWh", "0kWh", "5 parsecs", "5 kWh extra", "1mj"])("rejects %j", (t) => expect(parseEnergyJoules(t)).toBeUndefined());
  it.each([
    ["2kg", 2000],
    ["500 g", 500],
    ["1.5t", 1.5e6],
    ["20mg", 0.02],
  ])("%s → %s g", (t, g) => expect(parseMassGrams(t)).toBeCloseTo(g, 9));
  it.each(["2", "2 kWh", "2KG"])("rejects mass %j", (t) => expect(parseMassGrams(t)).toBeUndefined());
});
