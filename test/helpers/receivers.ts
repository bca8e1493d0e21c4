/**
 * Real metric receivers for tests: VictoriaMetrics single-node (OTLP protobuf in, PromQL out)
 * and Prometheus (scrapes, PromQL out), from the Debian packages .ci/install-receivers.sh unpacks
 * into .cache/receivers/. Bound to 127.0.0.1 only, data in a temp dir, killed on stop/exit.
 *
 * Missing binaries: outside CI the tests skip with a loud reason; under CI=true they run and
 * fail (the CI script installs the receivers, so a missing one is a bug there).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

export type ReceiverName = "victoria-metrics" | "prometheus";

/** Path of a receiver binary: $POWERPRINT_RECEIVERS_DIR/root/usr/bin, .cache/receivers/root/usr/bin, else PATH. */
export function receiverBinary(name: ReceiverName): string | undefined {
  const dirs = [
    process.env.POWERPRINT_RECEIVERS_DIR ? join(process.env.POWERPRINT_RECEIVERS_DIR, "root", "usr", "bin") : undefined,
    join(repoRoot, ".cache", "receivers", "root", "usr", "bin"),
    ...(process.env.PATH ?? "").split(delimiter),
  ].filter((d): d is string => !!d);
  for (const dir of dirs) {
    const candidate = join(dir, name);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

/**
 * Why tests needing `names` must skip, or undefined to run them. Under CI=true this is always
 * undefined: the tests run and fail on the missing binary.
 */
export function receiversSkipReason(...names: ReceiverName[]): string | undefined {
  const missing = names.filter((n) => !receiverBinary(n));
  if (missing.length === 0) return undefined;
  if (process.env.CI === "true" || process.env.CI === "1") return undefined;
  const reason = `SKIPPING receiver tests: ${missing.join(", ")} not found (run: bash .ci/install-receivers.sh)`;
  // Loud on purpose: a skipped end-to-end test must never look like a pass.
  console.warn(`\n*** ${reason} ***\n`);
  return reason;
}

/** A free TCP port on 127.0.0.1 (the OS picks; released right away, so a tiny race remains). */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

/** One PromQL instant-vector sample. */
export interface PromSample {
  metric: Record<string, string>;
  value: number;
}

/** A started receiver. */
export interface Receiver {
  /** http://127.0.0.1:port */
  baseUrl: string;
  port: number;
  /** PromQL instant query at now; throws on an API error. */
  query(promql: string): Promise<PromSample[]>;
  /** Series names known to the receiver (for naming checks). */
  metricNames(): Promise<string[]>;
  stop(): Promise<void>;
  /** Output of the process so far (for failure messages). */
  output(): string;
}

async function waitFor(check: () => Promise<boolean>, timeoutMillis: number, what: string, output: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMillis;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`${what} did not become ready in ${timeoutMillis} ms:\n${output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function startProcess(binary: string, args: string[], dataDir: string): { child: ChildProcess; output: () => string; stop: () => Promise<void> } {
  const child = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] });
  running.add(child);
  let text = "";
  const append = (chunk: Buffer) => {
    text = (text + chunk.toString()).slice(-20_000);
  };
  child.stdout?.on("data", append);
  child.stderr?.on("data", append);
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    }
    running.delete(child);
    rmSync(dataDir, { recursive: true, force: true });
  };
  return { child, output: () => text, stop };
}

async function promQuery(baseUrl: string, promql: string): Promise<PromSample[]> {
  const url = `${baseUrl}/api/v1/query?query=${encodeURIComponent(promql)}&time=${Date.now() / 1000}`;
  const response = await fetch(url);
  const body = (await response.json()) as {
    status: string;
    error?: string;
    data?: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
  };
  if (body.status !== "success" || !body.data) throw new Error(`query ${promql} failed: ${body.error ?? response.status}`);
  return body.data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
}

async function labelValues(baseUrl: string): Promise<string[]> {
  const response = await fetch(`${baseUrl}/api/v1/label/__name__/values`);
  const body = (await response.json()) as { data?: string[] };
  return body.data ?? [];
}

/** Options of startVictoriaMetrics. */
export interface VictoriaMetricsOptions {
  /** -opentelemetry.usePrometheusNaming: unit and _total suffixes, dots to underscores. */
  prometheusNaming?: boolean;
  /** Listen on this port (to start it after an exporter already points at it). */
  port?: number;
}

/**
 * Starts VictoriaMetrics on 127.0.0.1 with an empty temp storage. OTLP protobuf goes to
 * `${baseUrl}/opentelemetry/v1/metrics`. Queries see data at once (-search.latencyOffset=0s,
 * and query() forces a flush of the ingestion buffers first).
 */
export async function startVictoriaMetrics(options: VictoriaMetricsOptions = {}): Promise<Receiver> {
  const binary = receiverBinary("victoria-metrics");
  if (!binary) throw new Error("victoria-metrics binary not found: run bash .ci/install-receivers.sh");
  const port = options.port ?? (await freePort());
  const dataDir = mkdtempSync(join(tmpdir(), "pp-vm-"));
  const args = [
    `-httpListenAddr=127.0.0.1:${port}`,
    `-storageDataPath=${dataDir}`,
    "-retentionPeriod=1d",
    "-search.latencyOffset=0s",
    "-search.disableCache",
    "-loggerLevel=WARN",
  ];
  if (options.prometheusNaming) args.push("-opentelemetry.usePrometheusNaming");
  const proc = startProcess(binary, args, dataDir);
  const baseUrl = `http://127.0.0.1:${port}`;
  await waitFor(async () => (await fetch(`${baseUrl}/health`)).ok, 20_000, "victoria-metrics", proc.output);
  const flush = async () => {
    await fetch(`${baseUrl}/internal/force_flush`);
  };
  return {
    baseUrl,
    port,
    query: async (promql) => {
      await flush();
      return promQuery(baseUrl, promql);
    },
    metricNames: async () => {
      await flush();
      return labelValues(baseUrl);
    },
    stop: proc.stop,
    output: proc.output,
  };
}

/** Options of startPrometheus. */
export interface PrometheusOptions {
  /** host:port targets to scrape at /metrics. */
  targets: string[];
  scrapeIntervalMillis?: number;
}

/** Starts Prometheus on 127.0.0.1 scraping `targets` (job "powerprint"), with an empty temp TSDB. */
export async function startPrometheus(options: PrometheusOptions): Promise<Receiver> {
  const binary = receiverBinary("prometheus");
  if (!binary) throw new Error("prometheus binary not found: run bash .ci/install-receivers.sh");
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), "pp-prom-"));
  const intervalSeconds = Math.max(1, Math.round((options.scrapeIntervalMillis ?? 1000) / 1000));
  const config = [
    "global:",
    `  scrape_interval: ${intervalSeconds}s`,
    `  scrape_timeout: ${intervalSeconds}s`,
    "scrape_configs:",
    "  - job_name: powerprint",
    "    static_configs:",
    `      - targets: [${options.targets.map((t) => JSON.stringify(t)).join(", ")}]`,
    "",
  ].join("\n");
  const configPath = join(dataDir, "prometheus.yml");
  writeFileSync(configPath, config);
  const proc = startProcess(
    binary,
    [
      `--config.file=${configPath}`,
      `--storage.tsdb.path=${join(dataDir, "tsdb")}`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--log.level=warn",
    ],
    dataDir,
  );
  const baseUrl = `http://127.0.0.1:${port}`;
  await waitFor(async () => (await fetch(`${baseUrl}/-/ready`)).ok, 30_000, "prometheus", proc.output);
  return {
    baseUrl,
    port,
    query: (promql) => promQuery(baseUrl, promql),
    metricNames: () => labelValues(baseUrl),
    stop: proc.stop,
    output: proc.output,
  };
}

/** Polls `read` until `accept` holds or the timeout passes; returns the last value read. */
export async function eventually<T>(read: () => Promise<T>, accept: (value: T) => boolean, timeoutMillis = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMillis;
  let last = await read();
  while (!accept(last) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    last = await read();
  }
  return last;
}
