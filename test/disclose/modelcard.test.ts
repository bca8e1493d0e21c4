// The model card block written into README front matters of every shape: only the block changes.
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { modelCardYaml, writeIntoFrontMatter, type ModelCardEmissions } from "../../src/disclose/modelcard.js";

const m: ModelCardEmissions = {
  emissionsGrams: 1234.56789,
  embodiedGrams: 12.5,
  runs: 4,
  failedRuns: 1,
  source: "powerprint 0.1.0",
  trainingType: "pre-training",
  geographicalLocation: "Germany (DE)",
  hardwareUsed: "8 x NVIDIA H100 80GB HBM3",
};
const value = { emissions: 1234.56789, source: "powerprint 0.1.0", training_type: "pre-training", geographical_location: "Germany (DE)", hardware_used: "8 x NVIDIA H100 80GB HBM3" };

/** The front matter's parsed YAML. */
function front(text: string): Record<string, unknown> {
  const body = text.replace(/^\uFEFF?---\r?\n/, "");
  return parse(body.slice(0, body.search(/^---\s*$/m))) as Record<string, unknown>;
}

describe("writeIntoFrontMatter", () => {
  it("adds the block at the end of a front matter without one; the rest is the same bytes", () => {
    const readme = "---\nlicense: apache-2.0\nlibrary_name: transformers\n---\n# Model\n\ntext\n";
    const out = writeIntoFrontMatter("README.md", readme, m);
    const block = modelCardYaml(m);
    expect(out).toBe(`---\nlicense: apache-2.0\nlibrary_name: transformers\n${block}---\n# Model\n\ntext\n`);
    expect(front(out)).toEqual({ license: "apache-2.0", library_name: "transformers", co2_eq_emissions: value });
  });

  it("replaces an existing block (its comment and nested lines too) between other keys", () => {
    const readme = "---\ntags:\n- a\nco2_eq_emissions:\n  # old\n  emissions: 7\n\n  source: \"x\"\nmetrics:\n  - accuracy\n---\nbody\n";
    const out = writeIntoFrontMatter("README.md", readme, m);
    expect(out).toBe(`---\ntags:\n- a\n${modelCardYaml(m)}metrics:\n  - accuracy\n---\nbody\n`);
    expect(front(out).co2_eq_emissions).toEqual(value);
  });

  it("replaces a one-line (flow) value", () => {
    const out = writeIntoFrontMatter("README.md", "---\nco2_eq_emissions: {emissions: 3}\nlicense: mit\n---\n", m);
    expect(out).toBe(`---\n${modelCardYaml(m)}license: mit\n---\n`);
  });

  it("keeps CRLF line ends", () => {
    const readme = "---\r\nlicense: mit\r\n---\r\n# Model\r\n";
    const out = writeIntoFrontMatter("README.md", readme, m);
    expect(out).toBe(`---\r\nlicense: mit\r\n${modelCardYaml(m, "\r\n")}---\r\n# Model\r\n`);
    expect(out.replace(/\r\n/g, "").includes("\n")).toBe(false);
  });

  it("a README without front matter gets one at the top, the rest untouched", () => {
    const readme = "# Model\n\n---\n\nA horizontal rule above.\n";
    const out = writeIntoFrontMatter("README.md", readme, m);
    expect(out).toBe(`---\n${modelCardYaml(m)}---\n${readme}`);
  });

  it("refuses a front matter that does not parse (one line naming the file)", () => {
    expect(() => writeIntoFrontMatter("my/README.md", "---\nlicense: [mit\n---\n", m)).toThrow(/^my\/README\.md: its YAML front matter does not parse/);
  });

  it("the block says what it counts; training_type only when given", () => {
    const y = modelCardYaml({ ...m, trainingType: undefined, failedRuns: 0, runs: 1 });
    expect(y).toMatch(/^co2_eq_emissions:\n {2}# 1 run \(the whole experiment\): operational CO2e of the jobs, g; embodied 12\.50 g not included\n {2}emissions: 1234\.56789\n/);
    expect(parse(y).co2_eq_emissions.training_type).toBeUndefined();
  });
});
