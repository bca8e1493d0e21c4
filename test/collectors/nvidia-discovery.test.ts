// Whether NVIDIA's sources are probed on a host without /dev/nvidia*, and with what (collectors/
// nvidia-discovery.ts), on fixture roots: WSL2 (/dev/dxg, the driver's files in /usr/lib/wsl/lib),
// nvidia-smi on PATH, libnvidia-ml.so.1 in LD_LIBRARY_PATH or the loader's cache; nothing of these:
// nothing probed, with everything that was looked at.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { discoverNvidia } from "../../collectors/nvidia-discovery.js";

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "pp-nvdisc-"));
  mkdirSync(join(root, "dev"));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const file = (path: string, mode = 0o644, text = "") => {
  mkdirSync(join(path, ".."), { recursive: true });
  writeFileSync(path, text);
  chmodSync(path, mode);
};

describe("discoverNvidia", () => {
  it("nothing: none, naming every place looked at", () => {
    file(join(root, "dev", "nvidiactl")); // the control node alone is no GPU
    const d = discoverNvidia({ root, searchPath: join(root, "bin"), libraryPath: join(root, "lib") });
    expect(d).toMatchObject({ status: "none", reason: `no NVIDIA device (no ${root}/dev/nvidia[0-9]*, no ${root}/dev/dxg, no nvidia-smi on PATH, no libnvidia-ml.so.1 for the loader)` });
  });

  it("device nodes: found, the collectors' defaults", () => {
    file(join(root, "dev", "nvidia0"));
    expect(discoverNvidia({ root })).toEqual({ status: "found", how: `device node(s) ${root}/dev/nvidia0` });
  });

  it("explicit settings win over the absence of nodes", () => {
    expect(discoverNvidia({ root, nvidiaSmiCommand: "/opt/x/nvidia-smi" })).toEqual({ status: "found", how: "POWERPRINT_NVIDIA_SMI set (no device node)", nvidiaSmiCommand: "/opt/x/nvidia-smi" });
  });

  it("WSL2: /dev/dxg and the driver's NVML and nvidia-smi under usr/lib/wsl/lib", () => {
    file(join(root, "dev", "dxg"));
    file(join(root, "usr/lib/wsl/lib/libnvidia-ml.so.1"));
    file(join(root, "usr/lib/wsl/lib/nvidia-smi"), 0o755);
    expect(discoverNvidia({ root })).toEqual({
      status: "found",
      how: `WSL2: ${root}/dev/dxg, NVIDIA driver in ${root}/usr/lib/wsl/lib (libnvidia-ml.so.1, nvidia-smi)`,
      nvmlLibraryPath: join(root, "usr/lib/wsl/lib/libnvidia-ml.so.1"),
      nvidiaSmiCommand: join(root, "usr/lib/wsl/lib/nvidia-smi"),
    });
  });

  it("WSL2 with only nvidia-smi: that one; with neither: none, saying it is WSL2 and what is missing", () => {
    file(join(root, "dev", "dxg"));
    file(join(root, "usr/lib/wsl/lib/nvidia-smi"), 0o755);
    expect(discoverNvidia({ root })).toMatchObject({ status: "found", nvidiaSmiCommand: join(root, "usr/lib/wsl/lib/nvidia-smi") });
    expect(discoverNvidia({ root })).not.toHaveProperty("nvmlLibraryPath");
    rmSync(join(root, "usr"), { recursive: true });
    expect(discoverNvidia({ root })).toMatchObject({ status: "none", reason: expect.stringMatching(/^WSL2 GPU \(.*\/dev\/dxg\) without NVIDIA's driver files/) });
  });

  it("nvidia-smi on PATH: executable files only, the first directory holding one", () => {
    file(join(root, "a", "nvidia-smi")); // not executable
    file(join(root, "b", "nvidia-smi"), 0o755);
    const d = discoverNvidia({ root, searchPath: ["relative/dir", join(root, "a"), join(root, "b")].join(":") });
    expect(d).toEqual({ status: "found", how: `nvidia-smi on PATH (${root}/b/nvidia-smi), no device node`, nvidiaSmiCommand: join(root, "b", "nvidia-smi") });
  });

  it("libnvidia-ml.so.1 in LD_LIBRARY_PATH, or named in the loader's cache", () => {
    file(join(root, "lib64", "libnvidia-ml.so.1"));
    expect(discoverNvidia({ root, libraryPath: join(root, "lib64") })).toMatchObject({ status: "found", nvmlLibraryPath: join(root, "lib64", "libnvidia-ml.so.1") });
    // ld.so.cache: NUL-separated names and paths (the bytes around them are the format's binary).
    file(join(root, "etc", "ld.so.cache"), 0o644, "glibc-ld.so.cache1.1\0\0\x01libc.so.6\0/lib/libc.so.6\0libnvidia-ml.so.1\0/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1\0");
    expect(discoverNvidia({ root })).toEqual({ status: "found", how: `libnvidia-ml.so.1 in the loader's cache (${root}/etc/ld.so.cache), no device node` });
    file(join(root, "etc", "ld.so.cache"), 0o644, "glibc-ld.so.cache1.1\0libnvidia-ml.so.10\0");
    expect(discoverNvidia({ root }).status).toBe("none");
  });
});
