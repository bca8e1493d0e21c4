/**
 * Whether this host may have an NVIDIA GPU, and where its NVML library and nvidia-smi are, decided
 * without loading or running anything (a few stats and one read of the loader's cache): NVML is
 * loaded and nvidia-smi spawned only when one of these holds, so a CPU-only host pays nothing.
 * In order:
 *
 * 1. device nodes `dev/nvidia[0-9]*` (a Linux host, a container with the GPUs exposed);
 * 2. POWERPRINT_NVML_LIBRARY / POWERPRINT_NVIDIA_SMI given explicitly;
 * 3. WSL2: the GPU is `dev/dxg` (the DirectX paravirtualized device, any vendor) and the NVIDIA
 *    driver's user-space lives in `usr/lib/wsl/lib` (libnvidia-ml.so.1, nvidia-smi), mounted from
 *    Windows; no `/dev/nvidia*` exists there;
 * 4. `nvidia-smi` on PATH (an executable file in one of its directories);
 * 5. `libnvidia-ml.so.1` where the dynamic loader finds it: a directory of LD_LIBRARY_PATH, or the
 *    loader's cache (`etc/ld.so.cache` names it).
 *
 * Paths are under `root` (POWERPRINT_DEV_ROOT, default "/"), so tests point it at a fixture tree.
 * The outcome says which rule held (`powerprint probe` prints it), or everything looked at when
 * none did.
 */
import { accessSync, constants, existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { delimiter, join } from "node:path";

/** The NVML library's soname, as the driver ships it. */
export const NVML_SONAME = "libnvidia-ml.so.1";
/** Where WSL2 mounts the Windows driver's Linux user-space. */
export const WSL_LIB_DIR = "usr/lib/wsl/lib";

/** What to probe, and why. */
export type NvidiaDiscovery =
  | {
      status: "found";
      /** How the GPU was found, for `probe` ("device nodes /dev/nvidia0", "WSL2: /dev/dxg ..."). */
      how: string;
      /** The NVML library to load (undefined: the collector's default, the soname through the loader). */
      nvmlLibraryPath?: string;
      /** The nvidia-smi to run (undefined: the collector's default, `nvidia-smi` on PATH). */
      nvidiaSmiCommand?: string;
    }
  | { status: "none"; reason: string; fix: string };

/** Inputs of {@link discoverNvidia}: the root, the explicit settings, and the search paths of the environment. */
export interface NvidiaDiscoveryOptions {
  /** Root holding dev/, usr/lib/wsl/lib and etc/ld.so.cache (default "/"). */
  root?: string;
  /** POWERPRINT_NVML_LIBRARY. */
  nvmlLibraryPath?: string;
  /** POWERPRINT_NVIDIA_SMI. */
  nvidiaSmiCommand?: string;
  /** PATH, for nvidia-smi. */
  searchPath?: string;
  /** LD_LIBRARY_PATH, for libnvidia-ml.so.1. */
  libraryPath?: string;
}

/** Bound on the directories looked at in PATH / LD_LIBRARY_PATH (user-controlled). */
const MAX_SEARCH_DIRS = 64;
/** The loader's cache is read up to this size (a large one is ~100 KiB). */
const MAX_LD_CACHE_BYTES = 4 * 1024 * 1024;

/** See the module comment. Never throws. */
export function discoverNvidia(o: NvidiaDiscoveryOptions = {}): NvidiaDiscovery {
  const root = o.root ?? "/";
  const explicit = { nvmlLibraryPath: o.nvmlLibraryPath, nvidiaSmiCommand: o.nvidiaSmiCommand };
  const nodes = nvidiaDeviceNodes(root);
  // dev/ unreadable: nothing can be told from it; the probes decide (as before this rule existed).
  if (nodes === undefined) return { status: "found", how: `${join(root, "dev")} unreadable: probed anyway`, ...explicit };
  if (nodes.length > 0) return { status: "found", how: `device node(s) ${nodes.map((n) => join(root, "dev", n)).join(", ")}`, ...explicit };
  if (o.nvmlLibraryPath !== undefined || o.nvidiaSmiCommand !== undefined) {
    const set = [o.nvmlLibraryPath !== undefined && "POWERPRINT_NVML_LIBRARY", o.nvidiaSmiCommand !== undefined && "POWERPRINT_NVIDIA_SMI"].filter(Boolean).join(" and ");
    return { status: "found", how: `${set} set (no device node)`, ...explicit };
  }
  const dxg = join(root, "dev", "dxg");
  if (existsSync(dxg)) {
    const wsl = join(root, WSL_LIB_DIR);
    const lib = join(wsl, NVML_SONAME);
    const smi = join(wsl, "nvidia-smi");
    const hasLib = existsSync(lib);
    const hasSmi = isExecutableFile(smi);
    if (hasLib || hasSmi) {
      return {
        status: "found",
        how: `WSL2: ${dxg}, NVIDIA driver in ${wsl} (${[hasLib && NVML_SONAME, hasSmi && "nvidia-smi"].filter(Boolean).join(", ")})`,
        ...(hasLib && { nvmlLibraryPath: lib }),
        ...(hasSmi && { nvidiaSmiCommand: smi }),
      };
    }
    return {
      status: "none",
      reason: `WSL2 GPU (${dxg}) without NVIDIA's driver files in ${wsl} (${NVML_SONAME}, nvidia-smi): not an NVIDIA GPU, or its Windows driver lacks WSL support`,
      fix: "install the NVIDIA Windows driver with WSL support (it provides /usr/lib/wsl/lib/libnvidia-ml.so.1 and nvidia-smi), then `wsl --shutdown` and reopen",
    };
  }
  const smiOnPath = findInDirs("nvidia-smi", o.searchPath, isExecutableFile);
  if (smiOnPath) return { status: "found", how: `nvidia-smi on PATH (${smiOnPath}), no device node`, nvidiaSmiCommand: smiOnPath };
  const libInDirs = findInDirs(NVML_SONAME, o.libraryPath, existsSync);
  if (libInDirs) return { status: "found", how: `${NVML_SONAME} in LD_LIBRARY_PATH (${libInDirs}), no device node`, nvmlLibraryPath: libInDirs };
  const cache = join(root, "etc", "ld.so.cache");
  if (loaderCacheNames(cache, NVML_SONAME)) return { status: "found", how: `${NVML_SONAME} in the loader's cache (${cache}), no device node` };
  return {
    status: "none",
    reason: `no NVIDIA device (no ${join(root, "dev", "nvidia[0-9]*")}, no ${dxg}, no nvidia-smi on PATH, no ${NVML_SONAME} for the loader)`,
    fix: "in a container, expose the GPUs (NVIDIA container toolkit, --gpus); or set POWERPRINT_NVML_LIBRARY / POWERPRINT_NVIDIA_SMI to probe anyway",
  };
}

/**
 * NVIDIA device nodes under `root`/dev (nvidia0, nvidia1, ...; nvidiactl alone is no GPU).
 * undefined when dev/ is unreadable (then the probes decide).
 */
export function nvidiaDeviceNodes(root = "/"): string[] | undefined {
  try {
    return readdirSync(join(root, "dev")).filter((n) => /^nvidia\d+$/.test(n));
  } catch {
    return undefined;
  }
}

function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The first `dirs` entry (a PATH-style list) holding `name` as `test` accepts it; absolute directories only. */
function findInDirs(name: string, dirs: string | undefined, test: (path: string) => boolean): string | undefined {
  for (const dir of (dirs ?? "").split(delimiter).slice(0, MAX_SEARCH_DIRS)) {
    if (!dir.startsWith("/")) continue;
    const path = join(dir, name);
    if (test(path)) return path;
  }
  return undefined;
}

/** Whether the loader's cache (ld.so.cache, binary: NUL-terminated names and paths) names `soname`. */
function loaderCacheNames(cachePath: string, soname: string): boolean {
  try {
    if (statSync(cachePath).size > MAX_LD_CACHE_BYTES) return false;
    return readFileSync(cachePath).includes(Buffer.from(`${soname}\0`));
  } catch {
    return false;
  }
}
