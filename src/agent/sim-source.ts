/**
 * The scenario's process table as a discovering source (`agent --sim SCENARIO`): each scenario job
 * is known while one of its processes is alive (scenario `startSeconds`/`endSeconds` on the
 * agent's wall clock), so the agent's lifecycle (appear, finish, retention, drop) runs on
 * deterministic simulated jobs.
 */
import type { DiscoveredJob, ProcessSample } from "../core/contracts.js";
import { SimProcessSource, type SimWorld } from "../sim/world.js";
import type { DiscoveringSource } from "./lifecycle.js";

export class SimJobSource implements DiscoveringSource {
  private readonly inner: SimProcessSource;
  /** CPU seconds a forgotten job had reached: reported from there on as zero (it counts anew if it comes back). */
  private readonly forgotten = new Map<string, number>();
  private last = new Map<string, number>();

  constructor(world: SimWorld, nowMillis: () => number) {
    this.inner = new SimProcessSource(world, nowMillis);
  }

  addJob(): void {}

  forget(jobId: string): void {
    this.forgotten.set(jobId, this.last.get(jobId) ?? 0);
  }

  sample(): ProcessSample {
    const s = this.inner.sample();
    this.last = new Map(s.jobCpuSeconds);
    const jobs = new Map<string, DiscoveredJob>();
    for (const [id, cpu] of [...s.jobCpuSeconds]) {
      const count = s.jobProcessCount.get(id) ?? 0;
      const offset = this.forgotten.get(id);
      if (offset !== undefined) {
        if (count === 0) {
          // Dropped and not back: not reported at all.
          s.jobCpuSeconds.delete(id);
          s.jobProcessCount.delete(id);
          continue;
        }
        s.jobCpuSeconds.set(id, cpu - offset);
      }
      s.jobProcessCount.set(id, count);
      // A job is known once one of its processes has started (a later one is not yet anyone's).
      if (count > 0 || cpu > 0) jobs.set(id, { id, name: id, attributes: {} });
      else {
        s.jobCpuSeconds.delete(id);
        s.jobProcessCount.delete(id);
      }
    }
    return { ...s, jobs };
  }

  jobEnvironment(): Record<string, string> {
    return {};
  }
}
