#!/usr/bin/env bash
# End-to-end device check: the whole `powerprint run` CLI on a real NVIDIA GPU (the lent H200).
# Carry .devcarry/ (node.xz from scripts/device-check-nvml.sh prepare, and app.tar.xz: dist/, data/,
# package.json and production node_modules). A heavy bf16 matmul runs INSIDE the job; a light CUDA
# process runs OUTSIDE it (the `system` bucket). NVML's own energy counter is read by ctypes right
# before and after, as an independent reference. Writes report.json, probe.txt, stderr.txt,
# reference.json and log.txt to $OUT.
set -u
cd "$(dirname "$0")/.." || exit 1
out="${OUT:-/tmp/device-e2e-out}"; mkdir -p "$out"
exec > >(tee "$out/log.txt") 2>&1
secs="${1:-45}"
python3 -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],'wb'))" .devcarry/node.xz /tmp/node && chmod +x /tmp/node
python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall(sys.argv[2])" .devcarry/app.tar.xz /tmp
for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/x86_64-linux-gnu; do
  [ -e "$d/libnvidia-ml.so.1" ] && export LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}" && break
done
pp() { /tmp/node /tmp/app/dist/src/cli/main.js "$@"; }
nvml_energy_mj() {
  python3 - <<'PY'
import ctypes
n = ctypes.CDLL("libnvidia-ml.so.1"); n.nvmlInit_v2()
h = ctypes.c_void_p(); n.nvmlDeviceGetHandleByIndex_v2(0, ctypes.byref(h))
e = ctypes.c_ulonglong(); n.nvmlDeviceGetTotalEnergyConsumption(h, ctypes.byref(e)); print(e.value)
PY
}
pp probe > "$out/probe.txt" 2>&1; cat "$out/probe.txt"
python3 scripts/device-check-nvml.py light "$((secs + 30))" & light=$!
sleep 8
e0=$(nvml_energy_mj); t0=$(date +%s.%N)
pp run --interval 1s --zone US --pue 1.2 --job-id h200-matmul --report "$out/report.json" -- \
  python3 scripts/device-check-nvml.py load "$secs" /tmp/ready 2> "$out/stderr.txt"
rc=$?
e1=$(nvml_energy_mj); t1=$(date +%s.%N)
kill "$light" 2>/dev/null; wait "$light" 2>/dev/null
echo "{\"rc\": $rc, \"nvmlEnergyBeforeMj\": $e0, \"nvmlEnergyAfterMj\": $e1, \"deltaJoules\": $(( (e1 - e0) / 1000 )), \"wallSeconds\": $(python3 -c "print($t1-$t0)")}" > "$out/reference.json"
cat "$out/stderr.txt"; cat "$out/reference.json"
python3 - "$out/report.json" <<'PY'
import json,sys
r=json.load(open(sys.argv[1]))
for d in r["devices"]: print("device", d["id"], d.get("model"), d["method"], d["source"], round(d["energyJoules"],1), d.get("processUsageMethod"), d["notes"][:1])
for j in r["jobs"]+[r["buckets"]["system"], r["buckets"]["idle"]]: print("consumer", j["id"], {k: round(v,1) for k,v in j["energyJoules"].items()}, "gCO2e", round(j["emissionsGrams"],3))
print("totals", r["totals"], "duration", r["durationSeconds"])
PY
