// Shared pieces of the fuzz tests: the run count (1,000 in `npm test`, FUZZ_RUNS=100000 in
// `npm run soak`), the closed set of errors a parser may throw, and a deep finiteness check.
import fc from "fast-check";
import { CollectorError, ExportError, ProviderError, UsageError } from "../../src/errors.js";

/** Inputs per property: FUZZ_RUNS, default 1,000. */
export const RUNS = Number(process.env.FUZZ_RUNS ?? 1000);
/** fast-check parameters every property uses (seeded by fast-check; a failure prints its seed). */
export const params = { numRuns: RUNS } as const;
/** Test timeout scaled to the run count. */
export const timeoutMillis = Math.max(60_000, RUNS * 5);

const TYPED = [UsageError, CollectorError, ExportError, ProviderError];

/** Runs `fn`; a throw other than the project's typed errors fails the property. */
export function typedOnly<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch (err) {
    if (TYPED.some((C) => err instanceof C)) return undefined;
    throw new Error(`threw ${(err as Error)?.name ?? typeof err}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
}

/** Async typedOnly. */
export async function typedOnlyAsync<T>(fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (err) {
    if (TYPED.some((C) => err instanceof C)) return undefined;
    throw new Error(`threw ${(err as Error)?.name ?? typeof err}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
}

/** Throws when any number (or Date) reachable from `value` is not finite; names its path. */
export function assertFinite(value: unknown, path = "$", seen = new Set<unknown>()): void {
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new Error(`${path} = ${value} is not finite`);
    return;
  }
  if (value instanceof Date) {
    if (!Number.isFinite(value.getTime())) throw new Error(`${path} is an invalid Date`);
    return;
  }
  if (typeof value !== "object" || value === null || seen.has(value)) return;
  seen.add(value);
  if (value instanceof Map) {
    for (const [k, v] of value) assertFinite(v, `${path}.get(${String(k)})`, seen);
    return;
  }
  for (const key of Object.keys(value)) assertFinite((value as Record<string, unknown>)[key], `${path}.${key}`, seen);
}

/** Strings likely to break number parsing: huge digit runs, exponents, signs, NaN, Infinity. */
export const numberish = fc.oneof(
  fc.integer().map(String),
  fc.double().map(String),
  fc.stringMatching(/^[0-9]{1,400}$/),
  fc.constantFrom("NaN", "Infinity", "-Infinity", "1e999", "-0", "", " ", "0x1f", "1_000", "+5", "9007199254740993", "[N/A]", "N/A"),
);

/** A text made of the given pieces and noise, for line/field oriented formats. */
export const noisy = (pieces: fc.Arbitrary<string>) => fc.array(fc.oneof(pieces, fc.string(), fc.constantFrom(" ", "\n", "\t", "(", ")", "\0")), { maxLength: 60 }).map((a) => a.join(""));
