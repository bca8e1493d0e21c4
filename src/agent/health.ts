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
  close(): Promise<void>;
}

/** Starts listening; UsageError("--listen") when the address cannot be bound. */
export async function startHealthServer(listen: ListenAddress, state: HealthState): Promise<HealthServer> {
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
    if (path === "/readyz") return state.ready() ? reply(200, "ready\n") : reply(503, "not ready: the first interval is not recorded yet\n");
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
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
