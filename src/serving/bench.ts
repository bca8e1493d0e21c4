/**
 * The figures of `powerprint bench-serving`, computed once here from the requests' records and
 * the run's snapshots; the table, JSON and HTML only format them (exporters/bench-serving.ts).
 */
import type { LedgerSnapshot } from "../core/types.js";
import { percentile, windowWork, type RequestRecord } from "./load.js";

/** One concurrency level. Window figures are null when the window held fewer than two samples. */
export interface BenchLevel {
  concurrency: number;
  /** Measured requests sent, and those that failed (HTTP error, timeout). */
  requests: number;
  failedRequests: number;
  /** Generated and prompt tokens of all measured requests (their `usage`). */
  generatedTokens: number;
  promptTokens: number;
  /** Latency of the successful measured requests, ms. */
  latencyP50Millis: number | null;
  latencyP95Millis: number | null;
  /** The steady-state window: from the first sample at full concurrency to the last before the drain (wall clock, epoch ms). */
  windowStartMillis: number | null;
  windowEndMillis: number | null;
  windowSeconds: number | null;
  /** The server's IT energy and operational emissions in the window (as `run` measures a job). */
  windowEnergyJoules: number | null;
  windowEmissionsGrams: number | null;
  /** Generated tokens and requests inside the window (each request pro rata of its time inside: an estimate). */
  windowGeneratedTokens: number | null;
  windowRequests: number | null;
  generatedTokensPerSecond: number | null;
  requestsPerSecond: number | null;
  meanPowerWatts: number | null;
  joulesPerGeneratedToken: number | null;
  joulesPerRequest: number | null;
  emissionsGramsPerThousandTokens: number | null;
  /** Why figures are missing, when they are. */
  note?: string;
}

/** A whole benchmark. */
export interface BenchResult {
  base: string;
  model: string | null;
  maxTokens: number;
  requestsPerLevel: number;
  intervalMillis: number;
  /** The server's average power while idle before the load, watts. */
  idlePowerWatts: number | null;
  levels: BenchLevel[];
}

const ratio = (a: number, b: number): number | null => (b > 0 ? a / b : null);
const jobOf = (s: LedgerSnapshot) => s.jobs[0];

/**
 * One level's figures: `records` of its measured requests, the run's snapshots, and when the load
 * reached full concurrency and when it began to drain (wall clock, ms).
 */
export function benchLevel(concurrency: number, records: readonly RequestRecord[], snapshots: readonly LedgerSnapshot[], saturatedMillis: number, drainingMillis: number): BenchLevel {
  const ok = records.filter((r) => r.ok);
  const latencies = ok.map((r) => r.endMillis - r.startMillis);
  const base = {
    concurrency,
    requests: records.length,
    failedRequests: records.length - ok.length,
    generatedTokens: ok.reduce((a, r) => a + r.generatedTokens, 0),
    promptTokens: ok.reduce((a, r) => a + r.promptTokens, 0),
    latencyP50Millis: percentile(latencies, 50) ?? null,
    latencyP95Millis: percentile(latencies, 95) ?? null,
  };
  const inWindow = snapshots.filter((s) => s.timeMillis >= saturatedMillis && s.timeMillis <= drainingMillis && jobOf(s));
  const first = inWindow[0];
  const last = inWindow[inWindow.length - 1];
  if (!first || !last || last.timeMillis <= first.timeMillis) {
    return {
      ...base,
      windowStartMillis: null,
      windowEndMillis: null,
      windowSeconds: null,
      windowEnergyJoules: null,
      windowEmissionsGrams: null,
      windowGeneratedTokens: null,
      windowRequests: null,
      generatedTokensPerSecond: null,
      requestsPerSecond: null,
      meanPowerWatts: null,
      joulesPerGeneratedToken: null,
      joulesPerRequest: null,
      emissionsGramsPerThousandTokens: null,
      note: "the steady load lasted less than two samples: raise --requests or lower --interval",
    };
  }
  const seconds = (last.timeMillis - first.timeMillis) / 1000;
  const energy = jobOf(last).energyJoules.total - jobOf(first).energyJoules.total;
  const emissions = jobOf(last).emissionsGrams - jobOf(first).emissionsGrams;
  const work = windowWork(records, first.timeMillis, last.timeMillis);
  const perToken = ratio(emissions, work.generatedTokens);
  return {
    ...base,
    windowStartMillis: first.timeMillis,
    windowEndMillis: last.timeMillis,
    windowSeconds: seconds,
    windowEnergyJoules: energy,
    windowEmissionsGrams: emissions,
    windowGeneratedTokens: work.generatedTokens,
    windowRequests: work.requests,
    generatedTokensPerSecond: work.generatedTokens / seconds,
    requestsPerSecond: work.requests / seconds,
    meanPowerWatts: energy / seconds,
    joulesPerGeneratedToken: ratio(energy, work.generatedTokens),
    joulesPerRequest: ratio(energy, work.requests),
    emissionsGramsPerThousandTokens: perToken === null ? null : perToken * 1000,
  };
}
