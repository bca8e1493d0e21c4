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
  /** Forgotten jobs not seen alive since: not reported at all. */
  private readonly hidden = new Set<string>();
  private last = new Map<string, number>();

  constructor(world: SimWorld, nowMillis: () => number) {
    this.inner = new SimProcessSource(world, nowMillis);
  }

  addJob(): void {}

  forget(jobId: string): void {
    this.forgotten.set(jobId, this.last.get(jobId) ?? 0);
    this.hidden.add(jobId);
  }

  sample(): ProcessSample {
    const s = this.inner.sample();
    this.last = new Map(s.jobCpuSeconds);
    const jobs = new Map<string, DiscoveredJob>();
    for (const [id, cpu] of [...s.jobCpuSeconds]) {
      const count = s.jobProcessCount.get(id) ?? 0;
      if (this.hidden.has(id) && count > 0) this.hidden.delete(id);
      // A job is known once one of its processes has started (until then it is no one's), and
      // not at all while it is dropped and not back.
      if (this.hidden.has(id) || (count === 0 && cpu === 0)) {
        s.jobCpuSeconds.delete(id);
        s.jobProcessCount.delete(id);
        continue;
      }
      s.jobCpuSeconds.set(id, cpu - (this.forgotten.get(id) ?? 0));
      s.jobProcessCount.set(id, count);
      jobs.set(id, { id, name: id, attributes: {} });
    }
    return { ...s, jobs };
  }

  jobEnvironment(): Record<string, string> {
    return {};
  }
}
