// --csv: CodeCarbon's emissions.csv columns first (names, order, units), powerprint's after;
// appending keeps rows and header; a foreign header is refused; RFC 4180 quoting round-trips with
// LF line ends (a multi-line command is one field of one record); cpu_count is logical CPUs.
import { describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "csv-parse/sync";
import { runCli } from "../helpers/cli.js";
import { reportSchemaV1 } from "../../exporters/report-schema.js";
import { appendCsv, CSV_COLUMNS, csvRows } from "../../exporters/report-csv.js";
import { normalizeReport } from "../../src/cli/report-merge.js";

const scenario = join(import.meta.dirname, "..", "fixtures", "scenarios", "design-example.json");

/**
 * CodeCarbon's EmissionsData fields in declaration order, copied by hand from
 * mlco2/codecarbon codecarbon/output_methods/emissions_data.py at commit
 * 118873936dadf2608ae4d2af9862fcca4c2fe3d6 (not imported from the code under test).
 */
const CODECARBON = (
  "timestamp,project_name,run_id,experiment_id,duration,emissions,emissions_rate,cpu_power,gpu_power,ram_power," +
  "cpu_energy,gpu_energy,ram_energy,energy_consumed,country_name,country_iso_code,region,cloud_provider,cloud_region," +
  "os,python_version,codecarbon_version,cpu_count,cpu_model,gpu_count,gpu_model,longitude,latitude,ram_total_size," +
  "tracking_mode,on_cloud,pue"
).split(",");

const rowsOf = (file: string) => parse(readFileSync(file, "utf8"), { columns: true }) as Record<string, string>[];

describe("--csv (CodeCarbon-compatible rows)", () => {
  it("a simulated run: CodeCarbon's header first; values in kg, kWh, W, s; appending keeps rows and header", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pp-csv-"));
    const csv = join(dir, "emissions.csv");
    const report = join(dir, "r.json");
    const r = await runCli(["simulate", scenario, "--csv", csv, "--report", report, "-q"]);
    expect(r.code, r.stderr).toBe(0);
    const header = readFileSync(csv, "utf8").split("\n")[0].split(",");
    expect(header.slice(0, CODECARBON.length)).toEqual(CODECARBON);
    expect(header).toContain("facility_energy_kwh");
    const rep = reportSchemaV1.parse(JSON.parse(readFileSync(report, "utf8")));
    const job = rep.jobs.find((j) => j.id === "train-a")!;
    const row = rowsOf(csv).find((x) => x.run_id === "train-a")!;
    // Hand check: kWh = J / 3.6e6, kg = g / 1000, W = J / s, s = the job's duration (here the scenario's).
    expect(Number(row.duration)).toBe(600);
    expect(job.durationSeconds).toBe(600);
    expect(Number(row.energy_consumed)).toBeCloseTo(job.energyJoules.total / 3.6e6, 12);
    expect(Number(row.cpu_energy)).toBeCloseTo(job.energyJoules.cpu / 3.6e6, 12);
    expect(Number(row.gpu_energy)).toBeCloseTo(job.energyJoules.gpu / 3.6e6, 12);
    expect(Number(row.emissions)).toBeCloseTo(job.emissionsGrams / 1000, 12);
    expect(Number(row.emissions_rate)).toBeCloseTo(job.emissionsGrams / 1000 / 600, 14);
    expect(Number(row.gpu_power)).toBeCloseTo(job.energyJoules.gpu / 600, 9);
    expect(Number(row.pue)).toBe(1.2);
    expect(Number(row.facility_energy_kwh)).toBeCloseTo(job.facilityEnergyJoules / 3.6e6, 12);
    expect(row.gpu_model).toBe("1 x NVIDIA H100 80GB HBM3");
    expect(row.cpu_count).toBe("96"); // logical CPUs: the simulated host's cores (one 96-core EPYC)
    expect(row.intensity_source).toBe("scenario");
    const first = readFileSync(csv, "utf8");

    const again = await runCli(["simulate", scenario, "--csv", csv, "-q"]);
    expect(again.code, again.stderr).toBe(0);
    const text = readFileSync(csv, "utf8");
    expect(text.startsWith(first)).toBe(true); // old rows untouched
    expect(text.split("\n").filter((l) => l.startsWith("timestamp,"))).toHaveLength(1); // one header
    expect(text).not.toContain("\r"); // LF line ends, as CodeCarbon writes on Linux
    expect(rowsOf(csv)).toHaveLength(2 * rep.jobs.length);
    rmSync(dir, { recursive: true, force: true });
  });

  it("refuses a file with another header (exit 2, file unchanged); quotes per RFC 4180", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pp-csv-"));
    const foreign = join(dir, "other.csv");
    writeFileSync(foreign, "a,b,c\r\n1,2,3\r\n");
    const bad = await runCli(["run", "--sim", scenario, "--csv", foreign, "--", "true"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--csv: .*other\.csv' has another header/);
    expect(readFileSync(foreign, "utf8")).toBe("a,b,c\r\n1,2,3\r\n");

    const csv = join(dir, "q.csv");
    const name = 'sweep, "lr=0.1"\nsecond line';
    const ok = await runCli(["run", "--sim", scenario, "--interval", "100ms", "--job-id", "q1", "--job-name", name, "--tag", "experiment=lr-sweep", "--csv", csv, "-q", "--", "true"]);
    expect(ok.code, ok.stderr).toBe(0);
    const raw = readFileSync(csv, "utf8");
    expect(raw).toContain('"sweep, ""lr=0.1""\nsecond line"');
    const row = rowsOf(csv).find((x) => x.run_id === "q1")!;
    expect(row.job_name).toBe(name);
    expect(row.experiment_id).toBe("lr-sweep");
    expect(row.tags).toBe("experiment=lr-sweep");
    rmSync(dir, { recursive: true, force: true });
  });
});

describe("appendCsv at the end of a run", () => {
  it("a header that changed while the job ran: the rows go to FILE.<pid>.csv, the file is untouched", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pp-csv-"));
    const report = join(dir, "r.json");
    const r = await runCli(["simulate", scenario, "--report", report, "-q"]);
    expect(r.code, r.stderr).toBe(0);
    const rep = reportSchemaV1.parse(JSON.parse(readFileSync(report, "utf8")));
    const csv = join(dir, "e.csv");
    writeFileSync(csv, "x,y\r\n1,2\r\n");
    const res = appendCsv(csv, rep);
    expect(res).toMatchObject({ status: "diverted", path: `${csv}.${process.pid}.csv`, rows: rep.jobs.length });
    expect(readFileSync(csv, "utf8")).toBe("x,y\r\n1,2\r\n");
    expect(rowsOf(res.path).map((x) => x.run_id)).toEqual(rep.jobs.map((j) => j.id));
    rmSync(dir, { recursive: true, force: true });
  });

  // A real full filesystem (a 64 KiB tmpfs, root only): the append fails and no half row stays.
  it.skipIf(process.getuid?.() !== 0)("disk full: the append throws and the file keeps only whole rows", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pp-csv-full-"));
    const report = join(dir, "r.json");
    const r = await runCli(["simulate", scenario, "--report", report, "-q"]);
    expect(r.code, r.stderr).toBe(0);
    const rep = reportSchemaV1.parse(JSON.parse(readFileSync(report, "utf8")));
    const mnt = join(dir, "mnt");
    mkdirSync(mnt);
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", mnt]);
    try {
      const csv = join(mnt, "e.csv");
      appendCsv(csv, rep);
      const one = readFileSync(csv, "utf8");
      // Fill the rest of the filesystem, leaving less room than a row.
      const filler = join(mnt, "filler");
      try {
        writeFileSync(filler, Buffer.alloc(64 * 1024));
      } catch {
        /* ENOSPC: filled up to the limit */
      }
      const before = statSync(csv).size;
      let threw = false;
      for (let i = 0; i < 50 && !threw; i++) {
        try {
          appendCsv(csv, rep);
        } catch {
          threw = true;
        }
      }
      expect(threw).toBe(true);
      const text = readFileSync(csv, "utf8");
      expect(text.length).toBeGreaterThanOrEqual(before);
      expect(text.endsWith("\n")).toBe(true);
      expect(text.startsWith(one)).toBe(true);
      const rows = rowsOf(csv);
      for (const row of rows) expect(Object.keys(row)).toHaveLength(CSV_COLUMNS.length);
      expect(rows.every((x) => x.pue === "1.2")).toBe(true);
    } finally {
      execFileSync("umount", [mnt]);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("csvRows: units of work", () => {
  it("counts and per-unit figures are the report model's (J per sample, J per token, g per million tokens); empty without counts", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pp-csv-"));
    const report = join(dir, "r.json");
    expect((await runCli(["simulate", scenario, "--report", report, "-q"])).code).toBe(0);
    const rep = reportSchemaV1.parse(JSON.parse(readFileSync(report, "utf8")));
    const plain = csvRows(rep).find((x) => x.run_id === "train-a")!;
    expect([plain.samples, plain.joules_per_sample, plain.g_co2e_per_million_tokens]).toEqual(["", "", ""]);
    const job = rep.jobs.find((j) => j.id === "train-a")!;
    const phase = (name: string, share: number, samples: number, tokens: number, steps: number) => ({
      name, energyJoules: job.energyJoules.total * share, emissionsGrams: job.emissionsGrams * share, durationSeconds: 600 * share, samples, tokens, steps, joulesPerSample: null, joulesPerToken: null, joulesPerStep: null,
    });
    // Phases as the ledger gives them; the model (normalizeReport → reportJob) derives the job's figures.
    const modelled = normalizeReport({ ...rep, jobs: rep.jobs.map((j) => (j.id === "train-a" ? { ...j, phases: [phase("load", 0.25, 0, 0, 0), phase("train", 0.75, 3000, 6_000_000, 30)] } : j)) });
    const mj = modelled.jobs.find((j) => j.id === "train-a")!;
    const row = csvRows(modelled).find((x) => x.run_id === "train-a")!;
    expect(row.samples).toBe(3000);
    expect(row.steps).toBe(30);
    // The CSV writes the model's figures as they are (no arithmetic of its own) ...
    expect(row.joules_per_sample).toBe(mj.joulesPerSample);
    expect(row.joules_per_token).toBe(mj.joulesPerToken);
    expect(row.g_co2e_per_million_tokens).toBe(mj.emissionsGramsPerMillionTokens);
    // ... and they are right (hand check).
    expect(row.joules_per_sample).toBeCloseTo(job.energyJoules.total / 3000, 12);
    expect(row.joules_per_token).toBeCloseTo(job.energyJoules.total / 6e6, 15);
    expect(row.g_co2e_per_million_tokens).toBeCloseTo(job.emissionsGrams / 6, 12);
    rmSync(dir, { recursive: true, force: true });
  });
});

describe("CSV: one record per job, whatever the command line holds (RFC 4180, LF)", () => {
  it("run --csv around a multi-line `python -c` program: one record per job, the command's newlines inside its field", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pp-csv-"));
    const csv = join(dir, "e.csv");
    // Newlines but no comma or quote: a field that only a CR/LF rule quotes.
    const program = "import sys\nx = 1\nfor i in range(3):\n    x += i\nprint(x)\nsys.exit(0)";
    for (let i = 0; i < 2; i++) {
      const r = await runCli(["run", "--sim", scenario, "--interval", "100ms", "--job-id", `multi-${i}`, "--csv", csv, "-q", "--", "python3", "-c", program]);
      expect(r.code, r.stderr).toBe(0);
    }
    const raw = readFileSync(csv, "utf8");
    expect(raw).not.toContain("\r");
    const records = parse(raw, { relax_column_count: false }) as string[][];
    for (const rec of records) expect(rec).toHaveLength(CSV_COLUMNS.length);
    const rows = rowsOf(csv);
    const mine = rows.filter((x) => x.run_id.startsWith("multi-"));
    expect(mine.map((x) => x.run_id)).toEqual(["multi-0", "multi-1"]);
    // The job name is the command line (cut to its bounded length): its newlines stay inside the one field.
    for (const row of mine) expect(row.job_name).toMatch(/^python3 -c import sys\nx = 1\nfor i in range\(3\):\n/);
    // Each run's rows: its own job and the scenario's job; nothing else.
    expect(rows).toHaveLength(4);
    // Logical CPUs of the host measured: under --sim, the scenario's (one 96-core CPU).
    for (const row of rows) expect(Number(row.cpu_count)).toBe(96);
    rmSync(dir, { recursive: true, force: true });
  });

  it("cpu_count of a run on this machine: its logical CPUs (as CodeCarbon's psutil.cpu_count()), not its CPU packages", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pp-csv-"));
    const csv = join(dir, "e.csv");
    const r = await runCli(["run", "--csv", csv, "-q", "--", "true"]);
    expect(r.code, r.stderr).toBe(0);
    const rows = rowsOf(csv);
    expect(rows).toHaveLength(1);
    expect(Number(rows[0].cpu_count)).toBe(cpus().length);
    rmSync(dir, { recursive: true, force: true });
  });

  it("appending to a file an older powerprint started with CRLF keeps CRLF (one line end per file)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pp-csv-"));
    const report = join(dir, "r.json");
    expect((await runCli(["simulate", scenario, "--report", report, "-q"])).code).toBe(0);
    const rep = reportSchemaV1.parse(JSON.parse(readFileSync(report, "utf8")));
    const csv = join(dir, "old.csv");
    writeFileSync(csv, `${CSV_COLUMNS.join(",")}\r\n`);
    appendCsv(csv, rep);
    const raw = readFileSync(csv, "utf8");
    expect(raw.split("\r\n").length - 1).toBe(1 + rep.jobs.length);
    expect(raw.replace(/\r\n/g, "")).not.toContain("\n");
    expect(rowsOf(csv).map((x) => x.run_id)).toEqual(rep.jobs.map((j) => j.id));
    rmSync(dir, { recursive: true, force: true });
  });
});
