// The live status line in a real terminal (tmux): capture-pane shows it updating (two different
// elapsed values, found by polling), erased at the end before the summary; absent when stderr is
// not a terminal.
import { describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLI, runCli } from "../helpers/cli.js";
import { waitFor } from "../helpers/wait.js";

const scenario = join(import.meta.dirname, "..", "fixtures", "scenarios", "design-example.json");
const hasTmux = (() => {
  try {
    execFileSync("tmux", ["-V"]);
    return true;
  } catch {
    return false;
  }
})();
/** `until(f, millis, what)`: the shared waitFor, polling the terminal every 100 ms. */
const untilValue = <T>(f: () => T | undefined, millis: number, what: string): Promise<T> => waitFor(what, f, millis, 100);
const LIVE = /powerprint ▸ (\S+ \S+) · (\S+ \S+) · (\S+ \S+) · (\S+ \S+) CO2e/;

describe.skipIf(!hasTmux)("live status line (tmux; .ci/run installs it)", () => {
  it("updates in a terminal at most once per second and is erased at the end", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pp-live-"));
    const stop = join(dir, "stop");
    // The server's socket lives in the test's directory, so nothing is left behind.
    const socket = join(dir, "tmux.sock");
    const tmux = (...args: string[]) => execFileSync("tmux", ["-S", socket, ...args], { encoding: "utf8", env: { ...process.env, LANG: "C.UTF-8" } });
    // The job waits for the test's file: the test decides when it ends, no fixed sleep.
    const job = `const fs = require("fs"); const t = setInterval(() => { if (fs.existsSync(${JSON.stringify(stop)})) { clearInterval(t); } }, 50);`;
    const cmd = [process.execPath, CLI, "run", "--sim", scenario, "--interval", "200ms", "--job-id", "live1", "--", process.execPath, "-e", job]
      .map((a) => `'${a.replace(/'/g, `'\\''`)}'`)
      .join(" ");
    try {
      tmux("-u", "new-session", "-d", "-s", "live", "-x", "160", "-y", "40", `${cmd}; echo EXITED $?; sleep 600`);
      const pane = () => tmux("capture-pane", "-p", "-t", "live");
      const first = await untilValue(() => LIVE.exec(pane())?.[1], 30_000, "the live line");
      const second = await untilValue(() => {
        const m = LIVE.exec(pane());
        return m && m[1] !== first ? m[1] : undefined;
      }, 30_000, "the live line to update");
      expect(second).not.toBe(first);
      writeFileSync(stop, "");
      const final = await untilValue(() => (pane().includes("EXITED") ? pane() : undefined), 30_000, "the run to end");
      expect(final).toContain("EXITED 0");
      expect(final).toContain("powerprint summary");
      expect(final).not.toMatch(LIVE); // erased before the summary
    } finally {
      try {
        tmux("kill-server");
      } catch {
        /* already gone */
      }
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe("live status line off a terminal", () => {
  it("prints nothing of it when stderr is a pipe", async () => {
    const r = await runCli(["run", "--sim", scenario, "--interval", "100ms", "--", process.execPath, "-e", "setTimeout(() => {}, 1500)"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("powerprint summary");
    expect(r.stderr).not.toContain("▸");
    expect(r.stderr).not.toContain("\x1b[2K");
  });
});


describe("LiveLine redraw rate and erasing (a TTY-like sink, injected clock)", () => {
  it("draws at most once per second; other writes erase it first; shutdown erases and restores", async () => {
    const { LiveLine } = await import("../../exporters/live.js");
    const { Ledger } = await import("../../src/core/ledger.js");
    const out: string[] = [];
    const sink = { isTTY: true, columns: 120, write: (c: string) => (out.push(String(c)), true) } as unknown as NodeJS.WriteStream;
    const originalWrite = sink.write;
    let now = 0;
    const live = new LiveLine({ stream: sink, jobId: "j", nowMillis: () => now });
    await live.start();
    const ledger = new Ledger({ pue: 1 }, 0);
    ledger.registerJob("j", "j", {}, 0);
    for (let i = 0; i < 25; i++, now += 200) live.update(ledger.snapshot()); // 5 s of 200 ms ticks
    const draws = out.filter((w) => w.includes("powerprint ▸"));
    expect(draws).toHaveLength(5);
    sink.write("powerprint: warning: something\n");
    expect(out.slice(-2)).toEqual(["\r\x1b[2K", "powerprint: warning: something\n"]);
    live.update(ledger.snapshot()); // within the second: not redrawn
    now += 1000;
    live.update(ledger.snapshot());
    await live.shutdown();
    expect(out[out.length - 1]).toBe("\r\x1b[2K");
    expect(sink.write).toBe(originalWrite);
  });
});
