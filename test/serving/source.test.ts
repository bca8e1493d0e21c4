// The work source (src/serving/source.ts) inside the real measuring pipeline: a Monitor over a
// fixture /proc host and the CPU model collector, ticks driven on an injected clock, and loopback
// /metrics endpoints. Good endpoint: the report's tokens are the endpoint's increases, J/token =
// job energy / tokens, active + idle = the job's energy. Bad endpoints (hang, HTML, 500, 20 MB,
// non-monotonic garbage): one warning, the job's energy exactly as without --work-from, and every
// tick resolves while a scrape is still in flight (nothing in the tick waits).
import { afterEach, describe, expect, it } from "vitest";
import { createCpuModelCollector } from "../../collectors/cpu-model.js";
import type { MonitorClock } from "../../src/core/clock.js";
import { Ledger } from "../../src/core/ledger.js";
import { Monitor } from "../../src/core/monitor.js";
import type { LedgerSnapshot } from "../../src/core/types.js";
import { createFixedProvider } from "../../src/grid/static.js";
import { ProcessTracker } from "../../src/jobs/tracker.js";
import { parseWorkFrom } from "../../src/config/serving.js";
import { WorkSource } from "../../src/serving/source.js";
import { FakeProc } from "../procfs/fixture-tree.js";
import { recordingLogger } from "../exporters/snapshots.js";
import { waitFor } from "../helpers/wait.js";
import { BAD_ENDPOINTS, garbageBody, serve, serveText, type Endpoint } from "./endpoint.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const fixed = createFixedProvider(300);
const intensity = { at: (t: Date) => fixed.at("XX", t) };

interface Rig {
  monitor: Monitor;
  work?: WorkSource;
  log: ReturnType<typeof recordingLogger>;
  /** One second of fake time: the job burns `busyTicks` of CPU, then a tick. */
  step(busyTicks: number): Promise<void>;
}

/** A host with one job (pid 10), a 100 W CPU model, a stepped clock; with `url`, the job's work from it. */
async function rig(url?: string, opts: { countFromZero?: boolean } = {}): Promise<Rig> {
  const f = new FakeProc();
  cleanups.push(() => f.cleanup());
  f.set({ pid: 1, ppid: 0, startTicks: 1, name: "init" });
  f.set({ pid: 10, ppid: 1, startTicks: 100, name: "server", utimeTicks: 0 });
  let mono = 0;
  const clock: MonitorClock = { monotonicMillis: () => mono, wallMillis: () => 1_700_000_000_000 + mono };
  const ledger = new Ledger({ pue: 1.5 }, clock.wallMillis());
  ledger.registerJob("j", "server", {}, clock.wallMillis());
  const log = recordingLogger();
  const work = url
    ? new WorkSource({ ledger, log, timeoutMillis: 500, countFromZero: opts.countFromZero ?? true, startupGraceMillis: 0, nowMillis: () => mono })
    : undefined;
  if (url) work!.attach("j", parseWorkFrom(url));
  cleanups.push(() => work?.close());
  const monitor = new Monitor({
    collectors: [createCpuModelCollector({ cpuModel: "Test CPU", cores: 4, sockets: 1, memoryBytes: 0, tdpWatts: 100, idleFraction: 0.2 })],
    processes: new ProcessTracker({ root: f.root }),
    intensity,
    ledger,
    exporters: [],
    intervalMillis: 1000,
    idlePolicy: "attribute",
    log,
    clock,
    beforeTick: () => work?.poll(),
  });
  monitor.addJob("j", 10);
  await monitor.tick();
  let cpu = 0;
  return {
    monitor,
    work,
    log,
    async step(busyTicks: number) {
      mono += 1000;
      cpu += busyTicks;
      f.tickHost(busyTicks, 400 - busyTicks);
      f.update(10, { utimeTicks: cpu });
      await monitor.tick();
    },
  };
}

const job = (s: LedgerSnapshot) => s.jobs.find((j) => j.id === "j")!;

describe("work from a good endpoint", () => {
  it("tokens are the endpoint's increases; J/token = job energy / tokens; active + idle = job energy; quiet intervals idle", async () => {
    let counters = { prompt: 0, generated: 0, requests: 0, running: 0 };
    const body = () =>
      [
        `vllm:prompt_tokens_total{model_name="m"} ${counters.prompt}`,
        `vllm:generation_tokens_total{model_name="m"} ${counters.generated}`,
        `vllm:request_success_total{finished_reason="length",model_name="m"} ${counters.requests}`,
        `vllm:num_requests_running{model_name="m"} ${counters.running}`,
        "",
      ].join("\n");
    const ep = await serveText(body);
    cleanups.push(() => ep.close());
    const r = await rig(ep.url);
    // Each step: what the server did in that second, then the tick; the tick's scrape is waited
    // for by the test (never by the tick) so each interval's work is its own.
    const plan = [
      { prompt: 16, generated: 8, requests: 1, busy: 300 },
      { prompt: 0, generated: 0, requests: 0, busy: 20 }, // quiet: the server idles with the model loaded
      { prompt: 0, generated: 0, requests: 0, busy: 20 }, // quiet
      { prompt: 40, generated: 32, requests: 2, busy: 350 },
      { prompt: 0, generated: 0, requests: 0, busy: 20 },
    ];
    // The job's energy in each interval (from its cumulative total after each tick).
    const energies: number[] = [];
    let before = job(r.monitor.snapshot()).energyJoules.total;
    for (const p of plan) {
      await waitFor("the previous scrape", () => !r.work!.scraping);
      counters = { ...counters, prompt: counters.prompt + p.prompt, generated: counters.generated + p.generated, requests: counters.requests + p.requests };
      await r.step(p.busy);
      const after = job(r.monitor.snapshot()).energyJoules.total;
      energies.push(after - before);
      before = after;
    }
    // One more tick hands in the last interval's scrape (its own interval has no scrape yet: idle).
    await waitFor("the last scrape", () => !r.work!.scraping);
    await r.step(20);
    const snap = r.monitor.snapshot();
    const s = job(snap).serving!;
    expect(s.engine).toBe("vllm");
    expect(s.source).toBe(ep.url);
    expect(s.total).toMatchObject({ promptTokens: 56, generatedTokens: 40, requests: 3 });
    expect(s.total.energyJoules).toBeCloseTo(job(snap).energyJoules.total, 9);
    expect(s.total.joulesPerGeneratedToken).toBeCloseTo(job(snap).energyJoules.total / 40, 9);
    expect(s.total.joulesPerRequest).toBeCloseTo(job(snap).energyJoules.total / 3, 9);
    expect(s.total.emissionsGramsPerThousandTokens).toBeCloseTo((job(snap).emissionsGrams / 40) * 1000, 9);
    expect(s.total.activeEnergyJoules + s.total.idleEnergyJoules).toBeCloseTo(job(snap).energyJoules.total, 9);
    // The intervals with work are active, the quiet ones idle, each with its own energy.
    expect(s.total.activeEnergyJoules).toBeCloseTo(energies[0] + energies[3], 9);
    expect(energies[1]).toBeGreaterThan(0);
    expect(s.total.idleEnergyJoules).toBeCloseTo(job(snap).energyJoules.total - energies[0] - energies[3], 9);
    expect(r.log.lines.filter((l) => l.level === "warn")).toEqual([]);
  });
});

describe("bad endpoints: one warning, the job measured as before, no tick waits", () => {
  /** `ticks` seconds of fake time; counts the ticks that ran (and resolved) while a scrape was in flight. */
  async function measure(url: string | undefined, ticks: number) {
    const r = await rig(url);
    let ticksDuringScrape = 0;
    for (let i = 0; i < ticks; i++) {
      const inFlight = r.work?.scraping === true;
      await r.step(100 + 10 * i);
      if (inFlight) ticksDuringScrape++;
    }
    return { r, ticksDuringScrape, snap: await r.monitor.stop({ finalTick: false }) };
  }

  for (const name of Object.keys(BAD_ENDPOINTS)) {
    it(name, async () => {
      const ep = await serve(BAD_ENDPOINTS[name]);
      cleanups.push(() => ep.close());
      const baseline = await measure(undefined, 6);
      const bad = await measure(ep.url, 6);
      // The hung scrape was in flight during the later ticks, and each of them resolved anyway.
      if (name === "hang") expect(bad.ticksDuringScrape).toBeGreaterThanOrEqual(4);
      // Wait for whatever is in flight to end (its deadline), then one more tick to hand it in.
      await waitFor("the scrape's end", () => !bad.r.work!.scraping);
      bad.r.work!.poll();
      bad.r.work!.close();
      const warnings = bad.r.log.lines.filter((l) => l.level === "warn");
      expect(warnings, JSON.stringify(bad.r.log.lines)).toHaveLength(1);
      expect(warnings[0].message).toContain(`work from ${ep.url}`);
      expect(warnings[0].message).toContain("measuring goes on");
      const j = job(bad.snap);
      expect(j.energyJoules).toEqual(job(baseline.snap).energyJoules);
      expect(j.emissionsGrams).toBeCloseTo(job(baseline.snap).emissionsGrams, 12);
      expect(j.serving!.total.generatedTokens ?? 0).toBe(0);
      expect(j.serving!.total.energyJoules).toBeCloseTo(j.energyJoules.total, 9);
    });
  }

  it("non-monotonic garbage (counters down and up between scrapes): one warning, nothing counted from it", async () => {
    let n = 0;
    const ep = await serveText(() => garbageBody(n));
    cleanups.push(() => ep.close());
    const r = await rig(ep.url, { countFromZero: false });
    for (let i = 0; i < 6; i++) {
      await waitFor("the previous scrape", () => !r.work!.scraping);
      n = i;
      await r.step(100);
    }
    await waitFor("the last scrape", () => !r.work!.scraping);
    await r.step(100);
    const s = job(r.monitor.snapshot()).serving!;
    const warnings = r.log.lines.filter((l) => l.level === "warn");
    expect(warnings).toHaveLength(1);
    // Said without pointing at a report (the source cannot know one was asked for: issue 18).
    expect(warnings[0].message).toMatch(/went down while others went up .*: such readings are skipped$/);
    expect(warnings[0].message).not.toMatch(/\breports?\b/i);
    expect(s.total.generatedTokens).toBe(0);
    expect(s.total.promptTokens).toBe(0);
    expect(s.inconsistentReadings).toBeGreaterThanOrEqual(4);
  });

  it("a wrong URL (nothing listening) is said once, at the end at the latest", async () => {
    const ep = await serveText(() => "");
    const url = ep.url;
    await ep.close();
    const r = await rig(url);
    for (let i = 0; i < 3; i++) {
      await waitFor("the previous scrape", () => !r.work!.scraping);
      await r.step(100);
    }
    r.work!.close();
    const warnings = r.log.lines.filter((l) => l.level === "warn");
    expect(warnings).toHaveLength(1);
    expect(warnings[0].message).toMatch(/ECONNREFUSED/);
  });
});

describe("--work-from", () => {
  it("takes http(s) URLs, /metrics when no path; refuses the rest naming the flag", () => {
    expect(parseWorkFrom("http://127.0.0.1:8000").href).toBe("http://127.0.0.1:8000/metrics");
    expect(parseWorkFrom("https://h:1/custom/path").href).toBe("https://h:1/custom/path");
    for (const bad of ["localhost:8000", "ftp://h/metrics", "http://u:p@h/metrics", "not a url"]) {
      expect(() => parseWorkFrom(bad)).toThrow(expect.objectContaining({ field: "--work-from" }));
    }
  });
});
