// JobPhases' timeline (src/core/phases.ts): an interval that spans marks is split time-weighted and
// the parts sum to it; marks out of order never move the timeline back; a flood of marks in one
// interval keeps the timeline bounded and still conserves energy and time.
import { describe, expect, it } from "vitest";
import { BEFORE_FIRST_MARK, JobPhases, MAX_TIMELINE_MARKS } from "../../src/core/phases.js";

const byName = (p: JobPhases) => Object.fromEntries(p.totals().map((t) => [t.name, t]));

describe("phase timeline", () => {
  it("splits an interval by the marks inside it; a mark before the previous one is taken at the previous one's time", () => {
    const p = new JobPhases();
    p.mark("a", {}, 1000);
    p.mark("b", {}, 1250);
    p.mark("c", {}, 1100); // out of order: opens at 1250 (the timeline never goes back)
    p.addEnergyOver(100, 1, 1000, 2000);
    p.addTimeOver(1000, 1000, 2000);
    const t = byName(p);
    expect(t.a.energyJoules).toBeCloseTo(25, 12);
    expect(t.b.energyJoules).toBe(0);
    expect(t.c.energyJoules).toBeCloseTo(75, 12);
    expect(t.c.durationSeconds).toBeCloseTo(0.75, 12);
    expect(t[BEFORE_FIRST_MARK].energyJoules).toBe(0);
  });

  it("an empty interval goes whole to the phase open at its end", () => {
    const p = new JobPhases();
    p.mark("a", {}, 500);
    p.addEnergyOver(3, 0, 1000, 1000);
    expect(byName(p).a.energyJoules).toBe(3);
  });

  it("a flood of marks in one interval: the timeline stays bounded, energy and time still add up", () => {
    const p = new JobPhases();
    for (let i = 0; i < 10_000; i++) p.mark(`p${i % 7}`, { samples: i }, 1000 + i * 0.1);
    p.addEnergyOver(500, 5, 1000, 2000);
    p.addTimeOver(1000, 1000, 2000);
    const totals = p.totals();
    expect(totals.reduce((a, t) => a + t.energyJoules, 0)).toBeCloseTo(500, 9);
    expect(totals.reduce((a, t) => a + t.durationSeconds, 0)).toBeCloseTo(1, 9);
    expect(totals.reduce((a, t) => a + (t.samples ?? 0), 0)).toBe(9999);
    expect((p as unknown as { timeline: unknown[] }).timeline.length).toBeLessThanOrEqual(MAX_TIMELINE_MARKS);
  });
});
