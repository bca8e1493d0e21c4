/**
 * The agent's own HTTP endpoint (--listen host:port): /healthz (liveness: the sampling loop still
 * ticks), /readyz (readiness: the first interval is recorded), /jobs (JSON: the jobs held, their
 * member PIDs, CPU seconds and energy; what a person or a test asks "which processes are this
 * job's?"). Prometheus /metrics stays on its own port (--prometheus), as in `run`.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { UsageError } from "../errors.js";
import type { ListenAddress } from "../../exporters/prometheus.js";

export interface HealthState {
  ready(): boolean;
  /** undefined when live, else why not. */
  notLive(): string | undefined;
  jobs(): unknown;
}

export interface HealthServer {
  readonly url: string;
  /** Answers from `state` from now on (before: starting, see STARTING). */
  attach(state: HealthState): void;
  close(): Promise<void>;
}

/**
 * What the endpoint answers before the agent is attached (it listens before the hardware is
 * probed, so a probe that takes long is visible): live (the process runs), not ready, no jobs.
 */
const STARTING: HealthState = { ready: () => false, notLive: () => undefined, jobs: () => ({ starting: true, jobs: [] }) };

/** Starts listening; UsageError("--listen") when the address cannot be bound. */
export async function startHealthServer(listen: ListenAddress, initial: HealthState = STARTING): Promise<HealthServer> {
  let state = initial;
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const reply = (status: number, body: string, type = "text/plain; charset=utf-8") => {
      res.writeHead(status, { "content-type": type, "cache-control": "no-store" });
      res.end(req.method === "HEAD" ? undefined : body);
    };
    if (req.method !== "GET" && req.method !== "HEAD") return reply(405, "method not allowed\n");
    if (path === "/healthz") {
      const why = state.notLive();
      return why === undefined ? reply(200, "ok\n") : reply(503, `not live: ${why}\n`);
    }
    if (path === "/readyz") return state.ready() ? reply(200, "ready\n") : reply(503, `not ready: ${state === STARTING ? "probing the hardware" : "the first interval is not recorded yet"}\n`);
    if (path === "/jobs") return reply(200, JSON.stringify(state.jobs()) + "\n", "application/json");
    reply(404, "not found: /healthz, /readyz, /jobs\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => reject(new UsageError("--listen", `cannot listen on ${listen.host}:${listen.port}: ${err.code ?? err.message}`, { cause: err })));
    server.listen({ host: listen.host, port: listen.port }, () => resolve());
  });
  server.unref();
  const port = (server.address() as AddressInfo).port;
  const host = listen.host.includes(":") ? `[${listen.host}]` : listen.host;
  return {
    url: `http://${host}:${port}`,
    attach: (s) => void (state = s),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * The health endpoint of --listen, started as early as possible (before the hardware is probed).
 * An address that cannot be bound is warned about and the agent runs without it, unless
 * `strict` (--strict-endpoints): then the UsageError stands (exit 2), as for --prometheus.
 */
export async function openHealthEndpoint(listen: ListenAddress, o: { strict: boolean; log: { warn(m: string): void; info(m: string): void } }): Promise<HealthServer | undefined> {
  try {
    const health = await startHealthServer(listen);
    o.log.info(`health: ${health.url}/healthz, /readyz, /jobs`);
    return health;
  } catch (err) {
    if (o.strict || !(err instanceof UsageError) || !/cannot listen/.test(err.message)) throw err;
    o.log.warn(`${err.message}: measuring on without /healthz, /readyz and /jobs (--strict-endpoints makes this exit 2)`);
    return undefined;
  }
}
