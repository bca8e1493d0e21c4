/**
 * Bounds on the text a user or another process controls (a command line, an environment value, a
 * pod label, a --tag): applied where it comes in (job sources), again in the exporters and in the
 * state file, so one 1.4 MB command line can never become a 1.4 MB metric label, state entry or
 * /metrics line. Text over a bound is cut and ends in `…#` + 16 hex digits of the SHA-256 of the
 * whole text: two long texts that differ only after the cut stay two identities.
 *
 * Lengths are UTF-16 code units (JavaScript string length); a cut never splits a surrogate pair.
 */
import { createHash } from "node:crypto";

/** Job ids (`KEY=value` of an env selector, a capture group, a pod's namespace/name), characters. */
export const MAX_JOB_ID_CHARS = 256;
/** Job names, characters. */
export const MAX_JOB_NAME_CHARS = 256;
/** Attribute keys (pod label keys are at most 317: a 253-character prefix, '/', 63), characters. */
export const MAX_ATTRIBUTE_KEY_CHARS = 320;
/** Attribute values (Kubernetes label values are at most 63), characters. */
export const MAX_ATTRIBUTE_VALUE_CHARS = 256;
/** Attributes per job (pod attributes, labels, --tag): the first ones, in order, are kept. */
export const MAX_ATTRIBUTES_PER_JOB = 64;

/** Characters of the suffix `…#0123456789abcdef` that marks a cut text. */
const SUFFIX_CHARS = 18;

/** The hash suffix of a text that was cut: `…#` + the first 16 hex digits of its SHA-256. */
function suffix(text: string): string {
  return `…#${createHash("sha256").update(text).digest("hex").slice(0, 16)}`;
}

/**
 * `text` if it has at most `maxChars` characters, else its head and `…#<hash>` in exactly
 * `maxChars` characters (`maxChars` ≥ 32). Idempotent for texts within the bound.
 */
export function boundText(text: string, maxChars: number): string {
  if (text.length <= maxChars) return text;
  let head = maxChars - SUFFIX_CHARS;
  // Never end on the first half of a surrogate pair.
  const code = text.charCodeAt(head - 1);
  if (code >= 0xd800 && code <= 0xdbff) head--;
  return text.slice(0, head) + suffix(text);
}

/** Whether every key and value of `attributes`, and their number, is within the bounds. */
function withinBounds(attributes: Readonly<Record<string, string>>): boolean {
  let n = 0;
  for (const k in attributes) {
    if (++n > MAX_ATTRIBUTES_PER_JOB || k.length > MAX_ATTRIBUTE_KEY_CHARS || attributes[k].length > MAX_ATTRIBUTE_VALUE_CHARS) return false;
  }
  return true;
}

/**
 * Attributes with keys and values bounded (boundText) and at most MAX_ATTRIBUTES_PER_JOB of them
 * (the first, in insertion order). Returns `attributes` itself when nothing is over a bound (the
 * common case costs no copy); otherwise a prototype-free copy.
 */
export function boundAttributes(attributes: Readonly<Record<string, string>>): Record<string, string> {
  if (withinBounds(attributes)) return attributes as Record<string, string>;
  const out = Object.create(null) as Record<string, string>;
  let n = 0;
  for (const k of Object.keys(attributes)) {
    if (n++ >= MAX_ATTRIBUTES_PER_JOB) break;
    out[boundText(k, MAX_ATTRIBUTE_KEY_CHARS)] = boundText(String(attributes[k]), MAX_ATTRIBUTE_VALUE_CHARS);
  }
  return out;
}

/** A job identity with id, name and attributes bounded. */
export function boundJob<T extends { id: string; name: string; attributes: Record<string, string> }>(job: T): T {
  if (job.id.length <= MAX_JOB_ID_CHARS && job.name.length <= MAX_JOB_NAME_CHARS && withinBounds(job.attributes)) return job;
  return { ...job, id: boundText(job.id, MAX_JOB_ID_CHARS), name: boundText(job.name, MAX_JOB_NAME_CHARS), attributes: boundAttributes(job.attributes) };
}
