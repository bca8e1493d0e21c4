/**
 * Which kind of grid intensity a figure is: average (the emissions of the whole generation mix per
 * kWh) or marginal (the emissions of the generator that answers one more kWh). The two are not
 * comparable (Green-Software-Foundation/carbon-aware-sdk#573), so every planned or disclosed figure
 * names its kind, and plans never rank one kind against the other.
 */

/** average | marginal | unknown (the source does not say, e.g. the Carbon Aware SDK or a fixed value). */
export type IntensityKind = "average" | "marginal" | "unknown";

/** A kind with the detail the provider gives (Electricity Maps: lifecycle or direct factors). */
export interface KindLabel {
  kind: IntensityKind;
  /** "lifecycle", "direct", or why the kind is unknown. */
  detail?: string;
}

/** Kind of each provider's values when the reading does not say (providers' documentation). */
const BY_SOURCE: Record<string, KindLabel> = {
  watttime: { kind: "marginal", detail: "MOER" },
  electricitymaps: { kind: "average", detail: "lifecycle" },
  "uk-carbon-intensity": { kind: "average" },
  "static-table": { kind: "average", detail: "annual" },
  "world-average": { kind: "average", detail: "annual" },
  scenario: { kind: "unknown", detail: "scenario value" },
  "carbon-aware-sdk": { kind: "unknown", detail: "the Carbon Aware SDK does not say; it depends on its data source (WattTime: marginal, Electricity Maps: average)" },
  fixed: { kind: "unknown", detail: "fixed value given with --intensity" },
};

/** The kind of a reading from its `emissionFactorType` (when given) or its source. */
export function intensityKind(source: string, emissionFactorType?: string): KindLabel {
  const t = emissionFactorType?.toLowerCase();
  if (t === "marginal") return { kind: "marginal", detail: BY_SOURCE[source]?.detail };
  if (t === "lifecycle" || t === "direct") return { kind: "average", detail: t };
  if (t === "average") return { kind: "average", detail: BY_SOURCE[source]?.detail };
  return Object.hasOwn(BY_SOURCE, source) ? BY_SOURCE[source] : { kind: "unknown", detail: `source '${source}' does not say` };
}

/** "average (lifecycle)", "marginal (MOER)", "unknown". */
export function formatKind(k: KindLabel): string {
  return k.detail && k.kind !== "unknown" ? `${k.kind} (${k.detail})` : k.kind;
}
