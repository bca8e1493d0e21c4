/**
 * A loopback OTLP/HTTP receiver for tests: records every request (path, headers, body, gunzipped
 * when Content-Encoding is gzip) and answers with a chosen status after a chosen delay.
 * Bound to 127.0.0.1 only.
 */
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { gunzipSync } from "node:zlib";

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface OtlpSink {
  port: number;
  baseUrl: string;
  requests: RecordedRequest[];
  /** Status to answer with (default 200) and delay before answering (default 0). */
  respond: { status: number; delayMillis: number };
  close(): Promise<void>;
}

export async function startOtlpSink(): Promise<OtlpSink> {
  const requests: RecordedRequest[] = [];
  const respond = { status: 200, delayMillis: 0 };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      let body = Buffer.concat(chunks);
      if (req.headers["content-encoding"] === "gzip") body = gunzipSync(body);
      requests.push({ method: req.method ?? "", path: req.url ?? "", headers: req.headers, body });
      const timer = setTimeout(() => {
        res.statusCode = respond.status;
        res.end();
      }, respond.delayMillis);
      res.on("close", () => clearTimeout(timer));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    baseUrl: `http://127.0.0.1:${port}`,
    requests,
    respond,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** OTLP JSON body shapes used by the tests (ExportMetricsServiceRequest). */
export interface OtlpJsonAttribute {
  key: string;
  value: { stringValue?: string; intValue?: number | string; doubleValue?: number };
}
export interface OtlpJsonDataPoint {
  attributes: OtlpJsonAttribute[];
  asDouble?: number;
  asInt?: number | string;
}
export interface OtlpJsonMetric {
  name: string;
  unit: string;
  sum?: { dataPoints: OtlpJsonDataPoint[]; aggregationTemporality: number; isMonotonic: boolean };
  gauge?: { dataPoints: OtlpJsonDataPoint[] };
}
export interface OtlpJsonRequest {
  resourceMetrics: { resource: { attributes: OtlpJsonAttribute[] }; scopeMetrics: { metrics: OtlpJsonMetric[] }[] }[];
}

export function attributesOf(list: OtlpJsonAttribute[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of list) out[a.key] = String(a.value.stringValue ?? a.value.intValue ?? a.value.doubleValue);
  return out;
}

export function parseJsonRequest(request: RecordedRequest): OtlpJsonRequest {
  return JSON.parse(request.body.toString("utf8")) as OtlpJsonRequest;
}

export function metricsOf(body: OtlpJsonRequest): OtlpJsonMetric[] {
  return body.resourceMetrics.flatMap((rm) => rm.scopeMetrics.flatMap((sm) => sm.metrics));
}
