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

/** Human-readable energy in Wh or kWh: "4.560 kWh", "12.300 Wh", "0.00958 Wh" (3 significant digits below 1 Wh). */
export function formatEnergy(energyJoules: number): string {
  const wh = joulesToWh(energyJoules);
  if (Math.abs(wh) >= 1000) return `${(wh / 1000).toFixed(3)} kWh`;
  // Below a microwatt-hour (3.6 mJ) is float residue of a subtraction, not energy: no "3.6e-17 Wh".
  if (Math.abs(wh) < 1e-6) return "0.000 Wh";
  if (Math.abs(wh) >= 1) return `${wh.toFixed(3)} Wh`;
  return `${Number(wh.toPrecision(3))} Wh`;
}

/** Human-readable mass of CO2e: "1.234 kg", "12.300 g", "0.000412 g" (3 significant digits below 1 g). */
export function formatGrams(massGrams: number): string {
  if (Math.abs(massGrams) >= 1000) return `${(massGrams / 1000).toFixed(3)} kg`;
  if (Math.abs(massGrams) >= 1 || Math.abs(massGrams) < 1e-9) return `${massGrams.toFixed(3)} g`;
  return `${Number(massGrams.toPrecision(3))} g`;
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
