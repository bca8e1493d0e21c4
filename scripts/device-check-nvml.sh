#!/usr/bin/env bash
# Device check of the NVML path on a real NVIDIA GPU (the lent H200 machine; see bench/RESULTS.md).
#
#   scripts/device-check-nvml.sh prepare   (here, with node_modules) builds .devcarry/: the compiled
#       collector (tsc), koffi and its linux-x64 binary, and an xz-compressed copy of this node, for
#       machines without Node. .devcarry/ is listed in .git/info/exclude; carry it to the device.
#   scripts/device-check-nvml.sh run [SECONDS]   (there) 60 s by default: a torch bf16 matmul loop
#       plus a light second CUDA process; meanwhile the powerprint NVML collector (node) and an
#       independent ctypes sampler (python) read energy counter and power every 1 s. Writes to $OUT:
#       nvml-node.json, nvml-ctypes.json, nvidia-smi-q-x-idle.xml, nvidia-smi-q-x-load.xml, log.txt.
set -u
here="$(cd "$(dirname "$0")/.." && pwd)"
carry="$here/.devcarry"

prepare() {
  set -e
  rm -rf "$carry" && mkdir -p "$carry/node_modules/@koromix"
  (cd "$here" && npx tsc --ignoreConfig collectors/nvml.ts --outDir "$carry/dist" --rootDir . --module nodenext \
    --moduleResolution nodenext --target es2022 --skipLibCheck --types node)
  cp -r "$here/node_modules/koffi" "$carry/node_modules/koffi"
  cp -r "$here/node_modules/@koromix/koffi-linux-x64" "$carry/node_modules/@koromix/koffi-linux-x64"
  xz -T2 -6 -c "$(readlink -f "$(command -v node)")" > "$carry/node.xz"
  grep -qx '/.devcarry/' "$here/.git/info/exclude" 2>/dev/null || echo '/.devcarry/' >> "$here/.git/info/exclude"
  du -sh "$carry"
}

run() {
  cd "$here" || exit 1
  local seconds="${1:-60}" out="${OUT:-/tmp/device-check-out}"
  mkdir -p "$out"
  exec > >(tee "$out/log.txt") 2>&1
  export PYTHONUNBUFFERED=1
  echo "== $(date -u +%FT%TZ) $(uname -m)"; nvidia-smi -L; ldconfig -p | grep -i nvidia-ml || echo "libnvidia-ml not in ldconfig cache"
  if ! ldconfig -p | grep -q 'libnvidia-ml.so.1 '; then
    for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/x86_64-linux-gnu; do
      [ -e "$d/libnvidia-ml.so.1" ] && export LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}" && echo "using $d" && break
    done
  fi
  nvidia-smi -q -x > "$out/nvidia-smi-q-x-idle.xml"
  local node
  node="$(command -v node || true)"
  if [ -n "$node" ]; then echo "node on the machine: $node $("$node" --version)"
  elif [ -f "$carry/node.xz" ]; then
    python3 -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],'wb'))" "$carry/node.xz" /tmp/node \
      && chmod +x /tmp/node && node=/tmp/node && echo "carried node: $("$node" --version)"
  else echo "no node: only the ctypes sampler runs"; fi

  local ready=/tmp/load.ready; rm -f "$ready" "$ready.stop"
  python3 scripts/device-check-nvml.py load "$((seconds + 15))" "$ready" > "$out/load.json" &
  local load_pid=$!
  python3 scripts/device-check-nvml.py light "$((seconds + 15))" &
  local light_pid=$!
  for _ in $(seq 1 60); do [ -f "$ready" ] && break; sleep 0.5; done
  echo "load ready: $(cat "$ready" 2>/dev/null || echo no)"
  local node_pid=""
  if [ -n "$node" ] && [ -d "$carry/dist" ]; then
    NODE_PATH="$carry/node_modules" "$node" scripts/device-check-nvml.mjs "$carry/dist" "$seconds" "$out/nvml-node.json" > "$out/node.stdout" 2>&1 &
    node_pid=$!
  fi
  python3 scripts/device-check-nvml.py sample "$seconds" "$out/nvml-ctypes.json" &
  local py_pid=$!
  sleep "$((seconds / 2))"
  nvidia-smi -q -x > "$out/nvidia-smi-q-x-load.xml"
  wait "$py_pid"; echo "ctypes sampler rc=$?"
  [ -n "$node_pid" ] && { wait "$node_pid"; echo "node sampler rc=$?"; cat "$out/node.stdout" | cut -c1-3000; }
  touch "$ready.stop"; wait "$load_pid"; kill "$light_pid" 2>/dev/null; wait "$light_pid" 2>/dev/null
  cat "$out/load.json"
  nvidia-smi --query-gpu=name,driver_version,power.draw,power.limit --format=csv
  ls -la "$out"
}

case "${1:-}" in
  prepare) prepare ;;
  run) shift; run "$@" ;;
  *) echo "usage: $0 prepare | run [SECONDS]" >&2; exit 2 ;;
esac
