/**
 * The Kubernetes downward API volume, for pod mode: files the kubelet writes under a directory
 * (default /etc/podinfo) from the pod's fieldRefs. Items are named by the pod spec; the defaults
 * are the customary `name`, `namespace`, `uid`, `labels`, `annotations`. The `labels` and
 * `annotations` files hold one `key="value"` line per entry, the value quoted as Go's
 * strconv.Quote does (\" \\ \n \t \xNN \uNNNN escapes).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

/** What the downward API told. Fields are absent when their file is absent or empty. */
export interface DownwardPodInfo {
  name?: string;
  namespace?: string;
  uid?: string;
  nodeName?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
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
 * Pure parser of a downward API labels/annotations file: lines `key="value"`. Lines that are not
 * in that shape are skipped. Note: `\xNN` escapes are taken as code points (Go writes bytes of
 * invalid UTF-8 that way; valid UTF-8 is written as is).
 */
export function parseDownwardLabels(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^([^=\s]+)="((?:[^"\\]|\\.)*)"\s*$/.exec(line);
    if (m) out[m[1]] = unquoteGo(m[2]);
  }
  return out;
}

function readTrimmed(path: string): string | undefined {
  try {
    const v = readFileSync(path, "utf8").trim();
    return v === "" ? undefined : v;
  } catch {
    return undefined;
  }
}

/** Reads the downward API directory. Never throws: missing files leave fields absent. */
export function readDownwardApi(dir = "/etc/podinfo", files: Partial<DownwardFiles> = {}): DownwardPodInfo {
  const f = { ...DEFAULT_DOWNWARD_FILES, ...files };
  const info: DownwardPodInfo = {
    labels: parseDownwardLabels(readTrimmed(join(dir, f.labels)) ?? ""),
    annotations: parseDownwardLabels(readTrimmed(join(dir, f.annotations)) ?? ""),
  };
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
