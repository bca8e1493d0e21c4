// powerprint_marks.py on its own (standard library only, any Python 3): lines it appends, the
// phase context manager returning to the previous phase (also on an exception), no-op when
// POWERPRINT_MARKS is unset; MarksReader parses what it writes.
import { describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MarksReader } from "../../src/jobs/marks.js";

const helperDir = join(import.meta.dirname, "..", "..", "python");
const script = `
from powerprint_marks import mark, phase, current_phase
mark(phase="train", step=1, samples=32)
mark(step=2, samples=64, tokens=1000)
try:
    with phase("eval"):
        mark(samples=96)
        raise RuntimeError("boom")
except RuntimeError:
    pass
print(current_phase())
`;

describe("python/powerprint_marks.py", () => {
  it("appends cumulative marks; phase() returns to the previous phase even on an exception", () => {
    const dir = mkdtempSync(join(tmpdir(), "pp-pymarks-"));
    const marks = join(dir, "marks.jsonl");
    writeFileSync(marks, "");
    const beforeMillis = Date.now();
    const out = execFileSync("python3", ["-c", script], { env: { ...process.env, PYTHONPATH: helperDir, POWERPRINT_MARKS: marks }, encoding: "utf8" });
    const afterMillis = Date.now();
    expect(out.trim()).toBe("train");
    const lines = readFileSync(marks, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    // Every line carries when mark() was called (epoch ms), in call order, within the script's life.
    const times = lines.map((l) => l.timeMillis as number);
    for (const [i, t] of times.entries()) {
      expect(t).toBeGreaterThanOrEqual(beforeMillis - 1);
      expect(t).toBeLessThanOrEqual(afterMillis + 1);
      if (i > 0) expect(t).toBeGreaterThanOrEqual(times[i - 1]);
    }
    expect(lines.map(({ timeMillis: _, ...rest }) => rest)).toEqual([
      { phase: "train", step: 1, samples: 32 },
      { phase: "train", step: 2, samples: 64, tokens: 1000 },
      { phase: "eval", step: 2, samples: 64, tokens: 1000 },
      { phase: "eval", step: 2, samples: 96, tokens: 1000 },
      { phase: "train", step: 2, samples: 96, tokens: 1000 },
    ]);
    const parsed = new MarksReader(marks).poll();
    expect(parsed.map((m) => m.phase)).toEqual(["train", "train", "eval", "eval", "train"]);
    // The reader keeps the helper's own times (not the time it read them).
    expect(parsed.map((m) => [m.timeMillis, m.timeOrigin])).toEqual(times.map((t) => [t, "mark"]));
    expect(parsed[3]).toMatchObject({ samples: 96, tokens: 1000, step: 2 });
    rmSync(dir, { recursive: true, force: true });
  });

  it("is a no-op outside powerprint (POWERPRINT_MARKS unset)", () => {
    const dir = mkdtempSync(join(tmpdir(), "pp-pymarks-"));
    const env: NodeJS.ProcessEnv = { ...process.env, PYTHONPATH: helperDir };
    delete env.POWERPRINT_MARKS;
    const out = execFileSync("python3", ["-c", `${script}\nimport os\nprint(sorted(os.listdir(${JSON.stringify(dir)})))`], { env, encoding: "utf8", cwd: dir });
    expect(out.trim().split("\n")).toEqual(["train", "[]"]);
    expect(existsSync(join(dir, "marks.jsonl"))).toBe(false);
    rmSync(dir, { recursive: true, force: true });
  });
});
