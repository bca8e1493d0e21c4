/**
 * The Kubernetes downward API volume, for pod mode: files the kubelet writes under a directory
 * (default /etc/podinfo) from the pod's fieldRefs. Items are named by the pod spec; the defaults
 * are the customary `name`, `namespace`, `uid`, `labels`, `annotations`. The `labels` and
 * `annotations` files hold one `key="value"` line per entry, the value quoted as Go's
 * strconv.Quote does (\" \\ \n \t \xNN \uNNNN escapes).
 */
import { join } from "node:path";
import { boundText, MAX_ATTRIBUTE_KEY_CHARS, MAX_ATTRIBUTE_VALUE_CHARS } from "../core/bounds.js";
import { readRegularFile } from "../procfs/reader.js";

/** What the downward API told. Fields are absent when their file is absent or empty. */
export interface DownwardPodInfo {
  name?: string;
  namespace?: string;
  uid?: string;
  nodeName?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** Files read only up to MAX_DOWNWARD_FILE_BYTES (their cut last line skipped): said by the caller. */
  cut?: string[];
}

/** File names of the items, relative to the directory. */
export interface DownwardFiles {
  name: string;
  namespace: string;
  uid: string;
  nodeName: string;
  labels: string;
  annotations: string;
}

export const DEFAULT_DOWNWARD_FILES: DownwardFiles = {
  name: "name",
  namespace: "namespace",
  uid: "uid",
  nodeName: "nodeName",
  labels: "labels",
  annotations: "annotations",
};

/** Undoes Go strconv.Quote on the inside of a quoted value. Unknown escapes are kept verbatim. */
function unquoteGo(inner: string): string {
  return inner.replace(/\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[abfnrtv\\"'])/g, (_, e: string) => {
    switch (e[0]) {
      case "x":
      case "u":
      case "U":
        return String.fromCodePoint(parseInt(e.slice(1), 16));
      case "n": return "\n";
      case "t": return "\t";
      case "r": return "\r";
      case "a": return "\x07";
      case "b": return "\b";
      case "f": return "\f";
      case "v": return "\v";
      default: return e;
    }
  });
}

/**
 * The most read of one downward API file, bytes (1 MiB): Kubernetes caps a pod's annotations at
 * 256 KiB in all, and labels are far smaller (63-character values). A larger file is read up to
 * the cap; its cut last line is skipped.
 */
export const MAX_DOWNWARD_FILE_BYTES = 1024 * 1024;

/** One `key="value"` line: key and the quoted inside, or undefined. A linear scan (no backtracking regex). */
function splitLabelLine(line: string): [string, string] | undefined {
  const eq = line.indexOf('="');
  if (eq <= 0 || /[\s=]/.test(line.slice(0, eq))) return undefined;
  const start = eq + 2;
  let i = start;
  for (; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c === 0x5c /* \\ */) i++;
    else if (c === 0x22 /* " */) break;
  }
  if (i >= line.length || line.slice(i + 1).trim() !== "") return undefined;
  return [line.slice(0, eq), line.slice(start, i)];
}

/**
 * Pure parser of a downward API labels/annotations file: lines `key="value"`. Lines that are not
 * in that shape are skipped. Note: `\xNN` escapes are taken as code points (Go writes bytes of
 * invalid UTF-8 that way; valid UTF-8 is written as is). Keys and values are bounded
 * (src/core/bounds.ts): a 20 MB label becomes 256 characters ending in its hash.
 */
export function parseDownwardLabels(text: string): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const line of text.split("\n")) {
    const kv = splitLabelLine(line);
    if (kv) out[boundText(kv[0], MAX_ATTRIBUTE_KEY_CHARS)] = boundText(unquoteGo(kv[1]), MAX_ATTRIBUTE_VALUE_CHARS);
  }
  return out;
}

function readTrimmed(path: string, maxChars = MAX_ATTRIBUTE_VALUE_CHARS): string | undefined {
  const bytes = readRegularFile(path, MAX_DOWNWARD_FILE_BYTES);
  const v = bytes?.toString("utf8").trim();
  return v ? boundText(v, maxChars) : undefined;
}

/** A labels/annotations file, up to MAX_DOWNWARD_FILE_BYTES (noting in `cut` when it was longer). */
function readLabelsFile(path: string, cut: string[]): string | undefined {
  const bytes = readRegularFile(path, MAX_DOWNWARD_FILE_BYTES);
  if (bytes && bytes.length >= MAX_DOWNWARD_FILE_BYTES) cut.push(path);
  return bytes?.toString("utf8");
}

/** Reads the downward API directory. Never throws: missing files leave fields absent. */
export function readDownwardApi(dir = "/etc/podinfo", files: Partial<DownwardFiles> = {}): DownwardPodInfo {
  const f = { ...DEFAULT_DOWNWARD_FILES, ...files };
  const cut: string[] = [];
  const info: DownwardPodInfo = {
    labels: parseDownwardLabels(readLabelsFile(join(dir, f.labels), cut) ?? ""),
    annotations: parseDownwardLabels(readLabelsFile(join(dir, f.annotations), cut) ?? ""),
  };
  if (cut.length > 0) info.cut = cut;
  const name = readTrimmed(join(dir, f.name));
  const namespace = readTrimmed(join(dir, f.namespace));
  const uid = readTrimmed(join(dir, f.uid));
  const nodeName = readTrimmed(join(dir, f.nodeName));
  if (name) info.name = name;
  if (namespace) info.namespace = namespace;
  if (uid) info.uid = uid;
  if (nodeName) info.nodeName = nodeName;
  return info;
}
