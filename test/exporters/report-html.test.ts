// --html opened in headless Chromium with the network cut off (issue 18, "HTML"): every chart has
// drawn data and starts at the first recorded point (no invented zero); no text is clipped (each
// label's box inside its chart, each cell's text inside its cell, no sideways page overflow) at a
// wide and a narrow window; charts fill the page's width; the headline block shows the report's
// own numbers; a merged report has a chart per job, its failed run marked and its totals per tag.
// Screenshots are saved under test/.artifacts for review.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { chromium, type Browser, type Page } from "playwright-core";
import { runCli } from "../helpers/cli.js";
import { reportSchemaV1 } from "../../exporters/report-schema.js";
import { renderHtmlReport } from "../../exporters/report-html.js";
import type { ReportV1 } from "../../exporters/report-json.js";
import { readReportFile } from "../../exporters/report-schema.js";
import { groupByTag, mergeReports } from "../../src/cli/report-merge.js";
import { formatCount, formatDuration, formatEnergy, formatGrams, formatSi, formatWatts } from "../../src/units.js";

const CHROMIUM = "/usr/bin/chromium";
const scenario = join(import.meta.dirname, "..", "fixtures", "scenarios", "design-example.json");
const fixtures = join(import.meta.dirname, "..", "fixtures", "reports");
const artifacts = join(import.meta.dirname, "..", ".artifacts");

// Marks two phases and burns CPU in each, so the phase chart has bars.
const script = `
const fs = require("fs");
const mark = (o) => fs.appendFileSync(process.env.POWERPRINT_MARKS, JSON.stringify(o) + "\\n");
const burn = (ms) => { const t = Date.now(); while (Date.now() - t < ms) {} };
mark({ phase: "load" }); burn(600);
mark({ phase: "train", step: 1, samples: 64 }); burn(900);
`;

let browser: Browser;
let dir: string;
beforeAll(async () => {
  if (!existsSync(CHROMIUM)) return;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"] });
  dir = mkdtempSync(join(tmpdir(), "pp-html-"));
  mkdirSync(artifacts, { recursive: true });
});
afterAll(async () => {
  await browser?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Opens an HTML file offline at `width`; collects console errors and any request leaving the file. */
async function open(html: string, width: number): Promise<{ page: Page; errors: string[]; requests: string[] }> {
  const context = await browser.newContext({ offline: true, viewport: { width, height: 900 } });
  const page = await context.newPage();
  const errors: string[] = [];
  const requests: string[] = [];
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  page.on("pageerror", (e) => errors.push(e.message));
  await page.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith("file:")) return route.continue();
    requests.push(url);
    return route.abort();
  });
  await page.goto(pathToFileURL(html).href);
  return { page, errors, requests };
}

/** Every piece of text that does not fit its box: chart labels against their chart, cells, headline values, the page. */
async function clipped(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const out: string[] = [];
    for (const svg of document.querySelectorAll("svg[data-chart]")) {
      const box = svg.getBoundingClientRect();
      for (const t of svg.querySelectorAll("text")) {
        const b = t.getBoundingClientRect();
        if (b.left < box.left - 0.5 || b.right > box.right + 0.5 || b.top < box.top - 0.5 || b.bottom > box.bottom + 0.5) out.push(`${svg.getAttribute("data-chart")}: "${t.textContent}"`);
      }
    }
    for (const el of document.querySelectorAll("td, th, .card .value, .card .how, .card .label, figcaption, h1, h2, .sub")) {
      const e = el as HTMLElement;
      if (e.scrollWidth > e.clientWidth + 1) out.push(`${e.tagName.toLowerCase()}: "${e.textContent}"`);
    }
    if (document.documentElement.scrollWidth > window.innerWidth + 1) out.push(`page: ${document.documentElement.scrollWidth} > ${window.innerWidth}`);
    return out;
  });
}

interface Drawn {
  id: string;
  width: number;
  /** The top of the chart's value axis (line charts). */
  yMax: number | null;
  series: { name: string; vertices: number; firstValue: number | null }[];
}

/** Each chart: its width, and per series its vertex count and the value its first vertex stands for (from the chart's own scale). */
async function charts(page: Page): Promise<Drawn[]> {
  return page.$$eval("svg[data-chart]", (svgs) =>
    svgs.map((svg) => {
      const yMax = Number(svg.getAttribute("data-y-max"));
      const top = Number(svg.getAttribute("data-plot-top"));
      const bottom = Number(svg.getAttribute("data-plot-bottom"));
      return {
        id: svg.getAttribute("data-chart")!,
        width: svg.getBoundingClientRect().width,
        yMax: svg.hasAttribute("data-y-max") ? yMax : null,
        series: [...svg.querySelectorAll("path.series")].map((p) => {
          const d = p.getAttribute("d") ?? "";
          const first = /^M[\d.]+,([\d.]+)/.exec(d);
          const value = svg.hasAttribute("data-y-max") && first ? ((bottom - Number(first[1])) / (bottom - top)) * yMax : null;
          return { name: p.getAttribute("data-name")!, vertices: (d.match(/[MLhv]/g) ?? []).length, firstValue: value };
        }),
      };
    }),
  );
}

/** The headline cards: label → value as shown. */
async function headline(page: Page): Promise<Record<string, string>> {
  const cards = await page.$$eval(".headline .card", (cs) => cs.map((c) => [c.querySelector(".label")!.textContent!, c.querySelector(".value")!.textContent!] as const));
  return Object.fromEntries(cards);
}

/** The first value of a series as the report recorded it. */
function firstRecorded(r: ReportV1, chart: string, name: string): number | undefined {
  const t = r.timeSeries!;
  if (chart === "power") return t.devicePowerWatts[name]?.[0];
  if (chart === "job-power") return t.jobPowerWatts[name]?.[0];
  if (chart === "intensity") return t.intensityGramsPerKwh[0];
  if (chart === "emissions") return t.cumulativeEmissionsGrams[0];
  if (chart === "energy") return (name.startsWith("IT") ? t.cumulativeEnergyJoules[0] : t.cumulativeFacilityEnergyJoules[0]) / 3600;
  return undefined;
}

/** No chart's first point is a made-up zero: each series starts at its first recorded value (to the drawing's resolution). */
function expectNoSyntheticHead(drawn: Drawn[], r: ReportV1): void {
  let checked = 0;
  for (const c of drawn) {
    if (c.yMax === null) continue;
    for (const s of c.series) {
      const recorded = firstRecorded(r, c.id, s.name);
      expect(recorded, `${c.id} ${s.name}`).toBeDefined();
      // Vertices are written to 0.01 drawing units on a plot about 200 units high.
      expect(Math.abs(s.firstValue! - recorded!), `${c.id} ${s.name}: drawn ${s.firstValue}, recorded ${recorded}`).toBeLessThanOrEqual(c.yMax * 2e-4);
      checked++;
    }
  }
  expect(checked).toBeGreaterThan(5);
}

describe.skipIf(!existsSync(CHROMIUM))("--html report in headless Chromium (Debian chromium; .ci/run installs it)", () => {
  it("run --sim: every chart drawn from its first recorded point, full width, nothing clipped, the headline's numbers are the report's", async () => {
    const html = join(dir, "run.html");
    const report = join(dir, "run.json");
    const r = await runCli(["run", "--sim", scenario, "--interval", "100ms", "--job-id", "h1", "--html", html, "--report", report, "-q", "--", process.execPath, "-e", script]);
    expect(r.code, r.stderr).toBe(0);
    const rep = reportSchemaV1.parse(JSON.parse(readFileSync(report, "utf8")));
    expect(rep.timeSeries!.pointCount).toBeGreaterThan(5);

    for (const width of [1400, 760]) {
      const { page, errors, requests } = await open(html, width);
      const drawn = await charts(page);
      expect(drawn.map((c) => c.id)).toEqual(["power", "job-power", "energy", "emissions", "intensity", "jobs", "phases"]);
      const main = await page.$eval("section.charts", (m) => m.getBoundingClientRect().width);
      for (const c of drawn) {
        expect(c.series.length, c.id).toBeGreaterThan(0);
        for (const s of c.series) expect(s.vertices, `${c.id} ${s.name}`).toBeGreaterThan(1);
        // Full width: each chart spans the content column (its figure's padding aside).
        expect(c.width, c.id).toBeGreaterThan(main * 0.9);
      }
      expect(drawn[0].series.map((s) => s.name).sort()).toEqual(["cpu0", "gpu0"]);
      expect(drawn[1].series.map((s) => s.name).sort()).toEqual(["h1", "train-a"]);
      // Simulated devices draw power from the first interval on: the first vertex is that power, not 0.
      expectNoSyntheticHead(drawn, rep);
      for (const s of drawn[0].series) expect(s.firstValue!, s.name).toBeGreaterThan(0);
      expect(drawn[4].series[0].firstValue!).toBeGreaterThan(300); // the scenario's 380 g/kWh
      expect(await clipped(page)).toEqual([]);
      const phaseNames = await page.$$eval('svg[data-chart="phases"] path.series', (ps) => ps.map((p) => p.getAttribute("data-name")));
      expect(phaseNames).toEqual(["(before first mark)", "load", "train"]);
      const cells = await page.$$eval("table td", (tds) => tds.map((t) => t.textContent));
      expect(cells).toContain("host facility energy");
      expect(cells.join(" ")).toContain("scenario series (zone DE)");
      await page.screenshot({ path: join(artifacts, `report-html-run-${width}.png`), fullPage: true });
      expect(errors).toEqual([]);
      expect(requests).toEqual([]);
      await page.context().close();
    }
  }, 120_000);

  it("the headline block shows the report's numbers (a real run's report with marks; no zone; no price)", async () => {
    const r = readReportFile(join(fixtures, "run-marks.json"));
    const html = join(dir, "marks.html");
    writeFileSync(html, renderHtmlReport(r));
    const { page } = await open(html, 1400);
    const h = await headline(page);
    const job = r.jobs[0];
    expect(h["Job energy (IT)"]).toBe(formatEnergy(job.energyJoules.total));
    expect(h["Job emissions"]).toBe(`${formatGrams(job.emissionsGrams)} CO2e`);
    expect(h["Duration"]).toBe(formatDuration(job.durationSeconds!));
    expect(h["Average power"]).toBe(formatWatts(job.averagePowerWatts!.total));
    expect(h["Per unit (IT energy)"]).toBe(`${formatSi(job.joulesPerSample!, "J")}/sample`);
    expect(h["Host energy (IT)"]).toBe(formatEnergy(r.totals.energyJoules));
    expect(h["Job cost"]).toBe("no price set");
    const how = await page.$$eval(".headline .card .how", (xs) => xs.map((x) => x.textContent).join(" | "));
    expect(how).toContain("cpu: model (cpu-model)"); // the method labels
    expect(how).toContain("world average (no --zone)");
    expect(how).toContain(`${formatCount(4096)} samples`);
    expect(how).not.toMatch(/× 0\b/);
    // The phase table: eval (0.65 s, between two 1 s ticks) has its share.
    const evalRow = await page.$$eval('table[data-table="phases"] tr', (rows) => rows.map((x) => [...x.querySelectorAll("td")].map((c) => c.textContent)).find((c) => c[1] === "eval"));
    expect(evalRow![2]).toBe(formatEnergy(job.phases!.find((p) => p.name === "eval")!.energyJoules));
    expect(await clipped(page)).toEqual([]);
    await page.screenshot({ path: join(artifacts, "report-html-marks.png"), fullPage: true });
    await page.context().close();
  }, 60_000);

  it("a merged report: a power chart per job from its own run, the failed run marked, totals per tag; nothing clipped", async () => {
    const files = ["sweep-0.1.json", "sweep-0.3.json", "sweep-1.0.json"];
    const merged = mergeReports(files.map((file) => ({ file, report: readReportFile(join(fixtures, file)) })));
    const r = { ...merged, groups: groupByTag(merged, "lr") };
    const html = join(dir, "merged.html");
    writeFileSync(html, renderHtmlReport(r));
    for (const width of [1400, 760]) {
      const { page, errors } = await open(html, width);
      const drawn = await charts(page);
      const perJob = drawn.filter((c) => c.id.startsWith("job-power:"));
      // Each run's jobs (its command's and the scenario's): six charts, each from that run's series.
      expect(perJob.map((c) => c.id).sort()).toEqual(files.flatMap((f) => [`job-power:lr-${f.slice(6, 9)}@${f}`, `job-power:train-a@${f}`]).sort());
      for (const c of perJob) {
        const [, rest] = c.id.split(":");
        const [job, file] = rest.split("@");
        const series = r.runs!.find((x) => x.file === file)!.timeSeries!.jobPowerWatts[job];
        expect(Math.abs(c.series[0].firstValue! - series[0]), c.id).toBeLessThanOrEqual(c.yMax! * 2e-4);
        expect(c.series[0].vertices).toBe(2 * series.length);
      }
      expect(drawn.map((c) => c.id)).toEqual(expect.arrayContaining(["jobs", "groups"]));
      const failedBars = await page.$$eval('svg[data-chart="jobs"] path.failed', (ps) => ps.map((p) => p.getAttribute("data-name")));
      expect(failedBars).toEqual(["lr-1.0"]);
      const failedRuns = await page.$$eval('table[data-table="runs"] tr.failed td.id', (tds) => tds.map((t) => t.textContent));
      expect(failedRuns).toEqual(["sweep-1.0.json"]);
      const groups = await page.$$eval('table[data-table="groups"] tbody tr', (rows) => rows.map((x) => [...x.querySelectorAll("td")].map((c) => c.textContent)));
      for (const g of r.groups) {
        const row = groups.find((x) => x[0] === `lr=${g.value}`)!;
        expect(row[3], g.value).toBe(formatEnergy(g.facilityEnergyJoules));
        expect(row[4], g.value).toBe(formatGrams(g.emissionsGrams));
      }
      const h = await headline(page);
      expect(h["Jobs' energy (IT)"]).toBe(formatEnergy(r.totals.jobs!.energyJoules));
      expect(await clipped(page)).toEqual([]);
      await page.screenshot({ path: join(artifacts, `report-html-merged-${width}.png`), fullPage: true });
      expect(errors).toEqual([]);
      await page.context().close();
    }
  }, 60_000);

  it("simulate: the x-axis labels and long bar labels stay inside their charts", async () => {
    const html = join(dir, "sim.html");
    const r = await runCli(["simulate", scenario, "--html", html, "-q"]);
    expect(r.code, r.stderr).toBe(0);
    const { page } = await open(html, 1400);
    const last = await page.$$eval('svg[data-chart="power"] text', (ts) => ts.map((t) => t.textContent).at(-1));
    expect(last).toBe("10.0 min"); // was cut to "10.0 mi"
    expect(await clipped(page)).toEqual([]);
    await page.screenshot({ path: join(artifacts, "report-html-simulate.png"), fullPage: true });
    await page.context().close();
  }, 60_000);
});
