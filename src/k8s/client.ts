/**
 * Fetches the pods of this node: from the kubelet (`https://NODE:10250/pods`, the service-account
 * token as bearer; or the read-only `http://NODE:10255/pods`) or from the API server (`/api/v1/pods?
 * fieldSelector=spec.nodeName=NODE`, bearer token, cluster CA). Every request has a deadline and a
 * response size cap. Every failure (401/403, 5xx, garbage, timeout, refused, too large) is a
 * `{ status: "error", reason }` value, never a throw. Never called inside a tick: PodMetadataCache
 * runs it in the background.
 */
import { readFileSync } from "node:fs";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { errorMessage } from "../errors.js";
import { parsePodList, type PodMetadata } from "./pods.js";

/** Outcome of one fetch. */
export type FetchPodsResult =
  | { status: "ok"; pods: PodMetadata[]; skipped: number }
  | { status: "error"; reason: string; httpStatus?: number };

/** Where and how to ask. */
export interface PodSourceOptions {
  /** Full URL of the pod list, e.g. "https://10.0.0.5:10250/pods" or an API server URL from apiServerPodsUrl. */
  url: string;
  /** Bearer token (the service-account token). Never appears in a reason. */
  token?: string;
  /** File to read the token from at each request (tokens are rotated): default none. */
  tokenFile?: string;
  /** PEM file of the CA that signed the server's certificate (API server: the service-account ca.crt). */
  caFile?: string;
  /** Accept any server certificate (kubelets often serve self-signed ones). Default false. */
  insecureSkipTlsVerify?: boolean;
  /** Deadline of the whole request, ms. Default 5000. */
  timeoutMillis?: number;
  /** Largest body accepted, bytes. Default 64 MiB (a PodList of ~110 pods is ~1 MiB). */
  maxBytes?: number;
}

/** Where Kubernetes mounts the pod's service-account token and the cluster CA. */
export const SERVICE_ACCOUNT_TOKEN_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token";
export const SERVICE_ACCOUNT_CA_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";

/** The in-cluster default for the kubelet of `nodeName` (from the downward API's spec.nodeName or status.hostIP). */
export const kubeletPodsUrl = (host: string, port = 10250): string => `https://${host.includes(":") ? `[${host}]` : host}:${port}/pods`;

/** The API server list of this node's pods (KUBERNETES_SERVICE_HOST/PORT, read by the CLI). */
export function apiServerPodsUrl(host: string, port: number | string, nodeName: string): string {
  const h = host.includes(":") ? `[${host}]` : host;
  return `https://${h}:${port}/api/v1/pods?fieldSelector=${encodeURIComponent(`spec.nodeName=${nodeName}`)}`;
}

/** Fetches and validates the pod list. Never throws. */
export async function fetchPods(opts: PodSourceOptions): Promise<FetchPodsResult> {
  let url: URL;
  try {
    url = new URL(opts.url);
  } catch {
    return { status: "error", reason: `pod list URL is not a URL: ${opts.url}` };
  }
  let token = opts.token;
  let ca: Buffer | undefined;
  try {
    if (opts.tokenFile) token = readFileSync(opts.tokenFile, "utf8").trim();
    if (opts.caFile) ca = readFileSync(opts.caFile);
  } catch (err) {
    return { status: "error", reason: errorMessage(err) };
  }
  const where = `GET ${url.host}${url.pathname}`;
  const got = await get(url, { token, ca, insecure: opts.insecureSkipTlsVerify ?? false, timeoutMillis: opts.timeoutMillis ?? 5000, maxBytes: opts.maxBytes ?? 64 * 1024 * 1024 });
  if (got.status === "error") return { status: "error", reason: `${where}: ${got.reason}` };
  if (got.httpStatus < 200 || got.httpStatus >= 300) {
    const hint = got.httpStatus === 401 || got.httpStatus === 403 ? " (the service account may lack get/list on nodes/proxy or pods)" : "";
    return { status: "error", reason: `${where}: HTTP ${got.httpStatus}${hint}`, httpStatus: got.httpStatus };
  }
  let body: unknown;
  try {
    body = JSON.parse(got.body);
  } catch {
    return { status: "error", reason: `${where}: body is not JSON (${got.body.slice(0, 40).replace(/\s+/g, " ")}…)` };
  }
  const parsed = parsePodList(body);
  if (parsed.status === "error") return { status: "error", reason: `${where}: ${parsed.reason}` };
  return parsed;
}

type GetResult = { status: "ok"; httpStatus: number; body: string } | { status: "error"; reason: string };

function get(url: URL, o: { token?: string; ca?: Buffer; insecure: boolean; timeoutMillis: number; maxBytes: number }): Promise<GetResult> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (r: GetResult): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req?.destroy();
      resolve(r);
    };
    const headers: Record<string, string> = { accept: "application/json" };
    if (o.token) headers.authorization = `Bearer ${o.token}`;
    const onResponse = (res: IncomingMessage): void => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (c: Buffer) => {
        size += c.length;
        if (size > o.maxBytes) finish({ status: "error", reason: `response larger than ${o.maxBytes} bytes` });
        else chunks.push(c);
      });
      res.on("end", () => finish({ status: "ok", httpStatus: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", (err) => finish({ status: "error", reason: errorMessage(err) }));
    };
    let req: ReturnType<typeof httpRequest>;
    try {
      req =
        url.protocol === "https:"
          ? httpsRequest(url, { method: "GET", headers, ca: o.ca, rejectUnauthorized: !o.insecure }, onResponse)
          : httpRequest(url, { method: "GET", headers }, onResponse);
    } catch (err) {
      // Synchronous refusals (a token with a newline is an invalid header): a value, never a throw.
      resolve({ status: "error", reason: errorMessage(err).replace(o.token ?? "\0", "***") });
      return;
    }
    req.on("error", (err) => finish({ status: "error", reason: errorMessage(err) }));
    // One deadline for connect + headers + body (a socket timeout alone restarts with every byte).
    const timer = setTimeout(() => finish({ status: "error", reason: `no complete answer within ${o.timeoutMillis} ms` }), o.timeoutMillis);
    timer.unref();
    req.end();
  });
}
