/**
 * The RAPL counters' readers shared by the collector (rapl.ts) and by `run` just before its spawn
 * (src/cli/run-spawn.ts): only node: built-ins, so run's pre-spawn chunk does not carry the
 * collector (which the collector registry loads lazily, after the spawn).
 */
import { closeSync, constants, fstatSync, openSync, readdirSync, readSync, statSync } from "node:fs";
import { join } from "node:path";

/** A RAPL zone directory's name: top-level id and sub-zone id, both hex. */
export const ZONE_DIR = /^intel-rapl:([0-9a-f]+)(?::([0-9a-f]+))?$/;
const COUNTER_TEXT = /^\d+$/;

/** A sysfs file's trimmed text, or why it could not be read. */
export type ReadOutcome = { ok: true; text: string } | { ok: false; code: string; message: string };

/**
 * Reads a sysfs file (trimmed); never throws. Opened O_NONBLOCK and refused unless fstat says it is
 * a regular file: a FIFO planted as energy_uj (a hostile or fixture --sys-root) never blocks the
 * read just before `run`'s spawn (code ENOTREG). The collector's own reads go through
 * src/guarded-read.ts (on the thread pool, bounded by the sampler's deadline).
 */
export function readText(path: string): ReadOutcome {
  let fd: number | undefined;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    if (!fstatSync(fd).isFile()) return { ok: false, code: "ENOTREG", message: `${path} is not a regular file: refused` };
    const buf = Buffer.allocUnsafe(4096);
    const n = readSync(fd, buf, 0, buf.length, null);
    return { ok: true, text: buf.toString("utf8", 0, n).trim() };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "EIO";
    return { ok: false, code, message: (err as Error).message };
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Every RAPL zone's energy_uj under `<root>/sys/class/powercap`, read now: path → µJ (unreadable or
 * malformed ones left out; empty without powercap). One readdir and one read per zone, no probing:
 * cheap enough to run just before `run` spawns its command (RaplCollectorOptions.origin).
 */
export function readRaplCountersNow(root = "/"): Map<string, number> {
  const counters = new Map<string, number>();
  for (const dir of listZoneDirs(join(root, "sys", "class", "powercap")).values()) {
    const path = join(dir, "energy_uj");
    const text = readText(path);
    const microjoules = text.ok ? parseMicrojoules(text.text) : undefined;
    if (microjoules !== undefined) counters.set(path, microjoules);
  }
  return counters;
}

/** Parses a whole number of microjoules as sysfs writes it; undefined for anything else. */
export function parseMicrojoules(text: string): number | undefined {
  if (!COUNTER_TEXT.test(text)) return undefined;
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : undefined;
}

/** Whether `path` is a directory (following links); never throws. */
export function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory(); // follows the class dir's symlinks
  } catch {
    return false;
  }
}

/** Zone directories, deduplicated by name: the class dir lists every zone flat (as symlinks), and each package dir also holds its sub-zones. */
export function listZoneDirs(powercapDir: string): Map<string, string> {
  const found = new Map<string, string>();
  const visit = (dir: string, depth: number): void => {
    let entries: string[];
    try {
      entries = readdirSync(dir);
    } catch {
      return;
    }
    for (const entry of entries.sort()) {
      const match = ZONE_DIR.exec(entry);
      if (!match) continue;
      const path = join(dir, entry);
      if (!isDirectory(path)) continue;
      if (!found.has(entry)) found.set(entry, path);
      // Sub-zones live one level down (intel-rapl:0/intel-rapl:0:0) in the device tree layout.
      if (depth === 0 && match[2] === undefined) visit(path, 1);
    }
  };
  visit(powercapDir, 0);
  return found;
}
