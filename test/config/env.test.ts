/**
 * The environment powerprint reads (issue 16 item 1: one environment reader, src/config/env.ts)
 * against the docs, both ways: every variable of ENV_VARIABLES is a row of docs/cli.md's table of
 * environment variables and every name of that table is read; every POWERPRINT_ or OTEL_ variable
 * any doc names is read, unless it is one powerprint sets or a build script's (listed, with why).
 * And nothing below the CLI reads `process.env` or imports commander. Each check is shown to fail
 * on a broken copy.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { ENV_VARIABLES, readEnvironment } from "../../src/config/env.js";

const root = resolve(import.meta.dirname, "..", "..");
const read = (path: string) => readFileSync(join(root, path), "utf8");
const cliDoc = read("docs/cli.md");
const docs = [...readdirSync(join(root, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`), "README.md"].map((path) => ({ path, text: read(path) }));
const READ = Object.keys(ENV_VARIABLES);

/** POWERPRINT_ and OTEL_ variables the docs name that powerprint does not read, and why. */
const NOT_READ: Record<string, string> = {
  POWERPRINT_MARKS: "set by run (or a pod's spec) for the training command; read by the marks helper, never by powerprint",
  POWERPRINT_BUILD_OTELCOL: "a switch of .ci/run (build the OpenTelemetry Collector for the deploy checks), not of powerprint",
};

/** The variables named in the first column of docs/cli.md's "Environment variables" table. */
function tableVariables(cliText: string): string[] {
  const section = cliText.split(/^## /m).find((s) => s.startsWith("Environment variables"));
  if (!section) return [];
  const rows = section.split("\n").filter((l) => /^\| `/.test(l));
  return rows.flatMap((row) => [...row.split("|")[1].matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((m) => m[1]));
}

/**
 * The POWERPRINT_ and OTEL_ variables a text names: `OTEL_EXPORTER_OTLP_(METRICS_)HEADERS` names
 * both spellings; a bare prefix (`OTEL_*`) names none.
 */
function namedVariables(text: string): string[] {
  const out = new Set<string>();
  for (const m of text.matchAll(/\b(?:POWERPRINT|OTEL)_[A-Z0-9_]*(?:\([A-Z0-9_]+\)[A-Z0-9_]*)*/g)) {
    let spellings = [""];
    for (const part of m[0].split(/(\([A-Z0-9_]+\))/)) {
      const optional = /^\((.*)\)$/.exec(part);
      spellings = optional ? spellings.flatMap((s) => [s, s + optional[1]]) : spellings.map((s) => s + part);
    }
    for (const s of spellings) if (!s.endsWith("_")) out.add(s);
  }
  return [...out];
}

/** Variables read but not in the table, and names in the table not read. */
function tableMismatch(cliText: string): { undocumented: string[]; notRead: string[] } {
  const table = new Set(tableVariables(cliText));
  return { undocumented: READ.filter((v) => !table.has(v)), notRead: [...table].filter((v) => !READ.includes(v)) };
}

/** POWERPRINT_/OTEL_ variables the docs name that are neither read nor listed in NOT_READ. */
function documentedNotRead(texts: readonly { path: string; text: string }[]): string[] {
  return texts.flatMap(({ path, text }) => namedVariables(text).filter((v) => !READ.includes(v) && !(v in NOT_READ)).map((v) => `${path}: ${v}`));
}

describe("the environment read, against the docs", () => {
  it("finds the table and the variables (the checks have something to check)", () => {
    expect(tableVariables(cliDoc).length).toBeGreaterThanOrEqual(40);
    expect(namedVariables(docs.map((d) => d.text).join("\n")).length).toBeGreaterThanOrEqual(20);
    expect(namedVariables("`OTEL_EXPORTER_OTLP_(METRICS_)HEADERS`, `OTEL_*`").sort()).toEqual(["OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_METRICS_HEADERS"]);
  });

  it("every variable read is a row of docs/cli.md's table, and every name there is read", () => {
    expect(tableMismatch(cliDoc)).toEqual({ undocumented: [], notRead: [] });
  });

  it("every POWERPRINT_ or OTEL_ variable a doc names is read (or is one powerprint sets, listed)", () => {
    expect(documentedNotRead(docs)).toEqual([]);
    // The listed ones are named by a doc (a stale entry would hide nothing, but says something false).
    for (const name of Object.keys(NOT_READ)) expect(docs.some((d) => namedVariables(d.text).includes(name)), name).toBe(true);
  });

  it("readEnvironment keeps exactly the listed variables (what is not listed is never read)", () => {
    const env = readEnvironment({ POWERPRINT_SYSFS_ROOT: " /host ", POWERPRINT_NOT_A_VARIABLE: "x", OTEL_EXPORTER_OTLP_PROTOCOL: " " });
    expect({ ...env }).toEqual({ POWERPRINT_SYSFS_ROOT: "/host" });
  });

  it("each check fails on a broken copy: a row removed, a name not read added, a doc naming an unread variable", () => {
    const withoutRow = cliDoc.replace(/^\| `POWERPRINT_CPU_TDP_WATTS` .*\n/m, "");
    expect(withoutRow).not.toBe(cliDoc);
    expect(tableMismatch(withoutRow).undocumented).toEqual(["POWERPRINT_CPU_TDP_WATTS"]);
    const extraRow = cliDoc.replace(/^\| `NODE_NAME` /m, "| `NODE_NAME`, `POWERPRINT_NODE` ");
    expect(tableMismatch(extraRow).notRead).toEqual(["POWERPRINT_NODE"]);
    expect(documentedNotRead([{ path: "docs/x.md", text: "set `OTEL_EXPORTER_OTLP_(METRICS_)CERTIFICATE`" }])).toEqual([
      "docs/x.md: OTEL_EXPORTER_OTLP_CERTIFICATE",
      "docs/x.md: OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE",
    ]);
  });
});

/** Every .ts file below `dir` (relative to the root). */
function sources(dir: string): string[] {
  return readdirSync(join(root, dir), { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".ts")).map((f) => relative(root, join(root, dir, f)));
}

/** Code (comments left out) that reads process.env or imports commander, outside the CLI's actions and the config builders. */
function belowTheCli(files: readonly { path: string; text: string }[]): string[] {
  const bad: string[] = [];
  for (const { path, text } of files) {
    const code = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:])\/\/.*$/gm, "$1");
    const cli = path.startsWith("src/cli/");
    const config = path.startsWith("src/config/");
    if (!cli && /\bprocess\.env\b/.test(code)) bad.push(`${path}: process.env`);
    if (!cli && !config && /from\s+["']commander["']/.test(code)) bad.push(`${path}: commander`);
  }
  return bad;
}

describe("nothing below the CLI reads process.env or commander", () => {
  const files = [...sources("src"), ...sources("collectors"), ...sources("exporters")].map((path) => ({ path, text: read(path) }));

  it("only src/cli's actions read process.env; only src/cli and src/config import commander", () => {
    expect(files.length).toBeGreaterThan(100);
    expect(belowTheCli(files)).toEqual([]);
  });

  it("fails on a broken copy (a collector reading the environment, an exporter declaring a flag)", () => {
    expect(
      belowTheCli([
        { path: "collectors/x.ts", text: "// process.env in a comment is fine\nconst root = process.env.POWERPRINT_SYSFS_ROOT;" },
        { path: "exporters/y.ts", text: 'import { Option } from "commander";' },
        { path: "src/config/z.ts", text: 'import type { Command } from "commander";\nconst e = process.env;' },
      ]),
    ).toEqual(["collectors/x.ts: process.env", "exporters/y.ts: commander", "src/config/z.ts: process.env"]);
  });
});
