/** Compiles test/native/stub-nvml.c with gcc and returns the path of the stub libnvidia-ml.so.1. */
export function buildStubNvml(outDir?: string): string;
/** Compiles test/native/stuck-fuse.c with gcc and returns the path of the stuck-fuse program (a FUSE file whose read never returns). */
export function buildStuckFuse(): string;
