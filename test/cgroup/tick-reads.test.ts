// run's cgroup tick makes the same file reads for a 1,000-process job as for a 1-process one: a
// real job of n processes (sh forking n-1 sleeps) in a real job cgroup, CgroupJobSource built as
// run builds it (default options), ticked by a small script (scripts/tick-reads.mjs) that runs
// under `strace -y` (main thread: every synchronous fs call). Every read/pread64 between the
// script's two markers is counted by the file it read. A control on the same instrument: without
// a memory cgroup (memory: false), the fallback reads each member's /proc/PID/stat, and the trace
// shows those 1,000 reads.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, rmdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { readCgroupMounts } from "../../src/cgroup/mounts.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const script = fileURLToPath(new URL("./scripts/tick-reads.mjs", import.meta.url));
const dist = join(root, "dist");
const works: string[] = [];

afterAll(() => {
  // A crashed script's cgroups (it normally removes them itself): kill what is left, then rmdir.
  for (const w of works) {
    const list = join(w, "cgroups.json");
    if (existsSync(list)) {
      for (const dir of JSON.parse(readFileSync(list, "utf8")) as string[]) {
        if (!existsSync(dir)) continue;
        for (const pid of readFileSync(join(dir, "cgroup.procs"), "utf8").split("\n").filter(Boolean)) {
          try {
            process.kill(Number(pid), "SIGKILL");
          } catch {
            // gone
          }
        }
        for (let i = 0; i < 200 && existsSync(dir); i++) {
          try {
            rmdirSync(dir);
          } catch {
            spawnSync("sleep", ["0.02"]);
          }
        }
      }
    }
    rmSync(w, { recursive: true, force: true });
  }
});

interface ScriptResult {
  error?: string;
  pids: number;
  memory: { version: 1 | 2; dir: string } | null;
  memoryNote: string | null;
  members: number[];
  processCount: (number | null)[];
  rssBytes: (number | null)[];
  debug: string[];
  killRemaining: number;
  removed: boolean;
}

interface Traced {
  result: ScriptResult;
  /** Reads between the markers, by file (job cgroup dirs as <job>/<memjob>, /proc/<digits> as /proc/<pid>). */
  reads: Map<string, number>;
  /** Total read/pread64 calls between the markers. */
  total: number;
  cgroups: string[];
}

const TICKS = 4;

async function traced(cfg: { prefer: "v2" | "v1"; memory: boolean; n: number; options?: object }): Promise<Traced> {
  const work = mkdtempSync(join(tmpdir(), "pp-tick-reads-"));
  works.push(work);
  const trace = join(work, "trace.txt");
  const config = JSON.stringify({ dist, work, ticks: TICKS, options: {}, ...cfg });
  // No -f: the script's main thread only (synchronous fs calls run there; the job is not traced).
  const child = spawn("strace", ["-qq", "-y", "-s", "0", "-e", "trace=read,pread64,access,faccessat,faccessat2", "-o", trace, process.execPath, script, config], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let stdout = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  const code = await new Promise<number | null>((res) => child.on("exit", res));
  const result = JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}") as ScriptResult;
  if (result.error) throw new Error(result.error);
  expect(code).toBe(0);
  const cgroups = JSON.parse(readFileSync(join(work, "cgroups.json"), "utf8")) as string[];
  const lines = readFileSync(trace, "utf8").split("\n");
  const begin = lines.findIndex((l) => l.includes("pp-tick-reads-begin"));
  const end = lines.findIndex((l) => l.includes("pp-tick-reads-end"));
  expect(begin).toBeGreaterThanOrEqual(0);
  expect(end).toBeGreaterThan(begin);
  const reads = new Map<string, number>();
  let total = 0;
  for (const l of lines.slice(begin + 1, end)) {
    const m = /^(read|pread64)\(\d+<([^>]*)>/.exec(l);
    if (!m) continue;
    total++;
    let path = m[2];
    cgroups.forEach((dir, i) => (path = path.replace(dir, i === 0 ? "<job>" : "<memjob>")));
    path = path.replace(/^\/proc\/\d+\//, "/proc/<pid>/");
    const key = `${m[1]} ${path}`;
    reads.set(key, (reads.get(key) ?? 0) + 1);
  }
  return { result, reads, total, cgroups };
}

const mounts = readCgroupMounts();
// Under CI (.ci/run installs strace) a missing strace fails the test instead of skipping it.
const hasStrace = spawnSync("strace", ["-V"]).status === 0 || process.env.CI !== undefined;
const root0 = process.getuid?.() === 0;
const hierarchies = [
  { prefer: "v2" as const, present: mounts.v2 !== undefined, cpuFile: "cpu.stat" },
  { prefer: "v1" as const, present: mounts.v1.has("cpuacct"), cpuFile: "cpuacct.usage" },
];

describe.each(hierarchies)("run's cgroup tick on $prefer (strace-counted reads)", ({ prefer, present, cpuFile }) => {
  it.skipIf(!present || !root0 || !hasStrace || !mounts.v1.has("memory"))(
    "1,000 processes: the same reads as 1 process, none per member; RSS from the job's v1 memory cgroup; all cgroups removed",
    async () => {
      const one = await traced({ prefer, memory: true, n: 1 });
      const many = await traced({ prefer, memory: true, n: 1000 });
      expect(one.result.pids).toBe(1);
      expect(many.result.pids).toBe(1000);
      for (const t of [one, many]) {
        // The job's memory is in a cgroup of its own in the v1 memory hierarchy (cgroup2 here has no controllers).
        expect(t.result.memory).not.toBeNull();
        expect(t.result.members).toEqual(Array(TICKS).fill(0)); // no member list: GPU PIDs go through jobOfPid
        expect(t.result.debug).toEqual([]); // no fallback said
        expect(t.result.rssBytes.every((b) => b !== null && b > 0)).toBe(true);
        expect(t.result.killRemaining).toBe(0);
        expect(t.result.removed).toBe(true);
        for (const dir of t.cgroups) expect(existsSync(dir)).toBe(false);
        // Exactly these files, nothing per member, no member list.
        const files = new Set([...t.reads.keys()].map((k) => k.split(" ")[1]));
        const memFile = t.result.memory?.version === 1 ? "<memjob>/memory.stat" : "<job>/memory.stat";
        expect(files).toEqual(new Set([`<job>/${cpuFile}`, memFile, "/proc/stat", "/proc/meminfo"]));
        // A few calls each per tick (the data, then 0 at the end): here 2.
        for (const n of t.reads.values()) expect(n).toBeLessThanOrEqual(2 * TICKS);
      }
      // The same reads, file by file, whatever the job's size.
      expect(Object.fromEntries(many.reads)).toEqual(Object.fromEntries(one.reads));
      // The many-process job's RSS is ~ a thousand sleeps', well above one's.
      expect(many.result.rssBytes[0]!).toBeGreaterThan(100 * one.result.rssBytes[0]!);
    },
  );
});

describe("the instrument sees per-member reads (control: no memory cgroup)", () => {
  it.skipIf(!mounts.v2 || !root0 || !hasStrace)("memory: false, members' RSS every tick: 1,000 /proc/PID/stat reads per tick, said once", async () => {
    const t = await traced({ prefer: "v2", memory: false, n: 1000, options: { memberRssEveryTicks: 1 } });
    expect(t.result.memory).toBeNull();
    expect(t.result.memoryNote).toMatch(/memory: false/);
    expect(t.result.debug).toHaveLength(1);
    expect(t.result.debug[0]).toMatch(/^job job: resident memory from its members' \/proc\/PID\/stat every 1 tick/);
    const perMember = [...t.reads].filter(([k]) => k.endsWith(" /proc/<pid>/stat")).reduce((a, [, n]) => a + n, 0);
    expect(perMember).toBeGreaterThanOrEqual(1000 * TICKS);
    expect(t.reads.get("pread64 <job>/cgroup.procs")).toBeGreaterThanOrEqual(TICKS);
    expect(t.result.removed).toBe(true);
  });
});
