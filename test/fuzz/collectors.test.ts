// Collector parsers: nvidia-smi XML (collectors/nvidia-smi.ts; nvidia-smi has no CSV parser in
// this project: the XML is the only format read) and powercap energy_uj (collectors/rapl.ts).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { nvidiaSmiReadings, parseNvidiaSmiXml } from "../../collectors/nvidia-smi.js";
import { parseMicrojoules } from "../../collectors/rapl.js";
import { assertFinite, numberish, params, timeoutMillis, typedOnly } from "./fuzz.js";

const xml = readFileSync(join(import.meta.dirname, "..", "fixtures", "nvidia-smi", "datakit__tesla-v100-pcie_drv460_processes.xml"), "utf8");
/** The element texts of the real capture, each a place to put a fuzzed value. */
const slots = [...xml.matchAll(/>([^<>\n]*)</g)].map((m) => m.index! + 1);

/** The real XML with some element texts replaced by fuzzed ones (numbers, units, junk, markup). */
const mutatedXml = fc
  .array(fc.tuple(fc.nat({ max: slots.length - 1 }), fc.oneof(numberish, numberish.map((n) => `${n} W`), numberish.map((n) => `${n} MiB`), fc.string(), fc.constantFrom("<", "&", "]]>", "<x>"))), { maxLength: 8 })
  .map((edits) => {
    let out = xml;
    for (const [slot, value] of edits.sort((a, b) => b[0] - a[0])) {
      const at = slots[slot];
      const end = out.indexOf("<", at);
      if (end > at || out[at] === "<") out = out.slice(0, at) + value + out.slice(end < 0 ? at : end);
    }
    return out;
  });

describe("fuzz: collector parsers", () => {
  it("nvidia-smi XML: a typed error or readings with finite numbers", () => {
    fc.assert(
      fc.property(fc.oneof(mutatedXml, fc.string(), fc.constant(xml.slice(0, xml.length / 2))), (text) => {
        const log = typedOnly(() => parseNvidiaSmiXml(text));
        if (!log) return;
        assertFinite(log);
        assertFinite(typedOnly(() => nvidiaSmiReadings(log)));
      }),
      params,
    );
  }, timeoutMillis);

  it("powercap energy_uj: undefined or a safe non-negative integer", () => {
    fc.assert(
      fc.property(fc.oneof(numberish, fc.string()), (text) => {
        const v = parseMicrojoules(text);
        if (v !== undefined) expect(Number.isSafeInteger(v) && v >= 0, String(v)).toBe(true);
      }),
      params,
    );
  }, timeoutMillis);
});
