// /proc parsers (src/procfs/reader.ts): stat lines, /proc/stat, loadavg, children lists.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseHostStat, parseLastPid, parsePidList, parseStat, parseStatBuffer } from "../../src/procfs/reader.js";
import { assertFinite, noisy, numberish, params, timeoutMillis, typedOnly } from "./fuzz.js";

const statLine = fc
  .tuple(numberish, fc.string(), fc.constantFrom("R", "S", "Z", "D", "x"), fc.array(numberish, { maxLength: 60 }))
  .map(([pid, comm, state, rest]) => `${pid} (${comm}) ${state} ${rest.join(" ")}`);

describe("fuzz: /proc parsers", () => {
  it("parseStat / parseStatBuffer: undefined or finite fields, never a throw", () => {
    fc.assert(
      fc.property(fc.oneof(statLine, fc.string(), noisy(numberish)), fc.integer({ min: 1, max: 10_000 }), (text, hz) => {
        const info = typedOnly(() => parseStat(text, hz));
        assertFinite(info);
        const buf = Buffer.from(text);
        assertFinite(typedOnly(() => parseStatBuffer(buf, buf.length, true)));
      }),
      params,
    );
  }, timeoutMillis);

  it("parseHostStat: finite ticks and fork count", () => {
    const stat = fc.tuple(fc.array(numberish, { maxLength: 12 }), numberish).map(([cpu, forks]) => `cpu  ${cpu.join(" ")}\ncpu0 1 2 3\nprocesses ${forks}\n`);
    fc.assert(fc.property(fc.oneof(stat, fc.string(), noisy(numberish)), (text) => assertFinite(typedOnly(() => parseHostStat(text)))), params);
  }, timeoutMillis);

  it("parseLastPid / parsePidList: finite, non-negative integers", () => {
    fc.assert(
      fc.property(noisy(numberish), (text) => {
        const last = parseLastPid(text);
        if (last !== undefined) expect(Number.isSafeInteger(last) && last >= 0).toBe(true);
        for (const pid of parsePidList(text)) expect(Number.isSafeInteger(pid) && pid > 0, String(pid)).toBe(true);
      }),
      params,
    );
  }, timeoutMillis);
});
