/**
 * How the outputs show a job's serving figures (--work-from; computed once by the ledger,
 * src/core/serving.ts): the summary's line, the CSV's own columns, the HTML's table. Formatting
 * only: nothing here computes a figure.
 */
import type { ServingTotals } from "../src/core/serving.js";
import { formatCount, formatEnergy, formatGrams, formatPlain, formatSi, joulesToKwh } from "../src/units.js";

/** How an engine is named in text. */
export const ENGINE_NAMES: Record<string, string> = { vllm: "vLLM", sglang: "SGLang", tgi: "TGI", llamacpp: "llama.cpp", triton: "Triton", custom: "custom metrics", unknown: "no answer yet" };

/**
 * The idle share of serving energy as people read it, "72.4%" (the report model's
 * idleEnergyShare, formatted as the summary's phase shares); "" when there is none.
 */
export function idleShareText(share: number | null | undefined): string {
  return share === null || share === undefined ? "" : `${formatPlain(100 * share)}%`;
}

/** A model's name in text ("" is an engine without model labels). */
export const modelText = (model: string): string => (model === "" ? "(one model, unlabelled)" : model);

/**
 * The summary's serving line of one job, most telling first (the summary cuts lines at its width):
 * J per generated token, CO2e per 1,000 generated tokens, J per request, idle share, then the
 * counts and the engine. `prefix`: the job id when the report has several jobs.
 */
export function servingSummaryLine(s: ServingTotals, prefix = ""): string {
  const t = s.total;
  const parts: string[] = [];
  if (t.joulesPerGeneratedToken !== null) parts.push(`${formatSi(t.joulesPerGeneratedToken, "J")}/token`);
  if (t.emissionsGramsPerThousandTokens !== null) parts.push(`${formatGrams(t.emissionsGramsPerThousandTokens)} CO2e/1k tokens`);
  if (t.joulesPerRequest !== null) parts.push(`${formatSi(t.joulesPerRequest, "J")}/request`);
  const idle = idleShareText(t.idleEnergyShare);
  if (idle) parts.push(`idle ${idle}`);
  const counts: string[] = [];
  if (t.generatedTokens !== null) counts.push(`${formatCount(t.generatedTokens)} tokens out`);
  if (t.promptTokens !== null) counts.push(`${formatCount(t.promptTokens)} in`);
  if (t.requests !== null) counts.push(`${formatCount(t.requests)} requests`);
  const engine = `${ENGINE_NAMES[s.engine] ?? s.engine}${s.models.length > 1 ? `, ${s.models.length} models` : ""}`;
  parts.push(`${counts.join(", ") || "no work counted"} (${engine})`);
  return `serving     ${prefix}${parts.join(" · ")}`;
}

/** The CSV's serving columns (after powerprint's own), units in the names. */
export const SERVING_CSV_COLUMNS = [
  "serving_engine", "serving_prompt_tokens", "serving_generated_tokens", "serving_requests",
  "serving_active_energy_kwh", "serving_idle_energy_kwh", "serving_idle_energy_share", "serving_prefill_energy_kwh", "serving_decode_energy_kwh",
  "serving_joules_per_generated_token", "serving_joules_per_request", "serving_g_co2e_per_1k_tokens",
] as const;

/** The job's serving columns ("" where absent: no --work-from, or a count the engine lacks). */
export function servingCsvColumns(s: ServingTotals | undefined): Record<(typeof SERVING_CSV_COLUMNS)[number], string | number> {
  const t = s?.total;
  const v = (x: number | null | undefined) => (x === null || x === undefined ? "" : x);
  const kwh = (x: number | null | undefined) => (x === null || x === undefined ? "" : joulesToKwh(x));
  return {
    serving_engine: s?.engine ?? "",
    serving_prompt_tokens: v(t?.promptTokens),
    serving_generated_tokens: v(t?.generatedTokens),
    serving_requests: v(t?.requests),
    serving_active_energy_kwh: kwh(t?.activeEnergyJoules),
    serving_idle_energy_kwh: kwh(t?.idleEnergyJoules),
    serving_idle_energy_share: v(t?.idleEnergyShare),
    serving_prefill_energy_kwh: kwh(t?.prefillEnergyJoules),
    serving_decode_energy_kwh: kwh(t?.decodeEnergyJoules),
    serving_joules_per_generated_token: v(t?.joulesPerGeneratedToken),
    serving_joules_per_request: v(t?.joulesPerRequest),
    serving_g_co2e_per_1k_tokens: v(t?.emissionsGramsPerThousandTokens),
  };
}

/** Header of the HTML's serving table. */
export const SERVING_TABLE_HEADER = [
  "job", "model", "engine", "prompt tokens", "generated tokens", "requests", "energy (IT)", "active", "idle", "idle share",
  "prefill (est.)", "decode (est.)", "J/token", "J/request", "CO2e per 1,000 tokens",
] as const;

/** The HTML's serving table: one row per model of each serving job, then the job's total when it has several. */
export function servingTableRows(jobs: readonly { id: string; serving?: ServingTotals }[]): string[][] {
  const rows: string[][] = [];
  const count = (n: number | null) => (n === null ? "—" : formatCount(n));
  const energy = (n: number | null) => (n === null ? "—" : formatEnergy(n));
  const per = (n: number | null, unit: string) => (n === null ? "—" : formatSi(n, unit));
  for (const j of jobs) {
    const s = j.serving;
    if (!s) continue;
    const parts = s.models.length > 1 ? [...s.models.map((m) => ({ ...m, name: modelText(m.model) })), { ...s.total, name: "all models" }] : [{ ...s.total, name: modelText(s.models[0]?.model ?? "") }];
    for (const f of parts) {
      rows.push([
        j.id, f.name, ENGINE_NAMES[s.engine] ?? s.engine, count(f.promptTokens), count(f.generatedTokens), count(f.requests),
        energy(f.energyJoules), energy(f.activeEnergyJoules), energy(f.idleEnergyJoules), idleShareText(f.idleEnergyShare) || "—", energy(f.prefillEnergyJoules), energy(f.decodeEnergyJoules),
        per(f.joulesPerGeneratedToken, "J"), per(f.joulesPerRequest, "J"), f.emissionsGramsPerThousandTokens === null ? "—" : formatGrams(f.emissionsGramsPerThousandTokens),
      ]);
    }
  }
  return rows;
}
