/**
 * The docs against the real CLI parser: docs/cli.md names every option of every command; every
 * `--flag` any doc writes is an option of powerprint (or of the other tool the doc shows); every
 * powerprint command line in a code block, and every concrete one in the prose, parses through
 * buildProgram; a synopsis names only its command's flags. And docs/metrics.md's table is the
 * exported metrics of src/semconv.ts. Each check is shown to fail on a broken copy.
 */
import { describe, expect, test } from "vitest";
import { METRICS } from "../../src/semconv.js";
import { allCommands, codeBlocks, type Doc, inlineCommands, invokesPowerprint, loadDocs, powerprintArgvs, prose } from "./docs.js";
import { buildProgram } from "../../src/cli/program.js";
import { optionsByCommand, parseOnly } from "./parse.js";

const docs = loadDocs();
const cliDoc = docs.find((d) => d.path === "docs/cli.md")!;
const options = await optionsByCommand();
const allOptions = new Set([...options.values()].flatMap((s) => [...s]));

/** Flags of other tools that the docs show, with the tool. */
const FOREIGN_FLAGS: Record<string, string> = {
  "--data-urlencode": "curl (the README's query of VictoriaMetrics)",
  "--build-arg": "docker build (docs/kubernetes.md, the image)",
  "--omit": "npm prune (the image's RUN steps)",
  "--enable-feature": "prometheus (its OTLP receiver, docs/metrics.md)",
  "--metrics": "llama-server, the served command (docs/serving.md)",
  "--port": "llama-server, the served command (docs/serving.md)",
  "--enable-metrics": "SGLang's server (docs/serving.md)",
  "--package": "npx, running the Impact Framework's if-run (docs/plan-and-disclose.md)",
  "--manifest": "if-run, the Impact Framework CLI (docs/plan-and-disclose.md)",
  "--output": "if-run, the Impact Framework CLI (docs/plan-and-disclose.md)",
  "--pid": "docker run --pid=host (docs/kubernetes.md, where pod mode refuses to start)",
};

/** Variables the docs' command lines expand, as a user would have them set. */
const SHELL_ENV = { RUN_ID: "run-7", HOME: "/home/user" };

/** `--flags` written in a doc that are neither powerprint's nor a listed foreign tool's. */
function unknownFlags(doc: Doc): string[] {
  const flags = [...doc.text.matchAll(/(?<![\w-])--[a-z][a-z0-9-]*/g)].map((m) => m[0]);
  return [...new Set(flags.filter((f) => !allOptions.has(f) && !(f in FOREIGN_FLAGS)))].map((f) => `${doc.path}: ${f}`);
}

/** Options of some command that docs/cli.md does not name in backticks. */
function undocumentedOptions(cliText: string): string[] {
  const missing: string[] = [];
  for (const [command, longs] of options) {
    // --help is commander's own on every command; cli.md says so once.
    for (const long of longs) if (long !== "--help") if (!new RegExp("`" + long + "(?![\\w-])").test(cliText)) missing.push(`${command || "powerprint"} ${long}`);
  }
  return [...new Set(missing)];
}

/** Flags a synopsis or an example names that its command does not take. */
function foreignToCommand(text: string): string[] {
  const words = text.replace(/^npx /, "").split(/\s+/);
  // `powerprint <command> --help` names no command; `powerprint --version` is the program's own.
  const command = words[1].startsWith("<") || words[1].startsWith("-") ? "" : words[1];
  const known = options.get(command);
  if (!known) return [`${text}: no command ${command}`];
  return [...text.matchAll(/(?<![\w-])--[a-z][a-z0-9-]*/g)].map((m) => m[0]).filter((f) => !known.has(f) && !(f in FOREIGN_FLAGS)).map((f) => `${text}: ${f}`);
}

/** Commander's default of each option, per command (empty lists and unset defaults left out). */
const program = await buildProgram();
const defaults = new Map<string, Map<string, string>>(
  program.commands.map((c) => [
    c.name(),
    new Map(c.options.filter((o) => o.long && typeof o.defaultValue === "string").map((o) => [o.long!, o.defaultValue as string])),
  ]),
);

/**
 * Defaults docs/cli.md's tables state that differ from the parser's: for each row naming one flag,
 * in a section about one command (`## \`agent\``) or several (every command with that flag).
 */
function wrongDefaults(cliText: string): string[] {
  const problems: string[] = [];
  for (const section of cliText.split(/^## /m).slice(1)) {
    const heading = section.split("\n")[0];
    const named = [...heading.matchAll(/`([a-z-]+)`/g)].map((m) => m[1]).filter((n) => defaults.has(n));
    let defaultColumn = -1;
    for (const row of section.split("\n").filter((l) => l.startsWith("| "))) {
      const cells = row.slice(2, -2).split(" | ");
      if (cells.includes("default")) {
        defaultColumn = cells.indexOf("default");
        continue;
      }
      const flags = [...cells[0].matchAll(/`(--[a-z][a-z0-9-]*)/g)].map((m) => m[1]);
      if (defaultColumn < 0 || flags.length !== 1) continue;
      const commands = named.length > 0 ? named : [...defaults.keys()];
      for (const command of commands) {
        const value = defaults.get(command)?.get(flags[0]);
        if (value !== undefined && !cells[defaultColumn].replace(/`/g, "").split(/[\s,;]+/).includes(value)) {
          problems.push(`${command} ${flags[0]}: cli.md says ${JSON.stringify(cells[defaultColumn])}, the parser ${JSON.stringify(value)}`);
        }
      }
    }
  }
  return problems;
}

describe("docs against the CLI", () => {
  test("the defaults docs/cli.md states are the parser's", () => {
    expect(wrongDefaults(cliDoc.text)).toEqual([]);
    expect(wrongDefaults(cliDoc.text.replace("| `--retention D` | `5m` |", "| `--retention D` | `10m` |"))).toEqual([
      'agent --retention: cli.md says "`10m`", the parser "5m"',
    ]);
  });

  test("docs/cli.md names every option of every command", () => {
    expect(undocumentedOptions(cliDoc.text)).toEqual([]);
    expect(undocumentedOptions(cliDoc.text.replaceAll("`--retention", "`--keep"))).toEqual(["agent --retention"]);
  });

  test("every --flag in README and docs/ is an option of powerprint, or of the tool the doc shows", () => {
    expect(docs.flatMap(unknownFlags)).toEqual([]);
    expect(unknownFlags({ path: "x.md", text: "use `--interal 5s` or `--interval 5s`" })).toEqual(["x.md: --interal"]);
  });

  test("every synopsis and inline example names only its own command's flags", () => {
    const inline = [
      ...docs.flatMap(inlineCommands),
      // Synopses in plain blocks (no shell, no prompt): `powerprint plan REPORT... --zones ...`.
      ...docs.flatMap((d) =>
        codeBlocks(d.text)
          .filter((b) => b.lang === "" && !b.body.includes("$ "))
          .flatMap((b) => b.body.split("\n").filter((l) => l.startsWith("powerprint ")).map((text) => ({ doc: d.path, text }))),
      ),
    ].filter((c) => !c.text.startsWith("powerprint ▸"));
    expect(inline.length).toBeGreaterThan(10);
    expect(inline.flatMap((c) => foreignToCommand(c.text).map((p) => `${c.doc}: ${p}`))).toEqual([]);
    expect(foreignToCommand("powerprint probe [--json] [--listen H]")).toEqual(["powerprint probe [--json] [--listen H]: --listen"]);
  });

  test("every concrete inline example parses through the real CLI", async () => {
    // Concrete: no placeholder (<x>, [x], FILES..., M); the `powerprint <command>` forms are synopses.
    const concrete = docs
      .flatMap(inlineCommands)
      .filter((c) => !/[<[…]|\.\.\.|\b[A-Z]{1,}\b|▸/.test(c.text))
      .map((c) => c.text.replace(/^npx /, ""));
    // `powerprint report` alone names a command (checked above); with more words it is an example.
    const mentions = concrete.filter((t) => t.split(/\s+/).length === 2 && !t.includes("-"));
    for (const m of mentions) expect(options.has(m.split(/\s+/)[1]), m).toBe(true);
    const examples = concrete.filter((t) => !mentions.includes(t));
    expect(examples).toEqual(expect.arrayContaining(["powerprint python-path", "powerprint --version"]));
    for (const text of examples) {
      const argvs = powerprintArgvs(text, SHELL_ENV);
      expect(argvs, text).toHaveLength(1);
      await expect(parseOnly(argvs[0]), text).resolves.toBeDefined();
    }
  });

  test("every powerprint command line in a code block parses through the real CLI", async () => {
    const lines = docs.flatMap((d) => allCommands([d])).filter((c) => invokesPowerprint(c.command));
    expect(lines.length).toBeGreaterThanOrEqual(10);
    const failures: string[] = [];
    for (const line of lines) {
      const argvs = powerprintArgvs(line.command, SHELL_ENV);
      if (argvs.length === 0) failures.push(`${line.doc}:${line.line}: no powerprint invocation found in: ${line.command}`);
      for (const argv of argvs) {
        try {
          await parseOnly(argv);
        } catch (err) {
          failures.push(`${line.doc}:${line.line}: ${line.command}\n  ${(err as Error).message}`);
        }
      }
    }
    expect(failures).toEqual([]);
  });

  test("a renamed flag, a removed command or a bad choice fails the parse", async () => {
    const marks = powerprintArgvs('PYTHONPATH="$(powerprint python-path)" powerprint run --report run.json -- python train.py');
    expect(marks).toEqual([["python-path"], ["run", "--report", "run.json", "--", "python", "train.py"]]);
    await expect(parseOnly(marks[1])).resolves.toMatchObject({ command: "run", options: { report: "run.json" }, args: [["python", "train.py"]] });
    await expect(parseOnly(["run", "--interal", "1s", "--", "true"])).rejects.toThrow(/unknown option '--interal'/);
    await expect(parseOnly(["agent", "--mode", "pod", "--listn", ":8080"])).rejects.toThrow(/unknown option/);
    await expect(parseOnly(["run", "--idle-policy", "share", "--", "true"])).rejects.toThrow(/Allowed choices/);
    await expect(parseOnly(["sumulate", "s.json"])).rejects.toThrow(/unknown command/);
  });

  test("docs/metrics.md's table lists exactly the metrics src/semconv.ts exports, with their instrument and unit", () => {
    const metricsDoc = docs.find((d) => d.path === "docs/metrics.md")!;
    const rows = prose(metricsDoc.text)
      .split("\n")
      .filter((l) => /^\| `(hw|powerprint|process)\./.test(l))
      .map((l) => l.split(" | ").map((c) => c.replace(/^\| /, "").trim()));
    const documented = new Map<string, { instrument: string; unit: string; prometheus: string }>();
    for (const [names, instrument, unit, , prometheus] of rows) {
      // One row may list siblings: `powerprint.job.samples`, `.tokens`, `.steps`.
      const spelled = [...names.matchAll(/`([^`]+)`/g)].map((m) => m[1]);
      const base = spelled[0].replace(/\.[^.]+$/, "");
      const units = unit.split(/,\s*/);
      spelled.forEach((n, i) => {
        const name = n.startsWith(".") ? base + n : n;
        documented.set(name, { instrument, unit: (units[i] ?? units[0]).split(" ")[0], prometheus: i === 0 ? prometheus.split(",")[0].replace(/`/g, "") : "" });
      });
    }
    const exported = new Map(METRICS.map((m) => [m.name, m]));
    expect([...documented.keys()].sort()).toEqual([...exported.keys()].sort());
    for (const [name, doc] of documented) {
      const spec = exported.get(name)!;
      expect({ name, instrument: doc.instrument, unit: doc.unit }).toEqual({ name, instrument: spec.instrument, unit: spec.unit });
      // --prometheus (exporter-prometheus): dots to underscores, counters get _total, no unit suffix.
      if (doc.prometheus) expect(doc.prometheus, name).toBe(name.replace(/\./g, "_") + (spec.instrument === "counter" ? "_total" : ""));
    }
  });
});
