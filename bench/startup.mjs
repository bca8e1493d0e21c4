// Start-up: wall time of `powerprint run -q -- true` against `node -e 0`, and the delay from
// powerprint's start (a C wrapper stamps CLOCK_REALTIME, then execs node) to the child's first
// instruction (a C child stamps CLOCK_REALTIME first thing), with cgroup tracking (as root) and
// with /proc tracking. Node's own floor is timed the same way: exec → the first instruction of a
// one-line ES module (it stamps CLOCK_REALTIME through performance.timeOrigin + now()); the
// difference is what powerprint itself adds before its command runs. Interleaved rounds; medians.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLI, compileC, quick, round, run, stats } from "./lib.mjs";

export async function main({ rounds = quick ? 10 : 30 } = {}) {
  const stamp = compileC("stamp");
  const stampExec = compileC("stamp-exec");
  const dir = mkdtempSync(join(tmpdir(), "pp-bench-start-"));
  const t0File = join(dir, "t0");
  const t1File = join(dir, "t1");
  const samples = { nodeMillis: [], runTrueMillis: [], childStartMillis: [], childStartProcfsMillis: [], nodeFloorMillis: [], childRunWallMillis: [] };
  const floorScript = join(dir, "floor.mjs");
  writeFileSync(floorScript, 'import { writeFileSync } from "node:fs";\nwriteFileSync(process.argv[2], String(BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6))));\n');
  const stampDelta = () => Number(BigInt(readFileSync(t1File, "utf8").trim()) - BigInt(readFileSync(t0File, "utf8").trim())) / 1e6;
  for (let i = 0; i < 2; i++) await run(process.execPath, [CLI, "run", "-q", "--", "true"]); // warm the page cache
  for (let i = 0; i < rounds; i++) {
    const order = i % 2 === 0 ? ["node", "run", "child", "procfs", "floor"] : ["floor", "procfs", "child", "run", "node"];
    for (const what of order) {
      if (what === "node") samples.nodeMillis.push((await run(process.execPath, ["-e", "0"])).wallMillis);
      if (what === "run") {
        const r = await run(process.execPath, [CLI, "run", "-q", "--", "true"]);
        if (r.code !== 0) throw new Error(`run -- true exited ${r.code}: ${r.stderr}`);
        samples.runTrueMillis.push(r.wallMillis);
      }
      if (what === "child" || what === "procfs") {
        const tracking = what === "procfs" ? ["--tracking", "procfs"] : [];
        const r = await run(stampExec, [t0File, process.execPath, CLI, "run", "-q", ...tracking, "--", stamp, t1File]);
        if (r.code !== 0) throw new Error(`run -- stamp exited ${r.code}: ${r.stderr}`);
        (what === "procfs" ? samples.childStartProcfsMillis : samples.childStartMillis).push(stampDelta());
        if (what === "child") samples.childRunWallMillis.push(r.wallMillis);
      }
      if (what === "floor") {
        const r = await run(stampExec, [t0File, process.execPath, floorScript, t1File]);
        if (r.code !== 0) throw new Error(`node floor script exited ${r.code}: ${r.stderr}`);
        samples.nodeFloorMillis.push(stampDelta());
      }
    }
  }
  rmSync(dir, { recursive: true, force: true });
  const s = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, stats(v)]));
  const rows = [
    { metric: "node -e 0, wall ms", ...fmt(s.nodeMillis) },
    { metric: "powerprint run -q -- true, wall ms", ...fmt(s.runTrueMillis), target: "≤ 200" },
    { metric: "exec of node → first instruction of a one-line ES module (Node's floor), ms", ...fmt(s.nodeFloorMillis) },
    { metric: "exec of powerprint → child's first instruction, default tracking (cgroup as root), ms", ...fmt(s.childStartMillis) },
    { metric: "exec of powerprint → child's first instruction, --tracking procfs, ms", ...fmt(s.childStartProcfsMillis) },
    // Paired within each round (the floor and both runs are interleaved): steadier than a difference of medians.
    { metric: "powerprint's own part (child start − Node's floor of the same round), default tracking, ms", ...fmt(stats(samples.childStartMillis.map((x, i) => x - samples.nodeFloorMillis[i]))), target: "≤ 60" },
    { metric: "powerprint's own part, --tracking procfs, ms", ...fmt(stats(samples.childStartProcfsMillis.map((x, i) => x - samples.nodeFloorMillis[i]))), target: "≤ 60" },
  ];
  for (const r of rows) process.stdout.write(`startup: ${r.metric}: median ${r.median}${r.p25 !== undefined ? ` (p25 ${r.p25}, p75 ${r.p75}, n ${r.n})` : ""}\n`);
  return { name: "startup", rounds, rows, raw: samples };
}

const fmt = (x) => ({ median: round(x.median, 1), p25: round(x.p25, 1), p75: round(x.p75, 1), min: round(x.min, 1), max: round(x.max, 1), n: x.n });

if (import.meta.url === `file://${process.argv[1]}`) await main();
