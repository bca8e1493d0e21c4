// The strict Prometheus text reader (src/serving/exposition.ts) on the real captures, on generated
// valid bodies (rendered the way the exposition format writes them, read back equal), and on
// the bodies a wrong endpoint gives (each rejected, naming its line).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseExposition } from "../../src/serving/exposition.js";
import { fixtures } from "./endpoint.js";

/** Sample lines of a body as a plain reading sees them: not blank, not a comment. */
const sampleLines = (text: string) => text.split("\n").filter((l) => l.trim() !== "" && !l.trimStart().startsWith("#"));

describe("parseExposition on the real captures", () => {
  for (const [name, text] of fixtures()) {
    it(`${name}: every line valid, every sample line counted`, () => {
      const body = parseExposition(text);
      expect(body.status).toBe("ok");
      if (body.status !== "ok") return;
      expect(body.sampleCount).toBe(sampleLines(text).length);
      const kept = [...body.samples.values()].reduce((a, l) => a + l.length, 0);
      expect(kept).toBe(body.sampleCount);
      // Every TYPE line's family is recorded with its type.
      for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) expect(body.types.get(m[1])).toBe(m[2]);
    });
  }

  it("keeps only the wanted sample names, still validating every line", () => {
    const text = fixtures().get("vllm__v0-engine_opt-125m__datadog.prom")!;
    const body = parseExposition(text, (n) => n === "vllm:prompt_tokens_total");
    expect(body.status).toBe("ok");
    if (body.status !== "ok") return;
    expect([...body.samples.keys()]).toEqual(["vllm:prompt_tokens_total"]);
    expect(body.samples.get("vllm:prompt_tokens_total")![0]).toEqual({ name: "vllm:prompt_tokens_total", labels: { model_name: "facebook/opt-125m" }, value: 5 });
    expect(parseExposition(text + "\n<html>", (n) => n === "vllm:prompt_tokens_total").status).toBe("invalid");
  });
});

// ---- generated valid bodies ----

const metricName = fc.stringMatching(/^[a-zA-Z_:][a-zA-Z0-9_:]{0,30}$/);
const labelName = fc.stringMatching(/^[a-zA-Z_][a-zA-Z0-9_]{0,20}$/);
const labelValue = fc.string({ unit: fc.constantFrom("a", "Z", "0", " ", "\\", '"', "\n", "é", "{", "}", ",", "=", "#"), maxLength: 30 });
const value = fc.oneof(fc.double({ noNaN: false }), fc.integer().map((i) => i), fc.constantFrom(0, -0, 1e-300, 8.128902e6));
const sample = fc.record({
  name: metricName,
  labels: fc.uniqueArray(fc.tuple(labelName, labelValue), { selector: ([k]) => k, maxLength: 5 }),
  value,
  timestamp: fc.option(fc.integer({ min: -1e12, max: 1e13 }), { nil: undefined }),
});

const escape = (v: string) => v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
/** Renders a value as Go's FormatFloat does in the format (+Inf, -Inf, NaN, exponent). */
const render = (v: number) => (Number.isNaN(v) ? "NaN" : v === Infinity ? "+Inf" : v === -Infinity ? "-Inf" : String(v));

describe("parseExposition on generated bodies", () => {
  it("reads back exactly what was written (names, unescaped label values, values)", () => {
    fc.assert(
      fc.property(fc.array(sample, { maxLength: 30 }), fc.constantFrom("\n", "\n\n", "\n# a comment\n"), (samples, sep) => {
        const lines = samples.map((s) => {
          const labels = s.labels.length ? `{${s.labels.map(([k, v]) => `${k}="${escape(v)}"`).join(",")}}` : "";
          return `${s.name}${labels} ${render(s.value)}${s.timestamp !== undefined ? ` ${s.timestamp}` : ""}`;
        });
        const body = parseExposition(lines.join(sep) + "\n");
        expect(body.status).toBe("ok");
        if (body.status !== "ok") return;
        expect(body.sampleCount).toBe(samples.length);
        const flat = [...body.samples.values()].flat();
        // Map order is first-seen name order; compare per name.
        for (const s of samples) {
          const got = body.samples.get(s.name)!.shift()!;
          expect(got.labels).toEqual(Object.fromEntries(s.labels));
          expect(Object.is(got.value, s.value) || (Number.isNaN(got.value) && Number.isNaN(s.value)) || got.value === s.value).toBe(true);
        }
        expect(flat.length).toBe(samples.length);
      }),
      { numRuns: 300 },
    );
  });

  it("never throws on arbitrary text", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (text) => {
        const body = parseExposition(text);
        expect(["ok", "invalid"]).toContain(body.status);
      }),
      { numRuns: 500 },
    );
  });
});

describe("parseExposition rejects what is not the format, naming the line", () => {
  const cases: [string, string, RegExp][] = [
    ["an HTML page", "<!DOCTYPE html>\n<html><body>hi</body></html>\n", /line 1: not a metric name/],
    ["JSON", '{"status": "ok"}\n', /line 1/],
    ["a value that is not a number", "a 1\nb one\n", /line 2: 'one' is not a number/],
    ["an unterminated label value", 'a{x="1} 2\n', /line 1: unterminated value of label x/],
    ["a bad escape", 'a{x="\\t"} 2\n', /bad escape/],
    ["a label given twice", 'a{x="1",x="2"} 2\n', /given twice/],
    ["a missing value", "a\n", /missing value/],
    ["three fields", "a 1 2 3\n", /at most a timestamp/],
    ["a timestamp that is not an integer", "a 1 1.5\n", /timestamp/],
    ["an unknown TYPE", "# TYPE a countr\na 1\n", /unknown metric type/],
    ["a TYPE for a name that is not a metric name", "# TYPE 1a counter\n", /not a metric name/],
    ["no blank before the value", 'a{x="1"}2\n', /blank before the value/],
  ];
  for (const [what, text, reason] of cases) {
    it(what, () => {
      const body = parseExposition(text);
      expect(body.status).toBe("invalid");
      if (body.status === "invalid") expect(body.reason).toMatch(reason);
    });
  }

  it("bounds the lines, the labels per sample and a kept label value's length", () => {
    expect(parseExposition("a 1\n".repeat(11), undefined, { maxLines: 10 })).toEqual({ status: "invalid", reason: "more than 10 lines" });
    const labels = Array.from({ length: 5 }, (_, i) => `l${i}="v"`).join(",");
    expect(parseExposition(`a{${labels}} 1\n`, undefined, { maxLabels: 4 }).status).toBe("invalid");
    expect(parseExposition(`a{${labels}} 1\n`, undefined, { maxLabels: 5 }).status).toBe("ok");
    expect(parseExposition(`a{x="${"v".repeat(11)}"} 1\n`, undefined, { maxLabelValueChars: 10 }).status).toBe("invalid");
  });

  it("takes blanks, CRLF line ends, a trailing comma in the labels, Inf and NaN", () => {
    const body = parseExposition('  a{x="1",} +Inf\r\n\tb -Inf 1700000000000\r\nc NaN\n\n');
    expect(body.status).toBe("ok");
    if (body.status !== "ok") return;
    expect(body.samples.get("a")![0].value).toBe(Infinity);
    expect(body.samples.get("b")![0].value).toBe(-Infinity);
    expect(Number.isNaN(body.samples.get("c")![0].value)).toBe(true);
  });
});
