/**
 * A hardware read that does not return, through the built CLI on a fixture sysfs root (a captured
 * two-socket powercap tree): a FIFO put in place of RAPL's energy_uj (never opened: refused), the
 * same FIFO there from the start (left out at probe), and a regular file whose read blocks in the
 * kernel (tracefs's trace_pipe, in a mount namespace of the agent's own: the read goes to the
 * thread pool and passes its deadline). In each: ticks go on, /healthz answers (503 naming the
 * source when it is failing or hung), and SIGTERM ends the agent with exit 0 and its final
 * checkpoint.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CLI } from "../helpers/cli.js";
import { waitFor } from "../helpers/wait.js";
import { killAgents, startAgent, watchAgent } from "./agent-helpers.js";

const fixture = join(import.meta.dirname, "..", "fixtures", "powercap", "two-sockets-dram");
const canMountTracefs =
  process.getuid?.() === 0 && spawnSync("unshare", ["--mount", "--propagation", "private", "sh", "-c", "d=$(mktemp -d) && mount -t tracefs nodev $d && test -f $d/trace_pipe"]).status === 0;

let dir: string;
let root: string;
const energyUj = () => join(root, "sys", "class", "powercap", "intel-rapl:0", "energy_uj");
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "pp-agent-hung-"));
  root = join(dir, "root");
  cpSync(fixture, root, { recursive: true, verbatimSymlinks: true });
});
afterEach(async () => {
  await killAgents();
  rmSync(dir, { recursive: true, force: true });
});

/** A FIFO at `path`, swapped in atomically (made aside, renamed over it). */
function fifoAt(path: string): void {
  const aside = `${path}.fifo`;
  expect(spawnSync("mkfifo", [aside]).status).toBe(0);
  renameSync(aside, path);
}

interface Health {
  status: number;
  body: string;
}
const health = async (url: string): Promise<Health> => {
  const r = await fetch(`${url}/healthz`);
  return { status: r.status, body: await r.text() };
};
/** The agent's sample time, read twice: it must move on (ticks go on). */
async function ticksGoOn(url: string): Promise<void> {
  const t0 = ((await (await fetch(`${url}/jobs`)).json()) as { timeMillis: number }).timeMillis;
  await waitFor("a later sample", async () => (((await (await fetch(`${url}/jobs`)).json()) as { timeMillis: number }).timeMillis > t0 ? true : undefined));
}

const args = (state: string) => ["--mode", "selector", "--match-env", "PP_HUNG_NO_SUCH_VARIABLE", "--sys-root", root, "--interval", "200ms", "--listen", "127.0.0.1:0", "--state-file", state, "--flush-timeout", "2s"];

describe("a hardware read that never returns", () => {
  it("a FIFO put in place of RAPL's energy_uj: refused, ticks go on, /healthz 503 naming rapl, SIGTERM exits 0", async () => {
    const state = join(dir, "state.json");
    const agent = startAgent(args(state));
    const url = await agent.line(/health: (\S+)\/healthz/);
    await waitFor("/readyz", async () => ((await fetch(`${url}/readyz`)).status === 200 ? true : undefined));
    expect((await health(url)).status).toBe(200);
    fifoAt(energyUj());
    const h = await waitFor("/healthz 503", async () => {
      const x = await health(url);
      return x.status === 503 ? x : undefined;
    });
    expect(h.body).toMatch(/^not live: source rapl failing: \d+ reads in a row failed, the last: .*intel-rapl:0\/energy_uj is a FIFO, not a regular file: refused\n$/);
    await ticksGoOn(url);
    expect(await agent.stop()).toBe(0);
    expect(JSON.parse(readFileSync(state, "utf8")).final).toBe(true);
  }, 120_000);

  it("a FIFO as energy_uj from the start: the probe leaves the zone out (said), the health endpoint answers, ticks go on, SIGTERM exits 0", async () => {
    fifoAt(energyUj());
    const state = join(dir, "state.json");
    const agent = startAgent([...args(state), "-v"]);
    const url = await agent.line(/health: (\S+)\/healthz/);
    await waitFor("/readyz", async () => ((await fetch(`${url}/readyz`)).status === 200 ? true : undefined));
    expect(agent.stderr()).toMatch(/intel-rapl:0 \(package-0\): energy_uj unreadable \(ENOTREG\); skipped/);
    expect((await health(url)).status).toBe(200);
    await ticksGoOn(url);
    expect(await agent.stop()).toBe(0);
  }, 120_000);

  it.skipIf(!canMountTracefs)("energy_uj whose read blocks in the kernel (trace_pipe): past its deadline the source is hung, /healthz 503 naming it, ticks go on, SIGTERM exits 0", async () => {
    const tracefs = join(dir, "tracefs");
    mkdirSync(tracefs);
    const state = join(dir, "state.json");
    // The agent in a mount namespace of its own, tracefs mounted there; a trace instance of its own
    // (no events enabled: its trace_pipe never has data, so a read of it never returns).
    const instance = `pp-agent-hung-${process.pid}`;
    const child: ChildProcess = spawn(
      "unshare",
      ["--mount", "--propagation", "private", "sh", "-c", 'mount -t tracefs nodev "$1" && mkdir "$1/instances/$2" && shift 2 && exec "$@"', "sh", tracefs, instance, process.execPath, CLI, "agent", ...args(state)],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    const agent = watchAgent(child);
    const exited = agent.exited.then((e) => e.code);
    try {
      const url = await agent.line(/health: (\S+)\/healthz/);
      await waitFor("/readyz", async () => ((await fetch(`${url}/readyz`)).status === 200 ? true : undefined));
      // The zone's counter becomes a link to the instance's trace_pipe: a regular file, whose read blocks.
      const pipe = join(tracefs, "instances", instance, "trace_pipe");
      symlinkSync(pipe, `${energyUj()}.link`);
      renameSync(`${energyUj()}.link`, energyUj());
      const h = await waitFor("/healthz 503", async () => {
        const x = await health(url);
        return x.status === 503 ? x : undefined;
      });
      expect(h.body).toMatch(/^not live: source rapl hung: its read has not answered for \d+ s \(it is not read again until it does\)\n$/);
      await ticksGoOn(url);
      // Counted and labelled (src/core/sampler.ts).
      expect(agent.stderr()).toMatch(/rapl: read did not answer within 1 s/);
      child.kill("SIGTERM");
      // Bounded, so that a failure still reaches the cleanup below (not a claim about speed).
      expect(await Promise.race([exited, new Promise((r) => setTimeout(() => r("no exit after SIGTERM"), 60_000))])).toBe(0);
      expect(agent.stderr()).toMatch(/warning: a read of .*energy_uj has not returned for \d+ s \(stuck in the kernel\): exiting without waiting for it/);
      expect(JSON.parse(readFileSync(state, "utf8")).final).toBe(true);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
      // A process left in the kernel read would hold the instance: the agent's PID is gone now.
      // The instance lives in the kernel's tracing, not in the namespace: removed here.
      const host = join(dir, "tracefs-host");
      mkdirSync(host);
      spawnSync("unshare", ["--mount", "--propagation", "private", "sh", "-c", `mount -t tracefs nodev ${host} && rmdir ${host}/instances/${instance}`]);
      if (existsSync(`${energyUj()}`)) unlinkSync(energyUj());
    }
  }, 180_000);
});
