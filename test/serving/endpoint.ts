/**
 * Loopback HTTP endpoints for the serving tests: a /metrics body that can be changed between
 * scrapes, and the bad endpoints the scraper must survive (one that never answers, HTML, HTTP 500,
 * a 20 MB body, garbage). Bound to 127.0.0.1; every socket is destroyed on close().
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";

export const FIXTURES = join(import.meta.dirname, "..", "fixtures", "serving");

/** The serving fixtures: file name → text. */
export function fixtures(): Map<string, string> {
  return new Map(readdirSync(FIXTURES).filter((f) => f.endsWith(".prom")).sort().map((f) => [f, readFileSync(join(FIXTURES, f), "utf8")]));
}

export function fixture(prefix: string): string {
  const name = [...fixtures().keys()].find((f) => f.startsWith(prefix));
  if (!name) throw new Error(`no fixture ${prefix}*`);
  return readFileSync(join(FIXTURES, name), "utf8");
}

export interface Endpoint {
  url: string;
  hostPort: string;
  /** Requests answered so far. */
  hits: number;
  close(): Promise<void>;
}

/** Serves `handler` on 127.0.0.1 (a free port); close() ends every connection, hung ones too. */
export async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Endpoint> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    endpoint.hits++;
    handler(req, res);
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  const endpoint: Endpoint = {
    url: `http://127.0.0.1:${port}/metrics`,
    hostPort: `127.0.0.1:${port}`,
    hits: 0,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
  return endpoint;
}

/** Serves whatever `body()` gives now as Prometheus text. */
export function serveText(body: () => string): Promise<Endpoint> {
  return serve((_req, res) => {
    res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
    res.end(body());
  });
}

/** The bad endpoints of issue 19's acceptance, by name. */
export const BAD_ENDPOINTS: Record<string, (req: IncomingMessage, res: ServerResponse) => void> = {
  // Accepts the request and never answers.
  hang: () => {},
  html: (_req, res) => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end("<!DOCTYPE html>\n<html><body><h1>Welcome</h1></body></html>\n");
  },
  "http-500": (_req, res) => {
    res.writeHead(500, { "content-type": "text/plain" });
    res.end("internal error\n");
  },
  // 20 MB streamed without a Content-Length (the scraper must stop reading at its cap).
  "20mb": (_req, res) => {
    res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
    const line = `vllm:prompt_tokens_total{model_name="${"m".repeat(80)}"} 1\n`;
    const chunk = line.repeat(Math.ceil(65536 / line.length));
    let sent = 0;
    const more = () => {
      while (sent < 20_000_000) {
        sent += chunk.length;
        if (!res.write(chunk)) return void res.once("drain", more);
      }
      res.end();
    };
    res.on("error", () => {});
    more();
  },
};

/**
 * Counters that jump up and down between scrapes without a restart (a broken exporter, a proxy
 * alternating between replicas): between two consecutive bodies one counter always goes down
 * while the other goes up.
 */
export function garbageBody(n: number): string {
  const high = 9000 + n;
  const low = 100 + n;
  return [
    "# TYPE vllm:prompt_tokens_total counter",
    `vllm:prompt_tokens_total{model_name="m"} ${n % 2 === 0 ? high : low}`,
    "# TYPE vllm:generation_tokens_total counter",
    `vllm:generation_tokens_total{model_name="m"} ${n % 2 === 0 ? low : high}`,
    "",
  ].join("\n");
}
