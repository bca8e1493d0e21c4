/**
 * A strict, bounded reader of the Prometheus text exposition format (version 0.0.4, what every
 * serving engine's `/metrics` answers by default): `# HELP` / `# TYPE` lines, other comments,
 * blank lines, and samples `name{label="value",...} value [timestamp]`.
 *
 * Strict like Prometheus's own scraper: one line that is not valid text exposition rejects the
 * whole body (an HTML error page, a JSON body, truncated garbage), named by its line number. The
 * npm parsers for this format (parse-prometheus-text-format) are unmaintained and build an object
 * for every sample; serving figures need a handful of families out of thousands of series, so
 * every line is validated but only the samples of the families asked for (`wanted`) are kept.
 *
 * Bounds: the body is already capped by the scraper (size); here the number of lines, the labels
 * per sample and the length of a kept label value are bounded, and a body past them is rejected
 * (never half-read).
 */

/** One kept sample. Label values are unescaped; `labels` is prototype-free (names are the endpoint's text). */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** What a body gave. */
export type Exposition =
  | {
      status: "ok";
      /** Kept samples by sample name (only names `wanted` accepted), in body order. */
      samples: Map<string, Sample[]>;
      /** `# TYPE` of every family declared (family name → counter | gauge | histogram | summary | untyped). */
      types: Map<string, string>;
      /** Sample lines in the body (all families). */
      sampleCount: number;
    }
  | { status: "invalid"; reason: string };

export interface ExpositionLimits {
  /** Most lines read (default 200,000: a 5,000-series endpoint has ~6,000). */
  maxLines?: number;
  /** Most labels on one sample (default 64). */
  maxLabels?: number;
  /** Longest label value kept, characters (default 1,024; a longer one rejects the body). */
  maxLabelValueChars?: number;
}

const DEFAULT_MAX_LINES = 200_000;
const DEFAULT_MAX_LABELS = 64;
const DEFAULT_MAX_LABEL_VALUE_CHARS = 1024;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);

// Character classes by code (faster than regular expressions per character).
const isNameStart = (c: number) => (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c === 58;
const isNameChar = (c: number) => isNameStart(c) || (c >= 48 && c <= 57);
const isLabelStart = (c: number) => (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95;
const isLabelChar = (c: number) => isLabelStart(c) || (c >= 48 && c <= 57);
const isBlank = (c: number) => c === 32 || c === 9 || c === 13;

/** A float as Go's strconv.ParseFloat takes it in the format: decimal, exponent, Inf, NaN. */
const FLOAT = /^[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[Ii]nf(?:inity)?|NaN)$/;
const TIMESTAMP = /^-?\d{1,19}$/;

class LineError extends Error {}

/**
 * Parses `text`. `wanted(name)`: whether the samples of that sample name are kept (default: all).
 * Never throws: an invalid body is `{ status: "invalid", reason }` naming the first bad line.
 */
export function parseExposition(text: string, wanted: (sampleName: string) => boolean = () => true, limits: ExpositionLimits = {}): Exposition {
  const maxLines = limits.maxLines ?? DEFAULT_MAX_LINES;
  const samples = new Map<string, Sample[]>();
  const types = new Map<string, string>();
  let sampleCount = 0;
  let lineNo = 0;
  let start = 0;
  const n = text.length;
  while (start < n) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = n;
    lineNo++;
    if (lineNo > maxLines) return { status: "invalid", reason: `more than ${maxLines} lines` };
    try {
      const kept = parseLine(text, start, end, wanted, types, limits);
      if (kept === null) {
        /* blank or comment */
      } else {
        sampleCount++;
        if (kept !== undefined) {
          let list = samples.get(kept.name);
          if (!list) samples.set(kept.name, (list = []));
          list.push(kept);
        }
      }
    } catch (err) {
      if (!(err instanceof LineError)) throw err;
      const shown = text.slice(start, Math.min(end, start + 60)).replace(/[^\x20-\x7e]/g, "?");
      return { status: "invalid", reason: `line ${lineNo}: ${err.message} ('${shown}${end - start > 60 ? "…" : ""}')` };
    }
    start = end + 1;
  }
  return { status: "ok", samples, types, sampleCount };
}

/** null: blank or comment; undefined: a valid sample not wanted; else the sample. */
function parseLine(
  text: string,
  start: number,
  end: number,
  wanted: (name: string) => boolean,
  types: Map<string, string>,
  limits: ExpositionLimits,
): Sample | undefined | null {
  let i = start;
  while (i < end && isBlank(text.charCodeAt(i))) i++;
  if (i === end) return null;
  if (text.charCodeAt(i) === 35 /* # */) {
    parseComment(text.slice(i + 1, end), types);
    return null;
  }
  const nameStart = i;
  if (!isNameStart(text.charCodeAt(i))) throw new LineError("not a metric name");
  while (i < end && isNameChar(text.charCodeAt(i))) i++;
  const name = text.slice(nameStart, i);
  const keep = wanted(name);
  const labels = Object.create(null) as Record<string, string>;
  if (i < end && text.charCodeAt(i) === 123 /* { */) i = parseLabels(text, i + 1, end, keep ? labels : undefined, limits);
  // Value, then an optional timestamp, separated by blanks.
  const rest = text.slice(i, end).trim();
  if (i < end && !isBlank(text.charCodeAt(i))) throw new LineError("expected a blank before the value");
  const fields = rest.split(/[ \t]+/);
  if (rest === "" || fields.length > 2) throw new LineError(rest === "" ? "missing value" : "expected a value and at most a timestamp");
  if (!FLOAT.test(fields[0])) throw new LineError(`'${fields[0].slice(0, 20)}' is not a number`);
  if (fields.length === 2 && !TIMESTAMP.test(fields[1])) throw new LineError("the timestamp is not an integer");
  if (!keep) return undefined;
  return { name, labels, value: parseFloatText(fields[0]) };
}

function parseFloatText(s: string): number {
  const lower = s.toLowerCase();
  if (lower.endsWith("inf") || lower.endsWith("infinity")) return s.startsWith("-") ? -Infinity : Infinity;
  if (lower === "nan") return NaN;
  return Number(s);
}

/** `# HELP name text` and `# TYPE name type` are checked; any other comment is free text. */
function parseComment(body: string, types: Map<string, string>): void {
  const m = /^[ \t]+(HELP|TYPE)[ \t]+(\S+)(?:[ \t]+(.*))?$/.exec(body);
  if (!m) return;
  const [, keyword, family, rest] = m;
  if (!isNameStart(family.charCodeAt(0)) || ![...family].every((ch) => isNameChar(ch.charCodeAt(0)))) {
    throw new LineError(`'${family.slice(0, 40)}' is not a metric name`);
  }
  if (keyword === "TYPE") {
    const type = (rest ?? "").trim();
    if (!TYPES.has(type)) throw new LineError(`unknown metric type '${type.slice(0, 20)}'`);
    types.set(family, type);
  }
}

/** Reads `name="value",...}` from `i` (just after `{`); returns the index after `}`. */
function parseLabels(text: string, i: number, end: number, into: Record<string, string> | undefined, limits: ExpositionLimits): number {
  const maxLabels = limits.maxLabels ?? DEFAULT_MAX_LABELS;
  const maxValue = limits.maxLabelValueChars ?? DEFAULT_MAX_LABEL_VALUE_CHARS;
  let count = 0;
  for (;;) {
    while (i < end && isBlank(text.charCodeAt(i))) i++;
    if (i < end && text.charCodeAt(i) === 125 /* } */) return i + 1;
    if (++count > maxLabels) throw new LineError(`more than ${maxLabels} labels`);
    const nameStart = i;
    if (i >= end || !isLabelStart(text.charCodeAt(i))) throw new LineError("not a label name");
    while (i < end && isLabelChar(text.charCodeAt(i))) i++;
    const label = text.slice(nameStart, i);
    while (i < end && isBlank(text.charCodeAt(i))) i++;
    if (text.charCodeAt(i) !== 61 /* = */) throw new LineError(`expected '=' after label ${label}`);
    i++;
    while (i < end && isBlank(text.charCodeAt(i))) i++;
    if (text.charCodeAt(i) !== 34 /* " */) throw new LineError(`expected '"' to open the value of label ${label}`);
    i++;
    let value = "";
    let from = i;
    for (;;) {
      if (i >= end) throw new LineError(`unterminated value of label ${label}`);
      const c = text.charCodeAt(i);
      if (c === 34) break;
      if (c === 92 /* \ */) {
        const next = text.charCodeAt(i + 1);
        if (next !== 92 && next !== 34 && next !== 110) throw new LineError(`bad escape in the value of label ${label}`);
        value += text.slice(from, i) + (next === 110 ? "\n" : String.fromCharCode(next));
        i += 2;
        from = i;
        continue;
      }
      i++;
    }
    value += text.slice(from, i);
    if (value.length > maxValue) throw new LineError(`the value of label ${label} is longer than ${maxValue} characters`);
    i++;
    if (into) {
      if (label in into) throw new LineError(`label ${label} given twice`);
      into[label] = value;
    }
    while (i < end && isBlank(text.charCodeAt(i))) i++;
    const c = text.charCodeAt(i);
    if (c === 44 /* , */) {
      i++;
      continue;
    }
    if (c === 125) return i + 1;
    throw new LineError("expected ',' or '}' after a label");
  }
}
