/**
 * Issue 9, the rows about powerprint or the job being killed: a SIGKILLed powerprint leaves a
 * checkpointed report (complete: false) and the job running (fail-open), and its marks folder is
 * cleaned by a later run; the grace SIGKILL reaches every live member of the job. Real CLI, real
 * processes; every wait is for an event (a file the process writes, a process state), never a sleep.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli } from "../helpers/cli.js";
import { waitFor } from "../helpers/wait.js";

const scenario = join(import.meta.dirname, "..", "fixtures", "scenarios", "shared-gpu-two-jobs.json");
const stubborn = join(import.meta.dirname, "..", "fixtures", "scripts", "stubborn-tree.mjs");

const dirs: string[] = [];
const pidsToKill: number[] = [];
afterEach(() => {
  for (const pid of pidsToKill.splice(0)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* gone */
    }
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), "pp-kill-"));
  dirs.push(d);
  return d;
};

/** Waits for a condition that the processes under test make true (polled; no time window asserted). */
/** Live (not zombie) process. */
function isLive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat[stat.lastIndexOf(")") + 2] !== "Z";
  } catch {
    return false;
  }
}

const pidsIn = (file: string): number[] => (existsSync(file) ? readFileSync(file, "utf8").trim().split("\n").filter(Boolean).map(Number) : []);

describe("powerprint SIGKILLed mid-run", () => {
  it("leaves the last checkpoint (complete: false, energy measured so far) and the job running; a later run removes its marks folder", async () => {
    const dir = tmp();
    const report = join(dir, "report.json");
    const jobPids = join(dir, "job.pids");
    let pp: ChildProcess | undefined;
    const run = runCli(
      ["run", "--quiet", "--sim", scenario, "--interval", "100ms", "--checkpoint-interval", "200ms", "--report", report, "--", process.execPath, "-e",
        `require("fs").appendFileSync(${JSON.stringify(jobPids)}, process.pid + "\\n"); setInterval(() => {}, 60000)`],
      { onSpawn: (c) => (pp = c), timeoutMillis: 60_000 },
    );
    // The first checkpoint is the event: the report appears (atomically renamed into place).
    await waitFor("the checkpoint and one live member", () => existsSync(report) && pidsIn(jobPids).length === 1);
    const jobPid = pidsIn(jobPids)[0];
    pidsToKill.push(jobPid);
    pp!.kill("SIGKILL");
    const r = await run;
    expect(r.signal).toBe("SIGKILL");
    const rep = JSON.parse(readFileSync(report, "utf8")) as { complete: boolean; totals: { energyJoules: number }; jobs: { id: string }[]; sampler: { ticks: number } };
    expect(rep.complete).toBe(false);
    expect(rep.totals.energyJoules).toBeGreaterThan(0);
    expect(rep.sampler.ticks).toBeGreaterThanOrEqual(2);
    // Fail-open: the job itself was not touched.
    expect(isLive(jobPid)).toBe(true);

    // What SIGKILL leaves: the marks folder (no cleanup runs), named with powerprint's PID.
    const left = readdirSync(tmpdir()).filter((n) => n.startsWith(`powerprint-marks-${pp!.pid}-`));
    expect(left).toHaveLength(1);
    const folder = join(tmpdir(), left[0]);
    // A later run removes it once it has been idle an hour (an orphaned job may still be writing to a fresh one).
    const fresh = await runCli(["run", "--quiet", "--sim", scenario, "--", "true"]);
    expect(fresh.code, fresh.stderr).toBe(0);
    expect(existsSync(folder)).toBe(true);
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    utimesSync(join(folder, "marks.jsonl"), twoHoursAgo, twoHoursAgo);
    const later = await runCli(["run", "--quiet", "--sim", scenario, "--", "true"]);
    expect(later.code, later.stderr).toBe(0);
    expect(existsSync(folder)).toBe(false);
  });

  it("the final report says complete: true", async () => {
    const dir = tmp();
    const report = join(dir, "report.json");
    const r = await runCli(["run", "--quiet", "--sim", scenario, "--interval", "100ms", "--checkpoint-interval", "50ms", "--report", report, "--", "true"]);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(readFileSync(report, "utf8")) as { complete: boolean }).complete).toBe(true);
  });
});

describe("the grace SIGKILL reaches every live member of the job", () => {
  it.each([
    ["the root and its children ignore SIGTERM", "0", 137],
    ["the root exits on SIGTERM, its children ignore it", "1", 0],
  ])("%s: after --grace, none of them is left running", async (_name, parentExits, code) => {
    const dir = tmp();
    const pids = join(dir, "pids");
    let pp: ChildProcess | undefined;
    const run = runCli(["run", "--quiet", "--interval", "100ms", "--grace", "300ms", "--", process.execPath, stubborn], {
      env: { STUBBORN_PIDS: pids, STUBBORN_CHILDREN: "2", STUBBORN_PARENT_EXITS: parentExits },
      onSpawn: (c) => (pp = c),
      timeoutMillis: 60_000,
    });
    // All three have their SIGTERM handling in place.
    await waitFor("three live members", () => pidsIn(pids).length === 3);
    pidsToKill.push(...pidsIn(pids));
    pp!.kill("SIGTERM");
    const r = await run;
    expect(r.code, r.stderr).toBe(code);
    expect(r.stderr).toMatch(/still alive .* after SIGTERM: sending SIGKILL to all/);
    // Before the fix the children were never killed: this wait would not end.
    await waitFor("every member gone", () => pidsIn(pids).every((p) => !isLive(p)));
  }, 60_000);
});
