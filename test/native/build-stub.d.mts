/** Compiles test/native/stub-nvml.c with gcc and returns the path of the stub libnvidia-ml.so.1. */
export function buildStubNvml(outDir?: string): string;
