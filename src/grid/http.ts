/**
 * The one HTTP GET the grid providers use: global fetch with a timeout, every failure turned into a
 * ProviderError of a known kind, and every secret redacted from every message.
 */
import { ProviderError } from "../errors.js";

/** Options shared by every live provider. */
export interface HttpOptions {
  /** fetch implementation (default: global fetch). */
  fetch?: typeof fetch;
  /** Per-request timeout (default 10 s). */
  timeoutMillis?: number;
}

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
  let text: string;
  try {
    text = await res.text();
  } catch (err) {
    const name = (err as { name?: string })?.name;
    const kind = name === "TimeoutError" || name === "AbortError" ? "timeout" : "network";
    throw new ProviderError(providerId, kind, `${where}: reading the body failed (${kind})`, { cause: err });
  }
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

/** Throws a "malformed" ProviderError unless `cond` holds. */
export function expectShape(providerId: string, cond: unknown, what: string): asserts cond {
  if (!cond) throw new ProviderError(providerId, "malformed", `unexpected response: ${what}`);
}

/** Parses an ISO date string, or throws a "malformed" ProviderError naming the field. */
export function parseDate(providerId: string, value: unknown, field: string): Date {
  const d = typeof value === "string" ? new Date(value) : undefined;
  if (!d || Number.isNaN(d.getTime())) throw new ProviderError(providerId, "malformed", `unexpected response: ${field} is not a date (${JSON.stringify(value)})`);
  return d;
}

/** Parses a finite non-negative number, or throws a "malformed" ProviderError naming the field. */
export function parseIntensity(providerId: string, value: unknown, field: string): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new ProviderError(providerId, "malformed", `unexpected response: ${field} is not a number >= 0 (${JSON.stringify(value)})`);
  }
  return value;
}

/** Joins a base URL (which may carry a path prefix) and a path, keeping the prefix. */
export function joinUrl(base: string, path: string): URL {
  const b = base.endsWith("/") ? base : `${base}/`;
  return new URL(path.replace(/^\//, ""), b);
}
