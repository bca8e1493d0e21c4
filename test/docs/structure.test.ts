/**
 * The docs' structure (issue 16 item 8): the README stays a newcomer's ~250 lines, names every
 * docs/ file (and each one it names exists), every relative link and anchor in README/docs
 * resolves, the README's layout section matches the tree, and the quick start is the two commands
 * .ci/run and the Dockerfile rely on. Each check is also shown to fail on a broken copy.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import { describe, expect, test } from "vitest";
import { anchors, codeBlocks, type Doc, loadDocs, relativeLinks, repoRoot } from "./docs.js";

const docs = loadDocs();
const readme = docs[0];

/** Broken relative links of `docs`: a missing file, or an anchor its target does not have. */
function brokenLinks(all: Doc[], root = repoRoot): string[] {
  const byPath = new Map(all.map((d) => [d.path, d]));
  const broken: string[] = [];
  for (const doc of all) {
    for (const link of relativeLinks(doc.text)) {
      const [file, anchor] = link.split("#", 2) as [string, string | undefined];
      const target = file === "" ? doc.path : normalize(join(dirname(doc.path), file));
      if (!existsSync(join(root, target))) {
        broken.push(`${doc.path}: ${link} (no ${target})`);
        continue;
      }
      if (anchor === undefined) continue;
      const text = byPath.get(target)?.text ?? (target.endsWith(".md") ? readFileSync(join(root, target), "utf8") : undefined);
      if (text === undefined) broken.push(`${doc.path}: ${link} (an anchor into a file that is not Markdown)`);
      else if (!anchors(text).has(anchor)) broken.push(`${doc.path}: ${link} (no heading #${anchor} in ${target})`);
    }
  }
  return broken;
}

/** docs/ files the README names (as links or paths), and docs/*.md files it does not name. */
function docsCoverage(readmeText: string, docFiles: string[]): { missing: string[]; unnamed: string[] } {
  const named = new Set([...readmeText.matchAll(/docs\/[\w.-]+\.md/g)].map((m) => m[0]));
  return {
    missing: [...named].filter((p) => !existsSync(join(repoRoot, p))),
    unnamed: docFiles.filter((p) => !named.has(p)),
  };
}

/** The README's layout block: names at the top level, and the names given under src/. */
function layout(readmeText: string): { top: string[]; src: string[] } {
  const at = readmeText.indexOf("\n## Layout\n");
  if (at < 0) throw new Error("README has no '## Layout' section");
  const block = codeBlocks(readmeText.slice(at))[0];
  const entries: string[] = [];
  for (const line of block.body.split("\n")) {
    if (/^\S/.test(line)) entries.push(line);
    else if (entries.length > 0) entries[entries.length - 1] += ` ${line.trim()}`;
  }
  const top: string[] = [];
  let src = "";
  for (const entry of entries) {
    const tokens = entry.split(/\s{2,}/);
    top.push(tokens[0]);
    // Further bare names on the line are top-level too (`README.md  docs/`); a token with words is a description.
    for (const t of tokens.slice(1)) if (/^[.\w/-]+$/.test(t)) top.push(t);
    if (tokens[0] === "src/") src = tokens.slice(1).join(" ");
  }
  const srcNames = [...src.matchAll(/(?<![\w./-])([a-z][\w-]*\/|[\w-]+\.ts)(?=[\s,()]|$)/g)].map((m) => m[1]);
  return { top, src: srcNames };
}

/** What the layout gets wrong about the tree at `root`. */
function layoutProblems(readmeText: string, root = repoRoot): string[] {
  const { top, src } = layout(readmeText);
  const problems: string[] = [];
  for (const name of top) if (!existsSync(join(root, name.split(" ")[0]))) problems.push(`names ${name}, which does not exist`);
  for (const name of src) if (!existsSync(join(root, "src", name))) problems.push(`names src/${name}, which does not exist`);
  // Every tracked top-level folder (dot-folders aside) and every folder of src/ is named.
  const tracked = execFileSync("git", ["ls-files"], { cwd: root, encoding: "utf8" }).split("\n");
  const topDirs = new Set(tracked.filter((p) => p.includes("/") && !p.startsWith(".")).map((p) => `${p.split("/")[0]}/`));
  for (const dir of topDirs) if (!top.includes(dir)) problems.push(`omits ${dir}`);
  const srcDirs = readdirSync(join(root, "src")).filter((n) => statSync(join(root, "src", n)).isDirectory());
  for (const dir of srcDirs) if (!src.includes(`${dir}/`)) problems.push(`omits src/${dir}/`);
  return problems;
}

/** Commands of the first sh block after a heading. */
function shCommands(text: string, heading: string, nth = 0): string[] {
  const at = text.indexOf(`\n${heading}\n`);
  if (at < 0) throw new Error(`no heading ${heading}`);
  const block = codeBlocks(text.slice(at)).filter((b) => b.lang === "sh")[nth];
  return block.body
    .split("\n")
    .map((l) => l.replace(/\s+#.*$/, "").trim())
    .filter((l) => l && !l.startsWith("#"));
}

describe("README and docs/", () => {
  test("the README is a newcomer's read: at most ~250 lines", () => {
    expect(readme.text.split("\n").length).toBeLessThanOrEqual(250);
  });

  test("every docs/ file the README names exists, and it names every docs/*.md", () => {
    const files = docs.slice(1).map((d) => d.path);
    expect(files.length).toBeGreaterThanOrEqual(7);
    expect(docsCoverage(readme.text, files)).toEqual({ missing: [], unnamed: [] });
    // Broken copies: a file named but absent, a doc not named.
    expect(docsCoverage(`${readme.text}\n[x](docs/no-such-topic.md)`, files).missing).toEqual(["docs/no-such-topic.md"]);
    expect(docsCoverage(readme.text.replaceAll("docs/metrics.md", "docs/x"), files).unnamed).toEqual(["docs/metrics.md"]);
  });

  test("every relative link and anchor in README and docs/ resolves", () => {
    expect(brokenLinks(docs)).toEqual([]);
    const broken = [
      { path: "README.md", text: "[a](docs/cli.md#no-such-heading) [b](docs/gone.md) [c](#layout) [d](https://example.com/x)" },
      ...docs.slice(1),
    ];
    expect(brokenLinks(broken)).toEqual(["README.md: docs/cli.md#no-such-heading (no heading #no-such-heading in docs/cli.md)", "README.md: docs/gone.md (no docs/gone.md)", "README.md: #layout (no heading #layout in README.md)"]);
  });

  test("the README's layout section matches the tree", () => {
    expect(layoutProblems(readme.text)).toEqual([]);
    const { src } = layout(readme.text);
    expect(src).toEqual(expect.arrayContaining(["agent/", "cgroup/", "k8s/", "core/", "cli/"]));
    // Broken copies: a folder left out, a folder that does not exist.
    expect(layoutProblems(readme.text.replace("cgroup/ (", "cgroups/ ("))).toEqual(["names src/cgroups/, which does not exist", "omits src/cgroup/"]);
    expect(layoutProblems(readme.text.replace(/^bench\/ .*\n/m, ""))).toEqual(["omits bench/"]);
  });

  test("the quick start is `npm ci` then `npx powerprint run -- <cmd>`, tests `npm test`, as .ci/run runs them", () => {
    expect(shCommands(readme.text, "## Quick start")).toEqual(["npm ci", "npx powerprint run -- python train.py"]);
    expect(shCommands(readme.text, "## Quick start", 1)).toEqual(["npm test"]);
    const ci = readFileSync(join(repoRoot, ".ci", "run"), "utf8").split("\n");
    expect(ci.slice(-3, -1)).toEqual(["npm ci", "npm test"]);
  });
});
