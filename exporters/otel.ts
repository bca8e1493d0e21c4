/**
 * OpenTelemetry metrics from ledger snapshots, and the OTLP exporter (http/protobuf, http/json).
 *
 * Every metric is an asynchronous instrument read from the newest snapshot at collection time:
 * counters report the ledger's cumulative totals (so a later successful export carries the full
 * totals after any number of failed ones, and nothing is buffered), gauges report the last
 * interval. Export failures are counted by kind, warned once per kind, backed off, and never
 * block sampling: update() only stores a reference to the snapshot.
 */
import { randomUUID } from "node:crypto";
import type { Attributes, Meter } from "@opentelemetry/api";
import { ExportResultCode, type ExportResult } from "@opentelemetry/core";
import { OTLPMetricExporter as OTLPJsonMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http";
import { OTLPMetricExporter as OTLPProtoMetricExporter } from "@opentelemetry/exporter-metrics-otlp-proto";
import { defaultResource, resourceFromAttributes, type Resource } from "@opentelemetry/resources";
import {
  AggregationTemporality,
  InstrumentType,
  MeterProvider,
  PeriodicExportingMetricReader,
  type MetricReader,
  type PushMetricExporter,
  type ResourceMetrics,
} from "@opentelemetry/sdk-metrics";
import type { LedgerSnapshot } from "../src/core/types.js";
import { errorMessage } from "../src/errors.js";
import { ATTR, DEFAULT_SERVICE_NAME, METRIC, RESOURCE_ATTR } from "../src/semconv.js";
import type { SelfMetrics } from "../src/core/self-metrics.js";
import { Collection, OBSERVERS } from "./observations.js";
import type { Exporter, Logger } from "../src/core/contracts.js";
import type { OtlpConfig } from "./config.js";

// Pure configuration pieces live in config.ts, so option parsing never loads the OTel SDK.
export type { OtlpConfig, OtlpProtocol, TemporalityPreference } from "./config.js";

export { METER_NAME } from "./observations.js";
import { METER_NAME } from "./observations.js";


// ---------------------------------------------------------------------------------------------
// Failure accounting (shared by all exporters of one run, exported as powerprint.export.failures)

/** Export failures by exporter and kind. Bounded: one counter per distinct (exporter, kind). */
export class FailureTracker {
  private readonly byKey = new Map<string, { exporter: string; kind: string; count: number }>();

  /** Counts one failure of `exporter` ("otlp", "console") of `kind` ("ECONNREFUSED", "http_401"). */
  record(exporter: string, kind: string): void {
    const key = `${exporter}:${kind}`;
    const entry = this.byKey.get(key);
    if (entry) entry.count += 1;
    else this.byKey.set(key, { exporter, kind, count: 1 });
  }

  /** Failures so far, keyed "exporter:kind" (e.g. "otlp:ECONNREFUSED"). */
  counts(): Record<string, number> {
    const out = Object.create(null) as Record<string, number>;
    for (const [key, entry] of this.byKey) out[key] = entry.count;
    return out;
  }

  /** Failures of one exporter, keyed "exporter:kind". */
  countsFor(exporter: string): Record<string, number> {
    const out = Object.create(null) as Record<string, number>;
    for (const [key, entry] of this.byKey) if (entry.exporter === exporter) out[key] = entry.count;
    return out;
  }

  /** Every (exporter, kind) counted so far, for the powerprint.export.failures counter. */
  entries(): Iterable<{ exporter: string; kind: string; count: number }> {
    return this.byKey.values();
  }
}

/**
 * A short, bounded failure kind for an export error: the Node error code (ECONNREFUSED...),
 * "http_<status>" for an HTTP status, "timeout", "retries_exhausted" (429/502/503/504 until the
 * export timeout), "concurrency_limit", else the error's name.
 */
export function failureKind(error: unknown): string {
  if (error && typeof error === "object") {
    const e = error as { code?: unknown; name?: unknown; message?: unknown; errors?: unknown };
    if (typeof e.code === "string" && /^[A-Z0-9_]+$/.test(e.code)) return e.code;
    if (typeof e.code === "number") return `http_${e.code}`;
    // AggregateError (happy eyeballs: several addresses refused)
    if (Array.isArray(e.errors) && e.errors.length > 0) return failureKind(e.errors[0]);
    const message = typeof e.message === "string" ? e.message : "";
    if (/timed? ?out/i.test(message)) return "timeout";
    if (/retryable status/i.test(message)) return "retries_exhausted";
    if (/concurrent export limit/i.test(message)) return "concurrency_limit";
    if (typeof e.name === "string" && e.name !== "Error") return e.name;
  }
  return "error";
}

// ---------------------------------------------------------------------------------------------
// Instruments

/** The source of the newest snapshot (undefined before the first tick). */
export type SnapshotSource = () => LedgerSnapshot | undefined;

/**
 * Registers every metric of METRICS on `meter` as an asynchronous instrument, observed at each
 * collection through exporters/observations.ts from `source()` (the newest snapshot), the export
 * failures and, in the agent, its own figures (`self`).
 */
export function registerInstruments(meter: Meter, source: SnapshotSource, failures: FailureTracker, self?: SelfMetrics): void {
  const instruments = OBSERVERS.map(({ spec }) => {
    const options = { unit: spec.unit, description: spec.description };
    return spec.instrument === "counter" ? meter.createObservableCounter(spec.name, options) : meter.createObservableGauge(spec.name, options);
  });
  meter.addBatchObservableCallback((result) => {
    const c = new Collection({ snapshot: source(), failures: failures.entries(), self: self?.read() });
    OBSERVERS.forEach(({ observe }, i) => {
      for (const { value, base, extra } of observe(c)) result.observe(instruments[i], value, extra ? { ...base, ...extra } : base);
    });
  }, instruments);
}

// ---------------------------------------------------------------------------------------------
// Resource

/** Inputs to the resource: all from flags and the environment (as src/config/env.ts read it). */
export interface ResourceInput {
  env: Readonly<Partial<Record<"K8S_POD_NAME" | "K8S_POD_UID" | "K8S_NAMESPACE_NAME" | "K8S_POD_NAMESPACE" | "K8S_NODE_NAME" | "OTEL_SERVICE_NAME", string>>>;
  /** --service-name: wins over OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES. */
  serviceName?: string;
  hostName: string;
  /** service.instance.id; default a random UUID per run (two powerprints on one host never share series). */
  serviceInstanceId?: string;
  /** Parsed OTEL_RESOURCE_ATTRIBUTES (validated by the caller). */
  resourceAttributes: Record<string, string>;
}

/**
 * The resource attributes of every exported metric, lowest to highest precedence:
 * OTel SDK defaults (telemetry.sdk.*) < detected (host.name = hostName, service.instance.id,
 * k8s.* from the downward-API variables K8S_POD_NAME, K8S_POD_UID, K8S_NAMESPACE_NAME or
 * K8S_POD_NAMESPACE, K8S_NODE_NAME) < OTEL_RESOURCE_ATTRIBUTES < OTEL_SERVICE_NAME < --service-name.
 * service.name defaults to "powerprint".
 */
export function resolveResourceAttributes(input: ResourceInput): Record<string, string> {
  const env = input.env;
  const detected = Object.assign(Object.create(null) as Record<string, string>, {
    [RESOURCE_ATTR.serviceName]: DEFAULT_SERVICE_NAME,
    [RESOURCE_ATTR.hostName]: input.hostName,
    [RESOURCE_ATTR.serviceInstanceId]: input.serviceInstanceId ?? randomUUID(),
  });
  const k8s: [string, string | undefined][] = [
    [RESOURCE_ATTR.k8sPodName, env.K8S_POD_NAME],
    [RESOURCE_ATTR.k8sPodUid, env.K8S_POD_UID],
    [RESOURCE_ATTR.k8sNamespaceName, env.K8S_NAMESPACE_NAME ?? env.K8S_POD_NAMESPACE],
    [RESOURCE_ATTR.k8sNodeName, env.K8S_NODE_NAME],
  ];
  for (const [key, value] of k8s) if (value?.trim()) detected[key] = value.trim();
  // Object.assign onto a prototype-free target: a user key `__proto__` stays an ordinary key.
  const merged = Object.assign(Object.create(null) as Record<string, string>, detected, input.resourceAttributes);
  const envServiceName = env.OTEL_SERVICE_NAME?.trim();
  if (envServiceName) merged[RESOURCE_ATTR.serviceName] = envServiceName;
  if (input.serviceName?.trim()) merged[RESOURCE_ATTR.serviceName] = input.serviceName.trim();
  return merged;
}

/** The OTel Resource for resolveResourceAttributes(): SDK defaults merged with ours. */
export function buildResource(attributes: Record<string, string>): Resource {
  return defaultResource().merge(resourceFromAttributes(attributes));
}

// ---------------------------------------------------------------------------------------------
// Resilient push exporter

/** Socket errors that mean the receiver cannot be reached at all (no request was sent). */
const CONNECT_FAILURES = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "EADDRNOTAVAIL"]);

/**
 * Connection failures of an OTLP transport's sockets, as they happen. The SDK's transport retries
 * a refused connection inside its own timeout (10 s) and tells nothing meanwhile, so a final export
 * to a receiver that is not there outlasted the run's flush deadline and was labelled a timeout
 * instead of its cause. With this, the final export gives up on the first such failure and names it.
 */
export class ConnectionWatch {
  private readonly waiters = new Set<(err: Error) => void>();
  /** The last connection attempt's failure; cleared when a connection is made. */
  failing?: Error;

  /** Called with every socket error of the transport's agent. */
  readonly note = (err: Error): void => {
    if (!CONNECT_FAILURES.has(String((err as NodeJS.ErrnoException).code))) return;
    this.failing = err;
    for (const w of [...this.waiters]) w(err);
  };

  /** Called when one of the transport's sockets connects. */
  readonly connected = (): void => {
    this.failing = undefined;
  };

  /** The next connection failure, and a function that stops waiting for it. */
  next(): { failure: Promise<Error>; cancel: () => void } {
    let waiter: (err: Error) => void = () => undefined;
    const failure = new Promise<Error>((resolve) => {
      waiter = (err) => {
        this.waiters.delete(waiter);
        resolve(err);
      };
      this.waiters.add(waiter);
    });
    return { failure, cancel: () => void this.waiters.delete(waiter) };
  }
}

/** Options of the failure-handling wrapper. */
export interface ResilientOptions {
  /** Name in failure kinds and messages: "otlp", "console". */
  exporterName: string;
  /** Where it sends to, for messages. */
  target: string;
  failures: FailureTracker;
  log: Logger;
  /** First backoff after a failure, ms (doubles per consecutive failure). */
  initialBackoffMillis?: number;
  maxBackoffMillis?: number;
  now?: () => number;
  /** The transport's connection failures: in final mode an export gives up on the first one (ConnectionWatch). */
  connections?: ConnectionWatch;
}

class SkippedExport extends Error {
  override readonly name = "SkippedExport";
}

/**
 * Wraps a PushMetricExporter (retry and accounting around a transport, not flags inside it):
 * - one export in flight at a time: a collection arriving meanwhile is dropped (cumulative
 *   temporality: the next export carries the full totals), so memory holds one batch at most;
 * - after a failure, exports are skipped for a backoff (initial × 2^(n-1), capped) that resets on
 *   success; the inner OTLP transport also retries 429/502/503/504 and network errors within its
 *   timeout;
 * - failures are counted by kind (FailureTracker) and warned once per kind; recovery is logged;
 * - finalMode(): the next export ignores the backoff and waits for the one in flight, so the final
 *   totals are always attempted.
 */
export class ResilientMetricExporter implements PushMetricExporter {
  private inFlight: Promise<void> | undefined;
  private consecutiveFailures = 0;
  private nextAttemptMillis = 0;
  private final = false;
  private readonly now: () => number;
  /** Successful exports so far. */
  successes = 0;
  /** Collections dropped because one was in flight or the exporter was backing off. */
  skipped = 0;
  /** The final export gave up on a refused connection: the transport's pending retries are not awaited. */
  private abandoned = false;

  constructor(
    private readonly inner: PushMetricExporter,
    private readonly options: ResilientOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  /** From now on, exports ignore the backoff and queue behind the one in flight (at shutdown). */
  finalMode(): void {
    this.final = true;
  }

  export(metrics: ResourceMetrics, resultCallback: (result: ExportResult) => void): void {
    if (!this.final) {
      if (this.inFlight) {
        this.skipped += 1;
        resultCallback({ code: ExportResultCode.FAILED, error: new SkippedExport("previous export still in flight") });
        return;
      }
      if (this.now() < this.nextAttemptMillis) {
        this.skipped += 1;
        resultCallback({ code: ExportResultCode.FAILED, error: new SkippedExport("backing off after a failure") });
        return;
      }
    }
    const previous = this.inFlight;
    const connections = this.final ? this.options.connections : undefined;
    const run = async (): Promise<void> => {
      let result: ExportResult;
      if (connections) {
        result = await this.finalAttempt(metrics, previous, connections);
      } else {
        if (previous) await previous;
        result = await this.send(metrics);
      }
      this.onResult(result);
      resultCallback(result);
    };
    const current = run();
    this.inFlight = current;
    void current.finally(() => {
      if (this.inFlight === current) this.inFlight = undefined;
    });
  }

  private send(metrics: ResourceMetrics): Promise<ExportResult> {
    return new Promise<ExportResult>((resolve) => {
      try {
        this.inner.export(metrics, resolve);
      } catch (err) {
        resolve({ code: ExportResultCode.FAILED, error: err instanceof Error ? err : new Error(String(err)) });
      }
    });
  }

  /**
   * The final totals, against a receiver that may not be reachable: the SDK's transport retries a
   * refused connection until its own timeout, past the run's flush deadline, so the final export
   * ended as a "timeout" and its cause was lost. Here the first refusal ends it, named. An export
   * still in flight while connections are being refused is not waited for; without one, the final
   * export is always tried (the receiver may be back).
   */
  private async finalAttempt(metrics: ResourceMetrics, previous: Promise<void> | undefined, connections: ConnectionWatch): Promise<ExportResult> {
    const watch = connections.next();
    const refused = (error: Error): ExportResult => {
      this.abandoned = true;
      return { code: ExportResultCode.FAILED, error };
    };
    try {
      if (previous && connections.failing) return refused(connections.failing);
      if (previous) {
        const failure = await Promise.race([previous.then(() => undefined), watch.failure]);
        if (failure) return refused(failure);
      }
      return await Promise.race([this.send(metrics), watch.failure.then(refused)]);
    } finally {
      watch.cancel();
    }
  }

  private onResult(result: ExportResult): void {
    const { exporterName, target, log, failures } = this.options;
    if (result.code === ExportResultCode.SUCCESS) {
      if (this.consecutiveFailures > 0) {
        log.info(`${exporterName}: export to ${target} recovered after ${this.consecutiveFailures} failed attempt(s)`);
      }
      this.successes += 1;
      this.consecutiveFailures = 0;
      this.nextAttemptMillis = 0;
      return;
    }
    const kind = failureKind(result.error);
    failures.record(exporterName, kind);
    if (this.final) {
      // Once per kind, as the periodic ones (the summary counts them all).
      log.warnOnce(`${exporterName}:${kind}`, `${exporterName}: final export to ${target} failed (${kind}: ${errorMessage(result.error)}): the last totals were not delivered`);
      return;
    }
    this.consecutiveFailures += 1;
    const initial = this.options.initialBackoffMillis ?? 1000;
    const max = this.options.maxBackoffMillis ?? 30_000;
    const backoffMillis = Math.min(max, initial * 2 ** Math.min(this.consecutiveFailures - 1, 30));
    this.nextAttemptMillis = this.now() + backoffMillis;
    log.warnOnce(
      `${exporterName}:${kind}`,
      `${exporterName}: export to ${target} failed (${kind}: ${errorMessage(result.error)}); ` +
        `retrying with backoff, totals are cumulative so the next success carries them; failures are counted in ${METRIC.exportFailures}`,
    );
  }

  async forceFlush(): Promise<void> {
    if (this.inFlight) await this.inFlight;
    // The transport would wait for the send it is still retrying: given up already.
    if (this.abandoned) return;
    await this.inner.forceFlush();
  }

  async shutdown(): Promise<void> {
    if (this.inFlight) await this.inFlight;
    if (this.abandoned) {
      void this.inner.shutdown().catch(() => undefined);
      return;
    }
    await this.inner.shutdown();
  }

  selectAggregationTemporality(instrumentType: InstrumentType): AggregationTemporality {
    return this.inner.selectAggregationTemporality?.(instrumentType) ?? AggregationTemporality.CUMULATIVE;
  }
}

// ---------------------------------------------------------------------------------------------
// The Exporter: a MeterProvider with one reader, fed from snapshots

/** Options of a MeterExporter. */
export interface MeterExporterOptions {
  id: string;
  resource: Resource;
  reader: MetricReader;
  failures: FailureTracker;
  /** The failure-handling wrapper to switch to final mode at shutdown, if any. */
  resilient?: ResilientMetricExporter;
  /** Bound on shutdown (final export included), ms. */
  shutdownTimeoutMillis: number;
  log: Logger;
  /** Called after the provider shut down (e.g. to close an HTTP server). */
  afterShutdown?: () => Promise<void>;
  /** Called with the final snapshot before the final collection. */
  beforeShutdown?: (final: LedgerSnapshot) => Promise<void>;
  /**
   * A fresh reader on the same transport. With it, the provider is rebuilt once many jobs were
   * dropped (agent lifecycle), so the SDK's per-series history stays bounded; `onReader` learns the
   * new reader (the Prometheus endpoint serves scrapes from it).
   */
  newReader?: () => MetricReader;
  onReader?: (reader: MetricReader) => void;
  /** The agent's own figures, observed with the ledger's. */
  self?: SelfMetrics;
  /** Series per instrument before the SDK's overflow series (OtelDeps.cardinalityLimit). */
  cardinalityLimit?: number;
}

/** Rebuild the provider when more jobs than this (and than are live) were dropped since the last build. */
const STALE_JOBS_BEFORE_REBUILD = 256;

/** `metrics` without the data points of jobs absent from `snapshot` (dropped by the agent's lifecycle). */
export function withoutDroppedJobs(metrics: ResourceMetrics, snapshot: LedgerSnapshot): ResourceMetrics {
  const live = new Set(snapshot.jobs.map((j) => j.id));
  const keep = (attributes: Attributes) => {
    const id = attributes[ATTR.jobId];
    return id === undefined || live.has(String(id));
  };
  return {
    ...metrics,
    scopeMetrics: metrics.scopeMetrics.map((sm) => ({
      ...sm,
      metrics: sm.metrics.map((m) => ({ ...m, dataPoints: (m.dataPoints as { attributes: Attributes }[]).filter((p) => keep(p.attributes)) }) as typeof m),
    })),
  };
}

/**
 * An Exporter backed by an OTel MeterProvider: update() stores the snapshot (O(1): sampling is
 * never blocked), collection reads it. shutdown(final) stores the final snapshot, exports it
 * once more (forceFlush + shutdown of the reader), bounded by shutdownTimeoutMillis.
 */
export class MeterExporter implements Exporter {
  readonly id: string;
  private latest: LedgerSnapshot | undefined;
  /** The Monitor's on-demand snapshot (readSnapshotsFrom), if it gave one. */
  private source: (() => LedgerSnapshot) | undefined;
  private rebuildPending = false;
  private provider!: MeterProvider;
  private closed = false;
  /** Job ids observed since the provider was built (the SDK keeps a history for each). */
  private seenJobs = new Set<string>();
  private readonly retiring = new Set<Promise<void>>();
  /** Providers built (1 + rebuilds after dropped jobs). */
  builds = 0;

  constructor(private readonly options: MeterExporterOptions) {
    this.id = options.id;
    this.install(options.reader);
  }

  private install(reader: MetricReader): void {
    this.builds++;
    const limit = this.options.cardinalityLimit;
    this.provider = new MeterProvider({
      resource: this.options.resource,
      readers: [reader],
      // One view over every instrument, only to raise the SDK's series limit to the agent's bound.
      views: limit !== undefined ? [{ instrumentName: "*", aggregationCardinalityLimit: limit }] : [],
    });
    registerInstruments(this.provider.getMeter(METER_NAME), () => this.snapshot(), this.options.failures, this.options.self);
    // The SDK keeps reporting, under cumulative temporality, every attribute set it ever saw: a job
    // the agent dropped after its retention would be exported forever. Every collection (push or
    // scrape) is filtered to the jobs of the current snapshot.
    const collect = reader.collect.bind(reader);
    reader.collect = async (o) => {
      const r = await collect(o);
      const snap = this.snapshot();
      if (!snap) return r;
      this.noteJobs(snap);
      return { ...r, resourceMetrics: withoutDroppedJobs(r.resourceMetrics, snap) };
    };
  }

  /** The snapshot a collection reads: the final one once shut down, else the newest (on demand or last given). */
  private snapshot(): LedgerSnapshot | undefined {
    return this.closed ? this.latest : (this.source?.() ?? this.latest);
  }

  /** Reads snapshots on demand (Exporter.readSnapshotsFrom): the Monitor copies the ledger only when a collection asks. */
  readSnapshotsFrom(latest: () => LedgerSnapshot): void {
    this.source = latest;
  }

  update(snapshot: LedgerSnapshot): void {
    this.latest = snapshot;
    this.noteJobs(snapshot);
  }

  /**
   * Jobs seen since the provider was built; once more than max(256, live) of them are gone, the
   * provider is rebuilt (after the collection that noticed it, never during one).
   */
  private noteJobs(snapshot: LedgerSnapshot): void {
    if (!this.options.newReader || this.closed) return;
    for (const j of snapshot.jobs) this.seenJobs.add(j.id);
    const stale = this.seenJobs.size - snapshot.jobs.length;
    if (stale > Math.max(STALE_JOBS_BEFORE_REBUILD, snapshot.jobs.length) && !this.rebuildPending) {
      this.rebuildPending = true;
      setImmediate(() => {
        this.rebuildPending = false;
        if (!this.closed) this.rebuild(this.snapshot() ?? snapshot);
      });
    }
  }

  /** A new provider and reader (new metric streams; values are the ledger's totals, so they go on); the old one flushes once and goes. */
  private rebuild(snapshot: LedgerSnapshot): void {
    const old = this.provider;
    this.seenJobs = new Set(snapshot.jobs.map((j) => j.id));
    const reader = this.options.newReader!();
    this.install(reader);
    this.options.onReader?.(reader);
    const p = old.shutdown().catch((err: unknown) => this.options.log.debug(`${this.id}: retiring a provider: ${errorMessage(err)}`));
    this.retiring.add(p);
    void p.finally(() => this.retiring.delete(p));
  }

  /** The snapshot the next collection will read. */
  current(): LedgerSnapshot | undefined {
    return this.snapshot();
  }

  async shutdown(final: LedgerSnapshot): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.latest = final;
    this.options.resilient?.finalMode();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), this.options.shutdownTimeoutMillis);
      timer.unref();
    });
    const work = (async () => {
      await Promise.all([...this.retiring]);
      await this.options.beforeShutdown?.(final);
      await this.provider.shutdown();
      await this.options.afterShutdown?.();
    })();
    try {
      const outcome = await Promise.race([work.then(() => "done" as const), deadline]);
      if (outcome === "timeout") {
        this.options.failures.record(this.id, "shutdown_timeout");
        this.options.log.warn(
          `${this.id}: final export did not finish within ${this.options.shutdownTimeoutMillis} ms; the last totals may be missing`,
        );
      }
    } catch (err) {
      this.options.failures.record(this.id, failureKind(err));
      this.options.log.warn(`${this.id}: shutdown failed: ${errorMessage(err)}`);
    } finally {
      clearTimeout(timer);
    }
  }

  failures(): Record<string, number> {
    return this.options.failures.countsFor(this.id);
  }

  /** Push exporters: successful and skipped (in flight or backing off) exports so far. */
  exportStats(): { successes: number; skipped: number } {
    return { successes: this.options.resilient?.successes ?? 0, skipped: this.options.resilient?.skipped ?? 0 };
  }
}

// ---------------------------------------------------------------------------------------------
// OTLP

const TEMPORALITY_PREFERENCE = { cumulative: 1, delta: 0, lowmemory: 2 } as const;

/** The OTel SDK exporter for a config: the proto exporter for http/protobuf, the http one for http/json. */
export function createOtlpPushExporter(config: OtlpConfig, connections?: ConnectionWatch): PushMetricExporter {
  const options = {
    url: config.url,
    headers: config.headers,
    timeoutMillis: config.timeoutMillis,
    temporalityPreference: TEMPORALITY_PREFERENCE[config.temporality],
    compression: config.compression,
    // The SDK's own agent (keep-alive, as its default), with every socket's errors also seen by
    // `connections` (listening adds nothing to the request's own handling of them).
    ...(connections && { httpAgentOptions: (protocol: string) => watchedAgent(protocol, connections) }),
  };
  // The compression enum's values are the strings "none" | "gzip".
  return config.protocol === "http/json"
    ? new OTLPJsonMetricExporter(options as ConstructorParameters<typeof OTLPJsonMetricExporter>[0])
    : new OTLPProtoMetricExporter(options as ConstructorParameters<typeof OTLPProtoMetricExporter>[0]);
}

/** An HTTP(S) agent as the SDK makes it (keep-alive), its sockets' errors passed to `connections`. */
async function watchedAgent(protocol: string, connections: ConnectionWatch): Promise<import("node:http").Agent> {
  // Loaded when the first export connects (the SDK's advice: not at module load).
  const mod = protocol === "https:" ? await import("node:https") : await import("node:http");
  const agent = new mod.Agent({ keepAlive: true });
  const create = agent.createConnection.bind(agent) as (...args: unknown[]) => import("node:net").Socket | undefined;
  (agent as unknown as { createConnection: (...args: unknown[]) => unknown }).createConnection = (...args: unknown[]) => {
    const socket = create(...args);
    socket?.on("error", connections.note);
    socket?.on("connect", connections.connected);
    return socket;
  };
  return agent;
}

/** Shared pieces every OTel-backed exporter of one run gets. */
export interface OtelDeps {
  resource: Resource;
  failures: FailureTracker;
  log: Logger;
  /** The agent's own figures (absent in run and simulate). */
  self?: SelfMetrics;
  /**
   * Series per instrument the SDK may hold before it folds the rest into one
   * `otel.metric.overflow` series (its default: 2,000). The agent sets it from its bounds on jobs
   * (src/agent: --max-jobs), so no job held is ever folded; default: the SDK's.
   */
  cardinalityLimit?: number;
}

/**
 * A periodic exporter: collects every `exportIntervalMillis` on an unref'd timer and pushes
 * through `push` wrapped in ResilientMetricExporter; shutdown exports the final totals.
 */
export function createPeriodicExporter(
  id: string,
  push: PushMetricExporter,
  settings: { exportIntervalMillis: number; timeoutMillis: number; target: string; connections?: ConnectionWatch },
  deps: OtelDeps,
): MeterExporter {
  const resilient = new ResilientMetricExporter(push, {
    exporterName: id,
    target: settings.target,
    connections: settings.connections,
    failures: deps.failures,
    log: deps.log,
    initialBackoffMillis: Math.max(1000, settings.exportIntervalMillis),
  });
  // Readers come and go (MeterExporter rebuilds after many dropped jobs); the transport stays: a
  // reader's shutdown must not shut it, the exporter's own shutdown does (afterShutdown).
  const shared: PushMetricExporter = {
    export: (metrics, cb) => resilient.export(metrics, cb),
    forceFlush: () => resilient.forceFlush(),
    shutdown: async () => undefined,
    selectAggregationTemporality: (t) => resilient.selectAggregationTemporality(t),
  };
  const makeReader = () =>
    new PeriodicExportingMetricReader({
      exporter: shared,
      exportIntervalMillis: settings.exportIntervalMillis,
      // The reader abandons (but does not cancel) an export after this; the wrapper keeps one in flight.
      exportTimeoutMillis: Math.min(settings.timeoutMillis, settings.exportIntervalMillis),
    });
  return new MeterExporter({
    id,
    resource: deps.resource,
    self: deps.self,
    cardinalityLimit: deps.cardinalityLimit,
    reader: makeReader(),
    newReader: makeReader,
    afterShutdown: () => resilient.shutdown(),
    failures: deps.failures,
    resilient,
    // Room for one export in flight plus the final one, each bounded by the transport timeout.
    shutdownTimeoutMillis: 2 * settings.timeoutMillis + 1000,
    log: deps.log,
  });
}

/** The OTLP exporter ("otlp"): protobuf or JSON over HTTP to config.url. */
export function createOtlpExporter(config: OtlpConfig, deps: OtelDeps): MeterExporter {
  const connections = new ConnectionWatch();
  return createPeriodicExporter(
    "otlp",
    createOtlpPushExporter(config, connections),
    { exportIntervalMillis: config.exportIntervalMillis, timeoutMillis: config.timeoutMillis, target: `${config.url} (${config.protocol})`, connections },
    deps,
  );
}
