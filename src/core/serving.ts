/**
 * Energy per unit of serving work for one job (an inference server): its energy and emissions in
 * each interval, joined with the work its engine counted in that interval (tokens, requests),
 * per model. Pure accounting: the ledger feeds it each tick's energy of the job, the work source
 * the counter increases of each scrape (src/serving); the figures are computed here once, and
 * every output formats them (README / docs/serving.md "Serving").
 *
 * Joining the two over the same intervals: a scrape is started at the beginning of a tick, when
 * the interval that tick closes is still open, and is tagged with token() (the number of
 * intervals started so far). When its increase arrives (addWork, at a later tick), it is paired
 * with every interval still pending whose index is below that token: the work counted up to the
 * scrape and the energy measured up to the same tick. A failed scrape leaves its intervals pending
 * until the next one that answers; intervals never paired (the endpoint down for long, the last
 * interval of a run) count as idle with no work, so the figures always sum to the job.
 *
 * Per model, each paired interval's energy is split by the models' shares of generated tokens in
 * it (else of inferences, prompt tokens or requests; else equally among the models known). A
 * model's part is `active` when the model had a request in flight at the closing scrape (the
 * engine's running gauge) or counted any work in the interval, else `idle` (keeping the model
 * loaded). Active energy is split into prefill and decode by the engine's own prefill and decode
 * time counters in the interval (else the model's ratio so far): an estimate, labelled so.
 */

/** Counters a work increment may carry per model (cumulative increases over the interval). */
export interface ServingIncrement {
  promptTokens?: number;
  generatedTokens?: number;
  requests?: number;
  inferences?: number;
  prefillSeconds?: number;
  decodeSeconds?: number;
  /** Requests in flight at the scrape closing the interval (the engine's gauge). */
  running?: number;
}

/** Figures of one model (or of the whole job: `model` absent). Counts are null when the engine has no such counter. */
export interface ServingFigures {
  promptTokens: number | null;
  generatedTokens: number | null;
  requests: number | null;
  /** Triton only: inferences (a batched request counts each of its inferences). */
  inferences?: number | null;
  /** IT energy, joules: the job's energy in the intervals, split among models (see module comment). */
  energyJoules: number;
  activeEnergyJoules: number;
  idleEnergyJoules: number;
  /** Estimate from the engine's prefill/decode time counters; null when it has none. */
  prefillEnergyJoules: number | null;
  decodeEnergyJoules: number | null;
  /** Operational emissions of that energy (× PUE × the intensity of each interval), grams CO2e. */
  emissionsGrams: number;
  joulesPerGeneratedToken: number | null;
  joulesPerRequest: number | null;
  emissionsGramsPerThousandTokens: number | null;
  /** idleEnergyJoules / energyJoules, 0..1: the cost of keeping the model loaded; null without energy. */
  idleEnergyShare: number | null;
}

export interface ServingModelFigures extends ServingFigures {
  /** The engine's model label value ("" for an engine without model labels: llama.cpp, TGI). */
  model: string;
}

/** A job's serving figures, as snapshots and reports carry them. */
export interface ServingTotals {
  /** "vllm", "sglang", "tgi", "llamacpp", "triton", "custom", or "unknown" before the first answer. */
  engine: string;
  /** The endpoint scraped (--work-from). */
  source: string;
  /** How active intervals were told: the engine's running gauge (with counter increases), or counter increases only. */
  activeFrom: "running-gauge" | "counter-increases";
  /** Whether prefill/decode energy could be estimated (the engine exposes both time counters). */
  prefillDecode: "engine-times" | "none";
  /** Counter resets seen (server restarts), readings skipped as inconsistent. */
  restarts: number;
  inconsistentReadings: number;
  /** The whole job (all models). */
  total: ServingFigures;
  models: ServingModelFigures[];
}

/** Intervals kept waiting for a scrape at most (older ones count as idle with no work). */
export const MAX_PENDING_INTERVALS = 16;

const COUNTS = ["promptTokens", "generatedTokens", "requests", "inferences"] as const;
type Count = (typeof COUNTS)[number];

interface ModelAcc {
  counts: Record<Count, number>;
  /** Counters the engine has for this model (others are reported null). */
  has: Set<Count>;
  energyJoules: number;
  activeJoules: number;
  idleJoules: number;
  prefillJoules: number;
  decodeJoules: number;
  /** Active joules not split yet (no prefill/decode time known so far). */
  unsplitJoules: number;
  emissionsGrams: number;
  prefillSeconds: number;
  decodeSeconds: number;
  hasTimes: boolean;
}

interface Pending {
  index: number;
  energyJoules: number;
  emissionsGrams: number;
}

const newAcc = (): ModelAcc => ({
  counts: { promptTokens: 0, generatedTokens: 0, requests: 0, inferences: 0 },
  has: new Set(),
  energyJoules: 0,
  activeJoules: 0,
  idleJoules: 0,
  prefillJoules: 0,
  decodeJoules: 0,
  unsplitJoules: 0,
  emissionsGrams: 0,
  prefillSeconds: 0,
  decodeSeconds: 0,
  hasTimes: false,
});

/** `a / b` when b > 0, else null. */
const ratio = (a: number, b: number | null): number | null => (b !== null && b > 0 ? a / b : null);

/**
 * The per-unit figures of summed totals: J per generated token, J per request, gCO2e per 1,000
 * generated tokens, and the idle share of the energy. The one place they are computed (the ledger's
 * snapshot and `report` merging both call it); the summary, CSV and HTML only format them.
 */
export function servingRatios(f: Pick<ServingFigures, "energyJoules" | "idleEnergyJoules" | "emissionsGrams" | "generatedTokens" | "requests">) {
  const perToken = ratio(f.emissionsGrams, f.generatedTokens);
  return {
    joulesPerGeneratedToken: ratio(f.energyJoules, f.generatedTokens),
    joulesPerRequest: ratio(f.energyJoules, f.requests),
    emissionsGramsPerThousandTokens: perToken === null ? null : perToken * 1000,
    idleEnergyShare: ratio(f.idleEnergyJoules, f.energyJoules),
  };
}

/** One job's serving account; see the module comment. */
export class ServingAccount {
  engine = "unknown";
  restarts = 0;
  inconsistentReadings = 0;
  private sawRunningGauge = false;
  private readonly models = new Map<string, ModelAcc>();
  private closed = 0;
  private pending: Pending[] = [];
  private openJoules = 0;
  private openGrams = 0;
  /** Energy no model could be given yet (idle, before any model was known), joules and grams. */
  private unassignedJoules = 0;
  private unassignedGrams = 0;

  constructor(readonly source: string) {}

  /** The tag of a scrape started now: it closes every interval started so far. */
  token(): number {
    return this.closed + 1;
  }

  /** Adds energy to the interval now open (the ledger, per device share). */
  addEnergy(energyJoules: number, emissionsGrams: number): void {
    this.openJoules += energyJoules;
    this.openGrams += emissionsGrams;
  }

  /** Closes the open interval (the ledger's endTick): it waits for the scrape that closes it. */
  closeInterval(): void {
    this.pending.push({ index: this.closed, energyJoules: this.openJoules, emissionsGrams: this.openGrams });
    this.closed++;
    this.openJoules = 0;
    this.openGrams = 0;
    while (this.pending.length > MAX_PENDING_INTERVALS) {
      const old = this.pending.shift()!;
      this.assignIdle(old.energyJoules, old.emissionsGrams);
    }
  }

  /**
   * The work of a scrape tagged `token`, per model (increases since the previous reading; models
   * absent: none counted, the intervals are idle). Pairs it with the pending intervals it closes.
   * `event`: what the work source saw between the two readings (counted in the totals).
   */
  addWork(token: number, engine: string, models: ReadonlyMap<string, ServingIncrement>, event: "none" | "restart" | "inconsistent" = "none"): void {
    this.engine = engine;
    if (event === "restart") this.restarts++;
    else if (event === "inconsistent") this.inconsistentReadings++;
    let energy = 0;
    let grams = 0;
    let taken = 0;
    while (taken < this.pending.length && this.pending[taken].index < token) {
      energy += this.pending[taken].energyJoules;
      grams += this.pending[taken].emissionsGrams;
      taken++;
    }
    this.pending.splice(0, taken);
    for (const [model, inc] of models) this.count(model, inc);
    if (taken === 0) return;
    const shares = this.shares(models);
    if (!shares) {
      this.assignIdle(energy, grams);
      return;
    }
    for (const [model, share] of shares) this.charge(model, energy * share, grams * share, models.get(model));
  }

  private count(model: string, inc: ServingIncrement): void {
    let acc = this.models.get(model);
    if (!acc) this.models.set(model, (acc = newAcc()));
    for (const k of COUNTS) {
      const v = inc[k];
      if (v === undefined) continue;
      acc.has.add(k);
      acc.counts[k] += v;
    }
    if (inc.running !== undefined) this.sawRunningGauge = true;
    if (inc.prefillSeconds !== undefined && inc.decodeSeconds !== undefined) acc.hasTimes = true;
  }

  /** Each model's share of the interval: by generated tokens, else inferences, prompt tokens, requests; else equal. */
  private shares(models: ReadonlyMap<string, ServingIncrement>): Map<string, number> | undefined {
    for (const k of ["generatedTokens", "inferences", "promptTokens", "requests"] as const) {
      let sum = 0;
      for (const inc of models.values()) sum += inc[k] ?? 0;
      if (sum > 0) {
        const out = new Map<string, number>();
        for (const [model, inc] of models) if ((inc[k] ?? 0) > 0) out.set(model, (inc[k] ?? 0) / sum);
        return out;
      }
    }
    const known = this.models.size > 0 ? [...this.models.keys()] : [];
    if (known.length === 0) return undefined;
    return new Map(known.map((m) => [m, 1 / known.length]));
  }

  /** Charges one model `energy` of an interval: active or idle, active split into prefill/decode. */
  private charge(model: string, energy: number, grams: number, inc: ServingIncrement | undefined): void {
    const acc = this.models.get(model) ?? newAcc();
    this.models.set(model, acc);
    acc.energyJoules += energy;
    acc.emissionsGrams += grams;
    const worked = inc !== undefined && ((inc.running ?? 0) > 0 || COUNTS.some((k) => (inc[k] ?? 0) > 0) || (inc.prefillSeconds ?? 0) > 0 || (inc.decodeSeconds ?? 0) > 0);
    if (!worked) {
      acc.idleJoules += energy;
      return;
    }
    acc.activeJoules += energy;
    const p = inc?.prefillSeconds ?? 0;
    const d = inc?.decodeSeconds ?? 0;
    acc.prefillSeconds += p;
    acc.decodeSeconds += d;
    // This interval's own times, else the model's so far; none yet: held until some are known.
    const [sp, sd] = p + d > 0 ? [p, d] : [acc.prefillSeconds, acc.decodeSeconds];
    acc.unsplitJoules += energy;
    if (sp + sd > 0) {
      acc.prefillJoules += (acc.unsplitJoules * sp) / (sp + sd);
      acc.decodeJoules += (acc.unsplitJoules * sd) / (sp + sd);
      acc.unsplitJoules = 0;
    }
  }

  /** Idle energy of intervals without work: equally to the models known, else held unassigned. */
  private assignIdle(energy: number, grams: number): void {
    if (this.models.size === 0) {
      this.unassignedJoules += energy;
      this.unassignedGrams += grams;
      return;
    }
    for (const acc of this.models.values()) {
      acc.energyJoules += energy / this.models.size;
      acc.idleJoules += energy / this.models.size;
      acc.emissionsGrams += grams / this.models.size;
    }
  }

  /**
   * The figures now. Energy still waiting for a scrape (pending and open intervals) and energy
   * held before any model was known count as idle, split equally among the models known, so the
   * models always sum to the job's energy since serving was enabled.
   */
  totals(): ServingTotals {
    let waitingJoules = this.unassignedJoules + this.openJoules;
    let waitingGrams = this.unassignedGrams + this.openGrams;
    for (const p of this.pending) {
      waitingJoules += p.energyJoules;
      waitingGrams += p.emissionsGrams;
    }
    const n = this.models.size;
    const models: ServingModelFigures[] = [];
    for (const [model, acc] of this.models) {
      const extraJ = n > 0 ? waitingJoules / n : 0;
      const extraG = n > 0 ? waitingGrams / n : 0;
      models.push({ model, ...figures(acc, extraJ, extraG) });
    }
    const total = sumFigures(models);
    if (n === 0) {
      total.energyJoules = waitingJoules;
      total.idleEnergyJoules = waitingJoules;
      total.emissionsGrams = waitingGrams;
    }
    return {
      engine: this.engine,
      source: this.source,
      activeFrom: this.sawRunningGauge ? "running-gauge" : "counter-increases",
      prefillDecode: [...this.models.values()].some((a) => a.hasTimes) ? "engine-times" : "none",
      restarts: this.restarts,
      inconsistentReadings: this.inconsistentReadings,
      total: { ...total, ...servingRatios(total) },
      models,
    };
  }

  /** An account continued from saved totals (agent --state-file): sums carry on, nothing pending. */
  static restore(t: ServingTotals): ServingAccount {
    const a = new ServingAccount(t.source);
    a.engine = t.engine;
    a.restarts = t.restarts;
    a.inconsistentReadings = t.inconsistentReadings;
    a.sawRunningGauge = t.activeFrom === "running-gauge";
    for (const m of t.models) {
      const acc = newAcc();
      for (const k of COUNTS) {
        const v = m[k];
        if (v === null || v === undefined) continue;
        acc.has.add(k);
        acc.counts[k] = v;
      }
      acc.energyJoules = m.energyJoules;
      acc.activeJoules = m.activeEnergyJoules;
      acc.idleJoules = m.idleEnergyJoules;
      acc.prefillJoules = m.prefillEnergyJoules ?? 0;
      acc.decodeJoules = m.decodeEnergyJoules ?? 0;
      acc.hasTimes = m.prefillEnergyJoules !== null;
      // Unsplit active energy of the save is carried as such (the next known ratio splits it).
      acc.unsplitJoules = acc.hasTimes ? Math.max(0, m.activeEnergyJoules - acc.prefillJoules - acc.decodeJoules) : 0;
      acc.emissionsGrams = m.emissionsGrams;
      a.models.set(m.model, acc);
    }
    return a;
  }
}

function figures(acc: ModelAcc, waitingJoules: number, waitingGrams: number): ServingFigures {
  const count = (k: Count) => (acc.has.has(k) ? acc.counts[k] : null);
  const base = {
    promptTokens: count("promptTokens"),
    generatedTokens: count("generatedTokens"),
    requests: count("requests"),
    ...(acc.has.has("inferences") ? { inferences: acc.counts.inferences } : {}),
    energyJoules: acc.energyJoules + waitingJoules,
    activeEnergyJoules: acc.activeJoules,
    idleEnergyJoules: acc.idleJoules + waitingJoules,
    prefillEnergyJoules: acc.hasTimes ? acc.prefillJoules : null,
    decodeEnergyJoules: acc.hasTimes ? acc.decodeJoules : null,
    emissionsGrams: acc.emissionsGrams + waitingGrams,
  };
  return { ...base, ...servingRatios(base) };
}

/** Sums model figures (counts stay null only when every model's is null); ratios recomputed. */
export function sumFigures(parts: readonly ServingFigures[]): ServingFigures {
  const sumNullable = (pick: (f: ServingFigures) => number | null | undefined): number | null => {
    let any = false;
    let s = 0;
    for (const p of parts) {
      const v = pick(p);
      if (v === null || v === undefined) continue;
      any = true;
      s += v;
    }
    return any ? s : null;
  };
  const sum = (pick: (f: ServingFigures) => number) => parts.reduce((a, p) => a + pick(p), 0);
  const inferences = sumNullable((f) => f.inferences);
  const base = {
    promptTokens: sumNullable((f) => f.promptTokens),
    generatedTokens: sumNullable((f) => f.generatedTokens),
    requests: sumNullable((f) => f.requests),
    ...(inferences !== null ? { inferences } : {}),
    energyJoules: sum((f) => f.energyJoules),
    activeEnergyJoules: sum((f) => f.activeEnergyJoules),
    idleEnergyJoules: sum((f) => f.idleEnergyJoules),
    prefillEnergyJoules: sumNullable((f) => f.prefillEnergyJoules),
    decodeEnergyJoules: sumNullable((f) => f.decodeEnergyJoules),
    emissionsGrams: sum((f) => f.emissionsGrams),
  };
  return { ...base, ...servingRatios(base) };
}

/** Totals with every ratio recomputed from their sums (sumFigures of one part). */
function withRatios(s: ServingTotals | undefined): ServingTotals | undefined {
  return s && { ...s, total: sumFigures([s.total]), models: s.models.map((m) => ({ model: m.model, ...sumFigures([m]) })) };
}

/**
 * Serving totals of one job measured in several places (replicas, nodes: `powerprint report`
 * merging): counts and energies summed per model, the job total and every ratio recomputed from
 * the sums (never an average of ratios). Engines or endpoints that differ are joined with "+".
 */
export function mergeServing(a: ServingTotals | undefined, b: ServingTotals | undefined): ServingTotals | undefined {
  // One alone: its ratios recomputed all the same (a report written before one of them existed).
  if (!a || !b) return withRatios(a ?? b);
  const join = (x: string, y: string) => [...new Set([...x.split("+"), ...y.split("+")])].join("+");
  const byModel = new Map<string, ServingModelFigures[]>();
  for (const m of [...a.models, ...b.models]) byModel.set(m.model, [...(byModel.get(m.model) ?? []), m]);
  const models = [...byModel].map(([model, parts]) => ({ model, ...sumFigures(parts) }));
  return {
    engine: join(a.engine, b.engine),
    source: join(a.source, b.source),
    activeFrom: a.activeFrom === b.activeFrom ? a.activeFrom : "counter-increases",
    prefillDecode: a.prefillDecode === "engine-times" && b.prefillDecode === "engine-times" ? "engine-times" : "none",
    restarts: a.restarts + b.restarts,
    inconsistentReadings: a.inconsistentReadings + b.inconsistentReadings,
    total: sumFigures([a.total, b.total]),
    models,
  };
}
