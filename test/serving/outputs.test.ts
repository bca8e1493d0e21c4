// One number, one place: the serving figures of a real `run --work-from` (a loopback vLLM-named
// endpoint with two models) as every output shows them: the JSON report (the ledger's figures),
// the summary's line, the CSV's columns, the HTML's table and chart, the metrics as a real
// Prometheus reads them (the docs' per-model ratio), and `powerprint report` merging two replicas
// of one job (sums, ratios recomputed from the sums).
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "csv-parse/sync";
import { afterAll, describe, expect, it } from "vitest";
import { reportSchemaV1, type ReportV1 } from "../../exporters/report-schema.js";
import { SUMMARY_WIDTH } from "../../exporters/summary.js";
import { SERVING_CSV_COLUMNS, SERVING_TABLE_HEADER, servingCsvColumns, servingSummaryLine, servingTableRows } from "../../exporters/serving.js";
import { formatCount, formatPlain } from "../../src/units.js";
import { runCli } from "../helpers/cli.js";
import { freePort, receiversSkipReason, startPrometheus } from "../helpers/receivers.js";
import { waitFor } from "../helpers/wait.js";
import { serveText, type Endpoint } from "./endpoint.js";

const dir = mkdtempSync(join(tmpdir(), "pp-serving-outputs-"));
const cleanups: (() => unknown)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  rmSync(dir, { recursive: true, force: true });
});

/** A line as the summary prints it (cut at its width). */
const fitted = (line: string) => (line.length <= SUMMARY_WIDTH ? line : `${line.slice(0, SUMMARY_WIDTH - 1)}…`);

/** A two-model server whose counters grow with every scrape (model-a generates `ratio` times model-b). */
async function server(ratio: number): Promise<Endpoint> {
  let n = 0;
  const ep = await serveText(() => {
    n++;
    return [
      `vllm:prompt_tokens_total{model_name="model-a"} ${10 * n}`,
      `vllm:generation_tokens_total{model_name="model-a"} ${ratio * 4 * n}`,
      `vllm:request_success_total{finished_reason="stop",model_name="model-a"} ${n}`,
      `vllm:num_requests_running{model_name="model-a"} ${n % 2}`,
      `vllm:prompt_tokens_total{model_name="model-b"} ${5 * n}`,
      `vllm:generation_tokens_total{model_name="model-b"} ${4 * n}`,
      `vllm:request_success_total{finished_reason="stop",model_name="model-b"} ${n % 3 === 0 ? n / 3 : Math.floor(n / 3)}`,
      `vllm:num_requests_running{model_name="model-b"} 0`,
      "",
    ].join("\n");
  });
  cleanups.push(() => ep.close());
  return ep;
}

/** `powerprint run --work-from` around a command that waits for a release file; released after `scrapes` scrapes. */
async function runServing(name: string, ratio: number, extra: string[]): Promise<{ report: ReportV1; stderr: string; paths: Record<string, string> }> {
  const ep = await server(ratio);
  const paths = { report: join(dir, `${name}.json`), csv: join(dir, `${name}.csv`), html: join(dir, `${name}.html`), release: join(dir, `${name}.release`) };
  const wait = "const fs=require('fs');const t=setInterval(()=>{if(fs.existsSync(process.argv[1]))clearInterval(t)},20)";
  const run = runCli(
    ["run", "--interval", "200ms", "--job-id", "llm-replicas", "--work-from", ep.url, "--report", paths.report, "--csv", paths.csv, "--html", paths.html, ...extra, "--", process.execPath, "-e", wait, paths.release],
    { timeoutMillis: 120_000 },
  );
  await waitFor("eight scrapes", () => ep.hits >= 8, 60_000);
  writeFileSync(paths.release, "");
  const r = await run;
  expect(r.code, r.stderr).toBe(0);
  return { report: reportSchemaV1.parse(JSON.parse(readFileSync(paths.report, "utf8"))), stderr: r.stderr, paths };
}

describe("serving figures through every output", () => {
  it("report, summary, CSV, HTML, Prometheus and report merging show the same figures", async () => {
    const skipProm = receiversSkipReason("prometheus");
    const promPort = await freePort();
    const prom = skipProm ? undefined : await startPrometheus({ targets: [`127.0.0.1:${promPort}`], scrapeIntervalMillis: 1000 });
    cleanups.push(() => prom?.stop());
    const one = await runServing("one", 3, ["--prometheus", `127.0.0.1:${promPort}`, "--prometheus-linger", "15s"]);
    const s = one.report.jobs[0].serving!;
    expect(s.engine).toBe("vllm");
    expect(s.models.map((m) => m.model).sort()).toEqual(["model-a", "model-b"]);
    expect(s.total.generatedTokens).toBeGreaterThan(0);
    // Per model, energy follows the generated tokens (3:1 here) within each paired interval.
    const a = s.models.find((m) => m.model === "model-a")!;
    const b = s.models.find((m) => m.model === "model-b")!;
    expect(a.generatedTokens).toBe(3 * b.generatedTokens!);
    expect(s.total.energyJoules).toBeCloseTo(one.report.jobs[0].energyJoules.total, 9);
    expect(a.energyJoules + b.energyJoules).toBeCloseTo(s.total.energyJoules, 9);

    // The summary: the serving line as the formatter writes it from the report's figures.
    expect(one.stderr).toContain(fitted(servingSummaryLine(s)));
    expect(one.stderr).toMatch(/serving {5}[\d.]+ [mµ]?J\/token · [\d.]+ [mµn]?g CO2e\/1k tokens · [\d.]+ [mµ]?J\/request · idle [\d.]+% · /);

    // The CSV: the serving columns hold the report's numbers exactly.
    const rows = parse(readFileSync(one.paths.csv, "utf8"), { columns: true }) as Record<string, string>[];
    expect(rows).toHaveLength(1);
    const expected = servingCsvColumns(s);
    for (const col of SERVING_CSV_COLUMNS) {
      const v = expected[col];
      if (typeof v === "number") expect(Number(rows[0][col]), col).toBe(v);
      else expect(rows[0][col], col).toBe(v);
    }

    // The HTML: the serving table's cells, and the J/token chart with a line per serving job.
    const html = readFileSync(one.paths.html, "utf8");
    const section = html.slice(html.indexOf("<h2>Serving</h2>"));
    const table = section.slice(0, section.indexOf("</table>"));
    const cells = [...table.matchAll(/<tr>((?:<td>.*?<\/td>)+)<\/tr>/g)].map((m) => [...m[1].matchAll(/<td>(.*?)<\/td>/g)].map((c) => c[1].replace(/&amp;/g, "&")));
    expect(cells).toEqual(servingTableRows(one.report.jobs));

    // The idle share, one figure in three places: the report model's (idle / energy, checked by
    // hand), as the summary line, the HTML table's job row and the CSV column show it.
    expect(s.total.idleEnergyShare).toBeGreaterThan(0);
    expect(s.total.idleEnergyShare).toBeCloseTo(s.total.idleEnergyJoules / s.total.energyJoules, 12);
    const shown = one.stderr.match(/^serving .* · idle ([\d.]+%) · /m)![1];
    const totalRow = cells.find((c) => c[1] === "all models")!;
    expect(totalRow[SERVING_TABLE_HEADER.indexOf("idle share")]).toBe(shown);
    expect(`${formatPlain(100 * Number(rows[0].serving_idle_energy_share))}%`).toBe(shown);
    expect(Number(rows[0].serving_idle_energy_share)).toBe(s.total.idleEnergyShare);
    expect(shown).toBe(`${formatPlain(100 * s.total.idleEnergyShare!)}%`);
    // Counts in the summary and the HTML: the shared count format (grouped, never rounded).
    expect(one.stderr).toContain(`${formatCount(s.total.generatedTokens!)} tokens out`);
    expect(totalRow[SERVING_TABLE_HEADER.indexOf("generated tokens")]).toBe(formatCount(s.total.generatedTokens!));
    expect(html).toMatch(/<svg data-chart="serving-joules-per-token"[^>]*>.*<path class="series" data-name="llm-replicas"/s);
    const series = one.report.timeSeries!.servingCumulative!["llm-replicas"];
    expect(series.generatedTokens.at(-1)).toBe(s.total.generatedTokens);
    expect(series.energyJoules.at(-1)).toBeCloseTo(s.total.energyJoules, 9);

    // Prometheus (scraping --prometheus): the docs' per-model ratio over the whole run = the report's.
    if (prom) {
      const q =
        'sum by (gen_ai_request_model) (last_over_time(powerprint_job_serving_energy_total[10m])) / sum by (gen_ai_request_model) (last_over_time(powerprint_job_serving_tokens_total{gen_ai_token_type="output"}[10m]))';
      const got = await waitFor("Prometheus's last scrape of the final totals", async () => {
        const rows = await prom.query(q);
        const byModel = new Map(rows.map((r) => [r.metric.gen_ai_request_model, r.value]));
        return s.models.every((m) => Math.abs((byModel.get(m.model) ?? 0) - m.joulesPerGeneratedToken!) <= 1e-9 * m.joulesPerGeneratedToken!) ? byModel : undefined;
      }, 60_000);
      for (const m of s.models) expect(got.get(m.model)).toBeCloseTo(m.joulesPerGeneratedToken!, 9);
    }

    // A second replica of the same job (same --job-id): `powerprint report` sums, recomputes ratios.
    const two = await runServing("two", 1, []);
    const s2 = two.report.jobs[0].serving!;
    const merged = join(dir, "merged.json");
    const r = await runCli(["report", one.paths.report, two.paths.report, "--json", merged]);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(merged)).toBe(true);
    const m = (JSON.parse(readFileSync(merged, "utf8")) as ReportV1).jobs[0].serving!;
    expect(m.total.generatedTokens).toBe(s.total.generatedTokens! + s2.total.generatedTokens!);
    expect(m.total.requests).toBe(s.total.requests! + s2.total.requests!);
    expect(m.total.energyJoules).toBeCloseTo(s.total.energyJoules + s2.total.energyJoules, 9);
    expect(m.total.joulesPerGeneratedToken).toBeCloseTo((s.total.energyJoules + s2.total.energyJoules) / (s.total.generatedTokens! + s2.total.generatedTokens!), 12);
    for (const model of ["model-a", "model-b"]) {
      const [x, y, z] = [s, s2, m].map((t) => t.models.find((q) => q.model === model)!);
      expect(z.generatedTokens).toBe(x.generatedTokens! + y.generatedTokens!);
      expect(z.joulesPerGeneratedToken).toBeCloseTo((x.energyJoules + y.energyJoules) / (x.generatedTokens! + y.generatedTokens!), 12);
      expect(z.emissionsGramsPerThousandTokens).toBeCloseTo((1000 * (x.emissionsGrams + y.emissionsGrams)) / (x.generatedTokens! + y.generatedTokens!), 12);
    }
    expect(r.stdout).toContain(fitted(servingSummaryLine(m)));
    expect(m.total.idleEnergyShare).toBeCloseTo((s.total.idleEnergyJoules + s2.total.idleEnergyJoules) / (s.total.energyJoules + s2.total.energyJoules), 12);

    // A report written before idleEnergyShare existed: `powerprint report` computes it the same way.
    const old = JSON.parse(readFileSync(one.paths.report, "utf8")) as ReportV1;
    for (const f of [old.jobs[0].serving!.total, ...old.jobs[0].serving!.models]) delete (f as Partial<typeof f>).idleEnergyShare;
    const oldFile = join(dir, "before-share.json");
    writeFileSync(oldFile, JSON.stringify(old));
    const again = await runCli(["report", oldFile]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain(` · idle ${formatPlain(100 * s.total.idleEnergyShare!)}% · `);
  });
});
