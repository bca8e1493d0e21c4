/**
 * The one implementation of the file operations several parts share: the atomic write of a whole
 * file (reports, checkpoints, the agent's state), the sweep of the temporary files such a write
 * leaves when killed, and the read of a whole small file into a reused buffer that grows to fit
 * (/proc, cgroup files read every tick).
 */
import { closeSync, constants, fsyncSync, lstatSync, openSync, readdirSync, readSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { basename, dirname, join, resolve } from "node:path";

/** `<file>.tmp-<pid>-<hex>`: the temporary file of an atomic write (writeFileAtomic), and its writer's PID. */
const TEMP_NAME = /^(.+)\.tmp-(\d+)-[0-9a-f]+$/;

/**
 * Writes `data` to `path` atomically, never through a link and never into an existing file: a
 * temporary file `<path>.tmp-<pid>-<hex>` is created beside it with O_CREAT|O_EXCL|O_NOFOLLOW (a
 * planted file or symlink makes the open fail), written in full (writeSync may write less than
 * asked: a full disk can fail only on a later chunk), fsynced, then renamed over `path` (a rename
 * replaces a symlink, never writes through it), and the directory is fsynced so the rename is
 * durable (skipped where the filesystem refuses). `beforeRename` runs just before the rename (the
 * target may have changed since it was checked) and may throw. On every failure the temporary
 * file is removed and the error rethrown: the previous file stays whole. (A SIGKILL between the
 * create and the rename leaves the temporary file: removeStaleTempFiles removes those at start.)
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, o: { mode?: number; beforeRename?: () => void } = {}): void {
  const full = resolve(path);
  // Named as TEMP_NAME matches (removeStaleTempFiles).
  const tmp = `${full}.tmp-${process.pid}-${randomBytes(6).toString("hex")}`;
  const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  let fd: number | undefined;
  try {
    fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, o.mode ?? 0o644);
    for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    o.beforeRename?.();
    renameSync(tmp, full);
  } catch (err) {
    if (fd !== undefined) {
      try {
        closeSync(fd);
      } catch {
        /* already closed */
      }
    }
    try {
      unlinkSync(tmp);
    } catch {
      /* never created, or already gone with its folder */
    }
    throw err;
  }
  syncDirectory(dirname(full));
}

/** fsync of a directory (a rename in it is durable once its entry is); filesystems that refuse it are left alone. */
function syncDirectory(dir: string): void {
  try {
    const dfd = openSync(dir, constants.O_RDONLY);
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    /* some filesystems refuse fsync on directories: the data itself is synced */
  }
}

/** Whether `pid` names a live process other than this one (its temp file may be in use). */
function otherLiveProcess(pid: number): boolean {
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Removes the stale temp files of atomic writes of `file`: every error path of writeFileAtomic
 * removes its temp file, but a SIGKILL (OOM killer, node drain) between create and rename cannot.
 * Called at start for the state file and the JSON report, so restarts never fill the disk with
 * copies of the state. Removes `<file>.tmp-<pid>-<hex>` files next to `file` whose writer is gone
 * (its PID is not a live process, or is this one: nothing is being written yet at start). Returns
 * the names removed. Never throws (an unreadable directory removes nothing); symbolic links are
 * removed as links.
 */
export function removeStaleTempFiles(file: string): string[] {
  const dir = dirname(file);
  const base = basename(file);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = TEMP_NAME.exec(name);
    if (!m || m[1] !== base || otherLiveProcess(Number(m[2]))) continue;
    const path = join(dir, name);
    try {
      const st = lstatSync(path);
      if (!st.isFile() && !st.isSymbolicLink()) continue;
      unlinkSync(path);
      removed.push(name);
    } catch {
      /* gone meanwhile, or not ours to remove */
    }
  }
  return removed;
}

/**
 * A reused read buffer that grows (doubling) to fit what is read, so small files read every tick
 * cost no allocation once it is large enough. Not thread-safe: one per reader.
 */
export class ReadBuffer {
  /** The bytes read last (valid up to the length readFd returned, until the next read). */
  buf: Buffer;

  constructor(initialBytes = 4096) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  /**
   * Reads `fd` whole into the buffer; returns the length, or -1 on a read error. `positioned`:
   * reads from offset 0 (a held seq file starts over and shows its current content) instead of the
   * file's offset. `singleRead`: stops after one read() that did not fill the buffer (procfs hands
   * a small seq file, a stat line, out whole: the second, empty read is saved).
   */
  readFd(fd: number, o: { positioned?: boolean; singleRead?: boolean } = {}): number {
    try {
      let length = 0;
      for (;;) {
        if (length === this.buf.length) {
          const bigger = Buffer.allocUnsafe(this.buf.length * 2);
          this.buf.copy(bigger, 0, 0, length);
          this.buf = bigger;
        }
        const n = readSync(fd, this.buf, length, this.buf.length - length, o.positioned ? length : null);
        if (n <= 0) return length;
        length += n;
        if (o.singleRead && length < this.buf.length) return length;
      }
    } catch {
      return -1;
    }
  }
}
