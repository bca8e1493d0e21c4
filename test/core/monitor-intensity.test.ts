/**
 * The intensity cache that keeps the network out of the tick (src/core/intensity-cache.ts), over
 * the real grid resolver with a provider that never answers, then one that does.
 */
import { describe, expect, it } from "vitest";
import { CachedIntensity } from "../../src/core/intensity-cache.js";
import { createIntensityResolver } from "../../src/grid/resolver.js";
import { staticReading } from "../../src/grid/static.js";
import type { IntensityProvider, IntensityReading } from "../../src/core/contracts.js";
import { recordingLogger } from "../exporters/snapshots.js";
import { waitFor } from "../helpers/wait.js";

describe("CachedIntensity", () => {
  it("answers at once from memory while the provider is silent (the zone's static value, counted), gives up each refresh at its deadline, and serves the answer once it comes", async () => {
    let answer: ((r: IntensityReading) => void) | undefined;
    let asked = 0;
    const provider: IntensityProvider = {
      id: "uk-carbon-intensity",
      at: () => {
        asked++;
        return new Promise<IntensityReading>((resolve) => (answer = resolve));
      },
    };
    const log = recordingLogger();
    const resolver = createIntensityResolver({ provider, zone: "GB", log });
    let now = 1_700_000_000_000;
    const initial = { ...staticReading("GB"), fallback: "static-table" as const };
    const cache = new CachedIntensity({ source: resolver, initial, deadlineMillis: 20, refreshMillis: 1000, nowMillis: () => now, log });
    const first = await cache.at(new Date(now));
    expect(first).toEqual(initial);
    expect(cache.counts.initial).toBe(1);
    expect(asked).toBe(1);
    await waitFor("the refresh's timeout", () => cache.counts.timeouts === 1, 60_000, 5);
    expect(log.lines.filter((l) => /no answer within 0.02 s/.test(l.message))).toHaveLength(1);
    // Within refreshMillis no new request; the tick still gets its answer at once.
    expect((await cache.at(new Date(now))).source).toBe(initial.source);
    expect(asked).toBe(1);
    // The provider answers (late); the next refresh (shared with the resolver's request still out) fills the cache.
    now += 1000;
    void cache.at(new Date(now));
    expect(asked).toBe(1);
    answer?.({ intensityGramsPerKwh: 123, zone: "GB", source: "uk-carbon-intensity", validUntil: new Date(now + 3_600_000) });
    const after = await new Promise<IntensityReading>((resolve) => {
      const poll = async () => {
        const r = await cache.at(new Date(now));
        if (r.source === "uk-carbon-intensity") resolve(r);
        else setTimeout(() => void poll(), 5);
      };
      void poll();
    });
    expect(after.intensityGramsPerKwh).toBe(123);
    cache.stop();
  });
});
