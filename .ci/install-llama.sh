#!/usr/bin/env bash
# Downloads and unpacks a real llama.cpp server for the serving tests (issue 19): Debian sid's
# `llama.cpp-tools` (llama-server), `libllama0`, `libggml0` and `python3-gguf` (pure Python: the
# tests write a tiny random-weight model with it, test/serving/tiny-gguf.py). Sid's binaries need
# a newer glibc than bookworm's, so sid's libc6, libstdc++6, libgcc-s1, libgomp1, libssl3t64,
# libzstd1 and zlib1g come too, and the server is started through sid's own loader
# (test/serving/llama.ts). Nothing is installed system-wide: the .debs are fetched with a private
# APT state and unpacked with `dpkg -x` into .cache/llama.cpp/ (gitignored). Idempotent.
#
# ggml looks for its CPU backends next to the executable, which is the loader when the server is
# started through it: the backends are linked into the library folder so it finds them there.
#
# Env: POWERPRINT_LLAMA_DIR (default <repo>/.cache/llama.cpp), DEBIAN_MIRROR, DEBIAN_SUITE (default sid).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${POWERPRINT_LLAMA_DIR:-$repo_root/.cache/llama.cpp}"
suite="${DEBIAN_SUITE:-sid}"
root="$dest/root"
lib="$root/usr/lib/x86_64-linux-gnu"
loader="$lib/ld-linux-x86-64.so.2"

check() {
  "$loader" --library-path "$lib:$lib/llama" "$root/usr/bin/llama-server" --version >/dev/null 2>&1
}

if [[ -x "$root/usr/bin/llama-server" && -d "$root/usr/lib/python3/dist-packages/gguf" ]] && check; then
  echo "install-llama: already present in $dest"
  exit 0
fi
if [[ "$(dpkg --print-architecture)" != "amd64" ]]; then
  echo "install-llama: only amd64 is set up (the loader path and backends are x86-64)" >&2
  exit 1
fi

# shellcheck source=.ci/deb-fetch.sh
source "$repo_root/.ci/deb-fetch.sh"
deb_fetch install-llama "$suite" "$dest" "llama.cpp and its runtime" \
  llama.cpp-tools libllama0 libggml0 python3-gguf \
  libc6 libstdc++6 libgcc-s1 libgomp1 libssl3t64 libzstd1 zlib1g

for backend in "$lib"/ggml/backends0/libggml-cpu-*.so; do
  ln -sf "ggml/backends0/$(basename "$backend")" "$lib/$(basename "$backend")"
done
if ! check; then
  echo "install-llama: llama-server from $suite does not start through its loader ($loader)" >&2
  exit 1
fi
sed "s/^/install-llama: /" "$dest/VERSIONS"
echo "install-llama: installed into $dest"
