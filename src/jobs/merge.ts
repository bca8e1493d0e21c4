/**
 * The one merge of a real process sample with a scenario's simulated one (`run --sim`, and
 * `agent --sim` with an explicit --mode): the real jobs' CPU seconds are added to the simulated
 * host's busy and total CPU, as if they ran on extra cores of the simulated host (the simulated
 * devices' power follows the scenario only; the real jobs take their CPU-time share of its energy).
 * The simulated sample's maps are updated in place and returned.
 */
import type { DiscoveredJob, ProcessSample } from "../core/contracts.js";

/** Merges `real` into `sim` (either may be absent; with neither, an empty sample). */
export function mergeSamples(real: ProcessSample | undefined, sim: ProcessSample | undefined): ProcessSample {
  if (!sim) return real ?? emptySample();
  if (!real) return sim;
  let realJobsCpuSeconds = 0;
  for (const [job, cpu] of real.jobCpuSeconds) {
    sim.jobCpuSeconds.set(job, cpu);
    realJobsCpuSeconds += cpu;
  }
  for (const [pid, job] of real.members) sim.members.set(pid, job);
  for (const [job, n] of real.jobProcessCount) sim.jobProcessCount.set(job, n);
  sim.hostBusyCpuSeconds += realJobsCpuSeconds;
  sim.hostTotalCpuSeconds += realJobsCpuSeconds;
  if (sim.jobs || real.jobs) {
    const jobs = new Map<string, DiscoveredJob>(sim.jobs ?? []);
    for (const [id, j] of real.jobs ?? []) jobs.set(id, j);
    return { ...sim, jobs };
  }
  return sim;
}

/** A sample of nothing (no source at all). */
export function emptySample(): ProcessSample {
  return { jobCpuSeconds: new Map(), hostBusyCpuSeconds: 0, hostTotalCpuSeconds: 0, members: new Map(), jobProcessCount: new Map() };
}
