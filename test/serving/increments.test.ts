// Counter increases between two readings of one endpoint: plain counting, a restart (counters back
// to near 0, or a new process start time), an inconsistent reading (some down, others up), a model
// seen for the first time. Property: over any sequence of restarts, the increases sum to the work
// each server life counted, never negative, never counted twice.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { WorkReading } from "../../src/serving/engines.js";
import { classify, increment, zeroReading } from "../../src/serving/increments.js";

const reading = (models: Record<string, Record<string, number>>, processStartSeconds?: number): WorkReading => ({
  engine: "vllm",
  models: new Map(Object.entries(models)),
  ...(processStartSeconds !== undefined ? { processStartSeconds } : {}),
});

describe("increment", () => {
  it("counts differences, carries the running gauge of the later reading", () => {
    const inc = increment(reading({ m: { promptTokens: 10, generatedTokens: 5, running: 3 } }), reading({ m: { promptTokens: 26, generatedTokens: 13, running: 0 } }));
    expect(inc.event).toBe("none");
    expect(inc.models.get("m")).toEqual({ promptTokens: 16, generatedTokens: 8, running: 0 });
  });

  it("a restart (every changed counter went down): the new values are the increase", () => {
    const inc = increment(reading({ m: { promptTokens: 100, generatedTokens: 50, requests: 4 } }), reading({ m: { promptTokens: 7, generatedTokens: 0, requests: 4 } }));
    expect(inc.event).toBe("restart");
    expect(inc.models.get("m")).toEqual({ promptTokens: 7, generatedTokens: 0, requests: 4 });
  });

  it("a new process start time is a restart even when the counters went past their old values", () => {
    const inc = increment(reading({ m: { generatedTokens: 5 } }, 1000), reading({ m: { generatedTokens: 9 } }, 2000));
    expect(inc.event).toBe("restart");
    expect(inc.models.get("m")!.generatedTokens).toBe(9);
  });

  it("some down and others up, same process: inconsistent, nothing counted", () => {
    const prev = reading({ m: { promptTokens: 9000, generatedTokens: 100 } });
    const cur = reading({ m: { promptTokens: 101, generatedTokens: 9001 } });
    expect(classify(prev, cur)).toBe("inconsistent");
    expect(increment(prev, cur).models.get("m")).toEqual({ promptTokens: 0, generatedTokens: 0 });
  });

  it("a model seen for the first time counts whole; from zero counts whole", () => {
    const inc = increment(reading({ a: { generatedTokens: 5 } }), reading({ a: { generatedTokens: 6 }, b: { generatedTokens: 3 } }));
    expect(inc.models.get("b")).toEqual({ generatedTokens: 3 });
    expect(increment(zeroReading("vllm"), reading({ a: { generatedTokens: 6 } })).models.get("a")).toEqual({ generatedTokens: 6 });
  });

  it("float noise on a seconds counter is not a reset", () => {
    const inc = increment(reading({ m: { prefillSeconds: 0.1 + 0.2, generatedTokens: 1 } }), reading({ m: { prefillSeconds: 0.3, generatedTokens: 2 } }));
    expect(inc.event).toBe("none");
    expect(inc.models.get("m")!.prefillSeconds).toBe(0);
  });

  it("over any sequence of server lives, the increases sum to the work each life counted", () => {
    // Each life: the counters start at 0 and grow by the requests served; the reader sees some
    // readings of each life (the first possibly after a few requests, never one from before).
    const life = fc.array(fc.record({ p: fc.integer({ min: 1, max: 500 }), g: fc.integer({ min: 1, max: 500 }) }), { minLength: 1, maxLength: 6 });
    fc.assert(
      fc.property(fc.array(life, { minLength: 1, maxLength: 5 }), (lives) => {
        let prev = zeroReading("vllm");
        let counted = { p: 0, g: 0 };
        let truth = { p: 0, g: 0 };
        let start = 1;
        for (const requests of lives) {
          let p = 0;
          let g = 0;
          start++;
          for (const r of requests) {
            p += r.p;
            g += r.g;
            const cur = reading({ m: { promptTokens: p, generatedTokens: g } }, start);
            const inc = increment(prev, cur);
            const m = inc.models.get("m")!;
            expect(m.promptTokens).toBeGreaterThanOrEqual(0);
            expect(m.generatedTokens).toBeGreaterThanOrEqual(0);
            counted = { p: counted.p + m.promptTokens!, g: counted.g + m.generatedTokens! };
            prev = cur;
          }
          truth = { p: truth.p + p, g: truth.g + g };
        }
        expect(counted).toEqual(truth);
      }),
      { numRuns: 300 },
    );
  });
});
