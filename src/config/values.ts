/**
 * Parsers of single flag and variable values, each throwing UsageError naming the flag or variable
 * and the fix. The config builders of src/config are their only callers.
 */
import { UsageError } from "../errors.js";
import { parseDurationMillis } from "../units.js";
import type { IdlePolicy } from "../core/types.js";

/** A value trimmed; undefined when absent or blank (the one rule for flag and variable text). */
export function nonBlank(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed ? trimmed : undefined;
}

/** --pue: a number >= 1 (facility energy cannot be below IT energy). */
export function parsePue(value: string, flag = "--pue"): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n)) throw new UsageError(flag, `must be a number >= 1.0, got '${value}' (e.g. ${flag} 1.2)`);
  if (n < 1) throw new UsageError(flag, `must be >= 1.0 (facility energy cannot be less than IT energy), got ${value}`);
  return n;
}

/**
 * The longest duration any flag or variable takes: 24 days (2,073,600,000 ms). Node's timers hold
 * at most 2^31 − 1 ms (24.8 days); a longer delay fires after 1 ms, so `--interval 25d` would
 * sample continuously. Longer values are refused, naming this limit.
 */
export const MAX_DURATION_MILLIS = 24 * 86_400_000;

/** UsageError unless `millis` is within MAX_DURATION_MILLIS (the text as given names the value). */
export function checkDurationBound(millis: number, flag: string, text: string): number {
  if (!(millis <= MAX_DURATION_MILLIS)) throw new UsageError(flag, `'${text}' is longer than the maximum of 24d (${MAX_DURATION_MILLIS} ms: Node's timers hold no longer)`);
  return millis;
}

/** A duration flag: "500ms", "2s", "5m", "6h", "1h30m", or seconds; at least `minMillis`, at most MAX_DURATION_MILLIS. Returns ms. */
export function parseDurationFlag(value: string, flag: string, minMillis = 1): number {
  const ms = parseDurationMillis(value);
  if (ms === undefined) throw new UsageError(flag, `must be a duration such as 500ms, 2s, 5m or 1h, got '${value}'`);
  if (ms < minMillis) throw new UsageError(flag, `must be at least ${minMillis} ms, got '${value}'`);
  return checkDurationBound(ms, flag, value);
}

/** --idle-policy: attribute or separate. */
export function parseIdlePolicy(value: string): IdlePolicy {
  if (value === "attribute" || value === "separate") return value;
  throw new UsageError("--idle-policy", `must be 'attribute' or 'separate', got '${value}'`);
}

/** Idle power by device kind and by device id, W. */
export interface IdleWatts {
  byKind: Partial<Record<"cpu" | "gpu" | "memory", number>>;
  byDeviceId: Record<string, number>;
}

/** --idle-watts kind=W or deviceId=W (repeatable). */
export function parseIdleWatts(values: readonly string[]): IdleWatts {
  const byKind: IdleWatts["byKind"] = {};
  const byDeviceId: Record<string, number> = {};
  for (const v of values) {
    const m = /^([^=]+)=(.+)$/.exec(v);
    const w = m ? Number(m[2]) : NaN;
    if (!m || !Number.isFinite(w) || w < 0) throw new UsageError("--idle-watts", `expects KIND=WATTS or DEVICE=WATTS with watts >= 0 (e.g. gpu=70), got '${v}'`);
    if (m[1] === "cpu" || m[1] === "gpu" || m[1] === "memory") byKind[m[1]] = w;
    else byDeviceId[m[1]] = w;
  }
  return { byKind, byDeviceId };
}

/** A number >= 0 (undefined when not given). */
export function parseNonNegative(value: unknown, flag: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  const text = String(value).trim();
  const n = text === "" ? Number.NaN : Number(text);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(flag, `must be a number >= 0, got '${String(value)}'`);
  return n;
}

/** A whole number >= 1. */
export function parseCount(value: string, flag: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new UsageError(flag, `must be a whole number >= 1, got '${value}'`);
  return Number(value);
}

/** A positive whole number of milliseconds, at most MAX_DURATION_MILLIS (the OTEL_* timeouts and intervals). */
export function parsePositiveMillis(value: string, field: string): number {
  // Safe integers only: a 400-digit value would otherwise become Infinity.
  if (!/^\d+$/.test(value) || Number(value) <= 0 || !Number.isSafeInteger(Number(value))) {
    throw new UsageError(field, `'${value}' must be a positive whole number of milliseconds`);
  }
  return checkDurationBound(Number(value), field, value);
}

/** An http:// or https:// URL (OTLP/HTTP endpoints). */
export function parseHttpUrl(text: string, field: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(field, `'${text}' is not a URL (e.g. http://collector:4318)`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UsageError(field, `'${text}': only http:// and https:// are supported (OTLP/HTTP)`);
  }
  return url;
}

/**
 * Parses a W3C-baggage-like "key=value,key2=value2" list (OTEL_RESOURCE_ATTRIBUTES,
 * OTEL_EXPORTER_OTLP_HEADERS): values are percent-decoded, blanks around keys and values trimmed,
 * empty items skipped. Returns an error message (naming the item) instead of throwing.
 */
export function parseKeyValueList(text: string): { ok: true; values: Record<string, string> } | { ok: false; error: string } {
  // Keys are user text: prototype-free, so `__proto__=x` or `constructor=x` is an ordinary key.
  const values = Object.create(null) as Record<string, string>;
  for (const item of text.split(",")) {
    if (item.trim() === "") continue;
    const eq = item.indexOf("=");
    if (eq < 0) return { ok: false, error: `'${item.trim()}' is not key=value` };
    const key = item.slice(0, eq).trim();
    if (key === "") return { ok: false, error: `'${item.trim()}' has an empty key` };
    try {
      values[key] = decodeURIComponent(item.slice(eq + 1).trim());
    } catch {
      return { ok: false, error: `value of '${key}' is not valid percent-encoding` };
    }
  }
  return { ok: true, values };
}

/** Where an endpoint listens. */
export interface ListenAddress {
  host: string;
  port: number;
}

/** Default listen address of the Prometheus endpoint: loopback only (exposing it is an explicit choice). */
export const DEFAULT_PROMETHEUS_HOST = "127.0.0.1";
export const DEFAULT_PROMETHEUS_PORT = 9464;

/**
 * Parses "host:port", "host", ":port", "port" or "[v6]:port" (`field` names it in errors). Missing
 * parts take the defaults. Port 0 asks for any free port.
 */
export function parseListenAddress(
  text: string,
  field: string,
  defaults: ListenAddress = { host: DEFAULT_PROMETHEUS_HOST, port: DEFAULT_PROMETHEUS_PORT },
): ListenAddress {
  const value = text.trim();
  if (value === "") return { ...defaults };
  let host: string | undefined;
  let portText: string | undefined;
  const v6 = /^\[([^\]]+)\](?::(.*))?$/.exec(value);
  if (v6) {
    host = v6[1];
    portText = v6[2];
  } else if (/^\d+$/.test(value)) {
    portText = value;
  } else {
    const colon = value.lastIndexOf(":");
    if (colon >= 0 && value.indexOf(":") !== colon) {
      throw new UsageError(field, `'${text}': write an IPv6 address in brackets, e.g. [::1]:9464`);
    }
    host = colon >= 0 ? value.slice(0, colon) : value;
    portText = colon >= 0 ? value.slice(colon + 1) : undefined;
  }
  let port = defaults.port;
  if (portText !== undefined && portText !== "") {
    if (!/^\d+$/.test(portText) || Number(portText) > 65535) {
      throw new UsageError(field, `'${text}': port must be a number 0..65535`);
    }
    port = Number(portText);
  }
  return { host: host || defaults.host, port };
}

/** Repeatable string flag (commander argParser). */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}
