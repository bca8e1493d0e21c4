/**
 * Per-job figures read back from each output of powerprint (the JSON report, the CSV, the HTML's
 * DOM, the summary, Prometheus, OTLP in VictoriaMetrics), and a comparison of two such readings
 * field by field (test/cli/every-path.test.ts). Reading is the test's own code: it never calls the
 * formatters or the model under test to parse.
 */
import { parse } from "csv-parse/sync";
import type { ReportV1 } from "../../exporters/report-json.js";

type ByKind = { cpu: number; gpu: number; memory: number; total: number };

/** One phase as an output shows it (fields an output lacks are left out). */
export interface PhaseFigures {
  energyJoules?: number;
  emissionsGrams?: number;
  durationSeconds?: number;
  samples?: number | null;
  tokens?: number | null;
  steps?: number | null;
  joulesPerSample?: number | null;
}

/** One job as an output shows it (fields an output lacks are left out). */
export interface JobFigures {
  energyJoules?: Partial<ByKind>;
  facilityEnergyJoules?: number;
  emissionsGrams?: number;
  waterLiters?: number;
  cost?: number;
  cpuSeconds?: number;
  durationSeconds?: number;
  averagePowerWatts?: Partial<ByKind>;
  samples?: number | null;
  tokens?: number | null;
  steps?: number | null;
  joulesPerSample?: number | null;
  joulesPerToken?: number | null;
  emissionsGramsPerMillionTokens?: number | null;
  attributes?: Record<string, string>;
  phases?: Record<string, PhaseFigures>;
}

export type Figures = Map<string, JobFigures>;

/** Every per-job figure of a JSON report. */
export function fromReport(r: ReportV1): Figures {
  const out: Figures = new Map();
  for (const j of r.jobs) {
    out.set(j.id, {
      energyJoules: { ...j.energyJoules },
      facilityEnergyJoules: j.facilityEnergyJoules,
      emissionsGrams: j.emissionsGrams,
      waterLiters: j.waterLiters,
      cost: j.cost,
      cpuSeconds: j.cpuSeconds,
      durationSeconds: j.durationSeconds,
      averagePowerWatts: j.averagePowerWatts ? { ...j.averagePowerWatts } : undefined,
      samples: j.samples ?? null,
      tokens: j.tokens ?? null,
      steps: j.steps ?? null,
      joulesPerSample: j.joulesPerSample ?? null,
      joulesPerToken: j.joulesPerToken ?? null,
      emissionsGramsPerMillionTokens: j.emissionsGramsPerMillionTokens ?? null,
      attributes: { ...j.attributes },
      phases: Object.fromEntries(
        (j.phases ?? []).map((p) => [
          p.name,
          { energyJoules: p.energyJoules, emissionsGrams: p.emissionsGrams, durationSeconds: p.durationSeconds, samples: p.samples, tokens: p.tokens, steps: p.steps, joulesPerSample: p.joulesPerSample },
        ]),
      ),
    });
  }
  return out;
}

const J_PER_KWH = 3_600_000;
const num = (s: string | undefined): number | null => (s === undefined || s === "" ? null : Number(s));

/** The CSV's rows (CodeCarbon's units: kWh, kg, W, s) back in the report's units. */
export function fromCsv(text: string): Figures {
  const rows = parse(text, { columns: true }) as Record<string, string>[];
  const out: Figures = new Map();
  for (const row of rows) {
    out.set(row.run_id, {
      energyJoules: { cpu: Number(row.cpu_energy) * J_PER_KWH, gpu: Number(row.gpu_energy) * J_PER_KWH, memory: Number(row.ram_energy) * J_PER_KWH, total: Number(row.energy_consumed) * J_PER_KWH },
      facilityEnergyJoules: Number(row.facility_energy_kwh) * J_PER_KWH,
      emissionsGrams: Number(row.emissions) * 1000,
      waterLiters: Number(row.water_l),
      cost: Number(row.cost),
      cpuSeconds: Number(row.cpu_seconds),
      durationSeconds: Number(row.duration),
      averagePowerWatts: { cpu: Number(row.cpu_power), gpu: Number(row.gpu_power), memory: Number(row.ram_power) },
      samples: num(row.samples),
      tokens: num(row.tokens),
      steps: num(row.steps),
      joulesPerSample: num(row.joules_per_sample),
      joulesPerToken: num(row.joules_per_token),
      emissionsGramsPerMillionTokens: num(row.g_co2e_per_million_tokens),
      attributes: Object.fromEntries(row.tags.split(";").filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)])),
    });
  }
  return out;
}

/** A Prometheus text exposition: `name{labels} value` samples. */
export function promSamples(text: string): { name: string; labels: Record<string, string>; value: number }[] {
  const out: { name: string; labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([A-Za-z_]\w*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2].replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

/** Metric samples as a receiver gives them: name, labels, value. */
export interface MetricSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * Per-job figures from metric samples, named as `--prometheus` names them (`powerprint_job_energy_total`,
 * label `powerprint_job_id`) or as VictoriaMetrics names OTLP by default (`powerprint.job.energy`,
 * label `powerprint.job.id`): energy by kind, facility energy, emissions, water, CPU time, the
 * counters and the energy per phase; the power gauge (last interval) as `averagePowerWatts` (the
 * scenario's loads are constant, so the last interval's power is the average).
 */
export function fromMetrics(samples: readonly MetricSample[], naming: "prometheus" | "otel"): Figures {
  const n = naming === "prometheus" ? (otel: string, suffix = "_total") => `${otel.replace(/\./g, "_")}${suffix}` : (otel: string) => otel;
  const jobLabel = naming === "prometheus" ? "powerprint_job_id" : "powerprint.job.id";
  const typeLabel = naming === "prometheus" ? "hw_type" : "hw.type";
  const phaseLabel = naming === "prometheus" ? "powerprint_phase" : "powerprint.phase";
  const out: Figures = new Map();
  const job = (id: string) => {
    let j = out.get(id);
    if (!j) out.set(id, (j = { energyJoules: {}, averagePowerWatts: {}, phases: {} }));
    return j;
  };
  for (const s of samples) {
    const id = s.labels[jobLabel];
    if (id === undefined) continue;
    const j = job(id);
    const kind = s.labels[typeLabel] as keyof ByKind | undefined;
    if (s.name === n("powerprint.job.energy") && kind) j.energyJoules![kind] = s.value;
    else if (s.name === n("powerprint.job.power", "") && kind) j.averagePowerWatts![kind] = s.value;
    else if (s.name === n("powerprint.job.facility.energy")) j.facilityEnergyJoules = s.value;
    else if (s.name === n("powerprint.job.emissions")) j.emissionsGrams = s.value;
    else if (s.name === n("powerprint.job.water")) j.waterLiters = s.value;
    else if (s.name === n("powerprint.job.cpu.time")) j.cpuSeconds = s.value;
    else if (s.name === n("powerprint.job.samples")) j.samples = s.value;
    else if (s.name === n("powerprint.job.tokens")) j.tokens = s.value;
    else if (s.name === n("powerprint.job.steps")) j.steps = s.value;
    else if (s.name === n("powerprint.job.phase.energy")) j.phases![s.labels[phaseLabel]] = { energyJoules: s.value };
    if (j.attributes === undefined) j.attributes = {};
    // The job's tags: every label but the metric's name and powerprint's, the resource's and the scope's own.
    for (const [k, v] of Object.entries(s.labels)) if (!k.startsWith("__") && !/^(powerprint|hw|host|service|telemetry|otel|job|instance|process)\b/.test(k.replace(/_/g, "."))) j.attributes[k] = v;
  }
  return out;
}

/** How two readings may differ: relative (floats that went through a format or a receiver) or exact. */
export interface Tolerance {
  /** Relative difference allowed for floats (default 1e-9: float rounding). */
  relative?: number;
  /** Per field path (e.g. "averagePowerWatts.cpu"): its own relative tolerance. */
  fields?: Record<string, number>;
}

/**
 * Mismatches between `expected` and `actual`: every field `actual` has (an output shows only some
 * figures) must equal `expected`'s, floats to the tolerance, counts and text exactly. `only`: the
 * jobs to compare (default: every job of `expected`, each of which `actual` must have).
 */
export function compareFigures(expected: Figures, actual: Figures, t: Tolerance = {}, only?: readonly string[]): string[] {
  const out: string[] = [];
  const rel = t.relative ?? 1e-9;
  const close = (path: string, a: number, b: number) => {
    const tol = t.fields?.[path] ?? rel;
    return Math.abs(a - b) <= tol * Math.max(Math.abs(a), Math.abs(b)) + 1e-12;
  };
  const countField = /(^|\.)(samples|tokens|steps)$/;
  const walk = (path: string, field: string, e: unknown, a: unknown) => {
    if (a === undefined) return;
    if (e === undefined) {
      out.push(`${path}: not in the reference, ${JSON.stringify(a)} here`);
      return;
    }
    if (typeof a === "number" && typeof e === "number") {
      if (countField.test(field)) {
        // Counts are whole numbers: equal, not close.
        if (!Number.isInteger(a) || a !== e) out.push(`${path}: ${e} expected, ${a} here (a count)`);
      } else if (!close(field.replace(/^phases\.[^.]+\./, "phases.*."), e, a)) out.push(`${path}: ${e} expected, ${a} here`);
      return;
    }
    if (a === null || e === null || typeof a !== "object" || typeof e !== "object") {
      if (a !== e) out.push(`${path}: ${JSON.stringify(e)} expected, ${JSON.stringify(a)} here`);
      return;
    }
    for (const k of Object.keys(a)) walk(`${path}.${k}`, field ? `${field}.${k}` : k, (e as Record<string, unknown>)[k], (a as Record<string, unknown>)[k]);
  };
  for (const id of only ?? [...expected.keys()]) {
    const e = expected.get(id);
    const a = actual.get(id);
    if (!e) out.push(`${id}: not in the reference`);
    else if (!a) out.push(`${id}: missing here`);
    else walk(id, "", e, a);
  }
  return out;
}

const SI: Record<string, number> = { "": 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, m: 1e-3, µ: 1e-6, n: 1e-9, p: 1e-12 };
/** Each displayed unit in the report's base unit (J, g, s, W, L). */
const BASE: Record<string, [string, number]> = { Wh: ["J", 3600], J: ["J", 1], W: ["W", 1], g: ["g", 1], t: ["g", 1e6], L: ["L", 1], s: ["s", 1], min: ["s", 60], h: ["s", 3600], d: ["s", 86_400] };

/**
 * A quantity as people read it ("935 mWh", "2.90 min", "8,192", "37.5%") in the report's base unit
 * (J, g, s, W, L; a count as is; a percentage as a fraction). Parsed here, independently of the
 * formatters that wrote it.
 */
export function parseDisplayed(text: string): number {
  const t = text.trim();
  if (/^-?\d{1,3}(,\d{3})+$|^-?\d+$/.test(t)) return Number(t.replace(/,/g, ""));
  const pct = /^(-?[\d.]+)%$/.exec(t);
  if (pct) return Number(pct[1]) / 100;
  const m = /^(-?[\d.]+) (min|h|d|[kMGTPmµnp]?(?:Wh|J|W|g|t|L|s))$/.exec(t);
  if (!m) throw new Error(`not a displayed quantity: '${text}'`);
  const unit = m[2];
  if (BASE[unit]) return Number(m[1]) * BASE[unit][1];
  const prefix = unit.length > 1 && SI[unit[0]] !== undefined && BASE[unit.slice(1)] ? unit[0] : "";
  return Number(m[1]) * SI[prefix] * BASE[unit.slice(prefix.length)][1];
}

/** Relative difference a 3-significant-digit display allows (half a unit of the third digit, at worst 0.5 %). */
export const DISPLAY_TOLERANCE = 0.005;

/**
 * The summary's per-job figures: each `job` line (IT energy, CO2e, average power, duration, CPU
 * time), the `work` and `per unit` lines, and the phase table of the first job with phases.
 */
export function fromSummary(text: string): Figures {
  const lines = text.split("\n");
  const out: Figures = new Map();
  const job = (id: string) => {
    let j = out.get(id);
    if (!j) out.set(id, (j = {}));
    return j;
  };
  const q = "(\\S+ \\S+)";
  const jobLine = new RegExp(`^job (\\S+)(?: \\(.*?\\))?(?: FAILED \\(exit \\d+\\))?: ${q} IT, ${q} CO2e · ${q} over ${q} · ${q} CPU$`);
  for (const l of lines) {
    const m = jobLine.exec(l);
    // A job line this reader cannot read would make the comparison vacuous: say so.
    if (!m && l.startsWith("job ")) throw new Error(`a job line not read: ${l}`);
    if (m) {
      Object.assign(job(m[1]), {
        energyJoules: { total: parseDisplayed(m[2]) },
        emissionsGrams: parseDisplayed(m[3]),
        averagePowerWatts: { total: parseDisplayed(m[4]) },
        durationSeconds: parseDisplayed(m[5]),
        cpuSeconds: parseDisplayed(m[6]),
      });
    }
  }
  const only = out.size === 1 ? [...out.keys()][0] : undefined;
  const target = (rest: string): [JobFigures, string] => {
    const m = /^(\S+): (.*)$/.exec(rest);
    if (m && out.has(m[1])) return [job(m[1]), m[2]];
    return [job(only ?? "?"), rest];
  };
  for (const l of lines) {
    if (l.startsWith("work ")) {
      const [j, rest] = target(l.slice(12));
      const counts = [...rest.matchAll(/([\d,]+) +(samples|tokens|steps)/g)];
      if (counts.length === 0) throw new Error(`a work line without counts: ${l}`);
      for (const m of counts) j[m[2] as "samples" | "tokens" | "steps"] = parseDisplayed(m[1]);
    } else if (l.startsWith("per unit ")) {
      const [j, rest] = target(l.slice(12));
      const sample = /(\S+ \S*J)\/sample/.exec(rest);
      const token = /(\S+ \S*J)\/token/.exec(rest);
      const million = /(\S+ \S*g) CO2e per million tokens/.exec(rest);
      if (sample) j.joulesPerSample = parseDisplayed(sample[1]);
      if (token) j.joulesPerToken = parseDisplayed(token[1]);
      if (million) j.emissionsGramsPerMillionTokens = parseDisplayed(million[1]);
    }
  }
  // The phase table: columns at the header's positions.
  const head = lines.findIndex((l) => /^(phase|phases of \S+) +energy/.test(l));
  if (head >= 0) {
    const header = lines[head];
    const id = /^phases of (\S+)/.exec(header)?.[1] ?? only ?? "?";
    const columns = [...header.matchAll(/(energy|share|CO2e|time|samples|per sample)/g)].map((m) => ({ name: m[1], at: m.index! }));
    const phases: Record<string, PhaseFigures> = {};
    for (const l of lines.slice(head + 1)) {
      if (!l.startsWith("  ") || l.startsWith("  …")) break;
      const name = l.slice(2, columns[0].at).trim();
      const cell = (i: number) => l.slice(columns[i].at, columns[i + 1]?.at ?? l.length).trim();
      const p: PhaseFigures = {};
      columns.forEach((c, i) => {
        const v = cell(i);
        if (v === "") return;
        if (c.name === "energy") p.energyJoules = parseDisplayed(v);
        else if (c.name === "CO2e") p.emissionsGrams = parseDisplayed(v);
        else if (c.name === "time") p.durationSeconds = parseDisplayed(v);
        else if (c.name === "samples") p.samples = parseDisplayed(v);
        else if (c.name === "per sample") p.joulesPerSample = parseDisplayed(v);
      });
      phases[name] = p;
    }
    job(id).phases = phases;
  }
  out.delete("?");
  return out;
}

/** A table read from the DOM: its header cells and its rows' cells (text). */
export interface DomTable {
  head: string[];
  rows: string[][];
}

/** The HTML's jobs and phases tables as per-job figures (cells parsed as people read them). */
export function fromHtmlTables(jobs: DomTable, phases?: DomTable): Figures {
  const out: Figures = new Map();
  const cellOf = (t: DomTable, row: string[], name: string) => row[t.head.indexOf(name)];
  const value = (text: string | undefined) => (text === undefined || text === "" ? undefined : parseDisplayed(text));
  for (const row of jobs.rows) {
    const c = (name: string) => cellOf(jobs, row, name);
    const perUnit = c("per unit");
    out.set(c("job"), {
      energyJoules: { total: value(c("IT energy")) },
      facilityEnergyJoules: value(c("facility")),
      emissionsGrams: value(c("CO2e")),
      durationSeconds: value(c("duration")),
      averagePowerWatts: { total: value(c("avg power")) },
      cpuSeconds: value(c("CPU")),
      ...(perUnit?.endsWith("/sample") ? { joulesPerSample: value(perUnit.slice(0, -"/sample".length)) } : {}),
      attributes: Object.fromEntries(c("tags").split(" ").filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)])),
      phases: {},
    });
  }
  for (const row of phases?.rows ?? []) {
    const c = (name: string) => cellOf(phases!, row, name);
    const j = out.get(c("job"));
    if (!j) continue;
    const count = (name: string) => (c(name) === "" ? undefined : parseDisplayed(c(name)));
    j.phases![c("phase")] = {
      energyJoules: value(c("IT energy")),
      emissionsGrams: value(c("CO2e")),
      durationSeconds: value(c("time")),
      samples: count("samples"),
      tokens: count("tokens"),
      steps: count("steps"),
      joulesPerSample: value(c("per sample")),
    };
  }
  return out;
}
