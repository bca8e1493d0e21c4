/**
 * A job's measured energy profile: the facility energy it used in each interval of a past run,
 * from the JSON report's time series (`timeSeries.jobCumulative`, the ledger's own cumulative
 * totals per point, so the profile sums to the job's facility energy exactly). Pure functions.
 *
 * Caveats: the report's series is downsampled (at most ~2,000 points), so the profile's resolution
 * is the run's duration / 2,000 at best; a report written before `jobCumulative` existed gives the
 * job's average power × span × PUE per point (said in `method`); a report without a series gives a
 * flat profile over its duration (said too).
 */
import type { ReportV1 } from "../../exporters/report-schema.js";

/** One interval of a profile: where it starts from the job's start, how long it lasts, its facility energy. */
export interface ProfileSegment {
  offsetSeconds: number;
  durationSeconds: number;
  facilityEnergyJoules: number;
}

/** A job's energy over time, from its start. Segments are contiguous and ordered. */
export interface JobProfile {
  segments: ProfileSegment[];
  durationSeconds: number;
  facilityEnergyJoules: number;
  /** How the figures were obtained, one short phrase. */
  method: string;
  /** What it was taken from (report files, job ids). */
  source: string;
}

/** Most segments a profile keeps (the report series' own bound); adjacent pairs merge beyond it. */
export const MAX_PROFILE_SEGMENTS = 2000;

const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);

/** A flat profile: `facilityEnergyJoules` spread evenly over `durationSeconds` (one segment). */
export function flatProfile(durationSeconds: number, facilityEnergyJoules: number, source = "flat"): JobProfile {
  return {
    segments: [{ offsetSeconds: 0, durationSeconds, facilityEnergyJoules }],
    durationSeconds,
    facilityEnergyJoules,
    method: "flat (constant power)",
    source,
  };
}

/** Per-point facility energy of the chosen jobs from the report's series, and how it was obtained. */
function pointEnergies(report: ReportV1, jobIds: readonly string[]): { joules: number[]; method: string } | undefined {
  const t = report.timeSeries;
  if (!t || t.pointCount === 0) return undefined;
  if (t.jobCumulative && jobIds.every((id) => t.jobCumulative![id])) {
    const joules = t.endSeconds.map((_, i) =>
      sum(jobIds.map((id) => {
        const c = t.jobCumulative![id].facilityEnergyJoules;
        return c[i] - (i > 0 ? c[i - 1] : 0);
      })),
    );
    return { joules, method: "measured: the ledger's facility energy per report point" };
  }
  const pue = report.pue.value;
  const joules = t.endSeconds.map((_, i) => sum(jobIds.map((id) => (t.jobPowerWatts[id]?.[i] ?? 0) * t.spanSeconds[i] * pue)));
  return { joules, method: "measured: the job's average power per report point × span × PUE (report without per-job cumulative series)" };
}

/**
 * The profile of `jobId` (default: every job of the report together) in a report: one segment per
 * point of its time series, leading and trailing points without energy dropped (the job's own
 * start and end). Without a series: flat over the report's duration, said in `method`.
 * Throws RangeError naming an unknown job (the caller turns it into a usage error).
 */
export function profileFromReport(report: ReportV1, file: string, jobId?: string): JobProfile {
  const jobs = jobId === undefined ? report.jobs : report.jobs.filter((j) => j.id === jobId);
  if (jobs.length === 0) {
    throw new RangeError(jobId === undefined ? `${file} has no job` : `${file} has no job '${jobId}' (it has ${report.jobs.map((j) => j.id).join(", ") || "none"})`);
  }
  const ids = jobs.map((j) => j.id);
  const source = `${file} (${ids.join("+")})`;
  const facility = sum(jobs.map((j) => j.facilityEnergyJoules));
  const points = pointEnergies(report, ids);
  if (!points) {
    return { ...flatProfile(report.durationSeconds, facility, source), method: "flat over the run: the report has no time series" };
  }
  const t = report.timeSeries!;
  let segments = t.endSeconds.map((end, i) => ({ offsetSeconds: end - t.spanSeconds[i], durationSeconds: t.spanSeconds[i], facilityEnergyJoules: points.joules[i] }));
  const first = segments.findIndex((s) => s.facilityEnergyJoules > 0);
  let last = segments.length - 1;
  while (last > first && !(segments[last].facilityEnergyJoules > 0)) last--;
  if (first < 0) return { ...flatProfile(report.durationSeconds, 0, source), method: "no energy recorded for the job" };
  segments = segments.slice(first, last + 1);
  const origin = segments[0].offsetSeconds;
  segments = segments.map((s) => ({ ...s, offsetSeconds: s.offsetSeconds - origin }));
  const end = segments[segments.length - 1];
  return {
    segments: capSegments(segments),
    durationSeconds: end.offsetSeconds + end.durationSeconds,
    facilityEnergyJoules: sum(segments.map((s) => s.facilityEnergyJoules)),
    method: points.method,
    source,
  };
}

/** Merges adjacent pairs until at most `max` segments remain (energy and time conserved). */
export function capSegments(segments: ProfileSegment[], max = MAX_PROFILE_SEGMENTS): ProfileSegment[] {
  let out = segments;
  while (out.length > max) {
    const merged: ProfileSegment[] = [];
    for (let i = 0; i < out.length; i += 2) {
      const a = out[i];
      const b = out[i + 1];
      merged.push(b ? { offsetSeconds: a.offsetSeconds, durationSeconds: b.offsetSeconds + b.durationSeconds - a.offsetSeconds, facilityEnergyJoules: a.facilityEnergyJoules + b.facilityEnergyJoules } : a);
    }
    out = merged;
  }
  return out;
}

/** Energy of `p` inside [fromSeconds, toSeconds) of its own timeline, power taken constant within a segment. */
function energyBetween(p: JobProfile, fromSeconds: number, toSeconds: number, cursor: { i: number }): number {
  let joules = 0;
  while (cursor.i < p.segments.length) {
    const s = p.segments[cursor.i];
    const end = s.offsetSeconds + s.durationSeconds;
    const overlap = Math.min(end, toSeconds) - Math.max(s.offsetSeconds, fromSeconds);
    if (overlap > 0 && s.durationSeconds > 0) joules += (s.facilityEnergyJoules * overlap) / s.durationSeconds;
    if (end > toSeconds) break;
    cursor.i++;
  }
  return joules;
}

/**
 * The mean profile of several runs (a sweep): on the union of their segment boundaries, each
 * interval's energy is the mean over the runs (a run that ended counts 0), so the mean's total is
 * the mean of the totals and its duration the longest run's.
 */
export function meanProfile(profiles: readonly JobProfile[]): JobProfile {
  if (profiles.length === 1) return profiles[0];
  const cuts = [...new Set(profiles.flatMap((p) => [0, ...p.segments.map((s) => s.offsetSeconds + s.durationSeconds)]))].sort((a, b) => a - b);
  const cursors = profiles.map(() => ({ i: 0 }));
  const segments: ProfileSegment[] = [];
  for (let k = 1; k < cuts.length; k++) {
    const joules = sum(profiles.map((p, i) => energyBetween(p, cuts[k - 1], cuts[k], cursors[i])));
    segments.push({ offsetSeconds: cuts[k - 1], durationSeconds: cuts[k] - cuts[k - 1], facilityEnergyJoules: joules / profiles.length });
  }
  return {
    segments: capSegments(segments),
    durationSeconds: cuts[cuts.length - 1],
    facilityEnergyJoules: sum(profiles.map((p) => p.facilityEnergyJoules)) / profiles.length,
    method: `mean of ${profiles.length} runs (${[...new Set(profiles.map((p) => p.method))].join("; ")})`,
    source: profiles.map((p) => p.source).join(", "),
  };
}
