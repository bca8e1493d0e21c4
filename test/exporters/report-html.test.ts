// --html opened in headless Chromium with the network cut off: every chart has drawn data (SVG
// paths of more than one point), no console errors, no request leaves the file; a screenshot is
// saved under test/.artifacts for review.
import { describe, expect, it } from "vitest";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { chromium } from "playwright-core";
import { runCli } from "../helpers/cli.js";
import { reportSchemaV1 } from "../../exporters/report-schema.js";

const CHROMIUM = "/usr/bin/chromium";
const scenario = join(import.meta.dirname, "..", "fixtures", "scenarios", "design-example.json");
const artifacts = join(import.meta.dirname, "..", ".artifacts");

// Marks two phases and burns CPU in each, so the phase chart has two bars.
const script = `
const fs = require("fs");
const mark = (o) => fs.appendFileSync(process.env.POWERPRINT_MARKS, JSON.stringify(o) + "\\n");
const burn = (ms) => { const t = Date.now(); while (Date.now() - t < ms) {} };
mark({ phase: "load" }); burn(600);
mark({ phase: "train", step: 1, samples: 64 }); burn(900);
`;

describe.skipIf(!existsSync(CHROMIUM))("--html report in headless Chromium (Debian chromium; .ci/run installs it)", () => {
  it("draws every chart, logs no console error, makes no network request", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pp-html-"));
    const html = join(dir, "r.html");
    const report = join(dir, "r.json");
    const r = await runCli(["run", "--sim", scenario, "--interval", "100ms", "--job-id", "h1", "--html", html, "--report", report, "-q", "--", process.execPath, "-e", script]);
    expect(r.code, r.stderr).toBe(0);
    const rep = reportSchemaV1.parse(JSON.parse(readFileSync(report, "utf8")));
    expect(rep.timeSeries!.pointCount).toBeGreaterThan(5);

    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"] });
    try {
      const context = await browser.newContext({ offline: true });
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
      const charts = await page.$$eval("svg[data-chart]", (svgs) =>
        svgs.map((svg) => ({
          id: svg.getAttribute("data-chart"),
          points: [...svg.querySelectorAll("path.series")].map((p) => (p.getAttribute("d")?.match(/[ML]/g) ?? []).length),
          box: svg.getBoundingClientRect().width,
        })),
      );
      expect(charts.map((c) => c.id)).toEqual(["power", "job-power", "energy", "emissions", "intensity", "phases"]);
      for (const c of charts) {
        expect(c.points.length, c.id!).toBeGreaterThan(0);
        for (const n of c.points) expect(n, c.id!).toBeGreaterThan(1);
        expect(c.box).toBeGreaterThan(100);
      }
      // One line per device; the phase chart has the marked phases.
      expect(charts[0].points).toHaveLength(2);
      expect(charts[1].points).toHaveLength(2); // jobs h1 and the scenario's train-a
      const phaseNames = await page.$$eval('svg[data-chart="phases"] path.series', (ps) => ps.map((p) => p.getAttribute("data-name")));
      expect(phaseNames).toEqual(expect.arrayContaining(["h1: load", "h1: train"]));
      const cells = await page.$$eval("table td", (tds) => tds.map((t) => t.textContent));
      expect(cells).toContain("facility energy");
      expect(cells.join(" ")).toContain("scenario series (zone DE)");
      mkdirSync(artifacts, { recursive: true });
      await page.screenshot({ path: join(artifacts, "report-html.png"), fullPage: true });
      expect(errors).toEqual([]);
      expect(requests).toEqual([]);
    } finally {
      await browser.close();
    }
    rmSync(dir, { recursive: true, force: true });
  }, 90_000);
});
