/**
 * PodMetadataCache: pod metadata refreshed in the background (an unref'd timer), read by the tick
 * without waiting. A failed refresh keeps the last good pods and is said once per kind of failure
 * (one line); a later success says it recovered. A pod the tick sees but the cache does not know
 * (created since the last refresh) can ask for an early refresh, rate-limited.
 */
import type { Logger } from "../core/contracts.js";
import type { FetchPodsResult } from "./client.js";
import type { PodMetadata, PodMetadataLookup } from "./pods.js";

/** Options of PodMetadataCache. */
export interface PodMetadataCacheOptions {
  /** One fetch of the pod list (fetchPods bound to its options). */
  fetch: () => Promise<FetchPodsResult>;
  log: Logger;
  /** Period of background refreshes, ms. Default 30 000. */
  intervalMillis?: number;
  /** Earliest an early refresh (requestRefresh) may follow the previous one, ms. Default 2000. */
  minIntervalMillis?: number;
  /** Clock, ms. Default Date.now. */
  nowMillis?: () => number;
  /** Where the pods come from, for messages ("kubelet", "API server"). Default "kubelet". */
  sourceName?: string;
}

export class PodMetadataCache implements PodMetadataLookup {
  private pods = new Map<string, PodMetadata>();
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<FetchPodsResult> | undefined;
  private lastStartMillis = -Infinity;
  private failing = false;
  /** UIDs that asked for an early refresh → successful refreshes done when they asked. */
  private readonly asked = new Map<string, number>();
  /** The last fetch's outcome (undefined before the first). */
  last: FetchPodsResult | undefined;
  /** Successful and failed refreshes so far. */
  readonly stats = { ok: 0, failed: 0 };

  constructor(private readonly o: PodMetadataCacheOptions) {}

  /** Starts refreshing: once now, then every intervalMillis. Returns the first refresh. */
  start(): Promise<FetchPodsResult> {
    if (!this.timer) {
      this.timer = setInterval(() => void this.refresh(), this.o.intervalMillis ?? 30_000);
      this.timer.unref();
    }
    return this.refresh();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One refresh now (joins one in flight). Never throws. */
  refresh(): Promise<FetchPodsResult> {
    if (this.inFlight) return this.inFlight;
    this.lastStartMillis = (this.o.nowMillis ?? Date.now)();
    this.inFlight = this.o
      .fetch()
      .catch((err: unknown): FetchPodsResult => ({ status: "error", reason: String(err) }))
      .then((r) => {
        this.inFlight = undefined;
        this.apply(r);
        return r;
      });
    return this.inFlight;
  }

  /**
   * Asks for an early refresh because `uid` was seen and is not known; fire-and-forget. Rate-limited,
   * never while the source is failing (the regular interval retries then), and once per UID: a UID
   * still unknown after a refresh that followed its request (a leftover cgroup of a deleted pod) does
   * not ask again.
   */
  requestRefresh(uid?: string): void {
    if (this.failing) return;
    if (uid !== undefined) {
      const asked = this.asked.get(uid);
      if (asked !== undefined && this.stats.ok > asked) return;
      if (asked === undefined) {
        if (this.asked.size >= 10_000) this.asked.clear(); // bounded: worst case a few extra refreshes
        this.asked.set(uid, this.stats.ok);
      }
    }
    const now = (this.o.nowMillis ?? Date.now)();
    if (this.inFlight || now - this.lastStartMillis < (this.o.minIntervalMillis ?? 2000)) return;
    void this.refresh();
  }

  byUid(uid: string): PodMetadata | undefined {
    return this.pods.get(uid);
  }

  /** Every pod of the last good refresh. */
  all(): PodMetadata[] {
    return [...this.pods.values()];
  }

  /**
   * Pods by UID. A UID listed twice (a kubelet or proxy bug: UIDs are unique by design) keeps its
   * first pod and is said once per UID, naming both; never silently the last.
   */
  private byUidOnce(pods: readonly PodMetadata[], source: string): Map<string, PodMetadata> {
    const out = new Map<string, PodMetadata>();
    for (const p of pods) {
      const first = out.get(p.uid);
      if (!first) out.set(p.uid, p);
      else this.o.log.warnOnce(`k8s:duplicate-uid:${p.uid}`, `the ${source} lists pod UID ${p.uid} twice (${first.namespace}/${first.name} and ${p.namespace}/${p.name}): the first is used`);
    }
    return out;
  }

  private apply(r: FetchPodsResult): void {
    this.last = r;
    const source = this.o.sourceName ?? "kubelet";
    if (r.status === "ok") {
      this.stats.ok++;
      this.pods = this.byUidOnce(r.pods, source);
      for (const uid of this.asked.keys()) if (this.pods.has(uid)) this.asked.delete(uid);
      if (this.failing) this.o.log.info(`pod metadata from the ${source} is back (${r.pods.length} pods)`);
      this.failing = false;
      return;
    }
    this.stats.failed++;
    this.failing = true;
    const kind = r.httpStatus !== undefined ? `http-${r.httpStatus}` : r.reason.replace(/[0-9]+/g, "N").slice(0, 60);
    this.o.log.warnOnce(
      `k8s:${source}:${kind}`,
      `pod metadata from the ${source} unavailable: ${r.reason}; pods keep ${this.pods.size > 0 ? "their last known names" : "their UIDs as names"}, retrying every ${Math.round((this.o.intervalMillis ?? 30_000) / 1000)} s`,
    );
  }
}
