/**
 * The collector registry: a source and its fallback registered from one file (./toy-collector.ts,
 * which no source file names) are probed after the built-in ones, the fallback only when its
 * primary is unavailable, and the pipeline measures with whichever is chosen.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import "./toy-collector.js";
import { detectCollectors, registeredCollectors } from "../../collectors/index.js";
import { gridConfig } from "../../src/config/grid.js";
import { measureConfig } from "../../src/config/measure.js";
import { createStderrLogger } from "../../src/log.js";
import { createPipeline } from "../../src/pipeline/index.js";

const root = mkdtempSync(join(tmpdir(), "pp-toy-collector-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
// A root with nothing of the built-in sources: no dev/nvidia*, no powercap, no hwmon.
mkdirSync(join(root, "dev"));
const options = { root, devRoot: root, searchPath: "", ldLibraryPath: "" };
const log = createStderrLogger({ quiet: true, write: () => undefined });

describe("a collector registered from one file", () => {
  it("is in the registry after the built-in sources, its fallback after it", () => {
    const ids = registeredCollectors().map((r) => r.id);
    expect(ids.slice(-2)).toEqual(["toy-gpu", "toy-gpu-model"]);
    expect(ids).toContain("nvml");
  });

  it("its fallback stands in while it is unavailable, and is not needed once it is", async () => {
    const without = await detectCollectors(options);
    const toy = without.find((e) => e.collector.id === "toy-gpu")!;
    const model = without.find((e) => e.collector.id === "toy-gpu-model")!;
    expect([toy.used, toy.result.status, toy.role]).toEqual([false, "unavailable", "toy GPUs (preferred)"]);
    expect([model.used, model.role, model.fallbackFor]).toEqual([true, "toy GPUs (fallback: the toy GPU unavailable)", "toy-gpu"]);

    mkdirSync(join(root, "toy-gpu"), { recursive: true });
    writeFileSync(join(root, "toy-gpu", "power_watts"), "123");
    const withIt = await detectCollectors(options);
    expect(withIt.find((e) => e.collector.id === "toy-gpu")?.used).toBe(true);
    const notNeeded = withIt.find((e) => e.collector.id === "toy-gpu-model")!;
    expect([notNeeded.used, notNeeded.result.status === "unavailable" && notNeeded.result.reason]).toEqual([false, "not needed: the toy GPU is available"]);
  });

  it("the pipeline's devices are the chosen ones, read as the sampler reads them", async () => {
    mkdirSync(join(root, "toy-gpu"), { recursive: true });
    writeFileSync(join(root, "toy-gpu", "power_watts"), "123");
    const pipeline = await createPipeline({ measure: measureConfig({ idlePolicy: "attribute", idleWatts: [] }), grid: gridConfig({}, {}), collectors: options }, { log, time: { kind: "real", startMillis: Date.now() } });
    const devices = await pipeline.devices();
    const toy = devices.find((c) => c.id === "toy-gpu")!;
    expect(devices.map((c) => c.id)).not.toContain("toy-gpu-model");
    expect(await toy.read()).toEqual([expect.objectContaining({ deviceId: "toy0", kind: "gpu", powerWatts: 123, method: "power" })]);
  });
});
