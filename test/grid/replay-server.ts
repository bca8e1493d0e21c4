// Loopback HTTP server (127.0.0.1, port 0) that replays provider responses and records requests.
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage["headers"];
}

export interface Reply {
  status?: number;
  headers?: Record<string, string>;
  /** A string is sent as is; anything else as JSON. */
  body?: unknown;
  /** Never answer (for timeouts). */
  hang?: boolean;
}

export type Handler = (req: RecordedRequest) => Reply;

export interface ReplayServer {
  url: string;
  requests: RecordedRequest[];
  /** Requests whose path ends with `suffix`. */
  count(suffix: string): number;
  close(): Promise<void>;
}

export async function startReplayServer(route: Handler): Promise<ReplayServer> {
  const requests: RecordedRequest[] = [];
  const hanging: ServerResponse[] = [];
  const server = createServer((req, res) => {
    const u = new URL(req.url ?? "/", "http://127.0.0.1");
    const rec: RecordedRequest = { method: req.method ?? "GET", path: u.pathname, query: u.searchParams, headers: req.headers };
    requests.push(rec);
    let reply: Reply;
    try {
      reply = route(rec);
    } catch (err) {
      reply = { status: 599, body: { error: String(err) } };
    }
    if (reply.hang) {
      hanging.push(res);
      return;
    }
    const body = typeof reply.body === "string" ? reply.body : JSON.stringify(reply.body ?? {});
    res.writeHead(reply.status ?? 200, { "content-type": "application/json", ...reply.headers });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    count: (suffix) => requests.filter((r) => r.path.endsWith(suffix)).length,
    close: async () => {
      for (const r of hanging) r.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Text of a fixture under test/fixtures/grid-api/. */
export function fixtureText(name: string): string {
  return readFileSync(fileURLToPath(new URL(`../fixtures/grid-api/${name}`, import.meta.url)), "utf8");
}

/** Parsed JSON fixture. */
export function fixture<T = unknown>(name: string): T {
  return JSON.parse(fixtureText(name)) as T;
}

/** A Logger that records every line (to check warnings and that no secret leaks). */
export function recordingLogger() {
  const lines: string[] = [];
  const seen = new Set<string>();
  return {
    lines,
    info: (m: string) => void lines.push(`info: ${m}`),
    warn: (m: string) => void lines.push(`warn: ${m}`),
    warnOnce: (key: string, m: string) => {
      if (seen.has(key)) return;
      seen.add(key);
      lines.push(`warn: ${m}`);
    },
    debug: (m: string) => void lines.push(`debug: ${m}`),
  };
}
