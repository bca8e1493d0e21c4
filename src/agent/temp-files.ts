/**
 * Stale temp files of atomic writes. The state file and the JSON report are written as
 * `<file>.tmp-<pid>-<hex>` (created exclusively), fsynced and renamed over `<file>`; every error
 * path removes the temp file, but a SIGKILL (OOM killer, node drain) between create and rename
 * cannot. At start, the temp files of `<file>` left by a writer that is gone are removed, so
 * restarts never fill the disk with copies of the state.
 */
import { lstatSync, readdirSync, unlinkSync } from "node:fs";
import { basename, dirname, join } from "node:path";

const TEMP_NAME = /^(.+)\.tmp-(\d+)-[0-9a-f]+$/;

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
 * Removes `<file>.tmp-<pid>-<hex>` files next to `file` whose writer is gone (its PID is not a live
 * process, or is this one: nothing is being written yet at start). Returns the names removed.
 * Never throws (an unreadable directory removes nothing); symbolic links are removed as links.
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
