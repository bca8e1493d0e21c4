/** All unit conversions live here. Names carry units; these functions are the only place they change. */

export const JOULES_PER_KWH = 3_600_000;
export const JOULES_PER_WH = 3_600;
export const MICROJOULES_PER_JOULE = 1_000_000;
export const MILLIJOULES_PER_JOULE = 1_000;
export const MILLIWATTS_PER_WATT = 1_000;
export const MICROWATTS_PER_WATT = 1_000_000;
export const MILLIS_PER_SECOND = 1_000;
/** Pounds to grams (avoirdupois pound, exact by definition). */
export const GRAMS_PER_POUND = 453.59237;

export const joulesToKwh = (energyJoules: number): number => energyJoules / JOULES_PER_KWH;
export const gramsToKilograms = (massGrams: number): number => massGrams / 1000;
export const kwhToJoules = (energyKwh: number): number => energyKwh * JOULES_PER_KWH;
export const joulesToWh = (energyJoules: number): number => energyJoules / JOULES_PER_WH;
export const microjoulesToJoules = (energyMicrojoules: number): number => energyMicrojoules / MICROJOULES_PER_JOULE;
export const millijoulesToJoules = (energyMillijoules: number): number => energyMillijoules / MILLIJOULES_PER_JOULE;
export const milliwattsToWatts = (powerMilliwatts: number): number => powerMilliwatts / MILLIWATTS_PER_WATT;
export const microwattsToWatts = (powerMicrowatts: number): number => powerMicrowatts / MICROWATTS_PER_WATT;
/** Linux clock ticks (USER_HZ, `getconf CLK_TCK`; 100 on mainstream architectures) to seconds. */
export const clockTicksToSeconds = (durationTicks: number, ticksPerSecond: number): number => durationTicks / ticksPerSecond;
/** Microseconds (cgroup v2 cpu.stat usage_usec) to seconds. */
export const microsToSeconds = (durationMicros: number): number => durationMicros / 1_000_000;
/** Nanoseconds (cgroup v1 cpuacct.usage) to seconds. */
export const nanosToSeconds = (durationNanos: number): number => durationNanos / 1_000_000_000;
export const millisToSeconds = (durationMillis: number): number => durationMillis / MILLIS_PER_SECOND;
export const secondsToMillis = (durationSeconds: number): number => durationSeconds * MILLIS_PER_SECOND;
/** Energy (J) from constant power (W) over a duration (ms). */
export const wattsOverMillisToJoules = (powerWatts: number, durationMillis: number): number =>
  (powerWatts * durationMillis) / MILLIS_PER_SECOND;
/** Average power (W) from energy (J) over a duration (ms); 0 for a zero duration. */
export const joulesOverMillisToWatts = (energyJoules: number, durationMillis: number): number =>
  durationMillis > 0 ? (energyJoules * MILLIS_PER_SECOND) / durationMillis : 0;
/**
 * WattTime MOER, pounds CO2 per MWh, to grams per kWh: lbs/MWh × 453.59237 g/lb ÷ 1000 kWh/MWh.
 */
export const poundsPerMwhToGramsPerKwh = (intensityPoundsPerMwh: number): number =>
  (intensityPoundsPerMwh * GRAMS_PER_POUND) / 1000;

const SI_PREFIXES: readonly [number, string][] = [
  [1e15, "P"], [1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"], [1, ""],
  [1e-3, "m"], [1e-6, "µ"], [1e-9, "n"], [1e-12, "p"],
];

/**
 * The one number format of everything people read: 3 significant digits, an SI prefix, never
 * exponent notation. `formatSi(1234, "J")` → "1.23 kJ", `formatSi(0.000412, "g")` → "412 µg",
 * `formatSi(0, "W")` → "0 W". Magnitudes below 1e-12 (float residue of subtractions) print as 0;
 * above the largest prefix the digits grow ("12300 PJ") rather than switch to an exponent.
 */
export function formatSi(value: number, unit: string): string {
  if (!Number.isFinite(value)) return `${value} ${unit}`;
  const abs = Math.abs(value);
  if (abs < 1e-12) return `0 ${unit}`;
  for (const [i, [scale, prefix]] of SI_PREFIXES.entries()) {
    // Round first, then pick the prefix: 999.6 W rounds to "1.00 kW", not "1000 W".
    const rounded = Number((abs / scale).toPrecision(3));
    if (rounded >= 1 || i === SI_PREFIXES.length - 1) {
      if (rounded >= 1000 && i > 0) continue;
      return `${value < 0 ? "-" : ""}${threeDigits(rounded)} ${prefix}${unit}`;
    }
  }
  return `0 ${unit}`;
}

/** 3 significant digits without exponent notation: 1.5 → "1.50", 12 → "12.0", 412 → "412". */
function threeDigits(v: number): string {
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

/** Energy for people: watt-hours with an SI prefix, "4.56 kWh", "12.3 Wh", "9.58 mWh" (formatSi). */
export function formatEnergy(energyJoules: number): string {
  return formatSi(joulesToWh(energyJoules), "Wh");
}

/** Mass of CO2e (or any mass) for people: "1.23 kg", "12.3 g", "412 mg"; a million grams is "1.00 t". */
export function formatGrams(massGrams: number): string {
  if (Math.abs(massGrams) >= 999_500) return formatSi(massGrams / 1e6, "t");
  return formatSi(massGrams, "g");
}

/** Power for people: "350 W", "1.20 kW". */
export const formatWatts = (powerWatts: number): string => formatSi(powerWatts, "W");

/** Volume of water for people: "1.23 L", "456 mL". */
export const formatLiters = (volumeLiters: number): string => formatSi(volumeLiters, "L");

/** Duration for people: "42.0 s", "12.5 min", "3.20 h", "2.10 d" (3 significant digits). */
export function formatDuration(durationSeconds: number): string {
  const s = Math.abs(durationSeconds);
  if (s < 60) return formatSi(durationSeconds, "s");
  if (s < 3600) return `${threeDigits(Number((s / 60).toPrecision(3)))} min`;
  if (s < 86_400) return `${threeDigits(Number((s / 3600).toPrecision(3)))} h`;
  return `${threeDigits(Number((s / 86_400).toPrecision(3)))} d`;
}

/** A plain quantity (money, ratios) with 3 significant digits and no exponent: 0.000123 → "0.000123". */
export function formatPlain(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (Math.abs(value) < 1e-12) return "0";
  const p = Number(value.toPrecision(3));
  const digits = Math.max(0, 2 - Math.floor(Math.log10(Math.abs(p))));
  return p.toFixed(Math.min(20, digits));
}

/**
 * A count of work (samples, tokens, steps, requests) for people: the whole number with digit
 * grouping, never rounded: 4096 → "4,096", 98304 → "98,304". A count that is not whole (a custom
 * --work-metric counter may be) keeps its fraction to 3 decimals: 1234.5 → "1,234.5".
 */
export function formatCount(count: number): string {
  if (!Number.isFinite(count)) return String(count);
  const abs = Math.abs(count);
  const [whole, fraction] = (Number.isInteger(count) ? abs.toFixed(0) : abs.toFixed(3).replace(/\.?0+$/, "")).split(".");
  const digits = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${count < 0 && (whole !== "0" || fraction) ? "-" : ""}${digits}${fraction ? `.${fraction}` : ""}`;
}

// Case matters where it changes the meaning (MWh is megawatt-hours, mWh milliwatt-hours); the
// unambiguous lower-case spellings people type (kwh, wh, j, kj) are accepted too.
const ENERGY_UNITS: Record<string, number> = {
  J: 1, j: 1, kJ: 1e3, kj: 1e3, MJ: 1e6, GJ: 1e9,
  mWh: JOULES_PER_WH / 1e3, Wh: JOULES_PER_WH, wh: JOULES_PER_WH, kWh: JOULES_PER_KWH, kwh: JOULES_PER_KWH, KWh: JOULES_PER_KWH,
  MWh: 1e3 * JOULES_PER_KWH,
};
const MASS_UNITS: Record<string, number> = { mg: 1e-3, g: 1, kg: 1e3, t: 1e6 };

/**
 * Parses an energy with its unit, "5kWh", "500 Wh", "2.5MJ", "1e3 J". Returns joules, or undefined
 * when the text is not a positive finite number followed by J, kJ, MJ, GJ, mWh, Wh, kWh or MWh.
 */
export function parseEnergyJoules(text: string): number | undefined {
  return parseWithUnit(text, ENERGY_UNITS);
}

/** Parses a mass with its unit, "2kg", "500 g", "1.5t", "20mg". Returns grams, or undefined. */
export function parseMassGrams(text: string): number | undefined {
  return parseWithUnit(text, MASS_UNITS);
}

function parseWithUnit(text: string, units: Record<string, number>): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?(?:e[+-]?\d+)?)\s*([a-zA-Z]+)\s*$/i.exec(text);
  if (!m) return undefined;
  const factor = Object.hasOwn(units, m[2]) ? units[m[2]] : undefined;
  const n = Number(m[1]);
  if (factor === undefined || !Number.isFinite(n) || n <= 0) return undefined;
  return n * factor;
}

/** Parses durations such as "500ms", "2s", "5m", "6h", "1h30m", or a bare number of seconds. Returns millis or undefined. */
export function parseDurationMillis(text: string): number | undefined {
  const trimmed = text.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed) * 1000;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g;
  let total = 0;
  let consumed = 0;
  for (const m of trimmed.matchAll(re)) {
    const n = Number(m[1]);
    const unit = m[2];
    total += n * (unit === "ms" ? 1 : unit === "s" ? 1000 : unit === "m" ? 60_000 : unit === "h" ? 3_600_000 : 86_400_000);
    consumed += m[0].length;
  }
  if (consumed !== trimmed.length || consumed === 0) return undefined;
  return total;
}

export const BYTES_PER_GIB = 1024 ** 3;
/** Bytes to gibibytes (2^30 bytes), the "GB" of cloud memory sizes and of per-GB memory power models. */
export const bytesToGibibytes = (sizeBytes: number): number => sizeBytes / BYTES_PER_GIB;
