/**
 * Issue 16, acceptance "Every path, the same figures": one scenario (test/fixtures/scenarios/
 * every-path.json: two jobs with tags; a GPU, a CPU and a memory device; resident memory; marks
 * with phases and counters, one phase shorter than the 1 s interval; a grid intensity step) goes
 * through every path, and every per-job figure each path shows is compared with the reference.
 *
 * The reference is `simulate`'s JSON report (virtual time, deterministic), itself checked against
 * figures computed by hand from the scenario. Deterministic paths must agree to float rounding:
 * the CSV (parsed back), the HTML (read from the DOM in Chromium) and the summary (parsed, to their
 * 3 significant digits), and `report` merging two halves of the scenario (split at 3 s, each
 * simulated on its own). The wall-clock paths (run --sim, agent --sim, with Prometheus and OTLP into
 * VictoriaMetrics) are in the second part of this file.
 *
 * The comparison is shown to fail on deliberately broken copies: a path whose memory is split
 * without resident memory, a path that measures a job over another window, a path that rounds a
 * count.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { chromium } from "playwright-core";
import { runCli } from "../helpers/cli.js";
import { reportSchemaV1 } from "../../exporters/report-schema.js";
import type { ReportV1 } from "../../exporters/report-json.js";
import { compareFigures, DISPLAY_TOLERANCE, fromCsv, fromHtmlTables, fromMetrics, fromReport, fromSummary, promSamples, type DomTable, type Figures, type JobFigures } from "../helpers/figures.js";
import { freePort, receiversSkipReason, startVictoriaMetrics, type Receiver } from "../helpers/receivers.js";
import { waitFor } from "../helpers/wait.js";

const CHROMIUM = "/usr/bin/chromium";
const SCENARIO_FILE = join(import.meta.dirname, "..", "fixtures", "scenarios", "every-path.json");
const SCENARIO = JSON.parse(readFileSync(SCENARIO_FILE, "utf8")) as Scenario;
/** Flags every path is given: a price, so cost is a figure too. */
const PRICE = ["--price-per-kwh", "0.3", "--currency", "EUR"];

interface Mark {
  job: string;
  atSeconds: number;
  phase: string;
  step?: number;
  samples?: number;
  tokens?: number;
}
type Scenario = { durationSeconds: number; startTime?: string; grid: { intensity: [number, number][] }; marks: Mark[] } & Record<string, unknown>;

let dir: string;
let reference: ReportV1;
let summary: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "pp-every-path-"));
  const r = await runCli(["simulate", SCENARIO_FILE, "--report", join(dir, "ref.json"), "--csv", join(dir, "ref.csv"), "--html", join(dir, "ref.html"), ...PRICE]);
  expect(r.code, r.stderr).toBe(0);
  summary = r.stderr;
  reference = read(join(dir, "ref.json"));
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const read = (file: string) => reportSchemaV1.parse(JSON.parse(readFileSync(file, "utf8")));
const JOBS = ["train-a", "eval-b"];

/**
 * The scenario's figures by hand. Loads are constant, so every device's power is:
 * GPU 70 + 630 × (0.6 + 0.3) = 637 W: the active 567 W split by utilisation (6:3), the idle 70 W
 * equally between the two resident jobs; CPU 90 + 270 × 3.75 / 8 = 216.5625 W split by busy cores
 * (train-a 2.5 with its loader, eval-b 1, sshd 0.25 in `system`); memory 24 W, all static, split
 * by resident memory over the 64 GiB installed (train-a 9 GiB, eval-b 2 GiB).
 */
const POWER = {
  "train-a": { gpu: 378 + 35, cpu: (216.5625 * 2.5) / 3.75, memory: (24 * 9) / 64 },
  "eval-b": { gpu: 189 + 35, cpu: (216.5625 * 1) / 3.75, memory: (24 * 2) / 64 },
};

describe("every path, the same figures: the reference", () => {
  it("simulate's report holds the figures computed by hand (memory split by resident memory)", () => {
    for (const id of JOBS) {
      const j = reference.jobs.find((x) => x.id === id)!;
      const p = POWER[id as keyof typeof POWER];
      expect(j.durationSeconds).toBe(6);
      for (const k of ["gpu", "cpu", "memory"] as const) expect(j.averagePowerWatts![k], `${id} ${k}`).toBeCloseTo(p[k], 9);
      expect(j.energyJoules.total).toBeCloseTo(6 * (p.gpu + p.cpu + p.memory), 9);
      expect(j.facilityEnergyJoules).toBeCloseTo(1.25 * j.energyJoules.total, 9);
      expect(j.cost).toBeCloseTo((j.facilityEnergyJoules / 3.6e6) * 0.3, 15);
      // Phases sum to the job, in energy and time.
      expect(j.phases!.reduce((a, x) => a + x.energyJoules, 0)).toBeCloseTo(j.energyJoules.total, 9);
      expect(j.phases!.reduce((a, x) => a + x.durationSeconds, 0)).toBeCloseTo(6, 9);
    }
    const a = reference.jobs.find((x) => x.id === "train-a")!;
    expect(a.name).toBe("train resnet");
    expect(a.attributes).toMatchObject({ team: "vision", experiment: "lr-sweep" });
    // Phases from the marks' times: eval, 0.6 s between two ticks, has its time-weighted share.
    const phase = Object.fromEntries(a.phases!.map((x) => [x.name, x]));
    const watts = POWER["train-a"].gpu + POWER["train-a"].cpu + POWER["train-a"].memory;
    expect(phase.eval.durationSeconds).toBeCloseTo(0.6, 9);
    expect(phase.eval.energyJoules).toBeCloseTo(0.6 * watts, 9);
    expect(phase.eval.emissionsGrams).toBeCloseTo(((0.6 * watts * 1.25) / 3.6e6) * 380, 12);
    expect(phase.train.durationSeconds).toBeCloseTo(1.35 + 0.9, 9);
    // Counts: what each counter moved between marks, whole.
    expect([phase.train.samples, phase.train.tokens, phase.train.steps]).toEqual([8192, 196_608, 2468]);
    expect([a.samples, a.tokens, a.steps]).toEqual([8192, 196_608, 2468]);
    expect(a.joulesPerSample).toBeCloseTo(a.energyJoules.total / 8192, 12);
    // The intensity step at 4 s: the emissions are a sum over intervals (380 before, 120 after).
    expect(a.emissionsGrams).toBeCloseTo(((watts * 1.25) / 3.6e6) * (380 * 4 + 120 * 2), 9);
  });
});

describe("every path, the same figures: deterministic paths equal the reference", () => {
  it("CSV, parsed back: every figure it has, to float rounding", () => {
    const csv = fromCsv(readFileSync(join(dir, "ref.csv"), "utf8"));
    expect(compareFigures(fromReport(reference), csv)).toEqual([]);
    // The row carries what the comparison reads: not a vacuous match.
    expect(csv.get("train-a")).toMatchObject({ samples: 8192, tokens: 196_608, steps: 2468, attributes: { team: "vision", experiment: "lr-sweep" } });
  });

  it("the summary (stderr), parsed: every figure it shows, to its 3 significant digits", () => {
    const s = fromSummary(summary);
    expect(compareFigures(fromReport(reference), s, { relative: DISPLAY_TOLERANCE })).toEqual([]);
    expect(Object.keys(s.get("train-a")!.phases!)).toEqual(["(before first mark)", "train", "eval", "done"]);
    expect(s.get("eval-b")).toMatchObject({ samples: 300, tokens: 50_001 });
  });

  it.skipIf(!existsSync(CHROMIUM))("the HTML, read from the DOM in Chromium: every figure of its tables, to its 3 significant digits", async () => {
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--headless", "--no-sandbox", "--disable-gpu"] });
    try {
      const page = await browser.newPage();
      await page.goto(pathToFileURL(join(dir, "ref.html")).href);
      const table = (name: string): Promise<DomTable> =>
        page.$eval(`table[data-table="${name}"]`, (t) => ({
          head: [...t.querySelectorAll("thead th")].map((th) => th.textContent ?? ""),
          rows: [...t.querySelectorAll("tbody tr")].map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent ?? "")),
        }));
      const html = fromHtmlTables(await table("jobs"), await table("phases"));
      expect(compareFigures(fromReport(reference), html, { relative: DISPLAY_TOLERANCE })).toEqual([]);
      expect(Object.keys(html.get("eval-b")!.phases!)).toEqual(["(before first mark)", "serve", "idle"]);
    } finally {
      await browser.close();
    }
  }, 60_000);

  it("`report` merging two halves (the scenario split at 3 s, each simulated on its own) equals the whole", async () => {
    const [a, b] = splitScenario(SCENARIO, 3);
    writeFileSync(join(dir, "a.json"), JSON.stringify(a));
    writeFileSync(join(dir, "b.json"), JSON.stringify(b));
    for (const half of ["a", "b"]) {
      const r = await runCli(["simulate", join(dir, `${half}.json`), "--report", join(dir, `${half}-report.json`), "-q", ...PRICE]);
      expect(r.code, r.stderr).toBe(0);
    }
    const r = await runCli(["report", join(dir, "a-report.json"), join(dir, "b-report.json"), "--json", join(dir, "merged.json"), "--csv", join(dir, "merged.csv")]);
    expect(r.code, r.stderr).toBe(0);
    const merged = read(join(dir, "merged.json"));
    expect(compareFigures(fromReport(reference), fromReport(merged))).toEqual([]);
    expect(compareFigures(fromReport(reference), fromCsv(readFileSync(join(dir, "merged.csv"), "utf8")))).toEqual([]);
    // Each half alone is not the whole: the comparison is not vacuous.
    expect(compareFigures(fromReport(reference), fromReport(read(join(dir, "a-report.json"))))).not.toEqual([]);
  }, 60_000);
});

describe("every path, the same figures: the comparison fails on a broken path", () => {
  it("a path that splits memory without resident memory (as the agent's rooted source did)", async () => {
    // The same scenario with the memory device's installed size and the processes' RSS dropped:
    // memory's static part is then split by CPU seconds.
    const noRss = { ...SCENARIO, devices: (SCENARIO.devices as Record<string, unknown>[]).map(({ memoryBytes: _, ...d }) => d) };
    writeFileSync(join(dir, "no-rss.json"), JSON.stringify(noRss));
    const r = await runCli(["simulate", join(dir, "no-rss.json"), "--report", join(dir, "no-rss-report.json"), "-q", ...PRICE]);
    expect(r.code, r.stderr).toBe(0);
    const broken = compareFigures(fromReport(reference), fromReport(read(join(dir, "no-rss-report.json"))));
    expect(broken.filter((m) => m.includes(".averagePowerWatts.memory"))).toHaveLength(2);
    expect(broken.some((m) => m.startsWith("train-a.energyJoules.memory"))).toBe(true);
  }, 60_000);

  it("a path that measures a job over another window (the merged span, as the merged CSV did)", async () => {
    // Three runs of a sweep merged: each row must carry its own run's duration and power.
    const files = ["sweep-0.1.json", "sweep-0.3.json", "sweep-1.0.json"].map((f) => join(import.meta.dirname, "..", "fixtures", "reports", f));
    const csv = join(dir, "sweep.csv");
    const r = await runCli(["report", ...files, "--csv", csv]);
    expect(r.code, r.stderr).toBe(0);
    const own: Figures = new Map(files.map((f) => read(f)).map((run) => [run.jobs[0].id, fromReport(run).get(run.jobs[0].id)!]));
    const ids = [...own.keys()];
    const rows = fromCsv(readFileSync(csv, "utf8"));
    expect(compareFigures(own, rows, {}, ids)).toEqual([]);
    // A copy of the writer that divides by the merged span instead: the comparison fails on every row.
    const span = (Date.parse(read(files[2]).endedAt) - Date.parse(read(files[0]).startedAt)) / 1000;
    const broken: Figures = new Map(
      [...rows].map(([id, f]) => [id, { ...f, durationSeconds: span, averagePowerWatts: { cpu: f.energyJoules!.cpu! / span, gpu: f.energyJoules!.gpu! / span, memory: f.energyJoules!.memory! / span } }]),
    );
    const mismatches = compareFigures(own, broken, {}, ids);
    for (const id of ids) {
      expect(mismatches).toContain(`${id}.durationSeconds: ${own.get(id)!.durationSeconds} expected, ${span} here`);
      expect(mismatches.some((m) => m.startsWith(`${id}.averagePowerWatts.cpu`))).toBe(true);
    }
  }, 60_000);

  it("a path that rounds a count to 3 significant digits (as the summary did: 4100 for 4,096)", () => {
    const rounded = (n: number) => String(Number(n.toPrecision(3)));
    // A copy of the summary whose counts were written by a 3-digit formatter.
    // (same width: the table's columns stay where they are)
    const copy = summary.replace(/\b(\d{1,3}(?:,\d{3})+)\b/g, (m) => rounded(Number(m.replace(/,/g, ""))).padEnd(m.length));
    expect(copy).not.toBe(summary);
    const broken = compareFigures(fromReport(reference), fromSummary(copy), { relative: DISPLAY_TOLERANCE });
    expect(broken).toEqual(
      expect.arrayContaining([
        "train-a.samples: 8192 expected, 8190 here (a count)",
        "train-a.tokens: 196608 expected, 197000 here (a count)",
        "train-a.steps: 2468 expected, 2470 here (a count)",
        "train-a.phases.train.samples: 8192 expected, 8190 here (a count)",
        "eval-b.tokens: 50001 expected, 50000 here (a count)",
      ]),
    );
    // The CSV likewise: a writer rounding its counts fails the comparison.
    const csv = readFileSync(join(dir, "ref.csv"), "utf8");
    const rows = fromCsv(csv);
    const roundedRows: Figures = new Map([...rows].map(([id, f]) => [id, { ...f, samples: f.samples == null ? f.samples : Number(rounded(f.samples)), tokens: f.tokens == null ? f.tokens : Number(rounded(f.tokens)) }]));
    expect(compareFigures(fromReport(reference), roundedRows)).toContain("train-a.samples: 8192 expected, 8190 here (a count)");
  });
});

/**
 * The wall-clock paths: `run --sim` (the scenario's jobs beside the wrapped command's) and
 * `agent --sim` (the scenario's jobs discovered as the agent discovers real ones), each exporting
 * to Prometheus (the endpoint scraped) and by OTLP into VictoriaMetrics.
 *
 * What is equal, and how exactly:
 * - within a run, every output shows its own report's figures: the CSV, the metrics' counters
 *   (Prometheus and VictoriaMetrics) to float rounding, the summary to its 3 digits;
 * - against simulate's reference, what does not depend on when the run started and stopped: the
 *   scenario's loads are constant, so each job's average power per device kind, its busy cores
 *   (CPU seconds per second), its PUE, water and cost per joule, the phases closed before the run
 *   ended (time, energy, emissions, counts: their marks sit at fixed scenario times) and its counts
 *   are the same. Not exactly: the path's two clock reads per tick (process table, devices) are a
 *   few µs apart (≤ 1e-3 relative here); with a real process beside the scenario (run's command,
 *   the selector's match) its own CPU seconds take their part of the simulated CPU, so the scenario
 *   jobs' CPU power differs by at most that part (bounded from the report itself), and the tick
 *   reads /proc before the scenario's table, so their CPU seconds per second are within one
 *   interval's part of the duration. Totals (energy, emissions, duration) depend on
 *   how long the run lasted and are compared within the run only.
 */
describe.skipIf(!!receiversSkipReason("victoria-metrics"))("every path, the same figures: run --sim and agent --sim, with Prometheus and OTLP", () => {
  /** The phases closed before 3.1 s of scenario time (the last mark): the same whatever the run's length. */
  const CLOSED: Record<string, string[]> = { "train-a": ["train", "eval"], "eval-b": ["serve"] };

  it("run --sim: JSON, CSV, summary, Prometheus and VictoriaMetrics agree; the scenario's jobs equal simulate's", async () => {
    const vm = await startVictoriaMetrics();
    try {
      const port = await freePort();
      const files = { report: join(dir, "run.json"), csv: join(dir, "run.csv") };
      let scraped = "";
      let exited = false;
      const run = runCli(
        ["run", "--sim", SCENARIO_FILE, "--interval", "200ms", "--job-id", "cmd", "--report", files.report, "--csv", files.csv, ...PRICE,
          "--prometheus", `127.0.0.1:${port}`, "--prometheus-linger", "60s", "--otlp", `${vm.baseUrl}/opentelemetry`, "--export-interval", "1s", "--", "sleep", "4"],
        { timeoutMillis: 120_000 },
      ).finally(() => void (exited = true));
      // The endpoint is scraped until powerprint exits: it lingers until a scrape has read the final totals.
      await waitFor("run --sim to exit", async () => {
        const body = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => (r.ok ? r.text() : ""), () => "");
        if (body) scraped = body;
        return exited;
      }, 120_000, 100);
      const r = await run;
      expect(r.code, r.stderr).toBe(0);
      const report = read(files.report);
      await checkWallClockPath(report, { csv: readFileSync(files.csv, "utf8"), summary: r.stderr, prometheus: scraped, vm, commandJob: "cmd" });
    } finally {
      await vm.stop();
    }
  }, 180_000);

  // The agent's modes that can run a scenario: its own discovery of the scenario's jobs (--sim alone),
  // and selector mode beside it (a real process matched by its command line, as run's command).
  // Pod and node modes discover pods (a PID namespace, the kubelet): a scenario cannot express them.
  it.each([
    ["--sim (the scenario's jobs discovered)", [] as string[]],
    ["--sim --mode selector (and a real process matched)", ["--mode", "selector", "--match-cmdline", "pp-every-path-(matched)"]],
  ])("agent %s: JSON, summary, Prometheus and VictoriaMetrics agree; the scenario's jobs equal simulate's", async (_name, mode) => {
    const vm = await startVictoriaMetrics();
    // The selector's real process: idle, named in its command line; ended by this test (its own child).
    const matched = mode.length ? spawn(process.execPath, ["-e", "/* pp-every-path-matched */ setInterval(() => {}, 1000)"], { stdio: "ignore" }) : undefined;
    try {
      const port = await freePort();
      const file = join(dir, `agent-${mode.length ? "selector" : "sim"}.json`);
      let child: ChildProcess | undefined;
      let scraped = "";
      let exited = false;
      const run = runCli(
        ["agent", "--sim", SCENARIO_FILE, ...mode, "--interval", "200ms", "--report", file, ...PRICE,
          "--prometheus", `127.0.0.1:${port}`, "--prometheus-linger", "60s", "--flush-timeout", "60s", "--otlp", `${vm.baseUrl}/opentelemetry`, "--export-interval", "1s"],
        { timeoutMillis: 120_000, onSpawn: (c) => (child = c) },
      ).finally(() => void (exited = true));
      const scrape = async () => {
        const body = await fetch(`http://127.0.0.1:${port}/metrics`).then((x) => (x.ok ? x.text() : ""), () => "");
        if (body) scraped = body;
        return body;
      };
      // Until the last marks (3.1 s) were applied and an interval after them recorded: both jobs'
      // last phases hold energy.
      await waitFor("the agent to record the scenario's last phases", async () => {
        const phases = promSamples(await scrape()).filter((x) => x.name === "powerprint_job_phase_energy_total" && x.value > 0).map((x) => x.labels.powerprint_phase);
        return phases.includes("done") && phases.includes("idle");
      }, 120_000, 100);
      child!.kill("SIGTERM");
      await waitFor("the agent to exit", async () => (await scrape(), exited), 120_000, 100);
      const r = await run;
      expect(r.code, r.stderr).toBe(0);
      const report = read(file);
      if (matched) expect(report.jobs.map((j) => j.id)).toContain("matched");
      // The agent prints no summary: `powerprint report` gives its report's.
      const summary = await runCli(["report", file]);
      expect(summary.code, summary.stderr).toBe(0);
      await checkWallClockPath(report, { summary: summary.stdout, prometheus: scraped, vm, ...(matched ? { commandJob: "matched" } : {}) });
    } finally {
      matched?.kill("SIGKILL");
      await vm.stop();
    }
  }, 180_000);

  /** A wall-clock path's outputs against its own report, and its scenario jobs against the reference. */
  async function checkWallClockPath(report: ReportV1, o: { csv?: string; summary: string; prometheus: string; vm: Receiver; commandJob?: string }): Promise<void> {
    const own = fromReport(report);
    // Within the run: each output shows the report's figures.
    if (o.csv !== undefined) expect(compareFigures(own, fromCsv(o.csv))).toEqual([]);
    expect(compareFigures(own, fromSummary(o.summary), { relative: DISPLAY_TOLERANCE }, JOBS)).toEqual([]);
    // The metrics' counters (cumulative totals) are the report's; their power gauge is the last
    // interval's (compared with the reference below).
    const counters = (f: Figures): Figures => new Map([...f].map(([id, j]) => [id, { ...j, averagePowerWatts: undefined }]));
    const prom = fromMetrics(promSamples(o.prometheus), "prometheus");
    expect(compareFigures(own, counters(prom), {}, JOBS)).toEqual([]);
    const vmSamples = await o.vm.query('{__name__=~"powerprint[.]job[.].+"}');
    const otlp = fromMetrics(vmSamples.map((x) => ({ name: x.metric.__name__, labels: x.metric, value: x.value })), "otel");
    expect(compareFigures(own, counters(otlp), { relative: 1e-12 + 1e-9 }, JOBS)).toEqual([]);
    // Not vacuous: the metrics carried the figures compared.
    for (const m of [prom, otlp]) expect(m.get("train-a")).toMatchObject({ samples: 8192, tokens: 196_608, steps: 2468, attributes: { team: "vision", experiment: "lr-sweep" } });

    // Against simulate's reference: what does not depend on the run's length.
    const commandShare = o.commandJob ? own.get(o.commandJob)!.cpuSeconds! / JOBS.reduce((a, id) => a + own.get(id)!.cpuSeconds!, 0) : 0;
    // With a real process beside the scenario (run's command, the selector's match), the tick reads
    // /proc before the scenario's table: the scenario's CPU seconds are sampled up to that read's
    // time after the tick's clock (most at the first tick, a whole /proc scan), so its busy cores
    // per second are compared within one interval's part of the duration.
    const skew = o.commandJob ? report.sampler.intervalMillis / 1000 / report.durationSeconds : 1e-3;
    const perturbed = 1e-3 + 2 * commandShare;
    const tolerance = { relative: 1e-3, fields: { cpuCores: skew, "averagePowerWatts.cpu": perturbed, "averagePowerWatts.total": perturbed, "phases.*.energyJoules": perturbed, "phases.*.emissionsGrams": perturbed } };
    const ref = fromReport(reference);
    expect(compareFigures(invariant(ref), invariant(own), tolerance, JOBS)).toEqual([]);
    // The power gauges of both receivers hold the last interval's power per kind as the ledger
    // recorded it: where the report has a time series (run), their sum is its last point of the job.
    const series = report.timeSeries;
    if (series) {
      expect(series.pointCount).toBeLessThan(series.maxPoints); // no points merged: the last is the last interval
      for (const m of [prom, otlp]) {
        for (const id of JOBS) {
          const g = m.get(id)!.averagePowerWatts!;
          const gaugeWatts = (g.cpu ?? 0) + (g.gpu ?? 0) + (g.memory ?? 0);
          const lastWatts = series.jobPowerWatts[id].at(-1)!;
          expect(Math.abs(gaugeWatts - lastWatts), `${id}: gauges ${gaugeWatts} W, last point ${lastWatts} W`).toBeLessThanOrEqual(1e-9 * Math.max(1, lastWatts));
        }
      }
    }
    // And they are simulate's average power (its loads are constant). With a real process beside
    // the scenario (run's command, the selector's match) the last interval is that process's too:
    // run's command exits in it (freeing its RSS share of memory), and over a short last interval
    // (the run's or the agent's end falls anywhere in the period) the late read of the scenario's
    // table (above) weighs more: there, within 5 % (a wrong unit, kind or duration is far beyond).
    const gaugeTolerance = o.commandJob ? { relative: 0.05 } : tolerance;
    for (const m of [prom, otlp]) {
      const gauges = new Map([...m].map(([id, j]) => [id, { averagePowerWatts: j.averagePowerWatts }]));
      expect(compareFigures(new Map([...ref].map(([id, j]) => [id, { averagePowerWatts: j.averagePowerWatts }])), gauges, gaugeTolerance, JOBS)).toEqual([]);
    }
    expect(commandShare).toBeLessThan(0.01);

    /** A job's figures that do not depend on how long it was measured. */
    function invariant(f: Figures): Figures {
      return new Map(
        [...f].map(([id, j]) => {
          const it = j.energyJoules!.total!;
          return [
            id,
            {
              averagePowerWatts: j.averagePowerWatts,
              cpuCores: j.cpuSeconds! / j.durationSeconds!,
              pue: j.facilityEnergyJoules! / it,
              waterPerJoule: j.waterLiters! / it,
              costPerJoule: j.cost! / it,
              samples: j.samples,
              tokens: j.tokens,
              steps: j.steps,
              attributes: j.attributes,
              phases: Object.fromEntries((CLOSED[id] ?? []).map((name) => [name, j.phases![name]])),
            } as JobFigures,
          ];
        }),
      );
    }
  }
});

/**
 * The scenario's two halves, as two runs measuring one after the other would see them: the first
 * ends at `cut` s; the second starts there (its own start time, its series and marks shifted), its
 * job opening the phase that was open at the cut, its counters counting from there (a job's
 * counters are the work done in the run that reports them).
 */
function splitScenario(s: Scenario, cut: number): [Scenario, Scenario] {
  const start = Date.parse(s.startTime ?? "2026-01-01T00:00:00Z");
  const first: Scenario = { ...s, durationSeconds: cut, marks: s.marks.filter((m) => m.atSeconds < cut) };
  const shift = (series: [number, number][]): [number, number][] => {
    const at = valueAt(series, cut);
    return [[0, at], ...series.filter(([t]) => t > cut).map(([t, v]) => [t - cut, v] as [number, number])];
  };
  const marks: Mark[] = [];
  for (const job of new Set(s.marks.map((m) => m.job))) {
    const before = s.marks.filter((m) => m.job === job && m.atSeconds < cut);
    const base: Partial<Record<"step" | "samples" | "tokens", number>> = {};
    for (const m of before) for (const k of ["step", "samples", "tokens"] as const) if (m[k] !== undefined) base[k] = m[k];
    const relative = (m: Mark): Mark => {
      const out: Mark = { job: m.job, atSeconds: m.atSeconds - cut, phase: m.phase };
      for (const k of ["step", "samples", "tokens"] as const) if (m[k] !== undefined) out[k] = m[k]! - (base[k] ?? 0);
      return out;
    };
    if (before.length) marks.push(relative({ ...before[before.length - 1], atSeconds: cut, ...base }));
    marks.push(...s.marks.filter((m) => m.job === job && m.atSeconds >= cut).map(relative));
  }
  const second: Scenario = {
    ...s,
    durationSeconds: s.durationSeconds - cut,
    startTime: new Date(start + cut * 1000).toISOString(),
    grid: { ...s.grid, intensity: shift(s.grid.intensity) },
    marks,
  };
  return [first, second];
}

/** A series' value at `t` (linear between points, held outside them). */
function valueAt(series: [number, number][], t: number): number {
  if (t <= series[0][0]) return series[0][1];
  for (let i = 1; i < series.length; i++) {
    const [t1, v1] = series[i];
    if (t <= t1) {
      const [t0, v0] = series[i - 1];
      return t1 === t0 ? v1 : v0 + ((v1 - v0) * (t - t0)) / (t1 - t0);
    }
  }
  return series[series.length - 1][1];
}

export type { Figures };
