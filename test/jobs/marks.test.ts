// MarksReader on real files: oversized lines dropped whole, truncation and replacement followed,
// a per-poll byte budget, counters parsed, prototype-key phases kept as ordinary names.
import { spawnSync } from "node:child_process";
import { appendFileSync, mkdtempSync, renameSync, rmSync, truncateSync, writeFileSync, openSync, writeSync, closeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MAX_MARK_LINE_BYTES, MarksReader, parseMark, type Mark } from "../../src/jobs/marks.js";

let dir: string;
let file: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "pp-marks-unit-"));
  file = join(dir, "marks.jsonl");
  writeFileSync(file, "");
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));
const line = (o: unknown) => `${JSON.stringify(o)}\n`;
/** When the tests' lines are "first seen" (epoch ms); the marks' own fields without the time stamp. */
const SEEN_MILLIS = 1_700_000_000_000;
const bare = (marks: Mark[]) => marks.map(({ timeMillis: _t, timeOrigin: _o, ...rest }) => rest);

describe("MarksReader", () => {
  it("an over-long line with a forged mark at its end is dropped whole; the next line is read", () => {
    const m = new MarksReader(file);
    appendFileSync(file, `${"x".repeat(MAX_MARK_LINE_BYTES + 10)}{"phase":"forged"}\n${line({ phase: "real" })}`);
    expect(bare(m.poll(SEEN_MILLIS))).toEqual([{ phase: "real" }]);
    expect(m.oversized).toBe(1);
    expect(m.malformed).toBe(0);
  });

  it("an over-long line split across polls: its tail (arriving later) is never a mark", () => {
    const m = new MarksReader(file);
    appendFileSync(file, "y".repeat(MAX_MARK_LINE_BYTES + 1));
    expect(bare(m.poll(SEEN_MILLIS))).toEqual([]);
    appendFileSync(file, "zzzz");
    expect(bare(m.poll(SEEN_MILLIS))).toEqual([]);
    appendFileSync(file, `{"phase":"forged"}\n${line({ phase: "ok", step: 3 })}`);
    expect(bare(m.poll(SEEN_MILLIS))).toEqual([{ phase: "ok", step: 3 }]);
    expect(m.oversized).toBe(1);
  });

  it("a 50 MB line written by a spawned script counts as one oversized line, read within the byte budget", () => {
    const script = `const fs=require("fs");const fd=fs.openSync(process.argv[1],"a");const b=Buffer.alloc(1<<20,97);for(let i=0;i<50;i++)fs.writeSync(fd,b);fs.writeSync(fd,'{"phase":"forged"}\\n{"phase":"after","tokens":2048}\\n');`;
    expect(spawnSync(process.execPath, ["-e", script, file]).status).toBe(0);
    const m = new MarksReader(file, { maxPollBytes: 4 << 20 });
    const got = [];
    let polls = 0;
    for (; polls < 100 && got.length === 0; polls++) got.push(...m.poll());
    expect(bare(got)).toEqual([{ phase: "after", tokens: 2048 }]);
    expect(m.oversized).toBe(1);
    expect(polls).toBeGreaterThanOrEqual(13); // 50 MiB at 4 MiB per poll: the budget held
  });

  it("reads every complete line of a poll within the budget and the rest on the next polls", () => {
    const m = new MarksReader(file, { maxPollBytes: 100 });
    for (let i = 0; i < 20; i++) appendFileSync(file, line({ phase: `p${i}`, step: i }));
    const first = m.poll();
    expect(first.length).toBeGreaterThan(0);
    expect(first.length).toBeLessThan(20);
    const all = [...first];
    for (let k = 0; k < 20 && all.length < 20; k++) all.push(...m.poll());
    expect(all.map((x) => x.step)).toEqual([...Array(20).keys()]);
  });

  it("follows a truncated file: a phase written after the truncation is not lost", () => {
    const m = new MarksReader(file);
    appendFileSync(file, line({ phase: "warmup", step: 0 }) + line({ phase: "train", step: 1 }));
    expect(m.poll().map((x) => x.phase)).toEqual(["warmup", "train"]);
    truncateSync(file, 0);
    appendFileSync(file, line({ phase: "eval" }));
    expect(bare(m.poll(SEEN_MILLIS))).toEqual([{ phase: "eval" }]);
    expect(m.restarts).toBe(1);
  });

  it("follows a replaced file (new inode, even one longer than the old offset)", () => {
    const m = new MarksReader(file);
    appendFileSync(file, line({ phase: "a" }));
    expect(bare(m.poll(SEEN_MILLIS))).toEqual([{ phase: "a" }]);
    const next = join(dir, "new.jsonl");
    writeFileSync(next, line({ phase: "b", samples: 10 }) + line({ phase: "c" }));
    renameSync(next, file);
    expect(bare(m.poll(SEEN_MILLIS))).toEqual([{ phase: "b", samples: 10 }, { phase: "c" }]);
    expect(m.restarts).toBe(1);
  });

  it("a FIFO at the path is ignored without blocking", () => {
    rmSync(file);
    expect(spawnSync("mkfifo", [file]).status).toBe(0);
    const m = new MarksReader(file);
    expect(bare(m.poll(SEEN_MILLIS))).toEqual([]);
  });

  it("a line split in the middle of a multi-byte character is decoded whole", () => {
    const m = new MarksReader(file);
    const bytes = Buffer.from(line({ phase: "préchauffage" }));
    const cut = bytes.indexOf(0xc3) + 1;
    const fd = openSync(file, "a");
    writeSync(fd, bytes.subarray(0, cut));
    expect(bare(m.poll(SEEN_MILLIS))).toEqual([]);
    writeSync(fd, bytes.subarray(cut));
    closeSync(fd);
    expect(bare(m.poll(SEEN_MILLIS))).toEqual([{ phase: "préchauffage" }]);
  });
});

describe("MarksReader: when a mark happened", () => {
  it("keeps the line's timeMillis; stamps a line without one with the time it was first seen; never later than that", () => {
    const m = new MarksReader(file);
    appendFileSync(file, line({ phase: "own", timeMillis: SEEN_MILLIS - 250 }) + line({ phase: "none" }) + line({ phase: "ahead", timeMillis: SEEN_MILLIS + 60_000 }));
    expect(m.poll(SEEN_MILLIS)).toEqual([
      { phase: "own", timeMillis: SEEN_MILLIS - 250, timeOrigin: "mark" },
      { phase: "none", timeMillis: SEEN_MILLIS, timeOrigin: "seen" },
      { phase: "ahead", timeMillis: SEEN_MILLIS, timeOrigin: "seen" },
    ]);
    // A line seen at a later poll gets that poll's time.
    appendFileSync(file, line({ phase: "later" }));
    expect(m.poll(SEEN_MILLIS + 1000)).toEqual([{ phase: "later", timeMillis: SEEN_MILLIS + 1000, timeOrigin: "seen" }]);
  });

  it("counts the counters it left out over every poll", () => {
    const m = new MarksReader(file);
    appendFileSync(file, line({ phase: "a", samples: 1.5 }) + line({ phase: "b", step: -2, tokens: 7 }));
    expect(bare(m.poll(SEEN_MILLIS))).toEqual([{ phase: "a", badCounters: 1 }, { phase: "b", tokens: 7, badCounters: 1 }]);
    expect(m.badCounters).toBe(2);
  });
});

describe("parseMark", () => {
  it("parses the cumulative counters and timeMillis; drops non-finite, negative or non-number ones", () => {
    expect(parseMark('{"phase":"train","step":1200,"samples":4096,"tokens":2097152,"timeMillis":1700000000000}')).toEqual({
      phase: "train",
      step: 1200,
      samples: 4096,
      tokens: 2097152,
      timeMillis: 1700000000000,
    });
    expect(parseMark('{"phase":"t","step":-1,"samples":"5","tokens":1e999}')).toEqual({ phase: "t", badCounters: 3 });
  });

  it("counts are whole: a fractional counter is left out and counted, never rounded", () => {
    expect(parseMark('{"phase":"t","samples":4096,"tokens":98304.5,"step":3.0}')).toEqual({ phase: "t", samples: 4096, step: 3, badCounters: 1 });
    expect(parseMark('{"phase":"t","samples":null}')).toEqual({ phase: "t" });
  });

  it("phases named like Object.prototype keys are ordinary names", () => {
    for (const p of ["constructor", "__proto__", "toString", "hasOwnProperty"]) expect(parseMark(JSON.stringify({ phase: p }))).toEqual({ phase: p });
    // A `phase` only inherited, never own, is no phase.
    expect(parseMark('{"__proto__":{"phase":"inherited"}}')).toBeUndefined();
  });

  it("refuses what is not a usable mark", () => {
    for (const bad of ["[]", "null", "3", '"phase"', "{}", '{"phase":""}', `{"phase":"${"p".repeat(65)}"}`, '{"phase":"a\\nb"}', "{not json"]) {
      expect(parseMark(bad), bad).toBeUndefined();
    }
  });
});
