/**
 * Energy and emissions budgets of a run (`--max-energy 5kWh`, `--max-emissions 2kg`,
 * `--on-budget warn|stop`), as CI gates.
 *
 * The watcher is an Exporter-shaped observer: it reads ledger snapshots after every tick, compares
 * the job's facility energy (IT × PUE: what the site pays for) and operational emissions with the
 * limits, records each budget the first time it is crossed (when, by how much), warns once, and
 * with `stop` calls the stop callback once. The run then SIGTERMs the job (SIGKILL after --grace)
 * and exits with BUDGET_EXIT_CODE.
 */
import type { BudgetReport } from "../../exporters/report-schema.js";
import type { Exporter, Logger } from "../core/contracts.js";
import type { JobTotals, LedgerSnapshot } from "../core/types.js";
import { formatDuration, formatEnergy, formatGrams } from "../units.js";

/**
 * powerprint's exit code when `--on-budget stop` stopped the job. 86 lies outside the BSD
 * sysexits range (64-78, which some tools give meanings such as "retry later"), below 126/127
 * (not executable / not found) and below 128 + n (killed by signal n), so CI can tell it apart.
 */
export const BUDGET_EXIT_CODE = 86;

export type BudgetName = "max-energy" | "max-emissions";
export type BudgetAction = "warn" | "stop";

/** Validated budget flags. */
export interface BudgetConfig {
  /** Limit on the job's facility energy, joules. */
  maxFacilityEnergyJoules?: number;
  /** Limit on the job's operational emissions, grams CO2e. */
  maxEmissionsGrams?: number;
  onBudget: BudgetAction;
}

export type { BudgetReport };

/** Watches snapshots for budget crossings. */
export class BudgetWatcher implements Exporter {
  readonly id = "budget";
  private readonly crossings: BudgetReport["crossed"] = [];
  private stopCalled = false;

  /**
   * @param jobId the job whose totals count; undefined: the sum over all jobs.
   * @param onStop called once, at the first crossing, when onBudget is "stop".
   */
  constructor(
    private readonly config: BudgetConfig,
    private readonly o: { jobId?: string; log: Logger; onStop?: (crossing: BudgetReport["crossed"][number]) => void },
  ) {}

  /** True once a budget was crossed with onBudget "stop" (the run exits with BUDGET_EXIT_CODE). */
  get stopped(): boolean {
    return this.stopCalled;
  }

  update(s: LedgerSnapshot): void {
    const jobs = this.o.jobId === undefined ? s.jobs : s.jobs.filter((j) => j.id === this.o.jobId);
    const sum = (f: (t: JobTotals) => number) => jobs.reduce((a, t) => a + f(t), 0);
    this.check(s, "max-energy", "facilityEnergyJoules", this.config.maxFacilityEnergyJoules, sum((t) => t.facilityEnergyJoules), formatEnergy);
    this.check(s, "max-emissions", "emissionsGrams", this.config.maxEmissionsGrams, sum((t) => t.emissionsGrams), formatGrams);
  }

  async shutdown(final: LedgerSnapshot): Promise<void> {
    this.update(final);
  }

  /** The report's `budget` section. */
  report(): BudgetReport {
    return {
      onBudget: this.config.onBudget,
      limits: {
        ...(this.config.maxFacilityEnergyJoules !== undefined ? { facilityEnergyJoules: this.config.maxFacilityEnergyJoules } : {}),
        ...(this.config.maxEmissionsGrams !== undefined ? { emissionsGrams: this.config.maxEmissionsGrams } : {}),
      },
      crossed: this.crossings.map((c) => ({ ...c })),
    };
  }

  private check(
    s: LedgerSnapshot,
    budget: BudgetName,
    quantity: "facilityEnergyJoules" | "emissionsGrams",
    limit: number | undefined,
    value: number,
    format: (v: number) => string,
  ): void {
    if (limit === undefined || value < limit || this.crossings.some((c) => c.budget === budget)) return;
    const stop = this.config.onBudget === "stop" && !this.stopCalled;
    const crossing = {
      budget,
      limit,
      value,
      quantity,
      at: new Date(s.timeMillis).toISOString(),
      afterSeconds: (s.timeMillis - s.startMillis) / 1000,
      action: stop ? ("stopped" as const) : ("warned" as const),
    };
    this.crossings.push(crossing);
    const what = budget === "max-energy" ? "facility energy" : "emissions";
    this.o.log.warn(`budget --${budget} ${format(limit)} crossed: ${what} ${format(value)} after ${formatDuration(crossing.afterSeconds)}${stop ? "; stopping the job" : ""}`);
    if (stop) {
      this.stopCalled = true;
      this.o.onStop?.(crossing);
    }
  }
}
