/**
 * The measuring pipeline shared by `run`, `simulate` and `agent`: collectors + process source →
 * Sampler → Ledger, published as an immutable snapshot after each tick to exporters and listeners.
 * Shaped after Kepler's monitor: a service with start()/stop(); each command adds only what is its
 * own (run: spawning and signal relay; simulate: virtual time, calling tick() itself; agent: job
 * discovery and lifecycle, its AgentSource registering the jobs it discovers in the ledger).
 */
import type { Collector, Exporter, Logger, ProcessSource } from "./contracts.js";
import { systemClock, type MonitorClock } from "./clock.js";
import type { IdleConfig } from "./energy.js";
import type { Ledger } from "./ledger.js";
import { DEFAULT_COLLECTOR_DEADLINE_MILLIS, Sampler, type IntensityAt, type OriginFigures, type ResumePoint, type SamplerStats } from "./sampler.js";
import type { IdlePolicy, LedgerSnapshot } from "./types.js";
import { errorMessage } from "../errors.js";

export type { MonitorClock } from "./clock.js";

export interface MonitorOptions {
  collectors: readonly Collector[];
  processes: ProcessSource;
  /** Must answer from memory: the tick awaits it (network belongs in a background refresher). */
  intensity: IntensityAt;
  ledger: Ledger;
  exporters: readonly Exporter[];
  /** Timer period of start(), ms. */
  intervalMillis: number;
  idlePolicy: IdlePolicy;
  idle?: IdleConfig;
  log: Logger;
  /** Default: performance.now() for intervals, Date.now() for timestamps. */
  clock?: MonitorClock;
  /** Whether a PID exists in this PID namespace (GPU device-assignment fallback). */
  isVisiblePid?: (pid: number) => boolean;
  /** Runs before each tick's sample (run: reads training-loop marks). Failures are warned once. */
  beforeTick?: () => void;
  /** Runs after each tick is recorded (the agent: a checkpoint due is written then, never mid-tick). Failures are warned once. */
  afterTick?: () => void;
  /**
   * Deadline of one collector read, ms (see SamplerOptions.collectorDeadlineMillis). Default:
   * intervalMillis clamped to 1–5 s (a slow but working source, e.g. nvidia-smi under load, must
   * not be declared hung at a 100 ms interval; a hung one must not hold a 60 s tick).
   */
  collectorDeadlineMillis?: number;
  /** How long stop() waits for an in-flight tick, and then for the final one, ms (default 30 s). */
  finalTickWaitMillis?: number;
}

const DEFAULT_FINAL_TICK_WAIT_MILLIS = 30_000;

/** Exporter shutdown outcome when the deadline passes first. */
const TIMED_OUT = Symbol("timed out");

/**
 * One measuring pipeline. start() ticks at once and then every intervalMillis on an unref'd timer
 * (never stacked: a tick due while one runs is skipped and counted in stats.skippedTicks);
 * tick() can also be driven directly (virtual time). Nothing here rejects: a failing source,
 * exporter or listener is counted and warned about once, and measuring goes on.
 */
export class Monitor {
  private readonly sampler: Sampler;
  private readonly clock: MonitorClock;
  private readonly listeners = new Set<(s: LedgerSnapshot) => void>();
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private latest: LedgerSnapshot | undefined;
  private stopped = false;
  private exportersStarted: Promise<void> | undefined;
  private lastTickMillis: number | undefined;
  /** Exporters given each tick's snapshot (update); the others read it on demand (readSnapshotsFrom). */
  private readonly pushExporters: readonly Exporter[];

  constructor(private readonly o: MonitorOptions) {
    this.clock = o.clock ?? systemClock;
    for (const e of o.exporters) e.readSnapshotsFrom?.(() => this.snapshot());
    this.pushExporters = o.exporters.filter((e) => !e.readSnapshotsFrom);
    this.sampler = new Sampler({
      collectors: o.collectors,
      processes: o.processes,
      intensity: o.intensity,
      ledger: o.ledger,
      clock: this.clock,
      idlePolicy: o.idlePolicy,
      idle: o.idle,
      log: o.log,
      isVisiblePid: o.isVisiblePid,
      collectorDeadlineMillis: o.collectorDeadlineMillis ?? Math.max(1_000, Math.min(o.intervalMillis, DEFAULT_COLLECTOR_DEADLINE_MILLIS)),
    });
  }

  /** Sampler counters: ticks, skipped ticks, failures by source, integration notes. */
  get stats(): SamplerStats {
    return this.sampler.stats;
  }

  /** Ids of the hardware sources read each tick. */
  get collectorIds(): string[] {
    return this.sampler.activeCollectors.map((c) => c.id);
  }

  /** Each collector's state: ok, failing (reads in a row failed) or hung (a read past its deadline). */
  sourceStates(): ReturnType<Sampler["sourceStates"]> {
    return this.sampler.sourceStates();
  }

  /** Collectors whose read is past its deadline and still unanswered. */
  get hungSources(): string[] {
    return this.sampler.hungSources;
  }

  /** How long the last tick took, ms (monotonic clock); undefined before the first. */
  get lastTickDurationMillis(): number | undefined {
    return this.lastTickMillis;
  }

  /** True once the first interval (two samples) has been recorded: what /readyz reports. */
  get ready(): boolean {
    return this.sampler.hasInterval;
  }

  /**
   * Takes the process-table baseline now (run: at the spawn, while the devices are still being
   * probed): accounting starts here (or at `originMonotonicMillis`, on this Monitor's monotonic
   * clock, read just before the spawn), and the first interval reaches back to it. `atOrigin`:
   * process figures read at the origin, when the baseline is taken later (see Sampler.prime).
   */
  prime(originMonotonicMillis?: number, atOrigin?: OriginFigures): void {
    this.sampler.prime(originMonotonicMillis, atOrigin);
  }

  /** Where accounting stands after the last sample (Sampler.resumePoint): for the agent's checkpoints. */
  resumePoint(): ResumePoint | undefined {
    return this.sampler.resumePoint();
  }

  /** Resumes accounting at a checkpoint's resume point (Sampler.resume): the downtime is the first interval. Call before start(). */
  resume(o: Parameters<Sampler["resume"]>[0]): void {
    this.sampler.resume(o);
  }

  /** Adds hardware sources probed after construction; call before start(). */
  addCollectors(collectors: readonly Collector[]): void {
    this.sampler.addCollectors(collectors);
  }

  /** Registers a job rooted at `rootPid` with the process source and notes its device assignment (run). */
  addJob(jobId: string, rootPid: number): void {
    this.o.processes.addJob(jobId, rootPid);
    this.sampler.noteJobDevices(jobId);
  }

  /**
   * Starts every exporter once (later calls do nothing). One that fails to start is warned about
   * and measuring goes on without it.
   */
  startExporters(): Promise<void> {
    this.exportersStarted ??= (async () => {
      for (const e of this.o.exporters) {
        try {
          await e.start?.();
        } catch (err) {
          this.o.log.warn(`${e.id}: could not start (${errorMessage(err)}); measuring goes on without it`);
        }
      }
    })();
    return this.exportersStarted;
  }

  /** Starts the exporters (unless already), takes the first tick at once, then one every intervalMillis. */
  async start(): Promise<void> {
    await this.startExporters();
    if (this.stopped || this.timer) return;
    const first = this.tick();
    this.timer = setInterval(() => void this.tick(), this.o.intervalMillis);
    // The timer alone must never keep the process alive (run exits when the command does).
    this.timer.unref();
    await first;
  }

  /** One tick: sample, attribute, record, publish. Never rejects; skipped (and counted) while one runs. */
  async tick(): Promise<void> {
    if (this.inFlight) {
      this.sampler.stats.skippedTicks++;
      return;
    }
    const p = this.tickInner();
    this.inFlight = p;
    try {
      await p;
    } finally {
      this.inFlight = undefined;
    }
  }

  private async tickInner(): Promise<void> {
    const started = this.clock.monotonicMillis();
    try {
      this.o.beforeTick?.();
    } catch (err) {
      this.o.log.warnOnce("monitor:beforeTick", `before-tick step failed: ${errorMessage(err)} (measuring goes on)`);
    }
    await this.sampler.tick();
    this.lastTickMillis = this.clock.monotonicMillis() - started;
    this.latest = undefined;
    try {
      this.o.afterTick?.();
    } catch (err) {
      this.o.log.warnOnce("monitor:afterTick", `after-tick step failed: ${errorMessage(err)} (measuring goes on)`);
    }
    // A snapshot copies every job's totals: only take it when someone reads it now (exporters that
    // read on demand copy it when they collect).
    if (this.pushExporters.length > 0 || this.listeners.size > 0) this.publish(this.snapshot());
  }

  private publish(snap: LedgerSnapshot): void {
    for (const e of this.pushExporters) {
      try {
        e.update?.(snap);
      } catch (err) {
        this.o.log.warnOnce(`export:${e.id}:update`, `${e.id}: update failed: ${errorMessage(err)} (measuring goes on)`);
      }
    }
    for (const l of this.listeners) {
      try {
        l(snap);
      } catch (err) {
        this.o.log.warnOnce("monitor:listener", `snapshot listener failed: ${errorMessage(err)} (measuring goes on)`);
      }
    }
  }

  /** Calls `listener` with the snapshot after each tick; returns the function that removes it. */
  onSnapshot(listener: (s: LedgerSnapshot) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The latest snapshot (frozen: exporters and listeners share it). */
  snapshot(): LedgerSnapshot {
    this.latest ??= deepFreeze(this.o.ledger.snapshot());
    return this.latest;
  }

  /**
   * Stops the timer, waits (bounded) for an in-flight tick, takes the final tick (covering the
   * time up to now), closes the collectors and returns the final snapshot. Idempotent.
   * `finalTick: false`: the caller's last tick already covers the end (virtual time).
   */
  async stop(o: { finalTick?: boolean } = {}): Promise<LedgerSnapshot> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.stopped) return this.snapshot();
    this.stopped = true;
    const waitMillis = this.o.finalTickWaitMillis ?? DEFAULT_FINAL_TICK_WAIT_MILLIS;
    const seconds = waitMillis / 1000;
    if (this.inFlight && !(await settlesWithin(this.inFlight, waitMillis))) {
      this.o.log.warn(`a sample still running ${seconds} s after the end: the figures end at the previous sample`);
    } else if (o.finalTick !== false && !(await settlesWithin(this.tick(), waitMillis))) {
      this.o.log.warn(`the final sample did not finish within ${seconds} s: the figures end at the previous sample`);
    }
    for (const c of this.sampler.activeCollectors) await c.close().catch(() => undefined);
    return this.snapshot();
  }

  /**
   * Final flush: every exporter's shutdown(final) in parallel, each bounded by `deadlineMillis`
   * (Infinity: unbounded; a function gives each exporter its own, e.g. a Prometheus linger on top).
   * Returns failure counts by kind: the exporters' own counts, plus `<id>:shutdown` for one that
   * threw and `<id>:timeout` for one the deadline cut off (both warned).
   */
  async shutdownExporters(final: LedgerSnapshot, deadline: number | ((exporter: Exporter) => number)): Promise<Record<string, number>> {
    const failures: Record<string, number> = Object.create(null) as Record<string, number>;
    const add = (kind: string, n: number) => (failures[kind] = (failures[kind] ?? 0) + n);
    await Promise.all(
      this.o.exporters.map(async (e) => {
        const deadlineMillis = typeof deadline === "function" ? deadline(e) : deadline;
        try {
          const outcome = await withDeadline(e.shutdown(final), deadlineMillis);
          if (outcome === TIMED_OUT) {
            this.o.log.warn(`${e.id}: final export did not finish within ${deadlineMillis / 1000} s: given up (counted as ${e.id}:timeout)`);
            add(`${e.id}:timeout`, 1);
          }
        } catch (err) {
          this.o.log.warn(`${e.id}: final export failed: ${errorMessage(err)}`);
          add(`${e.id}:shutdown`, 1);
        }
        try {
          for (const [k, n] of Object.entries(e.failures?.() ?? {})) add(k, n);
        } catch {
          /* failure counts unreadable: the warning above already said the export failed */
        }
      }),
    );
    return { ...failures };
  }
}

/**
 * Whether `p` settles within `millis`. The timer is ref'd on purpose: a promise that can never
 * settle (nothing left in the event loop) must still end in the warning, not in Node's exit 13.
 */
export async function settlesWithin(p: Promise<unknown>, millis: number): Promise<boolean> {
  return (await withDeadline(p.then(() => true, () => true), millis)) !== TIMED_OUT;
}

async function withDeadline<T>(p: Promise<T>, millis: number): Promise<T | typeof TIMED_OUT> {
  if (!Number.isFinite(millis)) return p;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => resolve(TIMED_OUT), Math.max(0, millis));
  });
  try {
    return await Promise.race([p, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as Record<string, unknown>)) deepFreeze(v);
  }
  return value;
}
