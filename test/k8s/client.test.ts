// The pod-list client and its background cache against loopback servers replaying the real kubelet
// PodList responses in test/fixtures/kubelet (and failures: 401, 500, garbage, hang, oversize).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { apiServerPodsUrl, fetchPods } from "../../src/k8s/client.js";
import { PodMetadataCache } from "../../src/k8s/cache.js";
import { parsePodList } from "../../src/k8s/pods.js";
import { recordingLogger, startReplayServer, type ReplayServer } from "../grid/replay-server.js";

const fixture = (name: string): unknown =>
  JSON.parse(readFileSync(fileURLToPath(new URL(`../fixtures/kubelet/${name}`, import.meta.url)), "utf8"));
const servers: ReplayServer[] = [];
const tmp: string[] = [];
afterAll(async () => {
  for (const s of servers) await s.close();
  for (const d of tmp) rmSync(d, { recursive: true, force: true });
});

describe("parsePodList on real kubelet responses", () => {
  it("null and empty entries are skipped, the real pod kept", () => {
    const r = parsePodList(fixture("datadog-agent__podlist_null_pod.json"));
    expect(r.status).toBe("ok");
    if (r.status !== "ok") return;
    expect(r.skipped).toBe(2);
    expect(r.pods).toEqual([
      {
        uid: "7979cfcd-0751-11e8-a2b8-000c29dea4f6",
        name: "nginx-99d8b564-4r4vq",
        namespace: "default",
        labels: { app: "nginx", "pod-template-hash": "55846120" },
        nodeName: "my-node-name",
        phase: "Running",
        containers: [{ name: "nginx", runtime: "docker", id: "61e83ec5ce7af1c134c159bac1bf94d3413486ba655e5ebd6231e0a92a1c7b54", state: "running" }],
      },
    ]);
  });
  it("Pending static pods without containerStatuses and hash UIDs (Kubernetes 1.8)", () => {
    const r = parsePodList(fixture("datadog-agent__podlist_1.8-2.json"));
    if (r.status !== "ok") throw new Error(r.reason);
    expect(r.pods).toHaveLength(7);
    const apiserver = r.pods.find((p) => p.name === "kube-apiserver-my-node-name")!;
    expect(apiserver).toMatchObject({ uid: "0a8863810b43d4d891fab0af80e28e4c", phase: "Pending", containers: [] });
  });
  it("containerd ids and a short-lived terminated pod", () => {
    const r = parsePodList(fixture("datadog-agent__podlist_short_lived_terminated.json"));
    if (r.status !== "ok") throw new Error(r.reason);
    expect(r.pods).toHaveLength(5);
    const all = r.pods.flatMap((p) => p.containers);
    expect(all.every((c) => c.id === undefined || c.runtime === "containerd")).toBe(true);
    expect(r.pods.some((p) => p.phase === "Succeeded" && p.containers.some((c) => c.state === "terminated"))).toBe(true);
  });
  it("docker ids of running pods", () => {
    const r = parsePodList(fixture("datadog-agent__podlist_container_ready.json"));
    if (r.status !== "ok") throw new Error(r.reason);
    expect(r.pods).toHaveLength(5);
    expect(r.pods.flatMap((p) => p.containers).every((c) => c.runtime === "docker" && /^[0-9a-f]{64}$/.test(c.id!))).toBe(true);
  });
  it("a body that is not a PodList is an error value", () => {
    expect(parsePodList({ kind: "Status" })).toEqual({ status: "error", reason: "not a PodList (no items array)" });
    expect(parsePodList(null).status).toBe("error");
  });
});

describe("fetchPods over HTTP", () => {
  it("sends the bearer token and returns the pods", async () => {
    const s = await startReplayServer(() => ({ body: fixture("datadog-agent__podlist_container_ready.json") }));
    servers.push(s);
    const r = await fetchPods({ url: `${s.url}/pods`, token: "s3cret-token" });
    expect(r.status).toBe("ok");
    expect(s.requests[0].headers.authorization).toBe("Bearer s3cret-token");
  });
  it.each([
    [{ status: 401, body: "Unauthorized" }, /HTTP 401 \(the service account may lack/],
    [{ status: 403, body: "Forbidden" }, /HTTP 403/],
    [{ status: 500, body: "oops" }, /HTTP 500$/],
    [{ status: 200, body: "<html>not json</html>" }, /body is not JSON/],
    [{ status: 200, body: { kind: "Status" } }, /not a PodList/],
  ])("%j → a typed error, never a throw, never the token", async (reply, reason) => {
    const s = await startReplayServer(() => reply);
    servers.push(s);
    const r = await fetchPods({ url: `${s.url}/pods`, token: "s3cret-token" });
    expect(r.status).toBe("error");
    if (r.status === "error") {
      expect(r.reason).toMatch(reason);
      expect(r.reason).not.toContain("s3cret");
      expect(r.reason).toMatch(/^GET 127\.0\.0\.1:\d+\/pods: /);
    }
  });
  it("a token that cannot be a header is an error value, not a throw", async () => {
    const s = await startReplayServer(() => ({ body: {} }));
    servers.push(s);
    const r = await fetchPods({ url: `${s.url}/pods`, token: "abc\ndef" });
    expect(r.status).toBe("error");
    if (r.status === "error") expect(r.reason).not.toContain("abc");
    expect(s.count("/pods")).toBe(0);
  });
  it("gives up at the deadline", async () => {
    const s = await startReplayServer(() => ({ hang: true }));
    servers.push(s);
    const r = await fetchPods({ url: `${s.url}/pods`, timeoutMillis: 200 });
    expect(r).toEqual({ status: "error", reason: expect.stringMatching(/no complete answer within 200 ms$/) });
  });
  it("caps the response size", async () => {
    const s = await startReplayServer(() => ({ body: fixture("datadog-agent__podlist_container_ready.json") }));
    servers.push(s);
    const r = await fetchPods({ url: `${s.url}/pods`, maxBytes: 1000 });
    expect(r).toEqual({ status: "error", reason: expect.stringMatching(/response larger than 1000 bytes$/) });
  });
  it("a refused connection is an error value", async () => {
    const s = await startReplayServer(() => ({}));
    const url = `${s.url}/pods`;
    await s.close();
    const r = await fetchPods({ url });
    expect(r.status).toBe("error");
    if (r.status === "error") expect(r.reason).toMatch(/ECONNREFUSED/);
  });
  it("builds the API server URL with the node field selector", () => {
    expect(apiServerPodsUrl("10.96.0.1", 443, "node-a")).toBe("https://10.96.0.1:443/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-a");
  });
});

const hasOpenssl = (() => {
  try {
    execFileSync("openssl", ["version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

describe("fetchPods over HTTPS with a CA file", () => {
  it.skipIf(!hasOpenssl)("trusts the given CA, rejects without it (certificate made by openssl)", async () => {
    const d = mkdtempSync(join(tmpdir(), "pp-tls-"));
    tmp.push(d);
    execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(d, "key.pem"), "-out", join(d, "cert.pem"), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"], { stdio: "ignore" });
    const body = JSON.stringify(fixture("datadog-agent__podlist_container_ready.json"));
    const server = createServer({ key: readFileSync(join(d, "key.pem")), cert: readFileSync(join(d, "cert.pem")) }, (_req, res) => res.end(body));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/pods`;
    try {
      writeFileSync(join(d, "token"), "tok\n");
      const ok = await fetchPods({ url, caFile: join(d, "cert.pem"), tokenFile: join(d, "token") });
      expect(ok.status).toBe("ok");
      const bad = await fetchPods({ url });
      expect(bad.status).toBe("error");
      const skip = await fetchPods({ url, insecureSkipTlsVerify: true });
      expect(skip.status).toBe("ok");
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});

describe("PodMetadataCache", () => {
  it("keeps the last good pods through a failure, warns once, says when it is back", async () => {
    let mode: "ok" | "fail" = "ok";
    const s = await startReplayServer(() => (mode === "ok" ? { body: fixture("datadog-agent__podlist_container_ready.json") } : { status: 500, body: "x" }));
    servers.push(s);
    const log = recordingLogger();
    const cache = new PodMetadataCache({ fetch: () => fetchPods({ url: `${s.url}/pods` }), log, intervalMillis: 3_600_000 });
    try {
      expect((await cache.start()).status).toBe("ok");
      const uid = cache.all()[0].uid;
      expect(cache.byUid(uid)?.name).toBe(cache.all()[0].name);
      mode = "fail";
      await cache.refresh();
      await cache.refresh();
      expect(cache.byUid(uid)).toBeDefined();
      expect(log.lines.filter((l) => l.startsWith("warn:"))).toEqual([
        expect.stringMatching(/^warn: pod metadata from the kubelet unavailable: GET .*HTTP 500; pods keep their last known names, retrying every 3600 s$/),
      ]);
      mode = "ok";
      await cache.refresh();
      expect(log.lines.at(-1)).toBe("info: pod metadata from the kubelet is back (5 pods)");
      expect(cache.stats).toEqual({ ok: 2, failed: 2 });
    } finally {
      cache.stop();
    }
  });
  it("rate-limits early refreshes", async () => {
    const s = await startReplayServer(() => ({ body: fixture("datadog-agent__podlist_container_ready.json") }));
    servers.push(s);
    let now = 0;
    const cache = new PodMetadataCache({ fetch: () => fetchPods({ url: `${s.url}/pods` }), log: recordingLogger(), nowMillis: () => now, minIntervalMillis: 2000 });
    await cache.refresh();
    cache.requestRefresh(); // too soon
    now = 2500;
    cache.requestRefresh();
    await cache.refresh(); // joins the one in flight
    expect(s.count("/pods")).toBe(2);
    // A UID no refresh finds (a deleted pod's leftover cgroup) asks once, then no more.
    now = 10_000;
    cache.requestRefresh("no-such-uid");
    await cache.refresh();
    expect(s.count("/pods")).toBe(3);
    now = 20_000;
    cache.requestRefresh("no-such-uid");
    expect(s.count("/pods")).toBe(3);
  });
  it("does not hammer a failing source with early refreshes", async () => {
    const s = await startReplayServer(() => ({ status: 403, body: "Forbidden" }));
    servers.push(s);
    let now = 0;
    let fetches = 0;
    const cache = new PodMetadataCache({ fetch: () => (fetches++, fetchPods({ url: `${s.url}/pods` })), log: recordingLogger(), nowMillis: () => now });
    await cache.refresh();
    now = 60_000;
    cache.requestRefresh("a"); // refresh() calls fetch synchronously: a started fetch would count now
    cache.requestRefresh("b");
    expect(fetches).toBe(1);
  });
});
