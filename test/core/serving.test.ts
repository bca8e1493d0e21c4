// The serving account (src/core/serving.ts): intervals of a job's energy joined with the work its
// engine counted, per model. Plain input → output tables, and the invariants every output relies
// on: models sum to the job, active + idle = energy, prefill + decode = active where times exist.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ServingAccount, servingRatios, sumFigures, type ServingIncrement, type ServingTotals } from "../../src/core/serving.js";

const work = (o: Record<string, ServingIncrement>) => new Map(Object.entries(o));

/** Closes one interval of `joules` (and `grams`) and returns the token of a scrape started just before its close. */
function interval(a: ServingAccount, joules: number, grams = joules / 1000): number {
  const token = a.token();
  a.addEnergy(joules, grams);
  a.closeInterval();
  return token;
}

function invariants(t: ServingTotals, jobJoules: number): void {
  const sum = (f: (m: ServingTotals["models"][number]) => number) => t.models.reduce((s, m) => s + f(m), 0);
  expect(t.total.energyJoules).toBeCloseTo(jobJoules, 9);
  if (t.models.length > 0) expect(sum((m) => m.energyJoules)).toBeCloseTo(jobJoules, 9);
  expect(t.total.activeEnergyJoules + t.total.idleEnergyJoules).toBeCloseTo(t.total.energyJoules, 9);
  for (const m of t.models) expect(m.activeEnergyJoules + m.idleEnergyJoules).toBeCloseTo(m.energyJoules, 9);
}

describe("ServingAccount", () => {
  it("pairs each scrape with the intervals it closes; J/token, J/request, g/1k tokens", () => {
    const a = new ServingAccount("http://127.0.0.1:1/metrics");
    const t1 = interval(a, 10, 0.01);
    a.addWork(t1, "vllm", work({ m: { promptTokens: 0, generatedTokens: 0, requests: 0, running: 0 } }));
    const t2 = interval(a, 30, 0.03);
    a.addWork(t2, "vllm", work({ m: { promptTokens: 16, generatedTokens: 8, requests: 1, running: 0 } }));
    const t = a.totals();
    expect(t.engine).toBe("vllm");
    expect(t.models).toHaveLength(1);
    const m = t.models[0];
    expect(m).toMatchObject({ model: "m", promptTokens: 16, generatedTokens: 8, requests: 1, energyJoules: 40, activeEnergyJoules: 30, idleEnergyJoules: 10 });
    expect(m.joulesPerGeneratedToken).toBeCloseTo(40 / 8, 12);
    expect(m.joulesPerRequest).toBeCloseTo(40, 12);
    expect(m.emissionsGramsPerThousandTokens).toBeCloseTo((0.04 / 8) * 1000, 12);
    expect(t.prefillDecode).toBe("none");
    expect(m.prefillEnergyJoules).toBeNull();
    invariants(t, 40);
  });

  it("a failed scrape leaves its interval pending (idle meanwhile); the next answer closes both", () => {
    const a = new ServingAccount("u");
    interval(a, 5); // its scrape failed
    const t2 = interval(a, 7);
    expect(a.totals().total).toMatchObject({ energyJoules: 12, idleEnergyJoules: 12, activeEnergyJoules: 0 });
    a.addWork(t2, "llamacpp", work({ "": { promptTokens: 3, generatedTokens: 4 } }));
    const t = a.totals();
    expect(t.total).toMatchObject({ energyJoules: 12, activeEnergyJoules: 12, generatedTokens: 4, requests: null });
    expect(t.total.joulesPerRequest).toBeNull();
    invariants(t, 12);
  });

  it("a scrape started before an interval opened does not close it", () => {
    const a = new ServingAccount("u");
    const early = a.token();
    a.addEnergy(3, 0);
    a.closeInterval(); // closed by `early`
    interval(a, 4); // opened after `early` started: stays pending
    a.addWork(early, "vllm", work({ m: { generatedTokens: 2 } }));
    const t = a.totals();
    expect(t.models[0]).toMatchObject({ activeEnergyJoules: 3, idleEnergyJoules: 4 });
    invariants(t, 7);
  });

  it("splits an interval among models by generated tokens, else inferences, prompt tokens, requests, else equally", () => {
    const cases: [Record<string, ServingIncrement>, Record<string, number>][] = [
      [{ a: { generatedTokens: 30, promptTokens: 1 }, b: { generatedTokens: 10, promptTokens: 99 } }, { a: 75, b: 25 }],
      [{ a: { inferences: 1, requests: 9 }, b: { inferences: 3, requests: 1 } }, { a: 25, b: 75 }],
      [{ a: { generatedTokens: 0, promptTokens: 20 }, b: { generatedTokens: 0, promptTokens: 80 } }, { a: 20, b: 80 }],
      [{ a: { requests: 1 }, b: { requests: 0 } }, { a: 100, b: 0 }],
      [{ a: { generatedTokens: 0, running: 0 }, b: { generatedTokens: 0, running: 0 } }, { a: 50, b: 50 }],
    ];
    for (const [inc, expected] of cases) {
      const a = new ServingAccount("u");
      a.addWork(a.token(), "x", work({ a: {}, b: {} })); // both models known
      a.addWork(interval(a, 100), "x", work(inc));
      const t = a.totals();
      for (const m of t.models) expect(m.energyJoules, JSON.stringify(inc)).toBeCloseTo(expected[m.model], 9);
      invariants(t, 100);
    }
  });

  it("active when a request is in flight at the closing scrape or any work was counted; idle otherwise", () => {
    const a = new ServingAccount("u");
    a.addWork(interval(a, 1), "vllm", work({ m: { generatedTokens: 0, running: 2 } })); // in flight, nothing finished yet
    a.addWork(interval(a, 2), "vllm", work({ m: { generatedTokens: 5, running: 0 } }));
    a.addWork(interval(a, 4), "vllm", work({ m: { generatedTokens: 0, running: 0 } })); // quiet
    const t = a.totals();
    expect(t.activeFrom).toBe("running-gauge");
    expect(t.models[0]).toMatchObject({ activeEnergyJoules: 3, idleEnergyJoules: 4 });
  });

  it("splits active energy into prefill and decode by the engine's times (the model's ratio so far when they did not move)", () => {
    const a = new ServingAccount("u");
    a.addWork(interval(a, 10), "llamacpp", work({ "": { running: 1, prefillSeconds: 0, decodeSeconds: 0 } })); // no times yet: held
    a.addWork(interval(a, 20), "llamacpp", work({ "": { generatedTokens: 8, prefillSeconds: 1, decodeSeconds: 3 } }));
    a.addWork(interval(a, 40), "llamacpp", work({ "": { running: 1, prefillSeconds: 0, decodeSeconds: 0 } })); // ratio so far 1:3
    const m = a.totals().models[0];
    expect(m.activeEnergyJoules).toBe(70);
    expect(m.prefillEnergyJoules).toBeCloseTo(70 / 4, 9);
    expect(m.decodeEnergyJoules).toBeCloseTo((70 * 3) / 4, 9);
    expect(a.totals().prefillDecode).toBe("engine-times");
  });

  it("energy before any model is known, and intervals past the pending bound, count as idle", () => {
    const a = new ServingAccount("u");
    for (let i = 0; i < 40; i++) interval(a, 1);
    let t = a.totals();
    expect(t.models).toHaveLength(0);
    expect(t.total).toMatchObject({ energyJoules: 40, idleEnergyJoules: 40, generatedTokens: null });
    a.addWork(a.token(), "vllm", work({ m: { generatedTokens: 3 } }));
    t = a.totals();
    expect(t.models[0].generatedTokens).toBe(3);
    invariants(t, 40);
  });

  it("restore continues the sums; restarts and inconsistent readings are counted", () => {
    const a = new ServingAccount("u");
    a.addWork(interval(a, 10), "vllm", work({ m: { generatedTokens: 4, requests: 1, prefillSeconds: 1, decodeSeconds: 1 } }), "restart");
    a.addWork(interval(a, 6), "vllm", work({ m: { generatedTokens: 0, requests: 0 } }), "inconsistent");
    const saved = JSON.parse(JSON.stringify(a.totals())) as ServingTotals;
    const b = ServingAccount.restore(saved);
    expect(b.totals()).toEqual(saved);
    b.addWork(interval(b, 2), "vllm", work({ m: { generatedTokens: 1, requests: 1 } }));
    expect(b.totals().total).toMatchObject({ generatedTokens: 5, requests: 2, energyJoules: 18 });
    expect(b.totals()).toMatchObject({ restarts: 1, inconsistentReadings: 1 });
  });

  it("any sequence of intervals and scrapes (some lost): models sum to the job, active + idle = energy, tokens = the work handed in", () => {
    const step = fc.record({
      joules: fc.double({ min: 0, max: 500, noNaN: true }),
      scrape: fc.constantFrom("ok", "lost", "late"),
      a: fc.nat(50),
      b: fc.nat(50),
      running: fc.nat(2),
    });
    fc.assert(
      fc.property(fc.array(step, { maxLength: 40 }), (steps) => {
        const acc = new ServingAccount("u");
        let joules = 0;
        let tokens = 0;
        let late: { token: number; a: number; b: number } | undefined;
        for (const s of steps) {
          const token = interval(acc, s.joules);
          joules += s.joules;
          if (late) {
            acc.addWork(late.token, "vllm", work({ a: { generatedTokens: late.a }, b: { generatedTokens: late.b } }));
            tokens += late.a + late.b;
            late = undefined;
          }
          if (s.scrape === "ok") {
            acc.addWork(token, "vllm", work({ a: { generatedTokens: s.a, running: s.running }, b: { generatedTokens: s.b } }));
            tokens += s.a + s.b;
          } else if (s.scrape === "late") late = { token, a: s.a, b: s.b };
        }
        const t = acc.totals();
        invariants(t, joules);
        expect(t.total.generatedTokens ?? 0).toBe(tokens);
      }),
      { numRuns: 300 },
    );
  });
});

describe("servingRatios and sumFigures", () => {
  it("recomputes ratios from sums (never averages of ratios); null where a count is absent or zero", () => {
    const a = { promptTokens: 10, generatedTokens: 10, requests: 1, energyJoules: 100, activeEnergyJoules: 60, idleEnergyJoules: 40, prefillEnergyJoules: null, decodeEnergyJoules: null, emissionsGrams: 1 };
    const b = { ...a, generatedTokens: 30, requests: null, energyJoules: 20, activeEnergyJoules: 0, idleEnergyJoules: 20, emissionsGrams: 3 };
    const s = sumFigures([
      { ...a, ...servingRatios(a) },
      { ...b, ...servingRatios(b) },
    ]);
    expect(s.generatedTokens).toBe(40);
    expect(s.requests).toBe(1);
    expect(s.joulesPerGeneratedToken).toBeCloseTo(120 / 40, 12);
    expect(s.emissionsGramsPerThousandTokens).toBeCloseTo((4 / 40) * 1000, 12);
    expect(s.prefillEnergyJoules).toBeNull();
    // The idle share of the summed energy (60 J of 120 J), not a mean of the parts' shares.
    expect(s.idleEnergyShare).toBeCloseTo(60 / 120, 12);
    expect(servingRatios({ energyJoules: 5, idleEnergyJoules: 2, emissionsGrams: 1, generatedTokens: 0, requests: null })).toEqual({
      joulesPerGeneratedToken: null,
      joulesPerRequest: null,
      emissionsGramsPerThousandTokens: null,
      idleEnergyShare: 0.4,
    });
    expect(servingRatios({ energyJoules: 0, idleEnergyJoules: 0, emissionsGrams: 0, generatedTokens: null, requests: null }).idleEnergyShare).toBeNull();
  });
});
