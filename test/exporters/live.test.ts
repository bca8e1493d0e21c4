// The live status line in a real terminal (tmux): the wrapped command prints to the same terminal
// while the line updates, and every line it printed is intact in the pane's history (the line sits
// on the bottom row, outside a scroll region that holds the command's output); the line is there
// while the command runs and gone after; the terminal is restored (scroll region back to the whole
// pane) after the run ends, after SIGINT, and it follows a resize. Absent when stderr is not a
// terminal. Everything waits on what the pane shows (capture-pane, tmux's own format variables),
// never on time.
import { describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLI, runCli } from "../helpers/cli.js";
import { waitFor } from "../helpers/wait.js";
import { LIVE_MIN_INTERVAL_MILLIS, liveSequences } from "../../exporters/live.js";

const scenario = join(import.meta.dirname, "..", "fixtures", "scenarios", "design-example.json");
const hasTmux = (() => {
  try {
    execFileSync("tmux", ["-V"]);
    return true;
  } catch {
    return false;
  }
})();
const LIVE = /powerprint ▸ (\S+ \S+) · (\S+ \S+) · (\S+ \S+) · (\S+ \S+) CO2e/;
const ROWS = 20;
const COLUMNS = 120;

/** A tmux server of its own (socket in the test's folder), a pane of ROWS × COLUMNS running `command`. */
function terminal(dir: string, command: string[]) {
  const socket = join(dir, "tmux.sock");
  const tmux = (...args: string[]) => execFileSync("tmux", ["-S", socket, ...args], { encoding: "utf8", env: { ...process.env, LANG: "C.UTF-8" } });
  const line = command.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(" ");
  // The pane's shell traps SIGINT (a handler, not an ignore: the programs it runs get SIGINT's
  // default back), so a Ctrl-C ends powerprint and the job but not the pane.
  tmux("-u", "new-session", "-d", "-s", "live", "-x", String(COLUMNS), "-y", String(ROWS), `trap : INT; ${line}; echo EXITED $?; sleep 600`);
  return {
    tmux,
    /** The visible rows. */
    screen: () => tmux("capture-pane", "-p", "-t", "live"),
    /** History and visible rows, wrapped lines joined. */
    all: () => tmux("capture-pane", "-p", "-J", "-S", "-", "-t", "live"),
    /** tmux's scroll region of the pane, [upper, lower] (0-based rows). */
    region: () => tmux("display", "-p", "-t", "live", "#{scroll_region_upper} #{scroll_region_lower}").trim().split(" ").map(Number),
    close: () => {
      try {
        tmux("kill-server");
      } catch {
        /* already gone */
      }
    },
  };
}

/**
 * A job printing a numbered line every 100 ms: at least `min` lines (3 s at 30), then on until
 * the test's file exists (the test lets it end once it has seen the live line: no race with
 * probing on a busy machine). It writes the count last.
 */
function printingJob(stop: string, min: number): string {
  return `const fs = require("fs"); let i = 0; const t = setInterval(() => { i++; process.stdout.write("job line " + String(i).padStart(3, "0") + (i % 2 === 0 ? " " + "0123456789".repeat(6) + " end" : "") + "\\n"); if (i >= ${min} && fs.existsSync(${JSON.stringify(stop)})) { clearInterval(t); process.stdout.write("JOB PRINTED " + i + "\\n"); } }, 100);`;
}

/**
 * The job's line `i` (as printingJob's code writes it): short ones (shorter than the status line,
 * whose tail an overwrite used to leave behind them) and long ones, alternately.
 */
function jobLine(i: number): string {
  return "job line " + String(i).padStart(3, "0") + (i % 2 === 0 ? " " + "0123456789".repeat(6) + " end" : "");
}

/** The first `n` lines the job prints. */
const jobLines = (n: number) => Array.from({ length: n }, (_, i) => jobLine(i + 1));

describe.skipIf(!hasTmux)("live status line (tmux; .ci/run installs it)", () => {
  it("a command printing every 100 ms: its lines all intact in the history, the line on the bottom row while it runs, gone after, the region restored", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pp-live-"));
    const stop = join(dir, "stop");
    const t = terminal(dir, [process.execPath, CLI, "run", "--interval", "200ms", "--job-id", "live1", "--", process.execPath, "-e", printingJob(stop, 30)]);
    try {
      // While it runs: the status on the last row, the region all rows but that one.
      const first = await waitFor("the live line on the bottom row", () => {
        const rows = t.screen().split("\n");
        return LIVE.exec(rows[ROWS - 1] ?? "")?.[1];
      }, 60_000, 50);
      expect(t.region()).toEqual([0, ROWS - 2]);
      // It updates (another elapsed time), still on the last row, while the job prints.
      await waitFor("the live line to update", () => {
        const m = LIVE.exec(t.screen().split("\n")[ROWS - 1] ?? "");
        return m !== null && m[1] !== first;
      }, 60_000, 50);
      writeFileSync(stop, "");
      const final = await waitFor("the run to end", () => (t.all().includes("EXITED") ? t.all() : undefined), 60_000, 100);
      expect(final).toContain("EXITED 0");
      const printed = Number(/JOB PRINTED (\d+)/.exec(final)?.[1]);
      expect(printed).toBeGreaterThanOrEqual(30);
      // Every line the job printed, whole, once, in order, in the pane's history.
      expect(final.split("\n").filter((l) => l.startsWith("job line "))).toEqual(jobLines(printed));
      // Gone after, nowhere in the history either (it never scrolls: it is outside the region).
      expect(final).not.toMatch(LIVE);
      expect(final).toContain("powerprint summary");
      expect(t.region()).toEqual([0, ROWS - 1]);
    } finally {
      t.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);

  it("SIGINT (Ctrl-C in the terminal): the job and powerprint end, the terminal is restored", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pp-live-int-"));
    const never = join(dir, "never");
    const t = terminal(dir, [process.execPath, CLI, "run", "--interval", "200ms", "--job-id", "live2", "--", process.execPath, "-e", printingJob(never, 1)]);
    try {
      await waitFor("the live line", () => LIVE.test(t.screen().split("\n")[ROWS - 1] ?? ""), 60_000, 50);
      expect(t.region()).toEqual([0, ROWS - 2]);
      // The terminal's Ctrl-C: SIGINT to the foreground process group (powerprint and the job).
      t.tmux("send-keys", "-t", "live", "C-c");
      const final = await waitFor("the run to end", () => (t.all().includes("EXITED") ? t.all() : undefined), 60_000, 100);
      expect(final).toContain("EXITED 130");
      expect(final).not.toMatch(LIVE);
      expect(t.region()).toEqual([0, ROWS - 1]);
    } finally {
      t.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);

  it("a resize: the region follows the new height and the line is redrawn on the new bottom row", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pp-live-resize-"));
    const stop = join(dir, "stop");
    const t = terminal(dir, [process.execPath, CLI, "run", "--interval", "200ms", "--job-id", "live3", "--", process.execPath, "-e", printingJob(stop, 1)]);
    try {
      await waitFor("the live line", () => LIVE.test(t.screen().split("\n")[ROWS - 1] ?? ""), 60_000, 50);
      const rows = ROWS - 6;
      t.tmux("resize-window", "-t", "live", "-y", String(rows));
      await waitFor("the region for the new height", () => t.region()[1] === rows - 2, 60_000, 50);
      await waitFor("the line on the new bottom row", () => LIVE.test(t.screen().split("\n")[rows - 1] ?? ""), 60_000, 50);
      writeFileSync(stop, "");
      const final = await waitFor("the run to end", () => (t.all().includes("EXITED") ? t.all() : undefined), 60_000, 100);
      expect(final).toContain("EXITED 0");
      const printed = Number(/JOB PRINTED (\d+)/.exec(final)?.[1]);
      expect(final.split("\n").filter((l) => l.startsWith("job line "))).toEqual(jobLines(printed));
      expect(t.region()).toEqual([0, rows - 1]);
      expect(t.screen()).not.toMatch(LIVE);
    } finally {
      t.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
});

describe("live status line off a terminal", () => {
  it("prints nothing of it when stderr is a pipe", async () => {
    const r = await runCli(["run", "--sim", scenario, "--interval", "100ms", "--", process.execPath, "-e", "setTimeout(() => {}, 1500)"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("powerprint summary");
    expect(r.stderr).not.toContain("▸");
    expect(r.stderr).not.toContain("\x1b");
  });
});

describe("LiveLine (a TTY-like sink, injected clock and process)", () => {
  /** A terminal-like stream recording what is written, with resize events. */
  function sink(rows: number) {
    const out: string[] = [];
    const listeners = new Map<string, () => void>();
    const stream = {
      isTTY: true,
      columns: 60,
      rows,
      write: (c: string) => (out.push(String(c)), true),
      on: (e: string, f: () => void) => void listeners.set(e, f),
      off: (e: string) => void listeners.delete(e),
    };
    const exitHooks = new Set<() => void>();
    const host = { on: (_e: string, f: () => void) => void exitHooks.add(f), off: (_e: string, f: () => void) => void exitHooks.delete(f) };
    return { out, stream: stream as unknown as NodeJS.WriteStream, listeners, exitHooks, host: host as unknown as NodeJS.Process };
  }

  it("sets the region up, draws at most once per second outside it, tears it down once; powerprint's own writes pass untouched", async () => {
    const { LiveLine } = await import("../../exporters/live.js");
    const { Ledger } = await import("../../src/core/ledger.js");
    const s = sink(24);
    let now = 0;
    const live = new LiveLine({ stream: s.stream, jobId: "j", nowMillis: () => now, process: s.host });
    await live.start();
    const seq = liveSequences(24);
    expect(s.out).toEqual([seq.setUp]);
    expect(seq.setUp).toBe("\x1bD\x1b7\x1b[1;23r\x1b8\x1b[1A");
    expect(s.exitHooks.size).toBe(1);
    const ledger = new Ledger({ pue: 1 }, 0);
    ledger.registerJob("j", "j", {}, 0);
    for (let i = 0; i < 25; i++, now += 200) live.update(ledger.snapshot()); // 5 s of 200 ms ticks
    const draws = s.out.filter((w) => w.includes("powerprint ▸"));
    expect(draws).toHaveLength((25 * 200) / LIVE_MIN_INTERVAL_MILLIS);
    // Each draw: one write, cursor saved, bottom row, erased, the text, cursor restored.
    for (const d of draws) expect(d).toMatch(/^\x1b7\x1b\[24;1H\x1b\[0m\x1b\[2Kpowerprint ▸ .*\x1b8$/);
    s.stream.write("powerprint: warning: something\n");
    expect(s.out[s.out.length - 1]).toBe("powerprint: warning: something\n");
    await live.shutdown();
    await live.shutdown();
    expect(s.out.filter((w) => w === seq.tearDown)).toHaveLength(1);
    expect(seq.tearDown).toBe("\x1b7\x1b[24;1H\x1b[2K\x1b[r\x1b8");
    expect(s.exitHooks.size).toBe(0);
    expect(s.listeners.size).toBe(0);
    // After the teardown nothing is drawn.
    now += 5000;
    live.update(ledger.snapshot());
    expect(s.out[s.out.length - 1]).toBe(seq.tearDown);
  });

  it("the exit hook restores the terminal when the process ends without a shutdown", async () => {
    const { LiveLine } = await import("../../exporters/live.js");
    const s = sink(10);
    const live = new LiveLine({ stream: s.stream, process: s.host });
    await live.start();
    for (const hook of [...s.exitHooks]) hook();
    expect(s.out[s.out.length - 1]).toBe(liveSequences(10).tearDown);
    expect(s.exitHooks.size).toBe(0);
  });

  it("a resize sets the region up for the new height; too small a terminal: restored, no line", async () => {
    const { LiveLine } = await import("../../exporters/live.js");
    const { Ledger } = await import("../../src/core/ledger.js");
    const s = sink(24);
    const live = new LiveLine({ stream: s.stream, jobId: "j", nowMillis: () => 0, process: s.host });
    await live.start();
    const ledger = new Ledger({ pue: 1 }, 0);
    ledger.registerJob("j", "j", {}, 0);
    live.update(ledger.snapshot());
    (s.stream as { rows: number }).rows = 30;
    s.listeners.get("resize")!();
    expect(s.out.slice(-2)[0]).toBe(liveSequences(30).setUp);
    expect(s.out[s.out.length - 1]).toMatch(/^\x1b7\x1b\[30;1H/);
    (s.stream as { rows: number }).rows = 2;
    s.listeners.get("resize")?.();
    expect(s.out[s.out.length - 1]).toBe(liveSequences(30).tearDown);
    expect(s.exitHooks.size).toBe(0);
  });

  it("not a terminal, or a terminal under 3 rows: nothing written", async () => {
    const { LiveLine } = await import("../../exporters/live.js");
    for (const s of [sink(2), { ...sink(24), stream: { ...sink(24).stream, isTTY: false } as unknown as NodeJS.WriteStream }]) {
      const live = new LiveLine({ stream: s.stream, process: s.host });
      await live.start();
      await live.shutdown();
      expect(s.out).toEqual([]);
    }
  });
});
