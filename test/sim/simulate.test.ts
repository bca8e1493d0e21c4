import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { simulate } from "../../src/sim/simulate.js";
import { validateScenario } from "../../src/sim/scenario.js";
import { createStderrLogger } from "../../src/log.js";

const dir = join(import.meta.dirname, "..", "fixtures", "scenarios");
const load = (name: string): any => {
  const text = readFileSync(join(dir, name), "utf8");
  return name.endsWith(".yaml") ? parseYaml(text) : JSON.parse(text);
};

// ---- An independent model of DESIGN.md, integrated numerically with a fine step. ----
function at(series: number[][] | undefined, t: number): number {
  if (!series || series.length === 0) return 0;
  if (t <= series[0][0]) return series[0][1];
  for (let i = 1; i < series.length; i++) {
    if (t <= series[i][0]) {
      const [t0, v0] = series[i - 1];
      const [t1, v1] = series[i];
      return t1 === t0 ? v1 : v0 + ((v1 - v0) * (t - t0)) / (t1 - t0);
    }
  }
  return series[series.length - 1][1];
}

function expected(s: any, policy: "attribute" | "separate", stepSeconds = 0.005) {
  const procs: any[] = s.processes ?? [];
  const jobOf = (p: any): string => {
    let cur = p;
    for (let i = 0; i < 100 && cur; i++) {
      if (cur.job) return cur.job;
      cur = procs.find((q) => q.pid === cur.ppid);
    }
    return "system";
  };
  const alive = (p: any, t: number) => t >= (p.startSeconds ?? 0) && (p.endSeconds === undefined || t < p.endSeconds);
  const cores = s.devices.filter((d: any) => d.kind === "cpu").reduce((a: number, d: any) => a + d.cores, 0);
  const energy: Record<string, number> = {};
  const emissions: Record<string, number> = {};
  const deviceEnergy: Record<string, number> = {};
  const add = (k: string, j: number, g: number) => {
    energy[k] = (energy[k] ?? 0) + j;
    emissions[k] = (emissions[k] ?? 0) + g;
  };
  const pue = s.pue ?? 1;
  for (let t0 = 0; t0 < s.durationSeconds; t0 += stepSeconds) {
    const dt = Math.min(stepSeconds, s.durationSeconds - t0);
    const t = t0 + dt / 2;
    const intensity = at(s.grid?.intensity, t);
    const busy: Record<string, number> = {};
    let busyAll = 0;
    for (const p of procs) {
      if (!alive(p, t) || !p.cpu) continue;
      const c = at(p.cpu, t);
      busy[jobOf(p)] = (busy[jobOf(p)] ?? 0) + c;
      busyAll += c;
    }
    for (const d of s.devices) {
      const split: Record<string, number> = {};
      let u: number;
      if (d.kind === "gpu") {
        const share: Record<string, number> = {};
        u = 0;
        for (const p of procs) {
          if (!p.gpu?.[d.id] || !alive(p, t)) continue;
          const v = at(p.gpu[d.id], t);
          share[jobOf(p)] = (share[jobOf(p)] ?? 0) + v;
          u += v;
        }
        const P = d.idleWatts + (d.maxWatts - d.idleWatts) * Math.min(1, u);
        const residents = Object.keys(share);
        if (residents.length === 0) split.idle = P * dt;
        else {
          for (const r of residents) split[r] = (split[r] ?? 0) + (u > 0 ? ((P - d.idleWatts) * share[r]) / u : (P - d.idleWatts) / residents.length) * dt;
          if (policy === "separate") split.idle = (split.idle ?? 0) + d.idleWatts * dt;
          else for (const r of residents) split[r] += (d.idleWatts / residents.length) * dt;
        }
        deviceEnergy[d.id] = (deviceEnergy[d.id] ?? 0) + P * dt;
      } else {
        u = cores > 0 ? busyAll / cores : 0;
        const P = d.idleWatts + (d.maxWatts - d.idleWatts) * Math.min(1, u);
        if (busyAll <= 0) split.idle = P * dt;
        else
          for (const [k, b] of Object.entries(busy)) {
            split[k] = (split[k] ?? 0) + ((P - d.idleWatts) * b) / busyAll * dt;
            if (policy === "separate") split.idle = (split.idle ?? 0) + (d.idleWatts * b) / busyAll * dt;
            else split[k] += (d.idleWatts * b) / busyAll * dt;
          }
        deviceEnergy[d.id] = (deviceEnergy[d.id] ?? 0) + P * dt;
      }
      for (const [k, j] of Object.entries(split)) add(k, j, ((j * pue) / 3.6e6) * intensity);
    }
  }
  return { energy, emissions, deviceEnergy };
}

const log = createStderrLogger({ write: () => {} });
const cases: [string, "attribute" | "separate"][] = [
  ["design-example.json", "attribute"],
  ["design-example.json", "separate"],
  ["shared-gpu-two-jobs.json", "attribute"],
  ["saturated-power-only.json", "attribute"],
  ["forks-and-exits.yaml", "attribute"],
];

describe("simulate: energy matches an independent integral, and conservation holds", () => {
  for (const [file, policy] of cases) {
    it(`${file} (--idle-policy ${policy})`, async () => {
      const raw = load(file);
      const scenario = validateScenario(raw);
      const result = await simulate(scenario, {
        idlePolicy: policy,
        ledger: { pue: 1 },
        intensity: { at: async () => ({ intensityGramsPerKwh: 0, zone: "none", source: "fixed" }) },
        log,
      });
      const exp = expected(raw, policy);
      const s = result.snapshot;
      const got: Record<string, number> = { system: s.buckets.system.energyJoules.total, idle: s.buckets.idle.energyJoules.total };
      for (const j of s.jobs) got[j.id] = j.energyJoules.total;
      for (const [k, e] of Object.entries(exp.energy)) {
        if (e < 1) continue;
        expect(Math.abs(got[k] - e) / e, `${k}: got ${got[k]} J, expected ${e} J`).toBeLessThan(0.005);
      }
      for (const d of s.devices) {
        const e = exp.deviceEnergy[d.id];
        expect(Math.abs(d.energyJoules - e) / e, `device ${d.id}`).toBeLessThan(0.005);
      }
      // Conservation: jobs + system + idle = sum of device energy.
      const attributed = [...s.jobs, s.buckets.system, s.buckets.idle].reduce((a, t) => a + t.energyJoules.total, 0);
      const devices = s.devices.reduce((a, d) => a + d.energyJoules, 0);
      expect(Math.abs(attributed - devices) / devices).toBeLessThan(1e-9);
      // Emissions: each interval multiplied by its own intensity.
      if (raw.grid?.intensity) {
        for (const j of s.jobs) {
          const e = exp.emissions[j.id];
          expect(Math.abs(j.emissionsGrams - e) / e, `emissions ${j.id}`).toBeLessThan(0.005);
        }
      }
    });
  }

  it("is deterministic", async () => {
    const scenario = validateScenario(load("design-example.json"));
    const opts = { idlePolicy: "attribute" as const, ledger: { pue: 1 }, intensity: { at: async () => ({ intensityGramsPerKwh: 1, zone: "x", source: "fixed" }) }, log };
    const a = await simulate(scenario, opts);
    const b = await simulate(scenario, opts);
    expect(JSON.stringify(a.snapshot)).toBe(JSON.stringify(b.snapshot));
  });

  it("uses the scenario's PUE unless a flag gives one", async () => {
    const scenario = validateScenario(load("design-example.json"));
    const base = { idlePolicy: "attribute" as const, intensity: { at: async () => ({ intensityGramsPerKwh: 1, zone: "x", source: "fixed" }) }, log };
    const a = await simulate(scenario, { ...base, ledger: { pue: 1 } });
    expect(a.pue).toBe(1.2);
    const job = a.snapshot.jobs.find((j) => j.id === "train-a")!;
    expect(job.facilityEnergyJoules).toBeCloseTo(job.energyJoules.total * 1.2, 6);
    const b = await simulate(scenario, { ...base, ledger: { pue: 1.5 }, pueFromFlag: true });
    expect(b.pue).toBe(1.5);
  });
});
