import { describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli } from "../helpers/cli.js";
import { reportSchemaV1 } from "../../exporters/report-schema.js";
import { waitFor } from "../helpers/wait.js";

const fixtures = join(import.meta.dirname, "..", "fixtures");
const scenario = join(fixtures, "scenarios", "shared-gpu-two-jobs.json");
const tmp = () => mkdtempSync(join(tmpdir(), "pp-run-"));

/**
 * A node command that installs a handler for `sig`, writes `ready`, and on the signal writes
 * "got SIG… at <epoch ms>" to `got`; then it dies of the signal ("exit") or ignores it and spins
 * on ("ignore", for the grace test).
 */
function signalRecorder(dir: string, sig: NodeJS.Signals, then: "exit" | "ignore") {
  const ready = join(dir, "ready");
  const got = join(dir, "got");
  const script = `
const fs = require("fs");
process.on(${JSON.stringify(sig)}, () => {
  fs.writeFileSync(${JSON.stringify(got)}, ${JSON.stringify(`got ${sig}`)} + "\\n");
  // Ignoring it: still alive on a later turn of its event loop (so not killed with the signal).
  if (${then === "ignore"}) setTimeout(() => fs.writeFileSync(${JSON.stringify(got)} + ".survived", "alive\\n"), 0);
  if (${then === "exit"}) { process.removeAllListeners(${JSON.stringify(sig)}); process.kill(process.pid, ${JSON.stringify(sig)}); }
});
fs.writeFileSync(${JSON.stringify(ready)}, "ready\\n");
setInterval(() => {}, 1000);`;
  return { ready, got, args: [process.execPath, "-e", script] };
}

describe("powerprint run: wrapping", () => {
  it.each([
    [["sh", "-c", "exit 0"], 0],
    [["sh", "-c", "exit 1"], 1],
    [["sh", "-c", "exit 42"], 42],
    [["sh", "-c", "kill -9 $$"], 137],
  ])("relays the exit status of %j as %i", async (cmd, code) => {
    const r = await runCli(["run", "--quiet", "--interval", "100ms", "--", ...(cmd as string[])]);
    expect(r.code).toBe(code);
  });

  it("exits 127 with a clear message when the command is not found", async () => {
    const r = await runCli(["run", "--quiet", "--", "no-such-command-xyz", "arg"]);
    expect(r.code).toBe(127);
    expect(r.stderr).toContain("command not found: no-such-command-xyz");
  });

  it("prints no summary of zeros for a command that never started, and still writes the report", async () => {
    const dir = tmp();
    const report = join(dir, "r.json");
    const r = await runCli(["run", "--report", report, "--", "no-such-command-xyz"]);
    expect(r.code).toBe(127);
    expect(r.stderr).toContain("command not found: no-such-command-xyz");
    expect(r.stderr).not.toContain("powerprint summary");
    expect(r.stderr).not.toContain("no device could be read");
    expect(reportSchemaV1.parse(JSON.parse(readFileSync(report, "utf8"))).exitCode).toBe(127);
    rmSync(dir, { recursive: true, force: true });
  });

  it("leaves stdout to the command and writes its own output to stderr", async () => {
    const r = await runCli(["run", "--interval", "100ms", "--", "sh", "-c", "echo hello; echo oops >&2"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("hello\n");
    expect(r.stderr).toContain("oops");
    expect(r.stderr).toContain("powerprint summary");
  });

  // The signal tests prove the relay ran: the command itself writes "got SIGxxx" when the signal
  // reaches it. It writes a ready file once its handlers are installed; only then is powerprint
  // signalled, so the signal can only reach the command through powerprint's relay.
  it.each([
    ["SIGINT", 130],
    ["SIGTERM", 143],
    ["SIGHUP", 129],
  ] as const)("relays %s to the command (which records it) and exits %i", async (sig, code) => {
    const dir = tmp();
    const { ready, got, args } = signalRecorder(dir, sig, "exit");
    let pid = 0;
    const done = runCli(["run", "--quiet", "--", ...args], { onSpawn: (c) => (pid = c.pid!) });
    await waitFor("the ready file", () => existsSync(ready), 30_000);
    process.kill(pid, sig);
    const r = await done;
    expect(readFileSync(got, "utf8")).toBe(`got ${sig}\n`);
    expect(r.code, r.stderr).toBe(code);
    rmSync(dir, { recursive: true, force: true });
  });

  it("SIGKILLs a command that ignores SIGTERM after the grace period, and exits 137", async () => {
    const dir = tmp();
    const { ready, got, args } = signalRecorder(dir, "SIGTERM", "ignore");
    let pid = 0;
    const done = runCli(["run", "--quiet", "--grace", "700ms", "--", ...args], { onSpawn: (c) => (pid = c.pid!) });
    await waitFor("the ready file", () => existsSync(ready), 30_000);
    process.kill(pid, "SIGTERM");
    const r = await done;
    expect(readFileSync(got, "utf8")).toBe("got SIGTERM\n");
    expect(r.code, r.stderr).toBe(137);
    expect(r.stderr).toContain("SIGKILL");
    // The command outlived the SIGTERM it ignored (it wrote after handling it): the SIGKILL came
    // from the grace timer, not with the relayed signal.
    expect(readFileSync(`${got}.survived`, "utf8")).toBe("alive\n");
    rmSync(dir, { recursive: true, force: true });
  });

  it("measures the CPU time of the whole tree, short-lived children included (within 5 %)", async () => {
    const dir = tmp();
    const log = join(dir, "burn.log");
    const report = join(dir, "report.json");
    const r = await runCli(["run", "--quiet", "--interval", "200ms", "--report", report, "--job-id", "burn", "--", process.execPath, join(fixtures, "scripts", "burn-tree.mjs")], {
      env: { BURN_LOG: log, BURN_CHILDREN: "2", BURN_MILLIS: "800", BURN_SHORT: "4" },
      timeoutMillis: 60_000,
    });
    expect(r.code, r.stderr).toBe(0);
    const burnedSeconds = readFileSync(log, "utf8").trim().split("\n").reduce((a, l) => a + Number(l.split(" ")[2]) / 1e6, 0);
    const rep = reportSchemaV1.parse(JSON.parse(readFileSync(report, "utf8")));
    const job = rep.jobs.find((j) => j.id === "burn")!;
    expect(lines(log)).toBe(7);
    expect(Math.abs(job.cpuSeconds - burnedSeconds) / burnedSeconds, `measured ${job.cpuSeconds} s, burned ${burnedSeconds} s`).toBeLessThan(0.05);
    rmSync(dir, { recursive: true, force: true });
  });
});

const lines = (f: string) => readFileSync(f, "utf8").trim().split("\n").length;

describe("powerprint run: reports", () => {
  it("writes a v1 report on simulated devices, with the wrapped job and the scenario's jobs", async () => {
    const dir = tmp();
    const report = join(dir, "r.json");
    // The command burns 1.2 CPU-seconds by its own measure (not 1.2 s of wall time, which a loaded
    // machine turns into any CPU time) and writes what it measured.
    const burned = join(dir, "burned");
    const burn = `const fs=require("fs");while(process.cpuUsage().user+process.cpuUsage().system<1.2e6){}const u=process.cpuUsage();fs.writeFileSync(${JSON.stringify(burned)},String((u.user+u.system)/1e6))`;
    const r = await runCli(["run", "--sim", scenario, "--interval", "100ms", "--report", report, "--job-id", "wrapped", "--", process.execPath, "-e", burn]);
    expect(r.code, r.stderr).toBe(0);
    const rep = reportSchemaV1.parse(JSON.parse(readFileSync(report, "utf8")));
    expect(rep.mode).toBe("run");
    expect(rep.exitCode).toBe(0);
    const ids = rep.jobs.map((j) => j.id);
    expect(ids).toContain("wrapped");
    const wrapped = rep.jobs.find((j) => j.id === "wrapped")!;
    expect(wrapped.energyJoules.cpu).toBeGreaterThan(0);
    const selfMeasured = Number(readFileSync(burned, "utf8"));
    expect(selfMeasured).toBeGreaterThanOrEqual(1.2);
    expect(Math.abs(wrapped.cpuSeconds - selfMeasured) / selfMeasured, `measured ${wrapped.cpuSeconds} s, burned ${selfMeasured} s`).toBeLessThan(0.1);
    const devices = rep.devices.reduce((a, d) => a + d.energyJoules, 0);
    expect(Math.abs(rep.totals.energyJoules - devices) / devices).toBeLessThan(1e-9);
    expect(rep.devices.every((d) => d.source === "sim")).toBe(true);
    rmSync(dir, { recursive: true, force: true });
  });

  it("fails open: when the report cannot be written at the end, the command's exit code still wins", async () => {
    const dir = tmp();
    const sub = join(dir, "gone");
    mkdirSync(sub);
    const report = join(sub, "r.json");
    const r = await runCli(["run", "--report", report, "--interval", "100ms", "--", "sh", "-c", `rm -rf '${sub}'; exit 3`]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/could not write the report/);
    rmSync(dir, { recursive: true, force: true });
  });
});

describe("bad input: exit 2, one line naming the field, nothing written", () => {
  const badScenario = (name: string, body: unknown) => {
    const dir = tmp();
    const file = join(dir, name);
    writeFileSync(file, typeof body === "string" ? body : JSON.stringify(body));
    return { dir, file };
  };
  const base = JSON.parse(readFileSync(scenario, "utf8"));
  const cases: [string, (dir: string) => string[], RegExp][] = [
    ["--pue 0.5", () => ["run", "--pue", "0.5", "--", "true"], /--pue/],
    ["--pue abc", () => ["run", "--pue", "abc", "--", "true"], /--pue/],
    ["unknown flag", () => ["run", "--frobnicate", "--", "true"], /--frobnicate/],
    ["unknown zone", () => ["run", "--zone", "XX", "--", "true"], /--zone/],
    ["bad interval", () => ["run", "--interval", "fast", "--", "true"], /--interval/],
    ["--idle-policy", () => ["run", "--idle-policy", "maybe", "--", "true"], /--idle-policy/],
    ["malformed scenario", (dir) => ["simulate", badScenario("s.json", "{ not json").file], /malformed JSON/],
    ["a scenario that is a line of text (its newline quoted by the parser: escaped, the message whole)", () => ["simulate", badScenario("s.json", "vm\n").file], /malformed JSON: .*"vm\\n" is not valid JSON$/],
    ["negative watts", () => ["simulate", badScenario("s.json", { ...base, devices: [{ ...base.devices[0], idleWatts: -5 }, ...base.devices.slice(1)] }).file], /devices\[0\]\.idleWatts/],
    ["unknown device kind", () => ["simulate", badScenario("s.json", { ...base, devices: [...base.devices, { id: "x", kind: "tpu", idleWatts: 1, maxWatts: 2 }] }).file], /devices\[3\]\.kind/],
    ["scenario through run --sim", () => ["run", "--sim", badScenario("s.json", { ...base, durationSeconds: -1 }).file, "--", "true"], /durationSeconds/],
    ["no command", () => ["run"], /^powerprint: error: command: missing: put the command after --/],
    ["an empty command name", () => ["run", "--", ""], /^powerprint: error: command: the command name is empty/],
  ];
  it.each(cases)("%s", async (_name, args, field) => {
    const dir = tmp();
    const report = join(dir, "report.json");
    const r = await runCli([...args(dir).slice(0, 1), "--report", report, ...args(dir).slice(1)]);
    expect(r.code).toBe(2);
    const lines = r.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(field);
    expect(existsSync(report)).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
    rmSync(dir, { recursive: true, force: true });
  });
});
