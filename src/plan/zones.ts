/**
 * The intensity series of one zone for the planner: the provider's forecast when it has one; else
 * what the zone has, labelled: the provider's latest (historical) value, or the static table's
 * annual average (both the same for every start). A zone with none of these is bad input.
 */
import { ProviderError, UsageError, errorMessage } from "../errors.js";
import type { IntensityProvider, IntensityReading } from "../core/contracts.js";
import { intensityKind, type KindLabel } from "./kind.js";
import { constantSlots, type IntensitySlot } from "./planner.js";
import { formatPlain } from "../units.js";

/** Where a zone's figures come from. */
export type Basis = "forecast" | "latest" | "static";

/** One zone's intensity over the window, with its provenance. */
export interface ZoneSeries {
  zone: string;
  /** Provider id ("uk-carbon-intensity", "static-table", ...). */
  provider: string;
  basis: Basis;
  kind: KindLabel;
  slots: IntensitySlot[];
  /** Last moment the forecast covers (forecast basis only), epoch ms. */
  horizonUntilMillis?: number;
  /** One line: what was used and why. */
  note: string;
}

const iso = (ms: number) => new Date(ms).toISOString().replace(":00.000Z", "Z");

/** Forecast readings → sorted slots (a reading without an end holds until the next one; the last needs one). */
export function slotsFromReadings(readings: readonly IntensityReading[]): IntensitySlot[] {
  const sorted = readings.filter((r) => r.validFrom).sort((a, b) => a.validFrom!.getTime() - b.validFrom!.getTime());
  const slots: IntensitySlot[] = [];
  sorted.forEach((r, i) => {
    const fromMillis = r.validFrom!.getTime();
    const untilMillis = r.validUntil?.getTime() ?? sorted[i + 1]?.validFrom?.getTime();
    if (untilMillis === undefined || untilMillis <= fromMillis) return;
    // Overlapping points (a provider's rolling windows) would count twice: keep the first.
    const prev = slots[slots.length - 1];
    if (prev && fromMillis < prev.untilMillis) return;
    slots.push({ fromMillis, untilMillis, gramsPerKwh: r.intensityGramsPerKwh });
  });
  return slots;
}

/** Dependencies of zoneSeries. */
export interface ZoneSources {
  /** The zone's provider (undefined for the static table). */
  provider?: IntensityProvider;
  /** The static table's reading for the zone, or undefined when the table does not know it. */
  staticReading(zone: string): IntensityReading | undefined;
}

/** The zone's series over [windowStartMillis, windowEndMillis). Throws UsageError for a zone without any data. */
export async function zoneSeries(zone: string, sources: ZoneSources, windowStartMillis: number, windowEndMillis: number): Promise<ZoneSeries> {
  const provider = sources.provider;
  const why: string[] = [];
  if (provider?.forecast) {
    const hours = Math.max(1, Math.ceil((windowEndMillis - windowStartMillis) / 3_600_000));
    try {
      const readings = await provider.forecast(zone, hours);
      const slots = slotsFromReadings(readings);
      if (slots.length > 0) {
        const horizonUntilMillis = slots[slots.length - 1].untilMillis;
        const stepMinutes = (slots[0].untilMillis - slots[0].fromMillis) / 60_000;
        return {
          zone,
          provider: provider.id,
          basis: "forecast",
          kind: intensityKind(provider.id, readings[0].emissionFactorType),
          slots,
          horizonUntilMillis,
          note: `${provider.id} forecast: ${slots.length} slots of ${stepMinutes} min, ${iso(slots[0].fromMillis)} to ${iso(horizonUntilMillis)}`,
        };
      }
      why.push(`${provider.id} returned an empty forecast`);
    } catch (err) {
      if (!(err instanceof ProviderError)) throw err;
      why.push(`${provider.id} forecast unavailable (${errorMessage(err)})`);
    }
  } else if (provider && provider.id !== "static-table") {
    why.push(`${provider.id} gives no forecast`);
  }
  if (provider && provider.id !== "static-table") {
    try {
      const r = await provider.at(zone, new Date(windowStartMillis));
      const when = r.validFrom ? ` of ${iso(r.validFrom.getTime())}` : "";
      return {
        zone,
        provider: provider.id,
        basis: "latest",
        kind: intensityKind(provider.id, r.emissionFactorType),
        slots: constantSlots(r.intensityGramsPerKwh, windowStartMillis, windowEndMillis),
        note: `no forecast (${why.join("; ")}): ${provider.id}'s latest value${when}, ${formatPlain(r.intensityGramsPerKwh)} gCO2e/kWh, used for every start`,
      };
    } catch (err) {
      if (!(err instanceof ProviderError)) throw err;
      why.push(`no latest value either (${errorMessage(err)})`);
    }
  }
  const s = sources.staticReading(zone);
  if (s) {
    const prefix = why.length ? `no forecast (${why.join("; ")})` : "no forecast (static table)";
    return {
      zone,
      provider: "static-table",
      basis: "static",
      kind: intensityKind("static-table", s.emissionFactorType),
      slots: constantSlots(s.intensityGramsPerKwh, windowStartMillis, windowEndMillis),
      note: `${prefix}: ${s.note ?? "annual average"}, ${formatPlain(s.intensityGramsPerKwh)} gCO2e/kWh, used for every start`,
    };
  }
  throw new UsageError("--zones", `zone '${zone}' has no data: ${why.join("; ") || "no provider"}, and the static table does not know it; drop it or give its provider (PROVIDER:ZONE)`);
}
