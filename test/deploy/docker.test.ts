/**
 * deploy/docker/Dockerfile: lints clean (dockerfile-utils, every rule at error severity), follows
 * the image rules (multi-stage, exec form only, non-root USER, ENTRYPOINT ["powerprint"]), runs
 * exactly the commands docs/kubernetes.md lists, and — where buildah is installed — builds (daemonless,
 * from a local base: no registry here) and runs `powerprint --version`.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { delimiter, join } from "node:path";
import { DockerfileParser, type Copy, type JSONInstruction } from "dockerfile-ast";
import { validate, ValidationSeverity, type ValidatorSettings } from "dockerfile-utils";
import { describe, expect, test } from "vitest";
import { repoRoot } from "./k8s.js";

const dockerfilePath = join(repoRoot, "deploy", "docker", "Dockerfile");
const dockerfile = readFileSync(dockerfilePath, "utf8");
const readme = readFileSync(join(repoRoot, "README.md"), "utf8");
const kubernetesDoc = readFileSync(join(repoRoot, "docs", "kubernetes.md"), "utf8");

/** Every optional dockerfile-utils rule raised to an error. */
const strict: ValidatorSettings = Object.fromEntries(
  [
    "deprecatedMaintainer",
    "directiveCasing",
    "emptyContinuationLine",
    "instructionCasing",
    "instructionCmdMultiple",
    "instructionEntrypointMultiple",
    "instructionHealthcheckMultiple",
    "instructionJSONInSingleQuotes",
    "instructionWorkdirRelative",
  ].map((k) => [k, ValidationSeverity.ERROR]),
);

/** Lint diagnostics and violations of the image rules, one line each. */
export function dockerfileProblems(text: string): string[] {
  const problems = validate(text, strict).map((d) => `line ${d.range.start.line + 1}: ${d.message}`);
  const file = DockerfileParser.parse(text);
  if (file.getFROMs().length < 2) problems.push("not multi-stage (one FROM)");
  for (const instruction of file.getInstructions()) {
    const keyword = instruction.getKeyword();
    if (["RUN", "CMD", "ENTRYPOINT"].includes(keyword) && (instruction as JSONInstruction).getJSONStrings().length === 0) {
      problems.push(`line ${instruction.getRange().start.line + 1}: ${keyword} in shell form (use the JSON exec form)`);
    }
  }
  const users = file.getInstructions().filter((i) => i.getKeyword() === "USER");
  const lastFrom = file.getFROMs().at(-1)?.getRange().start.line ?? 0;
  const finalUser = users.filter((u) => u.getRange().start.line > lastFrom).at(-1)?.getArgumentsContent();
  if (!finalUser || /^(0|root)(:|$)/.test(finalUser) || !/^\d+(:\d+)?$/.test(finalUser)) {
    problems.push(`final stage USER is ${finalUser ?? "unset"}: use a numeric non-root UID (runAsNonRoot can verify only numbers)`);
  }
  const entrypoints = file.getInstructions().filter((i) => i.getKeyword() === "ENTRYPOINT") as JSONInstruction[];
  const entrypoint = entrypoints.at(-1)?.getJSONStrings().map((s) => s.getJSONValue());
  if (JSON.stringify(entrypoint) !== JSON.stringify(["powerprint"])) problems.push(`ENTRYPOINT is ${JSON.stringify(entrypoint)}, not ["powerprint"]`);
  return problems;
}

/** The RUN commands, in order, as command lines. */
export function runCommands(text: string): string[] {
  return (DockerfileParser.parse(text).getInstructions().filter((i) => i.getKeyword() === "RUN") as JSONInstruction[]).map((i) =>
    i.getJSONStrings().map((s) => s.getJSONValue()).join(" "),
  );
}

/** Commands of the first ```sh block after a heading of a Markdown doc, comments and blank lines dropped. */
export function readmeCommands(text: string, heading: string): string[] {
  const at = text.indexOf(`\n${heading}\n`);
  if (at < 0) throw new Error(`no heading '${heading}' in the doc`);
  const block = /```sh\n([\s\S]*?)```/.exec(text.slice(at));
  if (!block) throw new Error(`no sh block after '${heading}'`);
  return block[1]
    .split("\n")
    .map((l) => l.replace(/\s+#.*$/, "").trim())
    .filter((l) => l && !l.startsWith("#"));
}

describe("deploy/docker/Dockerfile", () => {
  test("lints clean and follows the image rules", () => {
    expect(dockerfileProblems(dockerfile)).toEqual([]);
  });

  test("each rule fails on a broken copy", () => {
    const shellRun = dockerfile.replace('RUN ["npm", "ci"]', "RUN npm ci");
    expect(dockerfileProblems(shellRun)).toEqual([expect.stringMatching(/RUN in shell form/)]);
    const shellEntry = dockerfile.replace('ENTRYPOINT ["powerprint"]', "ENTRYPOINT powerprint");
    expect(dockerfileProblems(shellEntry).join("\n")).toMatch(/ENTRYPOINT in shell form/);
    expect(dockerfileProblems(dockerfile.replace("USER 65532:65532", "USER root")).join("\n")).toMatch(/final stage USER is root/);
    expect(dockerfileProblems(dockerfile.replace("USER 65532:65532", "USER 0:0")).join("\n")).toMatch(/final stage USER is 0:0/);
    expect(dockerfileProblems(dockerfile.replace("WORKDIR /opt/powerprint", "WORKDIR opt/powerprint")).join("\n")).toMatch(/line \d+: WORKDIR paths should be absolute/);
    expect(dockerfileProblems(dockerfile.replace("COPY --from=build /src/dist", "COPPY --from=build /src/dist")).join("\n")).toMatch(/Unknown instruction: COPPY/);
    const singleStage = dockerfile.replace(/FROM \$\{NODE_IMAGE\} AS build[\s\S]*?(?=FROM)/, "");
    expect(dockerfileProblems(singleStage).join("\n")).toMatch(/not multi-stage/);
  });

  test("its RUN commands are docs/kubernetes.md's, which start with the README quick start's install", () => {
    const image = readmeCommands(kubernetesDoc, "## Container image");
    expect(runCommands(dockerfile)).toEqual(image);
    expect(image[0]).toBe(readmeCommands(readme, "## Quick start")[0]);
    expect(runCommands(dockerfile.replace('"prune", "--omit=dev"', '"prune"'))).not.toEqual(image);
  });

  test(".dockerignore sends every path the Dockerfile copies, and no build output", () => {
    const ignore = readFileSync(join(repoRoot, ".dockerignore"), "utf8");
    const included = ignore.split("\n").filter((l) => l.startsWith("!")).map((l) => l.slice(1).replace(/\/\*\*$/, ""));
    // Sources of the COPY steps that read the build context (not --from another stage).
    const copied = DockerfileParser.parse(dockerfile)
      .getInstructions()
      .filter((i) => i.getKeyword() === "COPY" && !(i as Copy).getFlags().some((f) => f.getName() === "from"))
      .flatMap((i) => i.getArguments().map((a) => a.getValue()).slice(0, -1));
    expect(copied.length).toBeGreaterThan(5);
    for (const path of copied) expect(included, path).toContain(path);
    expect(ignore.split("\n")[1]).toBe("**");
  });
});

const buildah = (process.env.PATH ?? "").split(delimiter).some((d) => d && existsSync(join(d, "buildah")));
const notRoot = process.getuid?.() !== 0;
const buildahSkip = (!buildah && process.env.CI !== "true") || notRoot;
if (!buildah) console.warn("\n*** SKIPPING the image build: buildah not installed (.ci/run installs it) ***\n");
// vfs storage and chroot isolation without user namespaces need root.
else if (notRoot) console.warn("\n*** SKIPPING the image build: buildah here needs root (vfs, chroot isolation) ***\n");

describe.skipIf(buildahSkip)("image build (buildah, vfs, chroot isolation)", () => {
  test("builds from a local Node.js base and `powerprint --version` runs as the image's non-root USER", () => {
    const r = spawnSync("bash", [join(import.meta.dirname, "build-image.sh"), `localhost/powerprint:test-${process.pid}`], {
      encoding: "utf8",
      timeout: 280_000,
    });
    expect(r.status, r.stderr.slice(-4000)).toBe(0);
    const version = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")).version as string;
    const lines = r.stdout.trim().split("\n");
    expect(lines).toContain("entrypoint=[powerprint] user=65532:65532");
    expect(lines.at(-1)).toBe(version);
  }, 300_000);
});
