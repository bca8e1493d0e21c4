/**
 * Reads of kernel files that can block: a sysfs attribute whose driver is wedged, or a FIFO or
 * device planted where a regular file is expected (a fixture root, a hostile /sys mount). A read
 * like that must never stop the event loop (no ticks, no /healthz, SIGTERM not handled):
 *
 * - what is not a regular file is refused before it is opened (stat, then the open; the sync
 *   variant opens O_NONBLOCK and checks with fstat), so a FIFO never blocks an open or a read;
 * - the read of a regular file runs on libuv's thread pool (fs.promises), so a read that never
 *   returns holds one pool thread, not the loop; the caller bounds it (the sampler's per-read
 *   deadline, withinMillis() at probe) and the source is marked hung;
 * - a read still stuck when the process exits would make Node wait for its thread forever (exit
 *   joins the pool): exitProcess() then ends the process with _exit(2), skipping that join, after
 *   saying so. The rest (the final checkpoint, the exporters' flush) is done by then.
 */
import { constants, fstatSync, openSync, readSync, closeSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";

/** A file's text, or why it was not read. */
export type GuardedRead =
  | { status: "ok"; text: string }
  /** Not a regular file (a FIFO, a device, a socket, a directory): never opened for reading. */
  | { status: "refused"; reason: string }
  | { status: "error"; code: string; message: string };

/** Reads of regular files in flight now (path → start, ms): those past exit are stuck in the kernel. */
const inFlight = new Map<number, { path: string; startedMillis: number }>();
let nextId = 0;

const KIND = (st: { isFIFO(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean; isSocket(): boolean; isDirectory(): boolean }): string =>
  st.isFIFO() ? "a FIFO" : st.isCharacterDevice() ? "a character device" : st.isBlockDevice() ? "a block device" : st.isSocket() ? "a socket" : st.isDirectory() ? "a directory" : "not a regular file";

const errorOf = (err: unknown): GuardedRead => ({ status: "error", code: (err as NodeJS.ErrnoException).code ?? "EIO", message: (err as Error).message });

/**
 * The text of the regular file `path` (at most `maxBytes`), read on the thread pool; a FIFO or
 * device refused without being opened. Never rejects; never bounded in time by itself (see the
 * module comment): race it against a deadline.
 */
export async function readRegularText(path: string, maxBytes = 64 * 1024): Promise<GuardedRead> {
  try {
    const st = await stat(path);
    if (!st.isFile()) return { status: "refused", reason: `${path} is ${KIND(st)}, not a regular file: refused` };
  } catch (err) {
    return errorOf(err);
  }
  const id = nextId++;
  inFlight.set(id, { path, startedMillis: Date.now() });
  try {
    const buf = await readFile(path);
    return { status: "ok", text: buf.subarray(0, maxBytes).toString("utf8") };
  } catch (err) {
    return errorOf(err);
  } finally {
    inFlight.delete(id);
  }
}

/**
 * The sync variant, for reads that must stay synchronous (run's counters just before its spawn):
 * opened O_NONBLOCK (a FIFO's open and read return at once) and refused unless fstat says regular.
 * A sysfs attribute whose driver hangs still blocks here: use readRegularText where that matters.
 */
export function readRegularTextSync(path: string, maxBytes = 64 * 1024): GuardedRead {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    return errorOf(err);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return { status: "refused", reason: `${path} is ${KIND(st)}, not a regular file: refused` };
    const buf = Buffer.allocUnsafe(maxBytes);
    let n = 0;
    for (let r; n < maxBytes && (r = readSync(fd, buf, n, maxBytes - n, null)) > 0; ) n += r;
    return { status: "ok", text: buf.toString("utf8", 0, n) };
  } catch (err) {
    return errorOf(err);
  } finally {
    closeSync(fd);
  }
}

/** `p`, or "timeout" once `millis` pass (the timer is cleared as soon as `p` settles; never holds the process). */
export async function withinMillis<T>(p: Promise<T>, millis: number): Promise<T | "timeout"> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), Math.max(0, millis));
    timer.unref();
  });
  try {
    return await Promise.race([p, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Files whose read has not returned (oldest first), with how long they have been waited on, ms. */
export function pendingReads(nowMillis = Date.now()): { path: string; waitedMillis: number }[] {
  return [...inFlight.values()].map((r) => ({ path: r.path, waitedMillis: nowMillis - r.startedMillis }));
}

/**
 * Ends the process with `code`. Normally process.exit; with a read still stuck in the kernel,
 * Node's exit would wait for its thread forever, so the process ends with _exit(2) (through koffi,
 * loaded only then; if it cannot be, SIGKILL of itself: exit 137), after `say` tells why.
 */
export function exitProcess(code: number, say?: (message: string) => void): void {
  const stuck = pendingReads();
  if (stuck.length === 0) return void process.exit(code);
  say?.(`a read of ${stuck[0].path}${stuck.length > 1 ? ` (and ${stuck.length - 1} more)` : ""} has not returned for ${Math.round(stuck[0].waitedMillis / 1000)} s (a wedged driver): exiting without waiting for it`);
  process.exitCode = code;
  void import("koffi")
    .then(({ default: koffi }) => {
      const libc = koffi.load("libc.so.6");
      libc.func("void _exit(int)")(code);
    })
    .catch(() => process.kill(process.pid, "SIGKILL"));
}
