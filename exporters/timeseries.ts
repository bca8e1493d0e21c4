/**
 * A downsampled time series of a run, for the HTML report's charts and the JSON report's
 * `timeSeries`: power per device and per job, grid intensity, cumulative energy and emissions.
 *
 * It is an Exporter that reads ledger snapshots (update() after every tick), so the run only adds
 * it to its exporters. Its size is bounded: when it holds more than `maxPoints` points it merges
 * adjacent pairs (time-weighted averages for power and intensity, the later value for cumulative
 * figures), so a 30-day run at 1 s ticks (2.6 million ticks) still ends with at most `maxPoints`
 * points, each spanning about 30 days / maxPoints.
 */
import type { Exporter } from "../src/core/contracts.js";
import type { LedgerSnapshot } from "../src/core/types.js";
import { millisToSeconds } from "../src/units.js";

/** Default bound on the number of points (a 30-day run: one point per ~22 min at most). */
export const DEFAULT_MAX_POINTS = 2000;

/** Columnar series: index i of every array is the same point. */
export interface TimeSeries {
  /** Number of points (length of every array). */
  pointCount: number;
  maxPoints: number;
  /** End of each point since the start of the run, seconds. */
  endSeconds: number[];
  /** Span each point covers, seconds (points merge as the run grows: spans differ). */
  spanSeconds: number[];
  /** Average power per device over each point, watts (from the devices' per-interval power). */
  devicePowerWatts: Record<string, number[]>;
  /** Average power attributed to each job (IT, all device kinds) over each point, watts. */
  jobPowerWatts: Record<string, number[]>;
  /** Average grid intensity over each point, gCO2e/kWh (points start with the first recorded interval). */
  intensityGramsPerKwh: number[];
  /** Cumulative IT energy of the whole host (jobs + system + idle) at the end of each point, joules. */
  cumulativeEnergyJoules: number[];
  /** Cumulative facility energy (× PUE) at the end of each point, joules. */
  cumulativeFacilityEnergyJoules: number[];
  /** Cumulative operational emissions at the end of each point, grams CO2e. */
  cumulativeEmissionsGrams: number[];
  /**
   * Per job, the ledger's own cumulative totals at the end of each point (a job not yet seen: 0; a
   * job gone from the snapshots: its last value), so differences of consecutive points are the
   * job's exact figures per point and sum to its totals (planning profiles, Impact Framework
   * observations). Absent in reports written before it was added.
   */
  jobCumulative?: Record<string, JobCumulativeSeries>;
  /** Per job measured with --work-from (docs/serving.md): its serving figures per point. */
  servingCumulative?: Record<string, ServingSeries>;
}

/** One serving job's figures per point (TimeSeries.servingCumulative). */
export interface ServingSeries {
  /** Generated tokens counted so far, at the end of each point. */
  generatedTokens: number[];
  /** The serving account's energy so far (= the job's IT energy), joules. */
  energyJoules: number[];
  /** Of which idle (no request in flight, no work counted), joules. */
  idleEnergyJoules: number[];
  /** J per generated token within each point (its energy / its tokens); null for a point without tokens. */
  joulesPerGeneratedToken: (number | null)[];
}

/** One job's cumulative totals per point (see TimeSeries.jobCumulative). */
export interface JobCumulativeSeries {
  /** IT energy by device kind, joules. */
  cpuEnergyJoules: number[];
  gpuEnergyJoules: number[];
  memoryEnergyJoules: number[];
  /** Facility energy (IT × PUE), joules. */
  facilityEnergyJoules: number[];
  /** Operational emissions (each interval at its own intensity), grams CO2e. */
  emissionsGrams: number[];
}

/** cpu, gpu, memory, facility joules and emissions grams of one job at a point. */
type JobPoint = [number, number, number, number, number];


interface Point {
  endMillis: number;
  spanMillis: number;
  device: Map<string, number>;
  job: Map<string, number>;
  intensity: number;
  energy: number;
  facility: number;
  emissions: number;
  /** Cumulative figures of the jobs in the snapshot (JobPoint). */
  jobTotals: Map<string, JobPoint>;
  /** Serving jobs: generated tokens, energy, idle energy so far. */
  serving: Map<string, [number, number, number]>;
}

/** Exporter that records a bounded, downsampled time series from ledger snapshots. */
export class TimeSeriesRecorder implements Exporter {
  readonly id = "timeseries";
  private points: Point[] = [];
  private startMillis?: number;
  private lastMillis?: number;

  constructor(private readonly maxPoints = DEFAULT_MAX_POINTS) {
    if (!Number.isInteger(maxPoints) || maxPoints < 2) throw new RangeError("maxPoints must be an integer >= 2");
  }

  update(s: LedgerSnapshot): void {
    this.startMillis ??= s.startMillis;
    const previous = this.lastMillis ?? s.startMillis;
    // A snapshot that adds no time (the first tick, or a repeated final one) carries no interval.
    if (s.timeMillis <= previous) return;
    this.lastMillis = s.timeMillis;
    // Nor does one taken before the ledger recorded any interval (the devices' first readings are
    // baselines): a point for it would be a zero nothing measured, the head of every chart. The
    // first real point spans from that snapshot.
    if (!s.grid) return;
    const all = [...s.jobs, s.buckets.system, s.buckets.idle];
    this.points.push({
      endMillis: s.timeMillis,
      spanMillis: s.timeMillis - previous,
      device: new Map(s.devices.map((d) => [d.id, d.lastPowerWatts])),
      job: new Map(s.jobs.map((j) => [j.id, j.lastPowerWatts.total])),
      intensity: s.grid?.intensityGramsPerKwh ?? 0,
      energy: all.reduce((a, t) => a + t.energyJoules.total, 0),
      facility: all.reduce((a, t) => a + t.facilityEnergyJoules, 0),
      emissions: all.reduce((a, t) => a + t.emissionsGrams, 0),
      jobTotals: new Map(s.jobs.map((j) => [j.id, [j.energyJoules.cpu, j.energyJoules.gpu, j.energyJoules.memory, j.facilityEnergyJoules, j.emissionsGrams]])),
      serving: new Map(s.jobs.flatMap((j) => (j.serving ? [[j.id, [j.serving.total.generatedTokens ?? 0, j.serving.total.energyJoules, j.serving.total.idleEnergyJoules]] as [string, [number, number, number]]] : []))),
    });
    if (this.points.length > this.maxPoints) this.halve();
  }

  async shutdown(final: LedgerSnapshot): Promise<void> {
    this.update(final);
  }

  /** The series so far (a copy). */
  series(): TimeSeries {
    const deviceIds = [...new Set(this.points.flatMap((p) => [...p.device.keys()]))];
    const jobIds = [...new Set(this.points.flatMap((p) => [...p.job.keys()]))];
    const start = this.startMillis ?? 0;
    return {
      pointCount: this.points.length,
      maxPoints: this.maxPoints,
      endSeconds: this.points.map((p) => millisToSeconds(p.endMillis - start)),
      spanSeconds: this.points.map((p) => millisToSeconds(p.spanMillis)),
      devicePowerWatts: Object.fromEntries(deviceIds.map((id) => [id, this.points.map((p) => p.device.get(id) ?? 0)])),
      jobPowerWatts: Object.fromEntries(jobIds.map((id) => [id, this.points.map((p) => p.job.get(id) ?? 0)])),
      intensityGramsPerKwh: this.points.map((p) => p.intensity),
      cumulativeEnergyJoules: this.points.map((p) => p.energy),
      cumulativeFacilityEnergyJoules: this.points.map((p) => p.facility),
      cumulativeEmissionsGrams: this.points.map((p) => p.emissions),
      jobCumulative: Object.fromEntries(jobIds.map((id) => [id, this.jobCumulative(id)])),
      ...this.servingSeries(),
    };
  }

  /** Serving jobs' figures per point, held at their last value; J/token within each point. */
  private servingSeries(): Pick<TimeSeries, "servingCumulative"> {
    const ids = [...new Set(this.points.flatMap((p) => [...p.serving.keys()]))];
    if (ids.length === 0) return {};
    const one = (id: string): ServingSeries => {
      let held: [number, number, number] = [0, 0, 0];
      const rows = this.points.map((p) => (held = p.serving.get(id) ?? held));
      return {
        generatedTokens: rows.map((r) => r[0]),
        energyJoules: rows.map((r) => r[1]),
        idleEnergyJoules: rows.map((r) => r[2]),
        joulesPerGeneratedToken: rows.map((r, i) => {
          const tokens = r[0] - (i > 0 ? rows[i - 1][0] : 0);
          return tokens > 0 ? (r[1] - (i > 0 ? rows[i - 1][1] : 0)) / tokens : null;
        }),
      };
    };
    return { servingCumulative: Object.fromEntries(ids.map((id) => [id, one(id)])) };
  }

  /** One job's cumulative columns, held at its last value after it left the snapshots. */
  private jobCumulative(id: string): JobCumulativeSeries {
    let held: JobPoint = [0, 0, 0, 0, 0];
    const rows = this.points.map((p) => (held = p.jobTotals.get(id) ?? held));
    const column = (k: number) => rows.map((r) => r[k]);
    return { cpuEnergyJoules: column(0), gpuEnergyJoules: column(1), memoryEnergyJoules: column(2), facilityEnergyJoules: column(3), emissionsGrams: column(4) };
  }

  /** Merges adjacent pairs: the count halves, so merging costs O(1) per update amortised. */
  private halve(): void {
    const merged: Point[] = [];
    for (let i = 0; i < this.points.length; i += 2) {
      const a = this.points[i];
      const b = this.points[i + 1];
      merged.push(b ? mergePoints(a, b) : a);
    }
    this.points = merged;
  }
}

/** Time-weighted average of gauges; cumulative figures are the later point's. */
function mergePoints(a: Point, b: Point): Point {
  const span = a.spanMillis + b.spanMillis;
  const avg = (x: number, y: number) => (x * a.spanMillis + y * b.spanMillis) / span;
  const mergeMap = (x: Map<string, number>, y: Map<string, number>) =>
    new Map([...new Set([...x.keys(), ...y.keys()])].map((k) => [k, avg(x.get(k) ?? 0, y.get(k) ?? 0)]));
  return {
    endMillis: b.endMillis,
    spanMillis: span,
    device: mergeMap(a.device, b.device),
    job: mergeMap(a.job, b.job),
    intensity: avg(a.intensity, b.intensity),
    energy: b.energy,
    facility: b.facility,
    emissions: b.emissions,
    // Cumulative: the later point's, keeping a job the later snapshot no longer has.
    jobTotals: new Map([...a.jobTotals, ...b.jobTotals]),
    serving: new Map([...a.serving, ...b.serving]),
  };
}
