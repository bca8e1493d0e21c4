// `powerprint plan` end to end: the real CLI reads a report written by `simulate` (a ramped GPU
// job: 30 min at 128 W, 30 min at 264 W, 30 min at 400 W, PUE 1.5) and asks loopback servers that
// replay provider responses. The expected figures are worked out here from the report's own
// numbers and the fixture's values.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.js";
import { fixture, startReplayServer, type ReplayServer } from "../grid/replay-server.js";
import type { ReportV1 } from "../../exporters/report-schema.js";

const dir = mkdtempSync(join(tmpdir(), "pp-plan-"));
const scenario = (name: string) => join(import.meta.dirname, "..", "fixtures", "scenarios", name);
const rampReport = join(dir, "ramp.json");
const stepReport = join(dir, "step.json");
const KWH = 3_600_000;
const FROM = "2020-05-21T21:00Z";

type UkPeriod = { from: string; intensity: { forecast: number } };
const ukBody = fixture<{ data: UkPeriod[] }>("uk-carbonintensity__intensity_fw24h__2020-05-21.json");

let server: ReplayServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

beforeAll(async () => {
  for (const [name, out] of [["ramped-gpu-job.json", rampReport], ["two-hour-intensity-step.json", stepReport]]) {
    const r = await runCli(["simulate", scenario(name), "--report", out]);
    expect(r.code, r.stderr).toBe(0);
  }
}, 60_000);

const report = (file: string) => JSON.parse(readFileSync(file, "utf8")) as ReportV1;
const ukServer = () => startReplayServer((req) => (req.path.startsWith("/intensity/") ? { body: ukBody } : { status: 404, body: {} }));

describe("powerprint plan", () => {
  it("a ramped job on the UK forecast: best start and expected grams as worked out from the report", async () => {
    server = await ukServer();
    const r = await runCli(["plan", rampReport, "--zones", "uk:GB", "--from", FROM, "--within", "30h", "--json"], {
      env: { POWERPRINT_UK_CARBON_INTENSITY_URL: server.url },
    });
    expect(r.code, r.stderr).toBe(0);
    // A 30 h window asks the 48 h forecast.
    expect(server.requests[0].path).toBe("/intensity/2020-05-21T21:00Z/fw48h");
    const plan = JSON.parse(r.stdout);
    // The job's facility energy per half hour, from the report's cumulative series (90 one-minute points).
    const c = report(rampReport).timeSeries!.jobCumulative!.train.facilityEnergyJoules;
    const kwh = [c[29], c[59] - c[29], c[89] - c[59]].map((j) => j / KWH);
    expect(kwh.map((k) => k.toFixed(3))).toEqual(["0.096", "0.198", "0.300"]); // 128/264/400 W × 0.5 h × 1.5
    // By hand: half-hour slots from 21:00 (index 1), each start weighted by the three half-hours.
    const v = ukBody.data.map((p) => p.intensity.forecast);
    let best = { i: -1, grams: Infinity };
    for (let i = 1; i + 3 <= v.length; i++) {
      const grams = kwh[0] * v[i] + kwh[1] * v[i + 1] + kwh[2] * v[i + 2];
      if (grams < best.grams - 1e-9) best = { i, grams };
    }
    expect(plan.zones[0].best.start).toBe(ukBody.data[best.i].from);
    expect(plan.zones[0].best.expectedGrams).toBeCloseTo(best.grams, 9);
    expect(plan.best).toEqual({ zone: "GB", start: ukBody.data[best.i].from, expectedGrams: plan.zones[0].best.expectedGrams });
    const now = kwh[0] * v[1] + kwh[1] * v[2] + kwh[2] * v[3];
    expect(plan.nowHere.expectedGrams).toBeCloseTo(now, 9);
    expect(plan.zones[0].savingGrams).toBeCloseTo(now - best.grams, 9);
    expect(plan.zones[0]).toMatchObject({ provider: "uk-carbon-intensity", basis: "forecast", kind: "average", horizonUntil: "2020-05-22T21:00Z", stepSeconds: 1800 });
    expect(plan.profile.facilityEnergyJoules).toBe(report(rampReport).jobs[0].facilityEnergyJoules);
  });

  it("the table names kind, provider and horizon; a zone without a forecast is labelled; --html charts both", async () => {
    server = await ukServer();
    const html = join(dir, "plan.html");
    const r = await runCli(["plan", rampReport, "--zones", "uk:GB,DE", "--from", FROM, "--within", "24h", "--html", html], {
      env: { POWERPRINT_UK_CARBON_INTENSITY_URL: server.url },
    });
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split("\n");
    expect(lines.find((l) => l.startsWith("GB "))).toMatch(/average\s+uk-carbon-intensity\s+forecast to 2020-05-22T21:00Z\s+2020-05-22T\d\d:\d\dZ/);
    expect(lines.find((l) => l.startsWith("DE "))).toMatch(/average \(annual\)\s+static-table\s+static\s+any \(no forecast\)/);
    expect(r.stdout).toMatch(/DE: no forecast \(static table\): annual average of Germany/);
    const page = readFileSync(html, "utf8");
    expect(page.match(/<path class="series" data-zone="[^"]+"/g)).toEqual(['<path class="series" data-zone="GB"', '<path class="series" data-zone="DE"']);
    expect(page).toContain('stroke-dasharray="6 4"');
  });

  it("a sweep: the mean profile of several reports", async () => {
    server = await ukServer();
    const r = await runCli(["plan", rampReport, stepReport, "--zones", "uk:GB", "--from", FROM, "--within", "24h", "--json"], {
      env: { POWERPRINT_UK_CARBON_INTENSITY_URL: server.url },
    });
    expect(r.code, r.stderr).toBe(0);
    const plan = JSON.parse(r.stdout);
    const mean = (report(rampReport).jobs[0].facilityEnergyJoules + report(stepReport).jobs[0].facilityEnergyJoules) / 2;
    expect(plan.profile.facilityEnergyJoules).toBeCloseTo(mean, 6);
    expect(plan.profile.durationSeconds).toBe(7200);
    expect(plan.profile.method).toMatch(/^mean of 2 runs/);
  });

  it("mixed intensity kinds: refused by default, labelled and never ranked together on request", async () => {
    const wt = fixture("watttime__v3_historical__doc-example.json");
    const uk = await ukServer();
    server = await startReplayServer((req) => (req.path === "/login" ? { body: { token: "tok-1" } } : { body: wt }));
    const env = { POWERPRINT_UK_CARBON_INTENSITY_URL: uk.url, POWERPRINT_WATTTIME_URL: server.url, WATTTIME_USERNAME: "u", WATTTIME_PASSWORD: "p-123456" };
    try {
      const refused = await runCli(["plan", rampReport, "--zones", "uk:GB,watttime:CAISO_NORTH", "--from", FROM, "--within", "24h"], { env });
      expect(refused.code).toBe(2);
      expect(refused.stderr.trim().split("\n")).toHaveLength(1);
      expect(refused.stderr).toMatch(/--zones: the zones mix intensity kinds \(GB: average, CAISO_NORTH: marginal \(MOER\)\)/);
      const labelled = await runCli(["plan", rampReport, "--zones", "uk:GB,watttime:CAISO_NORTH", "--from", FROM, "--within", "24h", "--mixed-kinds", "label", "--json"], { env });
      expect(labelled.code, labelled.stderr).toBe(0);
      const plan = JSON.parse(labelled.stdout);
      expect(plan.mixedKinds).toBe(true);
      expect(plan.zones[1]).toMatchObject({ zone: "CAISO_NORTH", kind: "marginal", comparable: false, savingGrams: null });
      expect(plan.best.zone).toBe("GB");
    } finally {
      await uk.close();
    }
  });

  it("bad input: one line, exit 2, nothing written", async () => {
    server = await startReplayServer(() => ({ status: 404, body: { error: "no data" } }));
    const v2 = join(dir, "v2.json");
    writeFileSync(v2, JSON.stringify({ ...report(rampReport), schemaVersion: 2 }));
    const html = join(dir, "never.html");
    const env = { POWERPRINT_UK_CARBON_INTENSITY_URL: server.url, POWERPRINT_WATTTIME_URL: server.url, WATTTIME_USERNAME: "u", WATTTIME_PASSWORD: "p-123456" };
    const cases: [string[], RegExp][] = [
      [[rampReport, v2, "--zones", "DE", "--within", "24h"], /v2\.json: not a powerprint v1 report: schemaVersion/],
      [[rampReport, "--zones", "XX", "--within", "24h"], /--zones: XX: .*unknown zone 'XX'/],
      [[rampReport, "--zones", "watttime:CAISO_NORTH", "--from", FROM, "--within", "24h"], /--zones: zone 'CAISO_NORTH' has no data/],
      [[rampReport, "--zones", "DE", "--within", "1h"], /--within: the window \(1\.00 h\) is shorter than the job \(1\.50 h\)/],
      [[rampReport, "--zones", "DE", "--from", FROM, "--deadline", "2020-05-21T22:00Z"], /--deadline: the window \(1\.00 h\) is shorter than the job/],
      [[rampReport, "--zones", "DE", "--within", "24h", "--mixed-kinds", "maybe"], /--mixed-kinds: must be refuse or label/],
      [[rampReport, "--zones", "DE", "--within", "24h", "--job", "nope"], /--job: .*has no job 'nope' \(it has train\)/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(["plan", ...args, "--html", html], { env });
      expect(r.code, `${args.join(" ")}\n${r.stderr}`).toBe(2);
      expect(r.stderr.trim().split("\n"), r.stderr).toHaveLength(1);
      expect(r.stderr).toMatch(message);
      expect(existsSync(html)).toBe(false);
    }
  });
});
