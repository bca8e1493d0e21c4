/**
 * `agent --work-from` (pod and selector modes) and node mode's per-pod `powerprint.io/work-from`
 * annotation: which discovered job an endpoint's work belongs to, over the job's life.
 * - pod mode: the pod's job (the sidecar's pod; `--work-from http://127.0.0.1:PORT/metrics`, the
 *   containers of a pod share its network).
 * - selector mode: the job that went live most recently (a restarted server is a new process: its
 *   job, or the same job back when the selector's identity is stable, takes the endpoint); said
 *   once when it moves.
 * - node mode (`urlOf`): every live job that is one pod whose annotation names an endpoint; pods
 *   whose metadata arrives later are looked at again every few ticks.
 * A job that finishes stops being scraped (its figures stay). Counting: jobs live at the agent's
 * first sample take their first reading as the baseline (what the server did before the agent is
 * not counted); a job that goes live later (started, or restarted, under the agent) counts its
 * server's counters from zero, so a server killed and started again loses nothing and counts
 * nothing twice.
 */
import type { Logger } from "../core/contracts.js";
import { parseWorkFrom, type WorkConfig } from "../config/serving.js";
import { WORK_FROM_ANNOTATION, type PodMetadata, type PodMetadataLookup } from "../k8s/pods.js";
import { WorkSource, type ServingLedger } from "./source.js";

export interface AgentWorkOptions {
  ledger: ServingLedger & { finishedAt(id: string): number | undefined };
  log: Logger;
  /** Deadline of one scrape, ms. */
  timeoutMillis: number;
  /** pod and selector modes: the one endpoint (--work-from, --work-metric). */
  config?: WorkConfig;
  /** pod mode: the only job the endpoint can belong to. */
  jobId?: string;
  /** node mode: each job's endpoint, when it has one (its pod's annotation). */
  urlOf?: (jobId: string) => URL | undefined;
  fetch?: typeof fetch;
}

/** Live jobs without an endpoint yet are looked at again every this many ticks (node mode). */
const RESOLVE_EVERY_TICKS = 10;
/** At most this many such jobs are remembered (node mode; the oldest are forgotten). */
const MAX_UNRESOLVED = 10_000;

/** See the module comment. */
export class AgentWork {
  private readonly work: WorkSource;
  private readonly attached = new Set<string>();
  private readonly unresolved = new Set<string>();
  private polls = 0;

  constructor(private readonly o: AgentWorkOptions) {
    this.work = new WorkSource({ ledger: o.ledger, log: o.log, engines: o.config?.engines, timeoutMillis: o.timeoutMillis, countFromZero: false, fetch: o.fetch });
  }

  /** A job went live (first seen with a process, or back after it finished). */
  live(jobId: string): void {
    if (this.o.urlOf) {
      this.unresolved.add(jobId);
      if (this.unresolved.size > MAX_UNRESOLVED) this.unresolved.delete(this.unresolved.values().next().value as string);
      this.resolve(jobId);
      return;
    }
    if (!this.o.config || (this.o.jobId !== undefined && jobId !== this.o.jobId) || this.attached.has(jobId)) return;
    for (const previous of this.attached) {
      this.o.log.info(`work from ${this.o.config.url.href}: now counted for job ${jobId} (went live after ${previous})`);
      this.work.detach(previous);
    }
    this.attached.clear();
    this.attach(jobId, this.o.config.url);
  }

  /** At the start of each tick. */
  poll(): void {
    this.polls++;
    for (const id of this.attached) {
      if (this.o.ledger.finishedAt(id) === undefined) continue;
      this.work.detach(id);
      this.attached.delete(id);
    }
    if (this.polls % RESOLVE_EVERY_TICKS === 0) {
      for (const id of this.unresolved) {
        if (this.o.ledger.finishedAt(id) !== undefined) this.unresolved.delete(id);
        else this.resolve(id);
      }
    }
    this.work.poll();
  }

  /** Jobs whose endpoint is scraped now. */
  get jobs(): string[] {
    return [...this.attached];
  }

  get scraping(): boolean {
    return this.work.scraping;
  }

  close(): void {
    this.work.close();
  }

  private resolve(jobId: string): void {
    const url = this.o.urlOf?.(jobId);
    if (!url) return;
    this.unresolved.delete(jobId);
    this.attach(jobId, url);
  }

  private attach(jobId: string, url: URL): void {
    // Live at the first sample: a server already running (baseline); later: started under the agent.
    this.work.attach(jobId, url, { countFromZero: this.polls > 1 });
    this.attached.add(jobId);
  }
}

/**
 * Node mode's endpoints: a job's URL from its pod's `powerprint.io/work-from` annotation (a job of
 * several pods, --group-by-label, is said once and not scraped: one endpoint per job). A malformed
 * annotation is said once per pod.
 */
export function nodeWorkUrls(
  source: { podUidsOfJob(jobId: string): string[] },
  pods: PodMetadataLookup,
  log: Logger,
): (jobId: string) => URL | undefined {
  return (jobId) => {
    const uids = source.podUidsOfJob(jobId);
    const annotated = uids.map((u) => pods.byUid(u)).filter((m): m is PodMetadata => m?.workFrom !== undefined);
    if (annotated.length === 0) return undefined;
    if (uids.length > 1) {
      log.warnOnce(`work:group:${jobId}`, `node mode: job ${jobId} groups ${uids.length} pods (--group-by-label): ${WORK_FROM_ANNOTATION} is read for jobs of one pod only, so its servers' work is not counted`);
      return undefined;
    }
    const m = annotated[0];
    const url = workFromAnnotation(m.workFrom!, m.podIp);
    const portOnly = /^:?\d+(\/\S*)?$/.test(m.workFrom!.trim());
    if (!url && !(portOnly && !m.podIp)) {
      log.warnOnce(`work:annotation:${m.uid}`, `pod ${m.namespace}/${m.name}: annotation ${WORK_FROM_ANNOTATION} '${m.workFrom!.slice(0, 100)}' is not an http(s) URL or :PORT[/path]; ignored`);
    }
    return url;
  };
}

/**
 * A pod's `powerprint.io/work-from` annotation as a URL (node mode): a full http(s) URL, or a port
 * with an optional path (`8000`, `:8000`, `:8000/metrics`) on the pod's own IP. undefined when it
 * is neither (the caller says so once), or names only a port and the pod has no IP yet.
 */
export function workFromAnnotation(value: string, podIp: string | undefined): URL | undefined {
  const v = value.trim();
  if (/^https?:\/\//.test(v)) {
    try {
      return parseWorkFrom(v, "annotation");
    } catch {
      return undefined;
    }
  }
  const m = /^:?(\d{1,5})(\/\S*)?$/.exec(v);
  if (!m || Number(m[1]) < 1 || Number(m[1]) > 65535 || !podIp) return undefined;
  const host = podIp.includes(":") ? `[${podIp}]` : podIp;
  try {
    return parseWorkFrom(`http://${host}:${m[1]}${m[2] ?? ""}`, "annotation");
  } catch {
    return undefined;
  }
}
