/**
 * A complete agent mode in one file, registering itself (docs/development.md "An agent mode"):
 * `--mode toy` discovers `--toy-jobs N` jobs whose processes live for `--toy-samples` samples,
 * each using 0.5 × (i + 1) CPU seconds per sample. Importing this file is all it takes: no other
 * file names it.
 */
import type { ProcessSample } from "../../src/core/contracts.js";
import type { DiscoveringSource } from "../../src/agent/lifecycle.js";
import { registerAgentMode, type AgentMode } from "../../src/agent/modes/index.js";
import { UsageError } from "../../src/errors.js";

export interface ToyConfig {
  jobs: number;
  /** Samples each job has a live process for (then it finishes). */
  samples: number;
}

/** The toy's job source: counts its samples (tests wait on it). */
export class ToySource implements DiscoveringSource {
  samples = 0;
  forgotten: string[] = [];
  constructor(private readonly c: ToyConfig) {}

  addJob(): void {}

  jobEnvironment(): Record<string, string> {
    return {};
  }

  forget(jobId: string): void {
    this.forgotten.push(jobId);
  }

  sample(): ProcessSample {
    this.samples++;
    const live = Math.min(this.samples, this.c.samples);
    const s: ProcessSample = { jobs: new Map(), jobCpuSeconds: new Map(), hostBusyCpuSeconds: 0, hostTotalCpuSeconds: 0, members: new Map(), jobProcessCount: new Map() };
    for (let i = 0; i < this.c.jobs; i++) {
      const id = `toy-${i}`;
      (s.jobs as Map<string, { id: string; name: string; attributes: Record<string, string> }>).set(id, { id, name: `toy job ${i}`, attributes: { "toy.index": String(i) } });
      s.jobCpuSeconds.set(id, 0.5 * (i + 1) * live);
      s.jobProcessCount.set(id, this.samples <= this.c.samples ? 1 : 0);
    }
    return s;
  }
}

/** The sources the mode created (the test's handle on them). */
export const toySources: ToySource[] = [];

function count(value: unknown, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 100) throw new UsageError(flag, `must be a whole number from 1 to 100, got '${String(value)}'`);
  return n;
}

export const toyMode: AgentMode<ToyConfig> = {
  name: "toy",
  summary: "counted test jobs",
  flags: [
    { flags: "--toy-jobs <n>", description: "toy mode: how many jobs", default: "1", probe: true },
    { flags: "--toy-samples <n>", description: "toy mode: samples each job lives for", exclusive: true },
  ],
  parse: (flags) => ({ jobs: count(flags.toyJobs, "--toy-jobs"), samples: flags.toySamples === undefined ? 100 : count(flags.toySamples, "--toy-samples") }),
  create(c, ctx) {
    const source = new ToySource(c);
    toySources.push(source);
    ctx.log.info(`toy mode: ${c.jobs} job(s)`);
    return { source };
  },
  probe: (c) => ({ mode: "toy", usable: true, findings: [`${c.jobs} toy job(s) would be found`] }),
};

registerAgentMode(toyMode);
