/**
 * Selector mode on real process trees: one tree matched by --match-cmdline (its regex's capture
 * group names the job), one by --match-env (the variable's value names it), one matching neither.
 * Each job holds exactly its tree (children that match too, by inherited env or argv, stay in their
 * ancestor's job), and its CPU seconds match what its processes measured themselves.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SelectorJobSource, parseSelector } from "../../src/agent/selector-source.js";
import { UsageError } from "../../src/errors.js";
import { waitFor } from "../helpers/wait.js";

const SCRIPT = join(import.meta.dirname, "scripts", "job-tree.mjs");

interface Measured {
  tag: string;
  pid: number;
  cpuSeconds: number;
}

describe("parseSelector", () => {
  it("refuses what is not a regex or KEY[=VALUE], naming the flag", () => {
    expect(() => parseSelector({ matchCmdline: "(" })).toThrow(UsageError);
    expect(() => parseSelector({ matchCmdline: "(" })).toThrow(/--match-cmdline/);
    expect(() => parseSelector({ matchEnv: "1BAD" })).toThrow(/--match-env/);
    expect(parseSelector({ matchEnv: "RUN=a=b" }).env).toEqual({ key: "RUN", value: "a=b" });
  });
});

describe("SelectorJobSource on real process trees", () => {
  let dir: string;
  const trees: ChildProcess[] = [];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "pp-selector-"));
  });
  afterAll(() => {
    for (const t of trees) t.kill("SIGTERM");
    rmSync(dir, { recursive: true, force: true });
  });

  it("one job per matching tree, exactly its processes, with their CPU seconds", async () => {
    // The test process spawns the trees: it is not the agent here (an agent's own descendants are
    // never a job), so the source is told the agent is PID 1.
    const source = new SelectorJobSource({ procRoot: "/", selfPid: 1, selector: parseSelector({ matchCmdline: `job-tree\\.mjs cmd-(\\w+) `, matchEnv: `PP_SELECTOR_JOB_${process.pid}` }) });
    const envKey = `PP_SELECTOR_JOB_${process.pid}`;
    // The same selector from the test process's own point of view (it is the agent): its children are never jobs.
    const asAgent = new SelectorJobSource({ procRoot: "/", selector: parseSelector({ matchEnv: envKey }) });
    asAgent.sample();
    // The first look: these trees do not exist yet, so all their CPU counts from their start.
    source.sample();
    const start = (tag: string, env: NodeJS.ProcessEnv = {}) => {
      const child = spawn(process.execPath, [SCRIPT, tag, dir], { stdio: "ignore", env: { ...process.env, ...env } });
      trees.push(child);
      return child;
    };
    start("cmd-alpha");
    start("by-env", { [envKey]: "beta" });
    start("neither");
    const files = await waitFor("9 processes measured", () => {
      const f = readdirSync(dir).filter((n) => n.endsWith(".json"));
      return f.length === 9 ? f : undefined;
    });
    const measured = files.map((f) => JSON.parse(readFileSync(join(dir, f), "utf8")) as Measured);
    source.sample();
    const s = source.sample();

    const byTag = (tag: string) => measured.filter((m) => m.tag === tag);
    const pidsOf = (job: string) => [...s.members].filter(([, j]) => j === job).map(([pid]) => pid).sort((a, b) => a - b);
    const expectedPids = (tag: string) => byTag(tag).map((m) => m.pid).sort((a, b) => a - b);
    expect([...s.jobs!.keys()].sort()).toEqual([`${envKey}=beta`, "alpha"]);
    expect(pidsOf("alpha")).toEqual(expectedPids("cmd-alpha"));
    expect(pidsOf(`${envKey}=beta`)).toEqual(expectedPids("by-env"));
    for (const m of byTag("neither")) expect(s.members.has(m.pid)).toBe(false);
    expect(s.jobs!.get("alpha")!.attributes["powerprint.selector"]).toBe("cmdline");
    expect(s.jobs!.get(`${envKey}=beta`)!.attributes["powerprint.selector"]).toBe("env");
    expect(s.jobProcessCount.get("alpha")).toBe(3);
    asAgent.sample();
    expect(asAgent.sample().jobs!.size).toBe(0);

    for (const [job, tag] of [["alpha", "cmd-alpha"], [`${envKey}=beta`, "by-env"]] as const) {
      const self = byTag(tag).reduce((sum, m) => sum + m.cpuSeconds, 0);
      const counted = s.jobCpuSeconds.get(job)!;
      // Idle since they measured; /proc rounds to clock ticks (10 ms per process).
      expect(counted).toBeGreaterThanOrEqual(self * 0.95 - 0.03);
      expect(counted).toBeLessThanOrEqual(self * 1.05 + 0.03);
    }

    // The trees end: the jobs stay known (their totals) with no process left.
    for (const t of trees) t.kill("SIGTERM");
    await Promise.all(trees.map((t) => new Promise((r) => (t.exitCode !== null ? r(null) : t.once("exit", r)))));
    await waitFor("trees gone", () => {
      const after = source.sample();
      return after.jobProcessCount.get("alpha") === 0 && after.jobProcessCount.get(`${envKey}=beta`) === 0 ? after : undefined;
    });
    const end = source.sample();
    expect(end.jobCpuSeconds.get("alpha")).toBeGreaterThanOrEqual(s.jobCpuSeconds.get("alpha")!);
  }, 120_000);
});
