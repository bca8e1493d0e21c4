/**
 * The one HTTP GET the grid providers use: global fetch with a timeout, every failure turned into a
 * ProviderError of a known kind, and every secret redacted from every message.
 */
import { ProviderError } from "../errors.js";

/** Options shared by every live provider. */
export interface HttpOptions {
  /** fetch implementation (default: global fetch). */
  fetch?: typeof fetch;
  /** Per-request deadline, connection to last body byte (default 10 s). */
  timeoutMillis?: number;
  /** Largest body read, bytes (default MAX_RESPONSE_BYTES); a larger one is refused unread. */
  maxResponseBytes?: number;
}

/** Largest provider response read, bytes: real ones are a few KiB (a 72 h forecast ~50 KiB). */
export const MAX_RESPONSE_BYTES = 1 << 20;

/**
 * Highest grid intensity taken as real, gCO2e/kWh. The dirtiest national grids average under
 * 1,100 (Our World in Data, data/grid_intensity.csv) and lignite plants emit ~1,200 per kWh; a
 * marginal (MOER) value can exceed the average, so the bound leaves room: 2,500.
 */
export const MAX_PLAUSIBLE_GRAMS_PER_KWH = 2500;

/** Short reason text of each ProviderError kind, used in fallback counts and warnings. */
export const PROVIDER_ERROR_REASONS: Record<string, string> = {
  auth: "auth",
  "rate-limit": "rate-limit",
  http: "http",
  timeout: "timeout",
  malformed: "malformed",
  network: "network",
  "no-data": "no-data",
  "too-large": "response too large",
  implausible: "implausible value",
};

/** Replaces every secret (keys, passwords, tokens) in `text` with "***". */
export function redact(text: string, secrets: readonly (string | undefined)[]): string {
  let out = text;
  for (const s of secrets) if (s && s.length >= 3) out = out.split(s).join("***");
  return out;
}

/** Parses Retry-After: delta seconds or an HTTP date, relative to `nowMillis`. Undefined when absent or unreadable. */
export function parseRetryAfterMillis(value: string | null, nowMillis: number): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMillis);
}

/** A short reason from an error body: {"error": ...}, {"message": ...}, {"title": ...} or the start of the text. */
function bodyReason(text: string): string {
  try {
    const body = JSON.parse(text) as Record<string, unknown>;
    const parts = [body.error, body.message, body.title, body.detail].filter((v) => typeof v === "string");
    if (parts.length > 0) return parts.join(": ");
  } catch {
    // not JSON: fall through to the raw text
  }
  return text.replace(/\s+/g, " ").slice(0, 200);
}

/**
 * GET `url` and parse JSON. Throws ProviderError with kind "auth" (401, 403), "rate-limit" (429,
 * with retryAfterMillis), "no-data" (404), "http" (other non-2xx), "timeout", "network" or
 * "malformed" (a body that is not JSON). Messages name the provider, path and status, never the URL's
 * query secrets or any header, and pass through `redact`.
 */
export async function getJson(
  providerId: string,
  url: URL,
  init: { headers?: Record<string, string>; secrets?: readonly (string | undefined)[]; http?: HttpOptions; nowMillis?: () => number },
): Promise<unknown> {
  const doFetch = init.http?.fetch ?? globalThis.fetch;
  const timeoutMillis = init.http?.timeoutMillis ?? 10_000;
  const secrets = init.secrets ?? [];
  const where = `GET ${url.pathname}`;
  let res: Response;
  try {
    res = await doFetch(url, { headers: { accept: "application/json", ...init.headers }, signal: AbortSignal.timeout(timeoutMillis) });
  } catch (err) {
    const name = (err as { name?: string })?.name;
    if (name === "TimeoutError" || name === "AbortError") {
      throw new ProviderError(providerId, "timeout", `${where} timed out after ${timeoutMillis} ms`, { cause: err });
    }
    const code = (err as { cause?: { code?: string } })?.cause?.code;
    throw new ProviderError(providerId, "network", redact(`${where} failed: ${code ?? (err as Error)?.message ?? String(err)}`, secrets), { cause: err });
  }
  const text = await readCapped(providerId, where, res, init.http?.maxResponseBytes ?? MAX_RESPONSE_BYTES);
  if (!res.ok) {
    const reason = redact(bodyReason(text), secrets);
    const status = `${where} → HTTP ${res.status}${reason ? ` (${reason})` : ""}`;
    if (res.status === 401 || res.status === 403) {
      throw new ProviderError(providerId, "auth", `${status}: the credentials were refused`);
    }
    if (res.status === 429) {
      const retryAfterMillis = parseRetryAfterMillis(res.headers.get("retry-after"), init.nowMillis?.() ?? Date.now());
      throw new ProviderError(providerId, "rate-limit", `${status}: rate limited`, { retryAfterMillis });
    }
    if (res.status === 404) throw new ProviderError(providerId, "no-data", status);
    throw new ProviderError(providerId, "http", status);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new ProviderError(providerId, "malformed", `${where}: the body is not JSON (${text.length} bytes)`, { cause: err });
  }
}

/**
 * Reads a response body as UTF-8, at most `maxBytes`: a Content-Length above it is refused before
 * reading, and a streamed body is cancelled as soon as it passes it (kind "too-large"), so a 20 MB
 * answer costs at most ~1 MiB of memory. Read errors are "timeout" (the deadline) or "network".
 * Also the serving scraper's body reader (src/serving/scraper.ts).
 */
export async function readCapped(providerId: string, where: string, res: Response, maxBytes: number): Promise<string> {
  const tooLarge = (what: string) =>
    new ProviderError(providerId, "too-large", `${where}: response too large (${what}, limit ${maxBytes} bytes)`);
  const declared = Number(res.headers.get("content-length"));
  if (Number.isFinite(declared) && declared > maxBytes) {
    await res.body?.cancel().catch(() => {});
    throw tooLarge(`Content-Length ${declared}`);
  }
  if (!res.body) return "";
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        await reader.cancel().catch(() => {});
        throw tooLarge(`more than ${maxBytes} bytes`);
      }
      chunks.push(value);
    }
  } catch (err) {
    if (err instanceof ProviderError) throw err;
    const name = (err as { name?: string })?.name;
    const kind = name === "TimeoutError" || name === "AbortError" ? "timeout" : "network";
    throw new ProviderError(providerId, kind, `${where}: reading the body failed (${kind})`, { cause: err });
  }
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * Refuses a physically implausible intensity (outside 0..MAX_PLAUSIBLE_GRAMS_PER_KWH gCO2e/kWh,
 * or not finite) with kind "implausible": a provider's bug or a unit mix-up must not multiply a
 * job's energy unnoticed.
 */
export function plausibleIntensity(providerId: string, gramsPerKwh: number, field: string): number {
  if (!Number.isFinite(gramsPerKwh) || gramsPerKwh < 0 || gramsPerKwh > MAX_PLAUSIBLE_GRAMS_PER_KWH) {
    throw new ProviderError(
      providerId,
      "implausible",
      `${field} = ${gramsPerKwh} gCO2e/kWh is outside the plausible range 0..${MAX_PLAUSIBLE_GRAMS_PER_KWH}; refused`,
    );
  }
  return gramsPerKwh;
}

/** Throws a "malformed" ProviderError unless `cond` holds. */
export function expectShape(providerId: string, cond: unknown, what: string): asserts cond {
  if (!cond) throw new ProviderError(providerId, "malformed", `unexpected response: ${what}`);
}

/** Latest date a provider may give: 2200-01-01 (so adding a validity period stays a valid Date). */
const MAX_DATE_MILLIS = Date.UTC(2200, 0, 1);

/** The value as an object (not null, not an array), or a "malformed" ProviderError naming the field. */
export function asObject(providerId: string, value: unknown, field: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ProviderError(providerId, "malformed", `unexpected response: ${field} is not an object`);
  }
  return value as Record<string, unknown>;
}

/** Parses an ISO date string (1970..2200), or throws a "malformed" ProviderError naming the field. */
export function parseDate(providerId: string, value: unknown, field: string): Date {
  const d = typeof value === "string" ? new Date(value) : undefined;
  if (!d || Number.isNaN(d.getTime()) || d.getTime() < 0 || d.getTime() > MAX_DATE_MILLIS) {
    throw new ProviderError(providerId, "malformed", `unexpected response: ${field} is not a date (${String(JSON.stringify(value)).slice(0, 80)})`);
  }
  return d;
}

/**
 * Parses a finite non-negative number, or throws a "malformed" ProviderError naming the field.
 * With `plausibleGramsPerKwh` (values already in gCO2e/kWh) it also applies plausibleIntensity.
 */
export function parseIntensity(providerId: string, value: unknown, field: string, plausibleGramsPerKwh = false): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new ProviderError(providerId, "malformed", `unexpected response: ${field} is not a number >= 0 (${String(JSON.stringify(value)).slice(0, 80)})`);
  }
  return plausibleGramsPerKwh ? plausibleIntensity(providerId, value, field) : value;
}

/** Joins a base URL (which may carry a path prefix) and a path, keeping the prefix. */
export function joinUrl(base: string, path: string): URL {
  const b = base.endsWith("/") ? base : `${base}/`;
  return new URL(path.replace(/^\//, ""), b);
}
