/**
 * Every command a doc shows is run by a test (issue 16 item 8). Each command line of the code
 * blocks of README.md and docs/*.md is classified here:
 * - run as written in a sandbox (test/docs/sandbox.ts: `powerprint` is the built CLI, `python`
 *   python3, `train.py` a stand-in), with receivers' hosts replaced by loopback servers, and
 *   checked for what it promises (the OTLP request arrived, Prometheus served the job, the report
 *   and its phases, the budget);
 * - or run by a dedicated test below (the README's three uses, whose output the README shows:
 *   compared with what the command prints now);
 * - or deliberately only parsed through the real CLI (test/docs/cli-reference.test.ts parses every
 *   powerprint line), listed in PARSE_ONLY with the reason;
 * - or another tool's command, checked for what it names (a package script, a file).
 * A line in none of these, or a list entry that matches no line, fails.
 */
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { freePort, receiversSkipReason, startVictoriaMetrics } from "../helpers/receivers.js";
import { waitFor } from "../helpers/wait.js";
import { allCommands, type CommandLine, invokesPowerprint, loadDocs, repoRoot } from "./docs.js";
import { makeSandbox, runShell, type Sandbox, startShell } from "./sandbox.js";

const docs = loadDocs();
const lines = allCommands(docs);

interface Rule {
  /** A doc path, or "*" for any. */
  doc: string;
  match: RegExp;
}

/** The README's sessions with their output, each run by its own test below. */
const DEDICATED: (Rule & { test: string })[] = [
  { doc: "README.md", match: /^npx powerprint run -- python train\.py$/, test: "the quick start" },
  { doc: "README.md", match: /^npx powerprint run --zone DE -- node -e /, test: "use 1, run" },
  { doc: "README.md", match: /^EXPERIMENT=lr-sweep-1 python3 train\.py &$/, test: "use 2, agent" },
  { doc: "README.md", match: /^powerprint agent --mode selector --match-env EXPERIMENT /, test: "use 2, agent" },
  { doc: "README.md", match: /^curl -s 127\.0\.0\.1:8080\/jobs$/, test: "use 2, agent" },
  { doc: "README.md", match: /^powerprint run --otlp http:\/\/otel-collector:4318 /, test: "use 3, OTLP" },
  { doc: "README.md", match: /^curl -s http:\/\/victoria-metrics:8428\/api\/v1\/query /, test: "use 3, OTLP" },
];

/** Examples deliberately only parsed (through buildProgram, test/docs/cli-reference.test.ts), and why. */
const PARSE_ONLY: (Rule & { reason: string })[] = [
  {
    doc: "docs/kubernetes.md",
    match: /^powerprint agent --mode pod /,
    reason: "a sidecar needs its pod: a shared PID namespace whose PID 1 is pause, the downward API at /etc/podinfo, /var/lib/powerprint; test/deploy/agent-args.test.ts starts the manifests' own args",
  },
  {
    doc: "docs/kubernetes.md",
    match: /^powerprint agent --mode node /,
    reason: "node mode reads the host's /proc and /sys mounted at /host and a kubelet at $NODE_NAME:10250; test/deploy/agent-args.test.ts starts the DaemonSet's own args",
  },
];

const packageScripts = Object.keys((JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts);
const exists = (path: string) => {
  try {
    readFileSync(join(repoRoot, path));
    return undefined;
  } catch {
    return `${path} does not exist`;
  }
};

/** Other tools' commands: what is checked about each (undefined: nothing is wrong). */
const OTHER: (Rule & { what: string; check: (command: string) => string | undefined })[] = [
  { doc: "*", match: /^npm (ci|test)$/, what: "the install and the tests: .ci/run runs them (test/docs/structure.test.ts)", check: () => undefined },
  {
    doc: "*",
    match: /^npm run (\S+)$/,
    what: "a package script",
    check: (c) => (packageScripts.includes(c.split(" ")[2]) ? undefined : `no script ${c.split(" ")[2]} in package.json`),
  },
  { doc: "*", match: /^(node|bash) \S+$/, what: "a script of the repository", check: (c) => exists(c.split(" ")[1]) },
  {
    doc: "docs/kubernetes.md",
    match: /^(npm prune --omit=dev|ln -s \/opt\/powerprint\/dist\/src\/cli\/main\.js \/usr\/local\/bin\/powerprint)$/,
    what: "the image's RUN steps: test/deploy/docker.test.ts compares them with the Dockerfile and builds the image",
    check: () => undefined,
  },
];

const applies = (rule: Rule, line: CommandLine) => (rule.doc === "*" || rule.doc === line.doc) && rule.match.test(line.command);
const label = (line: CommandLine) => `${line.doc}:${line.line} ${line.command}`;

/** Lines no rule covers: powerprint lines run in the sandbox below. */
const runLines = lines.filter((l) => ![...DEDICATED, ...PARSE_ONLY, ...OTHER].some((r) => applies(r, l)) && invokesPowerprint(l.command));

// ---- Loopback stand-ins for the hosts the docs name ----

interface Received {
  url: string;
  contentType: string;
  bytes: number;
}
const received: Received[] = [];
let sink: Server;
let sinkUrl = "";

/** Hosts the docs' examples name, and what stands in for them here. */
const HOSTS: Record<string, () => string> = {
  "http://otel-collector:4318": () => sinkUrl,
  "http://collector:4318": () => sinkUrl,
  "http://vm:8428": () => sinkUrl,
};

/** The command as it runs here: `npx powerprint` (outside the repository) is the sandbox's `powerprint`; hosts replaced. */
function localize(command: string): string {
  let out = command.replace(/\bnpx powerprint\b/g, "powerprint");
  for (const [host, local] of Object.entries(HOSTS)) out = out.replaceAll(host, local());
  const remote = /https?:\/\/(?!127\.0\.0\.1[:/])[^\s'"]+/.exec(out);
  if (remote) throw new Error(`${command}: ${remote[0]} is not reachable here; add a loopback stand-in to HOSTS`);
  return out;
}

let sandbox: Sandbox;
beforeAll(async () => {
  sandbox = makeSandbox();
  sink = createServer((req, res) => {
    let bytes = 0;
    req.on("data", (d: Buffer) => (bytes += d.length));
    req.on("end", () => {
      const contentType = req.headers["content-type"] ?? "";
      received.push({ url: req.url ?? "", contentType, bytes });
      // An empty ExportMetricsServiceResponse: no body in protobuf, {} in JSON.
      res.writeHead(200, { "content-type": contentType.includes("json") ? "application/json" : "application/x-protobuf" });
      res.end(contentType.includes("json") ? "{}" : "");
    });
  });
  await new Promise<void>((r) => sink.listen(0, "127.0.0.1", r));
  const address = sink.address();
  sinkUrl = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
});
afterAll(async () => {
  await new Promise<void>((r) => sink.close(() => r()));
  sandbox.remove();
});

/** The sandbox's environment: OTLP without an endpoint goes to the stand-in; --prometheus without an address to `prometheusPort`. */
function sandboxEnv(prometheusPort: number, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PATH: sandbox.path,
    RUN_ID: "run-7",
    OTEL_EXPORTER_OTLP_ENDPOINT: sinkUrl,
    OTEL_EXPORTER_PROMETHEUS_HOST: "127.0.0.1",
    OTEL_EXPORTER_PROMETHEUS_PORT: String(prometheusPort),
    PYTHONDONTWRITEBYTECODE: "1",
    ...extra,
  };
}

interface Ran {
  command: string;
  stdout: string;
  stderr: string;
  /** Requests the OTLP stand-in received during the run. */
  otlp: Received[];
  /** The last body served at the Prometheus endpoint during the run. */
  scraped: string;
}

const reportOf = (r: Ran) => JSON.parse(readFileSync(join(sandbox.dir, /--report (\S+)/.exec(r.command)![1]), "utf8"));

/** What each kind of example promises, checked after it ran. */
const EXPECT: { match: RegExp; what: string; check: (r: Ran) => void }[] = [
  {
    match: /--otlp(?! console)(\s|$)/,
    what: "an OTLP protobuf export reached the endpoint",
    check: (r) => expect(r.otlp.some((q) => q.url.endsWith("/v1/metrics") && q.contentType === "application/x-protobuf" && q.bytes > 0), JSON.stringify(r.otlp)).toBe(true),
  },
  { match: /--otlp console/, what: "the metrics printed on stderr", check: (r) => expect(r.stderr).toMatch(/powerprint\.job\.energy/) },
  { match: /--prometheus(\s|$)/, what: "the endpoint served the job's energy", check: (r) => expect(r.scraped).toMatch(/^powerprint_job_energy_total\{/m) },
  { match: /--report \S+/, what: "a complete v1 report", check: (r) => expect(reportOf(r)).toMatchObject({ schemaVersion: 1, complete: true, exitCode: 0 }) },
  {
    match: /PYTHONPATH="\$\(powerprint python-path\)"/,
    what: "the helper's marks are the report's phases",
    check: (r) => {
      const job = reportOf(r).jobs[0];
      expect(job.phases.map((p: { name: string }) => p.name)).toEqual(["(before first mark)", "train", "eval"]);
      expect({ samples: job.samples, tokens: job.tokens, steps: job.steps }).toEqual({ samples: 640, tokens: 81_920, steps: 10 });
    },
  },
  {
    match: /--max-energy 2kWh --on-budget stop/,
    what: "the budget in the report, not crossed",
    check: (r) => expect(reportOf(r).budget).toMatchObject({ onBudget: "stop", limits: { facilityEnergyJoules: 2 * 3.6e6 }, crossed: [] }),
  },
];

describe("doc examples", () => {
  test("every command line a doc shows is run here, run by a dedicated test, parsed only (with a reason), or another tool's and checked", () => {
    const problems: string[] = [];
    for (const line of lines) {
      const rules = [...DEDICATED, ...PARSE_ONLY, ...OTHER].filter((r) => applies(r, line));
      if (rules.length > 1) problems.push(`${label(line)}: matched by ${rules.length} rules`);
      if (rules.length === 0 && !invokesPowerprint(line.command)) problems.push(`${label(line)}: not classified (add it to OTHER with a check)`);
      for (const rule of OTHER.filter((r) => applies(r, line))) {
        const problem = rule.check(line.command);
        if (problem) problems.push(`${label(line)}: ${problem}`);
      }
    }
    for (const rule of [...DEDICATED, ...PARSE_ONLY, ...OTHER]) {
      if (!lines.some((l) => applies(rule, l))) problems.push(`stale rule: ${rule.doc} ${rule.match} matches no command line`);
    }
    expect(problems).toEqual([]);
    expect(runLines.length).toBeGreaterThanOrEqual(5);
    // A command nothing covers is run (and so cannot silently go untested).
    expect(OTHER[2].check("node scripts/no-such.mjs")).toBe("scripts/no-such.mjs does not exist");
  });

  test.each(runLines.map((l) => [label(l), l] as const))("runs: %s", { timeout: 120_000 }, async (_name, line) => {
    const command = localize(line.command);
    const port = await freePort();
    const first = received.length;
    let scraped = "";
    const result = await runShell(command, {
      cwd: sandbox.dir,
      env: sandboxEnv(port),
      whileRunning: /--prometheus(\s|$)/.test(command)
        ? async (done) => {
            // Scrape as Prometheus would until the run ends (--prometheus-linger waits for a scrape of the final totals).
            while (!done()) {
              try {
                scraped = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
              } catch {
                // not serving yet, or already closed
              }
              await new Promise((r) => setTimeout(r, 100));
            }
          }
        : undefined,
    });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).not.toMatch(/^powerprint: error/m);
    if (/\bpowerprint run\b/.test(command)) expect(result.stderr).toMatch(/powerprint summary/);
    const ran: Ran = { command, stdout: result.stdout, stderr: result.stderr, otlp: received.slice(first), scraped };
    for (const e of EXPECT) if (e.match.test(command)) e.check(ran);
  });
});

// ---- The README's three uses, with the output it shows ----

/** A doc line by its rule (fails clearly when the README's example changed). */
function dedicated(testName: string, nth = 0): CommandLine {
  const rule = DEDICATED.filter((r) => r.test === testName)[nth];
  const line = lines.find((l) => applies(rule, l));
  if (!line) throw new Error(`README: no command matching ${rule.match} (update test/docs/examples.test.ts)`);
  return line;
}

const SI: Record<string, number> = { "": 1, k: 1e3, M: 1e6, m: 1e-3, "µ": 1e-6, n: 1e-9 };
/** `10.4 mWh` → 0.0104 (in the base unit); `344 g/kWh` → 344. */
function quantity(text: string, unit: string): number {
  const m = new RegExp(`([\\d.]+) ([kMmµn]?)${unit.replace(/[/.]/g, "\\$&")}`).exec(text);
  if (!m) throw new Error(`no quantity in ${unit} in: ${text}`);
  return Number(m[1]) * SI[m[2]];
}
/** Equal as 3-significant-digit figures are: within 1 %. */
const close = (a: number, b: number) => Math.abs(a - b) <= 0.01 * Math.max(Math.abs(a), Math.abs(b));

/** The figures of a run summary (the README's sample or a real one): host energy by kind, facility, emissions, the job's line. */
function summaryFigures(output: string[]) {
  const line = (label: string) => {
    const found = output.find((l) => l.startsWith(label));
    if (!found) throw new Error(`summary has no '${label}' line (if the summary changed, update the README's sample and this parser):\n${output.join("\n")}`);
    return found;
  };
  // The summary's lines say whose figure each is: `job …` and `host …` (devices: the host's by kind).
  const host = line("host ");
  const job = line("job ");
  const pue = Number(/PUE ([\d.]+)/.exec(line("facility"))![1]);
  return {
    energyWh: quantity(host, "Wh IT"),
    kindsWh: [...line("devices").matchAll(/(?:cpu|gpu|memory) ([\d.]+) ([kMmµn]?)Wh/g)].map((m) => Number(m[1]) * SI[m[2]]),
    facilityWh: quantity(line("facility"), "Wh"),
    pue,
    emissionsG: quantity(line("emissions"), "g CO2e"),
    intensity: quantity(line("emissions"), "g/kWh"),
    jobWh: quantity(job, "Wh IT"),
    jobFacilityWh: quantity(job, "Wh IT") * pue,
    jobEmissionsG: quantity(job, "g CO2e"),
  };
}

describe("the README's three uses", () => {
  test("the quick start: `npx powerprint run -- <cmd>` in the repository runs the package's own CLI", { timeout: 120_000 }, async () => {
    const line = dedicated("the quick start");
    // In the repository, npx finds the package's own bin (the sandbox's `powerprint` is not on PATH).
    const command = line.command.replace("train.py", join(sandbox.dir, "train.py"));
    const r = await runShell(command, { cwd: repoRoot, env: { ...process.env, PATH: sandbox.pythonPath, npm_config_offline: "true" } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/── powerprint summary \(run\)/);
  });

  test("use 1: run's summary has the README's lines, and the README's sample adds up", { timeout: 120_000 }, async () => {
    const line = dedicated("use 1, run");
    const sample = line.output.filter((l) => l.trim() !== "");
    // The README's own numbers: kinds sum to IT energy, facility = IT × PUE, emissions = facility × intensity.
    const doc = summaryFigures(sample);
    expect(close(doc.kindsWh.reduce((a, b) => a + b, 0), doc.energyWh)).toBe(true);
    expect(close(doc.facilityWh, doc.energyWh * doc.pue)).toBe(true);
    expect(close(doc.emissionsG, (doc.facilityWh / 1000) * doc.intensity)).toBe(true);
    expect(close(doc.jobEmissionsG, (doc.jobFacilityWh / 1000) * doc.intensity)).toBe(true);

    const r = await runShell(localize(line.command), { cwd: sandbox.dir, env: sandboxEnv(await freePort()) });
    expect(r.code, r.stderr).toBe(0);
    const actual = r.stderr.split("\n");
    // Every line the README shows is there (warnings and notes depend on the host: RAPL, GPUs).
    for (const shown of sample.filter((l) => !l.startsWith("powerprint:") && !l.startsWith("note"))) {
      const head = shown.startsWith("──") ? shown.slice(0, shown.indexOf(" · ")) : shown.split(" ")[0];
      expect(actual.some((l) => l.startsWith(head)), `${head}\n${r.stderr}`).toBe(true);
    }
    const now = summaryFigures(actual);
    expect(close(now.facilityWh, now.energyWh * now.pue)).toBe(true);
    expect(now.intensity).toBe(doc.intensity); // the static table's DE value, as the README shows
  });

  test("use 2: the agent in selector mode finds the job and /jobs answers as the README shows", { timeout: 120_000 }, async () => {
    const jobLine = dedicated("use 2, agent", 0);
    const agentLine = dedicated("use 2, agent", 1);
    const curlLine = dedicated("use 2, agent", 2);
    const shown = JSON.parse(curlLine.output.join("\n")) as { jobs: Record<string, unknown>[] } & Record<string, unknown>;
    const port = await freePort();
    const env = sandboxEnv(await freePort(), { TRAIN_SECONDS: "600" });
    const job = startShell(jobLine.command.replace(/\s*&$/, ""), { cwd: sandbox.dir, env });
    const agent = startShell(agentLine.command.replace(/\s*&$/, "").replace("127.0.0.1:8080", `127.0.0.1:${port}`), { cwd: sandbox.dir, env });
    try {
      const url = /(127\.0\.0\.1:8080\/jobs)/.exec(curlLine.command)![1].replace("8080", String(port));
      const answer = await waitFor(
        "the agent's /jobs to list the job with energy",
        async () => {
          try {
            const body = (await (await fetch(`http://${url}`)).json()) as typeof shown;
            return body.jobs.some((j) => j.name === shown.jobs[0].name && (j.energyJoules as number) > 0) ? body : undefined;
          } catch {
            return undefined;
          }
        },
        90_000,
        100,
      );
      expect(Object.keys(answer).sort()).toEqual(Object.keys(shown).sort());
      const found = answer.jobs.find((j) => j.name === shown.jobs[0].name)!;
      expect(Object.keys(found).sort()).toEqual(Object.keys(shown.jobs[0]).sort());
      expect({ id: found.id, name: found.name, attributes: found.attributes }).toEqual({ id: shown.jobs[0].id, name: shown.jobs[0].name, attributes: shown.jobs[0].attributes });
    } finally {
      const agentCode = await agent.stop("SIGTERM");
      await job.stop("SIGKILL");
      expect(agentCode, agent.output()).toBe(0);
    }
  });

  const vmSkip = receiversSkipReason("victoria-metrics");
  test.skipIf(!!vmSkip)("use 3: OTLP into VictoriaMetrics answers the README's query with the job's energy", { timeout: 120_000 }, async () => {
    const runLine = dedicated("use 3, OTLP", 0);
    const queryLine = dedicated("use 3, OTLP", 1);
    const shown = JSON.parse(queryLine.output.join("\n").replace(/,\.\.\.\}$/, "}")) as { data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
    // The README's own numbers: the value in J is the summary's mWh it names.
    const readme = docs[0].text;
    const said = /\(([\d.]+) J = the summary's ([\d.]+ [kmµ]?Wh) IT/.exec(readme);
    expect(said, "README: the sentence tying the query's J to the summary's Wh").not.toBeNull();
    expect(close(Number(said![1]), quantity(said![2], "Wh") * 3600)).toBe(true);
    expect(close(Number(said![1]), Number(shown.data.result[0].value[1]))).toBe(true);

    const vm = await startVictoriaMetrics({ prometheusNaming: true });
    try {
      const command = runLine.command.replace("http://otel-collector:4318", `${vm.baseUrl}/opentelemetry`);
      const r = await runShell(command, { cwd: sandbox.dir, env: sandboxEnv(await freePort()) });
      expect(r.code, r.stderr).toBe(0);
      const query = /--data-urlencode 'query=([^']+)'/.exec(queryLine.command)![1];
      const samples = await vm.query(query);
      expect(samples.map((s) => s.metric)).toEqual(shown.data.result.map((s) => s.metric));
      const jobWh = summaryFigures(r.stderr.split("\n")).jobWh;
      expect(close(samples[0].value, jobWh * 3600), `${samples[0].value} J vs the summary's ${jobWh} Wh`).toBe(true);
    } finally {
      await vm.stop();
    }
  });
});
