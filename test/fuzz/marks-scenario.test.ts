// Marks lines and scenario files: parseMark / MarksReader on arbitrary bytes, validateScenario on
// arbitrary and near-valid documents. Only UsageError may be thrown; every number is finite.
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { MarksReader, parseMark } from "../../src/jobs/marks.js";
import { validateScenario } from "../../src/sim/scenario.js";
import { assertFinite, params, timeoutMillis, typedOnly } from "./fuzz.js";

const dir = mkdtempSync(join(tmpdir(), "pp-fuzz-marks-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const num = fc.oneof(fc.double(), fc.integer(), fc.constantFrom(1e308, -1, 0, 1e-320));
const markObject = fc.record({ phase: fc.oneof(fc.string(), fc.constantFrom("constructor", "__proto__", "toString", "")), step: num, samples: num, tokens: num, timeMillis: num }, { requiredKeys: [] });

describe("fuzz: marks", () => {
  it("parseMark: a mark with a usable phase and finite, non-negative counters, or undefined", () => {
    fc.assert(
      fc.property(fc.oneof(markObject.map((o) => JSON.stringify(o)), fc.string(), fc.json()), (line) => {
        const m = typedOnly(() => parseMark(line));
        if (!m) return;
        assertFinite(m);
        expect(m.phase.length).toBeGreaterThan(0);
        for (const k of ["step", "samples", "tokens", "timeMillis"] as const) if (m[k] !== undefined) expect(m[k]!).toBeGreaterThanOrEqual(0);
      }),
      params,
    );
  }, timeoutMillis);

  it("MarksReader on arbitrary appended bytes: never throws, every mark a complete line", () => {
    let n = 0;
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.uint8Array({ maxLength: 300 }), markObject.map((o) => Buffer.from(JSON.stringify(o) + "\n"))), { maxLength: 8 }), fc.integer({ min: 1, max: 512 }), (chunks, budget) => {
        const file = join(dir, `m${n++ % 8}.jsonl`);
        writeFileSync(file, "");
        const reader = new MarksReader(file, { maxPollBytes: budget });
        for (const c of chunks) {
          appendFileSync(file, c);
          for (const m of reader.poll()) assertFinite(m);
        }
        for (let i = 0; i < 10; i++) for (const m of reader.poll()) assertFinite(m);
        expect(reader.malformed + reader.oversized).toBeGreaterThanOrEqual(0);
      }),
      { ...params, numRuns: Math.max(10, Math.floor(params.numRuns / 4)) },
    );
  }, timeoutMillis);
});

describe("fuzz: scenarios", () => {
  const series = fc.array(fc.tuple(num, num), { maxLength: 4 });
  const near = fc.record(
    {
      name: fc.string(),
      durationSeconds: num,
      intervalMillis: num,
      pue: num,
      grid: fc.record({ zone: fc.string(), intensity: series }, { requiredKeys: [] }),
      devices: fc.array(fc.record({ id: fc.constantFrom("g0", "__proto__", "constructor"), kind: fc.constantFrom("gpu", "cpu", "memory", "tpu"), idleWatts: num, maxWatts: num, cores: num }, { requiredKeys: ["id", "kind"] }), { maxLength: 3 }),
      processes: fc.array(fc.record({ pid: num, ppid: num, job: fc.string(), startSeconds: num, endSeconds: num, cpu: series, gpu: fc.dictionary(fc.constantFrom("g0", "__proto__", "constructor"), series) }, { requiredKeys: ["pid"] }), { maxLength: 3 }),
    },
    { requiredKeys: [] },
  );
  it("validateScenario: UsageError or a scenario whose numbers are all finite", () => {
    fc.assert(
      fc.property(fc.oneof(near, fc.anything(), near.map((s) => JSON.parse(JSON.stringify(s)))), (doc) => {
        const s = typedOnly(() => validateScenario(doc, "fuzz.json"));
        assertFinite(s);
      }),
      params,
    );
  }, timeoutMillis);
});
