/**
 * The project's docs as data for the doc tests: README.md and docs/*.md, their code blocks, the
 * command lines those blocks show, and the argv of every `powerprint` invocation in a line as a
 * real shell (bash) splits it.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const repoRoot = resolve(import.meta.dirname, "..", "..");

/** One Markdown file of the docs. */
export interface Doc {
  /** Path relative to the repository root, e.g. "docs/cli.md". */
  path: string;
  text: string;
}

/** README.md and every docs/*.md, README first. */
export function loadDocs(root = repoRoot): Doc[] {
  const docsDir = join(root, "docs");
  const names = readdirSync(docsDir)
    .filter((n) => n.endsWith(".md"))
    .sort();
  return ["README.md", ...names.map((n) => `docs/${n}`)].map((path) => ({ path, text: readFileSync(join(root, path), "utf8") }));
}

/** A fenced code block. */
export interface CodeBlock {
  lang: string;
  body: string;
  /** 1-based line of the opening fence. */
  line: number;
}

export function codeBlocks(text: string): CodeBlock[] {
  const blocks: CodeBlock[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*$/.exec(lines[i]);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]); i++) body.push(lines[i]);
    blocks.push({ lang: open[1], body: body.join("\n"), line: start + 1 });
  }
  return blocks;
}

/** Text outside code blocks (for inline code and links). */
export function prose(text: string): string {
  return text.replace(/^```[\s\S]*?^```\s*$/gm, "");
}

/** A command line a doc shows. */
export interface CommandLine {
  doc: string;
  /** 1-based line in the doc. */
  line: number;
  /** The command as a shell reads it: continuations joined, the `$ ` prompt and a trailing comment removed. */
  command: string;
  /** Lines of output the doc shows after a `$ ` command, up to the next prompt or the end of the block. */
  output: string[];
  /** The whole block it came from. */
  block: CodeBlock;
}

const SHELL_LANGS = new Set(["sh", "bash", "shell"]);

/**
 * The commands of a block: in sh/bash blocks every line that is not a comment; in any block, the
 * lines after a `$ ` prompt (a session with its output). Other blocks (JSON, Python, PromQL,
 * diagrams) show no commands.
 */
export function blockCommands(doc: string, block: CodeBlock): CommandLine[] {
  const lines = block.body.split("\n");
  const prompted = lines.some((l) => l.startsWith("$ "));
  if (!prompted && !SHELL_LANGS.has(block.lang)) return [];
  const out: CommandLine[] = [];
  for (let i = 0; i < lines.length; i++) {
    let raw = lines[i];
    if (prompted) {
      if (!raw.startsWith("$ ")) {
        out.at(-1)?.output.push(raw);
        continue;
      }
      raw = raw.slice(2);
    }
    if (raw.trim() === "" || raw.trim().startsWith("#")) continue;
    const first = i;
    while (raw.endsWith("\\") && i + 1 < lines.length) raw = `${raw.slice(0, -1).trimEnd()} ${lines[++i].trim()}`;
    out.push({ doc, line: block.line + 1 + first, command: stripComment(raw).trim(), output: [], block });
  }
  return out;
}

/** Removes a trailing ` # comment` outside quotes. */
function stripComment(line: string): string {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = undefined;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === "#" && /\s/.test(line[i - 1] ?? " ")) return line.slice(0, i);
  }
  return line;
}

/** Every command line of every doc. */
export function allCommands(docs: Doc[]): CommandLine[] {
  return docs.flatMap((d) => codeBlocks(d.text).flatMap((b) => blockCommands(d.path, b)));
}

/** A line that invokes powerprint (directly, through npx, or in a `$(...)`). */
export function invokesPowerprint(command: string): boolean {
  return /(^|[\s;|&(])(npx\s+)?powerprint(\s|$|\))/.test(command);
}

/** Inline code spans of the prose that start with `powerprint ` or `npx powerprint `. */
export function inlineCommands(doc: Doc): { doc: string; text: string }[] {
  return [...prose(doc.text).matchAll(/`((?:npx )?powerprint [^`]*)`/g)].map((m) => ({ doc: doc.path, text: m[1] }));
}

/**
 * The argv (after `powerprint`) of each powerprint invocation in a shell line, as bash splits it
 * (quotes, `$(...)`, `VAR=x` prefixes, `&&`, `||`, `&`). Nothing else runs: PATH is empty, every
 * other command is a no-op, globbing is off; `env` gives the variables the line expands.
 */
export function powerprintArgvs(command: string, env: Record<string, string> = {}): string[][] {
  const dir = mkdtempSync(join(tmpdir(), "pp-docs-argv-"));
  const out = join(dir, "argv");
  const script = [
    "set -f",
    'powerprint() { printf "%s\\0" "$#" "$@" >> "$PP_ARGV_OUT"; }',
    'npx() { if [ "$1" = powerprint ]; then shift; powerprint "$@"; fi; }',
    "command_not_found_handle() { return 0; }",
    command,
    "wait",
  ].join("\n");
  try {
    const r = spawnSync("/bin/bash", ["--noprofile", "--norc", "-c", script], {
      env: { ...env, PATH: join(dir, "no-such-dir"), PP_ARGV_OUT: out },
      encoding: "utf8",
      timeout: 10_000,
    });
    if (r.status === null) throw new Error(`bash did not finish splitting: ${command}`);
    let fields: string[];
    try {
      fields = readFileSync(out, "utf8").split("\0").slice(0, -1);
    } catch {
      return [];
    }
    const argvs: string[][] = [];
    for (let i = 0; i < fields.length; ) {
      const n = Number(fields[i]);
      argvs.push(fields.slice(i + 1, i + 1 + n));
      i += 1 + n;
    }
    return argvs;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens. */
export function anchorOf(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, "")
    .replace(/\s/g, "-");
}

/** Anchors of a doc's headings (outside code blocks), with GitHub's -1, -2 suffixes for repeats. */
export function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const m of prose(text).matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const base = anchorOf(m[1]);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Relative links `[text](target)` of the prose (not http(s), not mailto). */
export function relativeLinks(text: string): string[] {
  return [...prose(text).matchAll(/\[[^\]]*\]\(([^)\s]+)\)/g)].map((m) => m[1]).filter((t) => !/^[a-z]+:/i.test(t));
}
