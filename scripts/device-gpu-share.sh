#!/usr/bin/env bash
# Device check: two processes time-slicing one real NVIDIA GPU (a lent H100/H200; MIG is not
# enabled there and this check never changes it), measured by powerprint
#   A. under one `agent --mode selector --match-env PP_SHARE_JOB` (jobs PP_SHARE_JOB=a and =b), and
#   B. under two `run`s, one per process, at the same time (each sees the other's process as system);
# each time the two jobs' GPU energy must be within 1 % of the device's energy counter over the
# same window, read independently by ctypes NVML every 0.1 s (scripts/device-gpu-share.py poll).
# A: the agent runs while both processes hold the GPU, its window from its report (monotonic
# duration back from its last sample). B: the union of the two runs' windows, counting the polls
# in which NVML listed a compute process (CUDA start-up before a context and exit after it hold
# no process: that energy is `idle` by rule 4, no job's). Both use one idle baseline, measured at
# idle before any load (--idle-watts gpu=W), so the runs split the idle part alike, and sample every
# 250 ms: the interval in which a process first appears is charged to it whole, so the part of it
# before its CUDA context (idle power) is the check's known error, ~0.1 % here.
# Dry-run here on the stub libnvidia-ml (no GPU; constant 300 W even before the processes, the worst
# case for that error): selector 7 s window -0.5 %; two runs 20 s +1.0 % at 250 ms, +3 % at 1 s.
#
#   scripts/device-gpu-share.sh prepare   (here) builds .devcarry/: node.xz (this Node, xz) and
#       app.tar.xz (dist/, data/, package.json, production node_modules); lists .devcarry/ in the
#       repository's info/exclude. Carry .devcarry to the device.
#   scripts/device-gpu-share.sh run       (there, about 2.5 minutes; give timeout_s 300) writes to
#       $OUT: log.txt, probe.txt, poll.json, selector.json, run-a.json, run-b.json,
#       check-selector.json, check-runs.json. Exit 0 when both checks pass, 1 when one fails,
#       3 when there is no GPU process to run.
set -u
here="$(cd "$(dirname "$0")/.." && pwd)"
carry="$here/.devcarry"

prepare() {
  set -e
  rm -rf "$carry" && mkdir -p "$carry"
  local stage
  stage="$(mktemp -d)"
  (cd "$here" && npm run build >/dev/null)
  mkdir -p "$stage/app"
  cp -r "$here/dist" "$here/data" "$here/package.json" "$here/package-lock.json" "$stage/app/"
  cp -r "$here/node_modules" "$stage/app/node_modules"
  (cd "$stage/app" && npm prune --omit=dev --ignore-scripts --no-audit --no-fund >/dev/null)
  tar -C "$stage" -cJf "$carry/app.tar.xz" app
  xz -T2 -6 -c "$(readlink -f "$(command -v node)")" > "$carry/node.xz"
  rm -rf "$stage"
  local exclude
  exclude="$(cd "$here" && git rev-parse --git-path info/exclude)"
  case "$exclude" in /*) ;; *) exclude="$here/$exclude" ;; esac
  grep -qx '/.devcarry/' "$exclude" 2>/dev/null || echo '/.devcarry/' >> "$exclude"
  du -sh "$carry"/*
}

run() {
  cd "$here" || exit 1
  local out="${OUT:-/tmp/device-gpu-share-out}" py=scripts/device-gpu-share.py
  mkdir -p "$out"
  exec > >(tee "$out/log.txt") 2>&1
  export PYTHONUNBUFFERED=1
  echo "== $(date -u +%FT%TZ) $(uname -m)"; nvidia-smi -L
  nvidia-smi --query-gpu=name,driver_version,mig.mode.current,compute_mode --format=csv
  if ! ldconfig -p | grep -q 'libnvidia-ml.so.1 '; then
    for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/x86_64-linux-gnu; do
      [ -e "$d/libnvidia-ml.so.1" ] && export LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}" && echo "NVML from $d" && break
    done
  fi
  local node
  node="$(command -v node || true)"
  if [ -z "$node" ]; then
    python3 -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],'wb'))" "$carry/node.xz" /tmp/node && chmod +x /tmp/node && node=/tmp/node
  fi
  python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall(sys.argv[2])" "$carry/app.tar.xz" /tmp || exit 1
  pp() { "$node" /tmp/app/dist/src/cli/main.js "$@"; }
  echo "node $("$node" --version)"
  if ! python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
    echo "python3 has no CUDA torch: the workers use the CUDA driver API through ctypes (libcuda.so.1), no framework"
    python3 -c "import ctypes; ctypes.CDLL('libcuda.so.1')" 2>/dev/null || { echo "no libcuda.so.1 either: no GPU process can run; check not run"; exit 3; }
  fi
  pp probe > "$out/probe.txt" 2>&1; cat "$out/probe.txt"

  local idle_w
  idle_w="$(python3 "$py" idle 2)"
  echo "GPU 0 idle power before any load: $idle_w W (the idle baseline given to powerprint)"
  rm -f /tmp/poll.stop
  python3 "$py" poll "$out/poll.json" /tmp/poll.stop & local poller=$!

  echo "== A: agent --mode selector over two time-sliced processes"
  local bar=/tmp/share-a; rm -rf "$bar"; mkdir -p "$bar"
  PP_SHARE_JOB=a python3 "$py" worker a "$bar" 2 150 & local wa=$!
  PP_SHARE_JOB=b python3 "$py" worker b "$bar" 2 150 & local wb=$!
  for _ in $(seq 1 240); do [ -f "$bar/a.ready" ] && [ -f "$bar/b.ready" ] && break; sleep 0.5; done
  sleep 2 # both past their first kernels: both in NVML's process list
  pp agent --mode selector --match-env PP_SHARE_JOB --interval 250ms --idle-watts "gpu=$idle_w" --zone US \
    --report "$out/selector.json" 2> "$out/selector.stderr" & local agent=$!
  sleep 40
  kill -TERM "$agent"; wait "$agent"; echo "agent rc=$?"
  touch "$bar/stop"; wait "$wa" "$wb"
  tail -n 5 "$out/selector.stderr"

  echo "== B: two runs, one per process, at the same time"
  bar=/tmp/share-b; rm -rf "$bar"; mkdir -p "$bar"
  pp run --quiet --interval 250ms --idle-watts "gpu=$idle_w" --zone US --job-id share-a --report "$out/run-a.json" -- \
    env PP_SHARE_JOB=a python3 "$py" worker a "$bar" 2 45 & local ra=$!
  pp run --quiet --interval 250ms --idle-watts "gpu=$idle_w" --zone US --job-id share-b --report "$out/run-b.json" -- \
    env PP_SHARE_JOB=b python3 "$py" worker b "$bar" 2 45 & local rb=$!
  wait "$ra"; echo "run a rc=$?"; wait "$rb"; echo "run b rc=$?"
  sleep 1
  touch /tmp/poll.stop; wait "$poller"

  local rc=0
  echo "== check A (selector)"; python3 "$py" check "$out/poll.json" selector "$out/selector.json" || rc=1
  echo "== check B (two runs)"; python3 "$py" check "$out/poll.json" runs "$out/run-a.json" "$out/run-b.json" || rc=1
  echo "== result: $([ $rc -eq 0 ] && echo PASS || echo FAIL)"
  return $rc
}

case "${1:-}" in
  prepare) prepare ;;
  run) run ;;
  *) echo "usage: $0 prepare | run" >&2; exit 2 ;;
esac
