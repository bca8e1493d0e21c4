import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Tests spawn real processes and servers; two cores here, keep parallelism modest.
    pool: "forks",
    maxWorkers: 2,
    globalSetup: ["test/global-setup.ts"],
  },
});
