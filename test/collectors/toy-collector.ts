/**
 * A hardware source in one file, registering itself (docs/development.md "A collector"): a "toy
 * GPU" whose power is the number in `<root>/toy-gpu/power_watts`, and a fallback for it that models
 * a constant 50 W. Importing this file is all it takes: no other file names it.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { registerCollector } from "../../collectors/index.js";
import type { Collector } from "../../src/core/contracts.js";

function toyGpu(root: string): Collector {
  const file = join(root, "toy-gpu", "power_watts");
  return {
    id: "toy-gpu",
    probe: async () =>
      existsSync(file) ? { status: "ok", devices: [{ deviceId: "toy0", kind: "gpu", model: "Toy GPU", method: "power" }] } : { status: "unavailable", reason: `no ${file}`, fix: "write a wattage there" },
    read: async () => [{ deviceId: "toy0", kind: "gpu", source: "toy-gpu", model: "Toy GPU", powerWatts: Number(readFileSync(file, "utf8")), method: "power" }],
    close: async () => {},
  };
}

const toyModel: Collector = {
  id: "toy-gpu-model",
  probe: async () => ({ status: "ok", devices: [{ deviceId: "toy-model0", kind: "gpu", method: "model" }] }),
  read: async () => [{ deviceId: "toy-model0", kind: "gpu", source: "toy-gpu-model", powerWatts: 50, method: "model" }],
  close: async () => {},
};

registerCollector({ id: "toy-gpu", label: "the toy GPU", kinds: ["gpu"], role: "toy GPUs (preferred)", create: async (o) => toyGpu(o.root ?? "/") });
registerCollector({
  id: "toy-gpu-model",
  label: "the toy model",
  kinds: ["gpu"],
  role: "toy GPUs (fallback)",
  fallbackFor: "toy-gpu",
  standInRole: "toy GPUs (fallback: the toy GPU unavailable)",
  create: async () => toyModel,
});
