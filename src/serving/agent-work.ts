/**
 * `agent --work-from` in pod and selector modes: which discovered job the endpoint's work belongs
 * to, over the job's life. One endpoint measures one server:
 * - pod mode: the pod's job (the sidecar's pod; `--work-from http://127.0.0.1:PORT/metrics`, the
 *   containers of a pod share its network).
 * - selector mode: the job that went live most recently (a restarted server is a new process: its
 *   job, or the same job back when the selector's identity is stable, takes the endpoint); said
 *   once when it moves.
 * A job that finishes stops being scraped (its figures stay). Counting: jobs live at the agent's
 * first sample take their first reading as the baseline (what the server did before the agent is
 * not counted); a job that goes live later (started, or restarted, under the agent) counts its
 * server's counters from zero, so a server killed and started again loses nothing and counts
 * nothing twice.
 */
import type { Logger } from "../core/contracts.js";
import type { WorkConfig } from "./flags.js";
import { WorkSource, type ServingLedger } from "./source.js";

export interface AgentWorkOptions {
  ledger: ServingLedger & { finishedAt(id: string): number | undefined };
  log: Logger;
  config: WorkConfig;
  /** Deadline of one scrape, ms. */
  timeoutMillis: number;
  /** pod mode: the only job the endpoint can belong to. */
  jobId?: string;
  fetch?: typeof fetch;
}

/** See the module comment. */
export class AgentWork {
  private readonly work: WorkSource;
  private attached: string | undefined;
  private polls = 0;

  constructor(private readonly o: AgentWorkOptions) {
    this.work = new WorkSource({ ledger: o.ledger, log: o.log, engines: o.config.engines, timeoutMillis: o.timeoutMillis, countFromZero: false, fetch: o.fetch });
  }

  /** A job went live (first seen with a process, or back after it finished). */
  live(jobId: string): void {
    if (this.o.jobId !== undefined && jobId !== this.o.jobId) return;
    if (this.attached === jobId) return;
    if (this.attached !== undefined) {
      this.o.log.info(`work from ${this.o.config.url.href}: now counted for job ${jobId} (went live after ${this.attached})`);
      this.work.detach(this.attached);
    }
    // Live at the first sample: a server already running (baseline); later: started under the agent.
    this.work.attach(jobId, this.o.config.url, { countFromZero: this.polls > 1 });
    this.attached = jobId;
  }

  /** At the start of each tick. */
  poll(): void {
    this.polls++;
    if (this.attached !== undefined && this.o.ledger.finishedAt(this.attached) !== undefined) {
      this.work.detach(this.attached);
      this.attached = undefined;
    }
    this.work.poll();
  }

  /** The job the endpoint's work goes to now. */
  get job(): string | undefined {
    return this.attached;
  }

  get scraping(): boolean {
    return this.work.scraping;
  }

  close(): void {
    this.work.close();
  }
}
