import { describe, expect, test } from "vitest";
import { parseTags, resolveJobIdentity } from "../../src/config/identity.js";
import { UsageError } from "../../src/errors.js";

describe("resolveJobIdentity", () => {
  test.each([
    {
      name: "flags win over the scheduler",
      input: { jobId: "run-42", jobName: "bert", env: { SLURM_JOB_ID: "9001", SLURM_JOB_NAME: "slurm-name" } },
      expected: { id: "run-42", name: "bert", origin: "flag" },
    },
    {
      name: "--job-id only: the name comes from the command",
      input: { jobId: "run-42", env: { SLURM_JOB_ID: "9001", SLURM_JOB_NAME: "slurm-name" }, command: ["/usr/bin/python3", "train.py", "--lr", "3e-4"] },
      expected: { id: "run-42", name: "python3 train.py --lr 3e-4", origin: "flag" },
    },
    {
      name: "Slurm job",
      input: { env: { SLURM_JOB_ID: "9001", SLURM_JOB_NAME: "pretrain" }, command: ["python"] },
      expected: { id: "9001", name: "pretrain", origin: "SLURM_JOB_ID" },
    },
    {
      name: "Slurm array task: Slurm's own notation",
      input: { env: { SLURM_JOB_ID: "9005", SLURM_ARRAY_JOB_ID: "9001", SLURM_ARRAY_TASK_ID: "4" } },
      expected: { id: "9001_4", name: "9001_4", origin: "SLURM_JOB_ID" },
    },
    {
      name: "--job-name with a Slurm id",
      input: { jobName: "mine", env: { SLURM_JOB_ID: "9001", SLURM_JOB_NAME: "pretrain" } },
      expected: { id: "9001", name: "mine", origin: "SLURM_JOB_ID" },
    },
    {
      name: "torchelastic rendezvous id",
      input: { env: { TORCHELASTIC_RUN_ID: "rdzv-7" }, command: ["python", "train.py"] },
      expected: { id: "rdzv-7", name: "python train.py", origin: "TORCHELASTIC_RUN_ID" },
    },
    {
      name: "Kubernetes Job (downward API label)",
      input: { env: { K8S_POD_NAME: "bert-0-abcde", K8S_JOB_NAME: "bert", K8S_NAMESPACE_NAME: "ml" } },
      expected: { id: "ml/bert", name: "bert", origin: "k8s-downward-api" },
    },
    {
      name: "Kubernetes pod without a Job",
      input: { env: { K8S_POD_NAME: "notebook-1", K8S_POD_NAMESPACE: "research" } },
      expected: { id: "research/notebook-1", name: "notebook-1", origin: "k8s-downward-api" },
    },
    {
      name: "Slurm wins over Kubernetes and torchelastic",
      input: { env: { SLURM_JOB_ID: "1", TORCHELASTIC_RUN_ID: "r", K8S_POD_NAME: "p" } },
      expected: { id: "1", origin: "SLURM_JOB_ID" },
    },
    {
      name: "TORCHELASTIC_RUN_ID=none is ignored: generated",
      input: { env: { TORCHELASTIC_RUN_ID: "none" }, command: ["sleep", "3"], randomId: () => "0123456789ab" },
      expected: { id: "pp-0123456789ab", name: "sleep 3", origin: "generated" },
    },
  ])("$name", ({ input, expected }) => {
    expect(resolveJobIdentity({ tags: [], ...input })).toMatchObject(expected);
  });

  test("generated ids are unique per run", () => {
    const a = resolveJobIdentity({ tags: [], env: {} });
    const b = resolveJobIdentity({ tags: [], env: {} });
    expect(a.id).toMatch(/^pp-[0-9a-f]{12}$/);
    expect(a.id).not.toBe(b.id);
    expect(a.name).toBe(a.id);
  });

  test("long command names are cut to 64 characters", () => {
    const id = resolveJobIdentity({ tags: [], env: {}, command: ["python", "x".repeat(100)] });
    expect(id.name).toHaveLength(64);
    expect(id.name.endsWith("…")).toBe(true);
  });

  test("tags become attributes", () => {
    expect(resolveJobIdentity({ tags: ["team=nlp", "exp=lr=3e-4"], env: {} }).attributes).toEqual({ team: "nlp", exp: "lr=3e-4" });
  });

  test.each([
    [{ jobId: " " }, "--job-id"],
    [{ jobName: "" }, "--job-name"],
    [{ tags: ["bad"] }, "--tag"],
  ])("%j is a UsageError on %s", (input, field) => {
    try {
      resolveJobIdentity({ tags: [], env: {}, ...input });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(UsageError);
      expect((err as UsageError).field).toBe(field);
    }
  });
});

describe("parseTags", () => {
  test.each([
    ["team", /'team' is not key=value/],
    ["=x", /key '' must start with a letter/],
    ["1abc=x", /key '1abc' must start with a letter/],
    ["a b=x", /key 'a b' must start/],
    ["powerprint.job.id=x", /set by powerprint itself/],
    ["hw.type=x", /set by powerprint itself/],
    [`k=${"v".repeat(300)}`, /longer than 256/],
  ])("%s", (tag, message) => {
    expect(() => parseTags([tag])).toThrow(message);
  });

  test("duplicate keys are refused", () => {
    expect(() => parseTags(["a=1", "a=2"])).toThrow("--tag: key 'a' is given twice");
  });

  test("dots, dashes and empty values are fine", () => {
    expect(parseTags(["deployment.environment=prod", "run-kind=", "x_y=1"])).toEqual({
      "deployment.environment": "prod",
      "run-kind": "",
      x_y: "1",
    });
  });
});
