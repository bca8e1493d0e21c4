#!/usr/bin/env python3
"""Device check of the NVML path on a real NVIDIA GPU (run by scripts/device-check-nvml.sh).

  load   SECONDS READYFILE  torch bf16 8192^3 matmul loop on cuda:0 (writes READYFILE once warm)
  light  SECONDS            a second, light CUDA process (holds 1 GiB, small matmuls) so the GPU has
                            two compute processes and the process-record stride probe is decisive
  sample SECONDS OUTJSON    ctypes NVML sampler, 1 s period: energy counter (mJ), power (mW),
                            utilisation, compute processes (raw record bytes kept), process SM samples

Only the standard library and (for load/light) torch. Independent of the TypeScript collector, so it
cross-checks it: both read the same NVML calls at the same time.
"""
import ctypes
import json
import os
import sys
import time


def load(seconds, ready):
    import torch

    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    open(ready, "w").write(str(os.getpid()))
    end = time.time() + seconds
    n = 0
    while time.time() < end and not os.path.exists(ready + ".stop"):
        for _ in range(20):
            c = a @ b
        torch.cuda.synchronize()
        n += 20
    print(json.dumps({"load_pid": os.getpid(), "matmuls": n, "tflop": n * 2 * 8192**3 / 1e12}), flush=True)


def light(seconds):
    import torch

    hold = torch.empty(1 << 30, dtype=torch.uint8, device="cuda")
    x = torch.randn(512, 512, device="cuda")
    end = time.time() + seconds
    while time.time() < end:
        x = (x @ x).clamp_(-1, 1)
        torch.cuda.synchronize()
        time.sleep(0.05)
    del hold


class Util(ctypes.Structure):
    _fields_ = [("gpu", ctypes.c_uint), ("memory", ctypes.c_uint)]


class Sample(ctypes.Structure):
    _fields_ = [("pid", ctypes.c_uint), ("timeStamp", ctypes.c_ulonglong), ("smUtil", ctypes.c_uint),
                ("memUtil", ctypes.c_uint), ("encUtil", ctypes.c_uint), ("decUtil", ctypes.c_uint)]


def sample(seconds, out):
    nvml = ctypes.CDLL(os.environ.get("NVML_LIBRARY", "libnvidia-ml.so.1"))
    nvml.nvmlErrorString.restype = ctypes.c_char_p
    assert nvml.nvmlInit_v2() == 0
    handle = ctypes.c_void_p()
    assert nvml.nvmlDeviceGetHandleByIndex_v2(0, ctypes.byref(handle)) == 0
    name = ctypes.create_string_buffer(96)
    nvml.nvmlDeviceGetName(handle, name, 96)
    rows = []
    last_seen = ctypes.c_ulonglong(0)
    t0 = time.monotonic()
    k = 0
    while True:
        target = t0 + k
        now = time.monotonic()
        if target > now:
            time.sleep(target - now)
        if k > seconds:
            break
        t = time.monotonic() - t0
        energy = ctypes.c_ulonglong()
        rc_e = nvml.nvmlDeviceGetTotalEnergyConsumption(handle, ctypes.byref(energy))
        power = ctypes.c_uint()
        rc_p = nvml.nvmlDeviceGetPowerUsage(handle, ctypes.byref(power))
        util = Util()
        nvml.nvmlDeviceGetUtilizationRates(handle, ctypes.byref(util))
        count = ctypes.c_uint(0)
        rc_c = nvml.nvmlDeviceGetComputeRunningProcesses_v3(handle, ctypes.byref(count), None)
        raw = b""
        if rc_c == 7:
            cap = count.value + 8
            buf = ctypes.create_string_buffer(cap * 32)
            count = ctypes.c_uint(cap)
            rc_c = nvml.nvmlDeviceGetComputeRunningProcesses_v3(handle, ctypes.byref(count), buf)
            raw = buf.raw[: count.value * 32]
        n = ctypes.c_uint(0)
        samples = []
        rc_s = nvml.nvmlDeviceGetProcessUtilization(handle, None, ctypes.byref(n), last_seen)
        if rc_s == 7:
            arr = (Sample * (n.value + 8))()
            n = ctypes.c_uint(n.value + 8)
            rc_s = nvml.nvmlDeviceGetProcessUtilization(handle, arr, ctypes.byref(n), last_seen)
            if rc_s == 0:
                for s in arr[: n.value]:
                    samples.append([s.pid, s.timeStamp, s.smUtil, s.memUtil])
                    last_seen = ctypes.c_ulonglong(max(last_seen.value, s.timeStamp))
        rows.append({"t": round(t, 4), "energy_mj": energy.value if rc_e == 0 else None, "rc_energy": rc_e,
                     "power_mw": power.value if rc_p == 0 else None, "util": util.gpu,
                     "proc_count": count.value, "rc_procs": rc_c, "proc_raw_hex": raw.hex(),
                     "rc_samples": rc_s, "samples": samples})
        k += 1
    nvml.nvmlShutdown()
    summary = summarise(rows)
    summary["gpu"] = name.value.decode()
    json.dump({"summary": summary, "rows": rows}, open(out, "w"), indent=1)
    print(json.dumps(summary), flush=True)


def summarise(rows):
    e = [(r["t"], r["energy_mj"]) for r in rows if r["energy_mj"] is not None]
    p = [(r["t"], r["power_mw"]) for r in rows if r["power_mw"] is not None]
    counter_j = (e[-1][1] - e[0][1]) / 1000 if len(e) > 1 else None
    trap_j = sum((p[i][0] - p[i - 1][0]) * (p[i][1] + p[i - 1][1]) / 2000 for i in range(1, len(p))) if len(p) > 1 else None
    return {"seconds": round(rows[-1]["t"] - rows[0]["t"], 3), "samples": len(rows), "counter_joules": counter_j,
            "trapezoid_power_joules": trap_j,
            "difference_percent": (100 * (trap_j - counter_j) / counter_j) if counter_j and trap_j else None,
            "mean_power_watts_from_counter": counter_j / (e[-1][0] - e[0][0]) if counter_j else None}


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "load":
        load(float(sys.argv[2]), sys.argv[3])
    elif mode == "light":
        light(float(sys.argv[2]))
    elif mode == "sample":
        sample(int(sys.argv[2]), sys.argv[3])
