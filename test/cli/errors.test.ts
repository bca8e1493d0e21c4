// What a user reads when something is wrong (issue 18, "errors and help"): fatal lines say
// `error:`, a mistyped flag gets the nearest one, a unit split from its number by a space is
// named (and nothing runs, not even a command that is really the unit), `run --help` states its
// defaults as they are and wraps its closing paragraph, and a connection failure of the OTLP
// exporter names its cause without mentioning outputs that were not asked for.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CLI, runCli } from "../helpers/cli.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "pp-errors-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** stderr's lines, without blank ones. */
const lines = (text: string) => text.split("\n").filter((l) => l.trim() !== "");

describe("fatal errors say error:", () => {
  it("a command that cannot be found: error, exit 127, no warning", async () => {
    const r = await runCli(["run", "-q", "--", "pp-no-such-command-18"]);
    expect(r.code).toBe(127);
    expect(lines(r.stderr)).toEqual(["powerprint: error: command not found: pp-no-such-command-18 (check the name and your PATH)"]);
  });

  it("a command that is not executable: error, exit 126", async () => {
    const script = join(dir, "not-executable.sh");
    writeFileSync(script, "#!/bin/sh\necho hi\n", { mode: 0o644 });
    const r = await runCli(["run", "-q", "--", script]);
    expect(r.code).toBe(126);
    expect(lines(r.stderr)).toEqual([`powerprint: error: permission denied: ${script} is not executable`]);
  });

  it("a usage error: error, the flag, exit 2", async () => {
    const r = await runCli(["run", "--pue", "abc", "--", "true"]);
    expect(r.code).toBe(2);
    expect(lines(r.stderr)).toEqual(["powerprint: error: --pue: must be a number >= 1.0, got 'abc' (e.g. --pue 1.2)"]);
  });
});

describe("a mistyped flag or command gets the nearest", () => {
  it.each([
    [["run", "--interal", "1s", "--", "true"], "powerprint: error: unknown option '--interal': did you mean --interval? (see powerprint run --help)"],
    [["run", "--max-energi", "1kWh", "--", "true"], "powerprint: error: unknown option '--max-energi': did you mean --max-energy? (see powerprint run --help)"],
    [["agent", "--retenton", "1h"], "powerprint: error: unknown option '--retenton': did you mean --retention? (see powerprint agent --help)"],
    [["rn", "--", "true"], "powerprint: error: unknown command 'rn': did you mean run? (see powerprint --help)"],
  ])("%j", async (args, expected) => {
    const r = await runCli(args);
    expect(r.code).toBe(2);
    expect(lines(r.stderr)).toEqual([expected]);
  });

  it("nothing close: no suggestion", async () => {
    const r = await runCli(["run", "--zzzzzz", "--", "true"]);
    expect(lines(r.stderr)).toEqual(["powerprint: error: unknown option '--zzzzzz' (see powerprint run --help)"]);
  });
});

describe("a unit written apart from its number", () => {
  it.each([
    [["--max-energy", "5", "kWh"], "--max-energy: '5 kWh' is two arguments (a space between the number and its unit): write --max-energy 5kWh"],
    [["--max-energy=5", "kWh"], "--max-energy: '5 kWh' is two arguments (a space between the number and its unit): write --max-energy 5kWh"],
    [["--max-emissions", "2", "kg"], "--max-emissions: '2 kg' is two arguments (a space between the number and its unit): write --max-emissions 2kg"],
    // '5' alone is a valid interval (seconds): the unit would have become the command to run.
    [["--interval", "5", "s"], "--interval: '5 s' is two arguments (a space between the number and its unit): write --interval 5s"],
  ])("run %j: one line with the spelling to use, exit 2, nothing run", async (flags, expected) => {
    const marker = join(dir, "ran");
    const r = await runCli(["run", ...flags, "--", "touch", marker]);
    expect(r.code).toBe(2);
    expect(lines(r.stderr)).toEqual([`powerprint: error: ${expected}`]);
    expect(existsSync(marker)).toBe(false);
  });

  it("agent --interval 5 s: the same line instead of 'too many arguments'", async () => {
    const r = await runCli(["agent", "--interval", "5", "s"]);
    expect(r.code).toBe(2);
    expect(lines(r.stderr)).toEqual(["powerprint: error: --interval: '5 s' is two arguments (a space between the number and its unit): write --interval 5s"]);
  });

  it("the command's own arguments after -- are the command's: `run -- sleep 1 s` is not touched", async () => {
    const r = await runCli(["run", "-q", "--", "/bin/sh", "-c", "exit 3", "--max-energy", "5", "kWh"]);
    expect(r.code).toBe(3);
    expect(r.stderr).not.toMatch(/two arguments/);
  });
});

describe("run --help", () => {
  it("--tracking names auto as its default (not procfs); --on-budget says warn is its default", async () => {
    const r = await runCli(["run", "--help"]);
    const text = r.stdout.replace(/\s+/g, " ");
    expect(text).toMatch(/--tracking <how> how the job's processes are found: auto, the default \(/);
    expect(text).not.toMatch(/procfs[^-]*\(default/);
    expect(text).toMatch(/--on-budget <action> when a budget is crossed: warn \(the default\), or stop the job/);
  });

  it("the closing paragraph is wrapped to the help's width (80 without a terminal), whole", async () => {
    const r = await runCli(["run", "--help"]);
    const after = r.stdout.slice(r.stdout.indexOf("powerprint writes only to stderr"));
    const paragraph = lines(after);
    expect(paragraph.length).toBeGreaterThan(3);
    for (const l of paragraph) expect(l.length).toBeLessThanOrEqual(80);
    expect(paragraph.join(" ")).toMatch(/^powerprint writes only to stderr; .* the command itself is left running\.$/);
  });
});

describe("connection failures name their cause", () => {
  /** A loopback port nothing listens on. */
  async function closedPort(): Promise<number> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as { port: number };
    await new Promise<void>((resolve) => server.close(() => resolve()));
    return port;
  }

  it("--otlp to a closed port: the final export's refusal, named and counted (not a timeout); no report mentioned when none was asked", async () => {
    const port = await closedPort();
    const r = await runCli(["run", "--otlp", `http://127.0.0.1:${port}`, "--", "true"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`powerprint: warning: otlp: final export to http://127.0.0.1:${port}/v1/metrics (http/protobuf) failed (ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:${port}): the last totals were not delivered`);
    expect(r.stderr).toMatch(/export failures: otlp:ECONNREFUSED×1\n/);
    expect(r.stderr).not.toMatch(/timeout/);
    // powerprint's own messages (the summary's lines are the summary's).
    for (const l of lines(r.stderr).filter((x) => x.startsWith("powerprint:"))) expect(l).not.toMatch(/report/);
  });

  it("with --report: the report counts the refusal, not a timeout", async () => {
    const port = await closedPort();
    const report = join(dir, "r.json");
    const r = await runCli(["run", "-q", "--report", report, "--otlp", `http://127.0.0.1:${port}`, "--", "true"]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(readFileSync(report, "utf8")).exportFailures).toEqual({ "otlp:ECONNREFUSED": 1 });
  });
});

describe("output into a pipe that is already closed (`powerprint … | head`)", () => {
  // The reader is gone before powerprint writes: its stdout is the write end of a pipe whose read
  // end was closed before exec, so every write fails with EPIPE (Node ignores SIGPIPE).
  const closedPipe = (args: string[]) =>
    spawnSync("/usr/bin/python3", ["-c", "import os,sys; r,w=os.pipe(); os.close(r); os.dup2(w,1); os.execv(sys.argv[1], sys.argv[1:])", process.execPath, CLI, ...args], { encoding: "utf8", timeout: 60_000 });

  for (const args of [["run", "--help"], ["bench-serving", "--help"], ["python-path"], ["grid", "--intensity-provider", "fixed", "--intensity", "250", "--json"]]) {
    it(`${args.join(" ")}: exit 0, no EPIPE stack trace on stderr`, () => {
      const r = closedPipe(args);
      expect(r.stderr).not.toMatch(/EPIPE|Unhandled 'error' event/);
      expect(r.status).toBe(0);
    });
  }
});
