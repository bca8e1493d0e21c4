// The downward API reader on a directory laid out as the kubelet writes it.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseDownwardLabels, readDownwardApi } from "../../src/k8s/downward.js";

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe("parseDownwardLabels", () => {
  it("reads the kubernetes.io example file (Expose Pod Information to Containers Through Files)", () => {
    // The labels file shown by the Kubernetes documentation for the dapi-volume example pod.
    expect(parseDownwardLabels('cluster="test-cluster1"\nrack="rack-22"\nzone="us-est-coast"\n')).toEqual({
      cluster: "test-cluster1",
      rack: "rack-22",
      zone: "us-est-coast",
    });
  });
  it("undoes Go %q quoting and keeps prefixed keys", () => {
    const text = 'training.kubeflow.org/job-name="bert \\"large\\""\nnote="a\\nb\\\\c\\u00e9"\nbatch.kubernetes.io/job-name="pi"\nbroken line\n';
    expect(parseDownwardLabels(text)).toEqual({
      "training.kubeflow.org/job-name": 'bert "large"',
      note: "a\nb\\cé",
      "batch.kubernetes.io/job-name": "pi",
    });
  });
});

describe("readDownwardApi", () => {
  it("reads name, namespace, uid and labels; absent files leave fields absent", () => {
    const d = mkdtempSync(join(tmpdir(), "pp-podinfo-"));
    dirs.push(d);
    writeFileSync(join(d, "name"), "trainer-0");
    writeFileSync(join(d, "namespace"), "ml\n");
    writeFileSync(join(d, "uid"), "3d274242-8ee0-11e9-a8a6-1e68d864ef1a");
    writeFileSync(join(d, "labels"), 'job-name="bert"\n');
    expect(readDownwardApi(d)).toEqual({
      name: "trainer-0",
      namespace: "ml",
      uid: "3d274242-8ee0-11e9-a8a6-1e68d864ef1a",
      labels: { "job-name": "bert" },
      annotations: {},
    });
    expect(readDownwardApi(join(d, "missing"))).toEqual({ labels: {}, annotations: {} });
  });
});
