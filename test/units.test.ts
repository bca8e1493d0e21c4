import { describe, expect, it } from "vitest";
import { formatEnergy } from "../src/units.js";

describe("formatEnergy (summary energy figures)", () => {
  it.each([
    [0, "0.000 Wh"],
    [3600, "1.000 Wh"],
    [3.6e6 * 1.5, "1.500 kWh"],
    [29.6, "0.00822 Wh"],
    [0.0036, "0.000001 Wh"],
    [1.3e-13, "0.000 Wh"], // float residue of a bucket (jobs + system + idle = E): never "3.6e-17 Wh"
    [-1.3e-13, "0.000 Wh"],
  ])("%s J → %s", (joules, text) => {
    expect(formatEnergy(joules)).toBe(text);
  });
});
