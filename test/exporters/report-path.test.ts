// The report is written only to a regular file or a new path, never through a link, and leaves no
// temporary file behind on any failure. Real device nodes, FIFOs, symlinks and a real 16 KiB tmpfs
// (this machine runs the tests as root).
import { execFileSync, spawnSync } from "node:child_process";
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkReportPath, writeJsonAtomic } from "../../exporters/report-json.js";
import { ExportError, UsageError } from "../../src/errors.js";
import { runCli } from "../helpers/cli.js";

const scenario = join(import.meta.dirname, "..", "fixtures", "scenarios", "constant-shared-gpu.json");
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "pp-report-path-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const tmpLeft = (d: string) => readdirSync(d).filter((n) => n.includes(".tmp-"));
const usage = (fn: () => unknown): UsageError => {
  try {
    fn();
  } catch (err) {
    if (err instanceof UsageError) return err;
    throw err;
  }
  throw new Error("no UsageError");
};

describe("checkReportPath", () => {
  it("accepts a new path and an existing regular file", () => {
    expect(checkReportPath(join(dir, "new.json"))).toBe(join(dir, "new.json"));
    writeFileSync(join(dir, "old.json"), "{}");
    expect(checkReportPath(join(dir, "old.json"))).toBe(join(dir, "old.json"));
  });

  it("refuses a device node, a FIFO, a directory and a symlink, naming --report and the fix", () => {
    execFileSync("mkfifo", [join(dir, "fifo")]);
    writeFileSync(join(dir, "target.json"), "keep");
    symlinkSync(join(dir, "target.json"), join(dir, "link.json"));
    symlinkSync(join(dir, "nowhere.json"), join(dir, "dangling.json"));
    const cases: [string, RegExp][] = [
      ["/dev/null", /is a device node/],
      [join(dir, "fifo"), /is a FIFO/],
      [dir, /is a directory/],
      [join(dir, "link.json"), /is a symbolic link/],
      [join(dir, "dangling.json"), /is a symbolic link/],
    ];
    for (const [p, why] of cases) {
      const e = usage(() => checkReportPath(p));
      expect(e.field).toBe("--report");
      expect(e.message).toMatch(why);
      expect(e.message).toMatch(/give the path of a regular file or a new file/);
    }
  });
});

describe("writeJsonAtomic", () => {
  it("replaces a regular file and leaves no temporary file", () => {
    const p = join(dir, "w.json");
    writeFileSync(p, "old");
    writeJsonAtomic(p, { a: 1 });
    expect(JSON.parse(readFileSync(p, "utf8"))).toEqual({ a: 1 });
    expect(tmpLeft(dir)).toEqual([]);
  });

  it("refuses a target that became a symlink after the check: the link's target is untouched", () => {
    const target = join(dir, "victim.txt");
    writeFileSync(target, "precious");
    const p = join(dir, "late-link.json");
    checkReportPath(p); // a new path: accepted
    symlinkSync(target, p);
    expect(() => writeJsonAtomic(p, { a: 1 })).toThrow(ExportError);
    expect(readFileSync(target, "utf8")).toBe("precious");
    expect(lstatSync(p).isSymbolicLink()).toBe(true);
    expect(tmpLeft(dir)).toEqual([]);
  });

  it("a folder removed before the write: ExportError naming the path, nothing left", () => {
    const gone = join(dir, "gone");
    mkdirSync(gone);
    const p = join(gone, "r.json");
    checkReportPath(p);
    rmSync(gone, { recursive: true });
    expect(() => writeJsonAtomic(p, { a: 1 })).toThrow(/report: cannot write .*ENOENT/);
  });

  describe("a full disk (a 16 KiB tmpfs)", () => {
    const mnt = join(tmpdir(), `pp-enospc-${process.pid}`);
    let mounted = false;
    beforeAll(() => {
      mkdirSync(mnt, { recursive: true });
      mounted = spawnSync("mount", ["-t", "tmpfs", "-o", "size=16k", "tmpfs", mnt]).status === 0;
    });
    afterAll(() => {
      if (mounted) spawnSync("umount", [mnt]);
      rmSync(mnt, { recursive: true, force: true });
    });

    it("ENOSPC: ExportError, the old report kept, no .tmp-* left", () => {
      expect(mounted, "mount -t tmpfs needs root").toBe(true);
      const p = join(mnt, "r.json");
      writeFileSync(p, '{"old":true}');
      const big = { filler: "x".repeat(64 * 1024) };
      expect(() => writeJsonAtomic(p, big)).toThrow(/report: cannot write .*ENOSPC/);
      expect(readFileSync(p, "utf8")).toBe('{"old":true}');
      expect(tmpLeft(mnt)).toEqual([]);
    });
  });
});

describe("--report on the CLI", () => {
  // Should a regression replace /dev/full by a regular file (what the old rename did), put the
  // real node back so one failed run does not break the machine for the others.
  afterAll(() => {
    if (!lstatSync("/dev/full").isCharacterDevice()) {
      rmSync("/dev/full", { force: true });
      execFileSync("mknod", ["-m", "666", "/dev/full", "c", "1", "7"]);
    }
  });

  it("simulate --report /dev/full is refused with exit 2 and /dev/full stays a character device", async () => {
    const before = statSync("/dev/full");
    expect(before.isCharacterDevice()).toBe(true);
    const r = await runCli(["simulate", scenario, "--quiet", "--report", "/dev/full"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--report: '\/dev\/full' is a device node; give the path of a regular file/);
    const after = lstatSync("/dev/full");
    expect(after.isCharacterDevice()).toBe(true);
    expect(after.rdev).toBe(before.rdev);
  });

  it("run --report <symlink> is refused before the command runs; the link's target is untouched", async () => {
    const target = join(dir, "run-target.txt");
    writeFileSync(target, "precious");
    const link = join(dir, "run-link.json");
    symlinkSync(target, link);
    const marker = join(dir, "ran");
    const r = await runCli(["run", "--quiet", "--report", link, "--", "sh", "-c", `touch ${marker}`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--report: .* is a symbolic link/);
    expect(readFileSync(target, "utf8")).toBe("precious");
    expect(() => statSync(marker)).toThrow();
  });
});
