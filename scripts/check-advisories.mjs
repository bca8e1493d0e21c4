#!/usr/bin/env node
// `npm audit` is refused by the registry this project uses, so this compares every version in
// package-lock.json against a small list of published advisories for packages of this tree (and
// packages often pulled into such trees). Each entry names its GHSA/CVE id, so it can be checked
// against https://github.com/advisories. Extend the list when adding a dependency.
// Usage: node scripts/check-advisories.mjs [path/to/package-lock.json]; exit 1 when one matches.
import { readFileSync } from "node:fs";

/** [package, vulnerable ranges (any matches), id, summary] */
export const ADVISORIES = [
  ["xml2js", ["<0.5.0"], "GHSA-776f-qx25-q3cc / CVE-2023-0842", "prototype pollution"],
  ["systeminformation", ["<5.3.1"], "GHSA-2m8v-572m-ff2v / CVE-2021-21315", "command injection"],
  ["systeminformation", ["<5.21.7"], "GHSA-gx6r-qc2v-3p3v / CVE-2023-42810", "command injection (SSID)"],
  ["systeminformation", ["<5.23.7"], "GHSA-cvv5-9h9w-qp2m / CVE-2024-56334", "command injection (getWindowsIEEE8021x)"],
  ["yaml", [">=2.0.0-5 <2.2.2"], "GHSA-f9xv-q969-pqx4 / CVE-2023-2251", "uncaught exception on crafted input"],
  ["zod", ["<3.22.3"], "GHSA-m95q-7qp3-xv42 / CVE-2023-4316", "ReDoS in email validation"],
  ["vite", ["<4.5.10", ">=5.0.0 <5.4.15", ">=6.0.0 <6.2.3"], "GHSA-x574-m823-4x7w / CVE-2025-30208", "server.fs.deny bypass"],
  ["vitest", ["<1.6.1", ">=2.0.0 <2.1.9", ">=3.0.0 <3.0.5"], "GHSA-9crc-q9x8-hgqq / CVE-2025-24964", "RCE through the API server"],
  ["nanoid", ["<3.3.8", ">=4.0.0 <5.0.9"], "GHSA-mwcw-c2x4-8c55 / CVE-2024-55565", "predictable ids for non-integer sizes"],
  ["postcss", ["<8.4.31"], "GHSA-7fh5-64p2-3v2j / CVE-2023-44270", "line return parsing error"],
  ["protobufjs", [">=6.10.0 <6.11.4", ">=7.0.0 <7.2.5"], "GHSA-h755-8qp9-cq85 / CVE-2023-36665", "prototype pollution"],
  ["semver", ["<5.7.2", ">=6.0.0 <6.3.1", ">=7.0.0 <7.5.2"], "GHSA-c2qf-rxjj-qqgw / CVE-2022-25883", "ReDoS"],
  ["micromatch", ["<4.0.8"], "GHSA-952p-6rrq-rcjv / CVE-2024-4067", "ReDoS"],
  ["braces", ["<3.0.3"], "GHSA-grv7-fg5c-xmjg / CVE-2024-4068", "memory exhaustion"],
  ["cross-spawn", ["<6.0.6", ">=7.0.0 <7.0.5"], "GHSA-3xgq-45jj-v275 / CVE-2024-21538", "ReDoS"],
  ["ws", ["<5.2.4", ">=6.0.0 <6.2.3", ">=7.0.0 <7.5.10", ">=8.0.0 <8.17.1"], "GHSA-3h5v-q93c-6h6q / CVE-2024-37890", "DoS with many headers"],
  ["esbuild", ["<=0.24.2"], "GHSA-67mh-4wv8-2f99", "dev server answers any origin"],
  ["rollup", ["<2.79.2", ">=3.0.0 <3.29.5", ">=4.0.0 <4.22.4"], "GHSA-gcx4-mw62-g8wm / CVE-2024-47068", "DOM clobbering XSS in bundles"],
];

/** [major, minor, patch, prerelease?] of "1.2.3" or "1.2.3-beta.1". */
function parse(v) {
  const m = /^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?/.exec(v);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3]), m[4]] : undefined;
}
/** Compares two versions; a prerelease sorts before its release (prerelease tags compared as text). */
function compare(a, b) {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  if (a[3] === b[3]) return 0;
  if (a[3] === undefined) return 1;
  if (b[3] === undefined) return -1;
  return a[3] < b[3] ? -1 : 1;
}
/** Does `version` satisfy a range of space-separated comparators (">=1.0.0 <2.0.0", "<=0.24.2")? */
export function inRange(version, range) {
  const v = parse(version);
  if (!v) return false;
  return range.split(/\s+/).every((c) => {
    const m = /^(<=|>=|<|>|=)?(.+)$/.exec(c);
    const r = parse(m[2]);
    const d = compare(v, r);
    return { "<": d < 0, "<=": d <= 0, ">": d > 0, ">=": d >= 0, "=": d === 0 }[m[1] ?? "="];
  });
}

const lockPath = process.argv[2] ?? new URL("../package-lock.json", import.meta.url).pathname;
const lock = JSON.parse(readFileSync(lockPath, "utf8"));
const installed = Object.entries(lock.packages ?? {})
  .filter(([path]) => path.includes("node_modules/"))
  .map(([path, meta]) => ({ name: path.slice(path.lastIndexOf("node_modules/") + "node_modules/".length), version: meta.version, path }));
const hits = [];
for (const pkg of installed) {
  for (const [name, ranges, id, summary] of ADVISORIES) {
    if (pkg.name === name && ranges.some((r) => inRange(pkg.version, r))) hits.push(`${pkg.path}@${pkg.version}: ${id} (${summary}); vulnerable ${ranges.join(" || ")}`);
  }
}
const covered = new Set(ADVISORIES.map((a) => a[0]).filter((n) => installed.some((p) => p.name === n)));
console.log(`check-advisories: ${installed.length} installed packages, ${ADVISORIES.length} advisories; in this tree: ${[...covered].join(", ") || "none"}`);
for (const h of hits) console.log(`check-advisories: VULNERABLE ${h}`);
if (hits.length === 0) console.log("check-advisories: no installed version is in a listed vulnerable range");
process.exit(hits.length ? 1 : 0);
