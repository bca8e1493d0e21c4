// A process of a test "pod" that uses a GPU the way the sidecar can see it: it holds the GPU's
// device node open (GPU_DEVICE_NODE, a stand-in for /dev/nvidia<minor>) for its whole life, then
// writes <WORKDIR>/holder-<NAME>.ready. With MODE "cpu" it holds nothing (a process of the pod that
// does not use the GPU). It lives until killed. Usage: gpu-holder.mjs WORKDIR NAME gpu|cpu
import { openSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const [dir, name, mode] = process.argv.slice(2);
if (mode === "gpu") openSync(process.env.GPU_DEVICE_NODE, "r");
writeFileSync(join(dir, `holder-${name}.ready`), `${process.pid}\n`);
setInterval(() => {}, 1 << 30);
