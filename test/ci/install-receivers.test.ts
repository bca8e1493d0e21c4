// .ci/install-receivers.sh takes the Debian mirror only from the machine's own apt sources.
// The script is run against fixture apt folders (POWERPRINT_APT_ETC) and a receivers folder that
// does not exist, so it goes as far as choosing the mirror; the mirror is a closed loopback port,
// so apt-get fails at once without reaching any network.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";

const script = new URL("../../.ci/install-receivers.sh", import.meta.url).pathname;
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function runWith(files: Record<string, string>) {
  const etc = mkdtempSync(join(tmpdir(), "pp-apt-"));
  dirs.push(etc);
  mkdirSync(join(etc, "sources.list.d"));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(etc, name), text);
  const env: NodeJS.ProcessEnv = { ...process.env, POWERPRINT_APT_ETC: etc, POWERPRINT_RECEIVERS_DIR: join(etc, "receivers") };
  delete env.DEBIAN_MIRROR;
  return spawnSync("bash", [script], { env, encoding: "utf8", timeout: 60_000 });
}

describe(".ci/install-receivers.sh mirror", () => {
  it("fails with one clear line when the machine's apt sources name no Debian archive", () => {
    const r = runWith({});
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/no Debian archive found in this machine's apt sources .*set DEBIAN_MIRROR=/);
    expect(r.stdout).not.toMatch(/fetching/);
  });

  it("takes the archive from a deb822 .sources file (not the -security one)", () => {
    const r = runWith({
      "sources.list.d/debian.sources":
        "Types: deb\nURIs: http://127.0.0.1:9/debian-security\nSuites: trixie-security\n\nTypes: deb\nURIs: http://127.0.0.1:9/debian\nSuites: trixie\n",
    });
    expect(r.stdout).toContain("fetching victoria-metrics and prometheus from http://127.0.0.1:9/debian trixie");
  });

  it("takes the archive from a one-line sources.list with [options]", () => {
    const r = runWith({ "sources.list": "# comment\ndeb [arch=amd64] http://127.0.0.1:9/debian trixie main\n" });
    expect(r.stdout).toContain("from http://127.0.0.1:9/debian trixie");
  });

  it("names no registry host of its own", () => {
    const r = spawnSync("git", ["grep", "-n", "-I", "-E", "deb\\.debian\\.org|ftp\\.[a-z.]*debian\\.org", "--", ".ci", "scripts"], {
      cwd: new URL("../..", import.meta.url).pathname,
      encoding: "utf8",
    });
    expect(r.stdout).toBe("");
  });
});
