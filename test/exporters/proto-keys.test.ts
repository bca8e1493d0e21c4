// Maps keyed by user text (tags, OTEL_RESOURCE_ATTRIBUTES, OTLP headers, grid fallback counts)
// keep keys equal to Object.prototype's as ordinary keys: nothing inherited leaks in, nothing lost.
import { describe, expect, it } from "vitest";
import { resolveResourceAttributes } from "../../exporters/otel.js";
import { parseKeyValueList } from "../../src/config/values.js";
import { parseTags } from "../../src/config/identity.js";
import { createIntensityResolver } from "../../src/grid/resolver.js";

const KEYS = ["constructor", "__proto__", "toString"];

describe("prototype keys as user keys", () => {
  it("--tag constructor=a __proto__=b toString=c: three own string attributes", () => {
    const a = parseTags(KEYS.map((k, i) => `${k}=v${i}`));
    expect(Object.keys(a)).toEqual(KEYS);
    KEYS.forEach((k, i) => expect(Object.getOwnPropertyDescriptor(a, k)?.value).toBe(`v${i}`));
    expect(JSON.parse(JSON.stringify(a))).toEqual(JSON.parse('{"constructor":"v0","__proto__":"v1","toString":"v2"}'));
    // With no tag of that name nothing is inherited.
    expect(parseTags([])["constructor"]).toBeUndefined();
    // The duplicate check looks at own keys only.
    expect(() => parseTags(["constructor=a", "constructor=b"])).toThrow(/given twice/);
  });

  it("OTEL_RESOURCE_ATTRIBUTES with prototype keys: parsed and merged as ordinary attributes", () => {
    const parsed = parseKeyValueList("constructor=a,__proto__=b,toString=c");
    expect(parsed.ok).toBe(true);
    const values = (parsed as { values: Record<string, string> }).values;
    expect(Object.keys(values)).toEqual(KEYS);
    const merged = resolveResourceAttributes({ env: {}, hostName: "h", serviceInstanceId: "i", resourceAttributes: values });
    expect(Object.getOwnPropertyDescriptor(merged, "__proto__")?.value).toBe("b");
    expect(merged.constructor).toBe("a");
    expect(merged.toString).toBe("c");
    expect(merged["service.name"]).toBe("powerprint");
  });

  it("grid fallback counts start empty: no inherited key is a count", async () => {
    const r = createIntensityResolver({});
    await r.at(new Date());
    const counts = r.fallbackCounts();
    expect(counts["constructor"]).toBeUndefined();
    expect(counts["toString"]).toBeUndefined();
    expect(Object.keys(counts)).toEqual(["world-average"]);
  });
});

describe("prototype keys as flag values", () => {
  it("--intensity-provider constructor / toString is an unknown provider, not Object.prototype's", async () => {
    const { gridConfig } = await import("../../src/config/grid.js");
    for (const p of ["constructor", "toString", "__proto__"]) {
      expect(() => gridConfig({ intensityProvider: p, zone: "DE" }, {})).toThrow(/unknown provider/);
    }
  });

  it("a zone named like a prototype key is an unknown zone", async () => {
    const { isKnownZone } = await import("../../src/grid/static.js");
    for (const z of ["constructor", "__proto__", "toString", "constructor-x"]) expect(isKnownZone(z)).toBe(false);
  });
});
