// After tsc: bundles the CLI (rolldown) so `powerprint run` starts its command at once (issue 10:
// Node's ESM loader pays per file: ~45 modules before the spawn cost ~20 ms more than one chunk),
// then makes dist/src/cli/main.js, the `powerprint` executable, a one-line entry into the bundle
// and marks it executable (tsc does not keep modes).
//
// Layout of dist/bundle/: powerprint.mjs (the entry), warm-*.mjs (run's cgroup warm-up, started by
// the entry before the rest loads), run-start-*.mjs (everything `run` needs
// before its spawn: commander, flag parsing and validation, the job cgroup, the spawn), and one
// chunk per lazily loaded part (the measuring pipeline, each exporter, each other command).
// npm packages other than commander stay in node_modules (koffi is native; the OTel SDK loads
// only when an exporter is asked for).
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const entry = fileURLToPath(new URL("../dist/src/cli/main.js", import.meta.url));
const outDir = fileURLToPath(new URL("../dist/bundle", import.meta.url));
const ENTRY_MARK = "// powerprint: entry into the bundle";

if (!existsSync(entry)) {
  process.stderr.write("postbuild: dist/src/cli/main.js missing (tsc failed?); nothing bundled\n");
  process.exit(1);
}
if (readFileSync(entry, "utf8").includes(ENTRY_MARK)) {
  // tsc did not rewrite it (nothing emitted): the bundle of the previous build stands.
  chmodSync(entry, 0o755);
  process.exit(0);
}

const { rolldown } = await import("rolldown");
/** INEFFECTIVE_DYNAMIC_IMPORT messages of the bundler (a build error once the bundle is written). */
const ineffective = [];
rmSync(outDir, { recursive: true, force: true });
const bundle = await rolldown({
  input: { powerprint: entry },
  platform: "node",
  // Bare specifiers stay imports of node_modules, except commander (7 small files on run's path).
  external: (id) => !id.startsWith(".") && !id.startsWith("/") && !id.startsWith("\0") && id !== "commander" && !id.startsWith("commander/"),
  logLevel: "warn",
  // A module both imported statically and loaded lazily stays in its static importer's chunk: the
  // lazy load does nothing (run's pre-spawn chunk would carry it). Collected and made a build error
  // below, not a yellow line nobody reads; the fix is to split the module (collectors/rapl-counters.ts)
  // or load it only lazily (src/cli/outputs.ts).
  onLog(level, log, handler) {
    if (log.code === "INEFFECTIVE_DYNAMIC_IMPORT") ineffective.push(log.message);
    else handler(level, log);
  },
});
await bundle.write({
  dir: outDir,
  format: "esm",
  entryFileNames: "[name].mjs",
  chunkFileNames: "[name]-[hash].mjs",
  codeSplitting: {
    groups: [
      // What the entry runs before anything else loads (src/cgroup/warm.ts and the mountinfo parser).
      { name: "warm", test: /dist\/src\/cgroup\/(warm|mounts|path)\.js$/, priority: 2 },
      // run's registration and its static imports (kept to what the spawn needs: see src/cli/run.ts).
      { name: "run-start", test: /dist\/src\/cli\/(program|run)\.js$|node_modules\/commander\//, includeDependenciesRecursively: true, priority: 1 },
    ],
  },
});
await bundle.close();
writeFileSync(entry, `#!/usr/bin/env node\n${ENTRY_MARK} (scripts/postbuild.mjs; the unbundled sources are beside it)\nimport "../../bundle/powerprint.mjs";\n`);
chmodSync(entry, 0o755);
if (ineffective.length > 0) {
  // The bundle works (the module just is not split off): written, but the build fails.
  for (const message of ineffective) {
    const plain = message.replace(/\x1b\[[0-9;]*m/g, "").replace(/^\[INEFFECTIVE_DYNAMIC_IMPORT\]\s*/, "");
    process.stderr.write(`postbuild: error: a module is imported both statically and lazily (INEFFECTIVE_DYNAMIC_IMPORT): ${plain}\n`);
  }
  process.exit(1);
}
