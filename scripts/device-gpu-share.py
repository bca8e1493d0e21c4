#!/usr/bin/env python3
"""Helpers of scripts/device-gpu-share.sh: two processes time-slicing one real NVIDIA GPU, an
independent NVML poller, and the check of powerprint's figures against it.

  worker NAME BARRIER N SECONDS   a GPU process: creates its CUDA context, writes BARRIER/NAME.ready,
                                  waits for N ready files, computes for SECONDS (or until
                                  BARRIER/stop), writes BARRIER/NAME.done, waits for N done files
                                  (at most 15 s), exits. NAME "a" computes without pause, others
                                  pause half the time (their SM shares differ). torch if importable,
                                  else the CUDA driver API through ctypes (libcuda.so.1: memsets, no
                                  kernel of ours), said on stderr.
  idle SECONDS                    mean NVML power of GPU 0 over SECONDS, watts (before any load)
  poll OUTJSON STOPFILE           every 0.1 s until STOPFILE exists: wall time, GPU 0's energy
                                  counter (mJ), the number of compute processes NVML lists on it
  check POLLJSON MODE REPORT...   MODE selector: one agent report (jobs PP_SHARE_JOB=a and =b);
                                  MODE runs: two run reports. Prints the figures, writes
                                  check-<MODE>.json beside POLLJSON, exits 1 when the jobs' GPU
                                  energy differs from the reference by more than 1 %.

Only the standard library (and torch for the worker where present). Independent of powerprint's
TypeScript: NVML is read by ctypes.
"""
import ctypes
import json
import os
import sys
import time
from datetime import datetime


def nvml():
    lib = ctypes.CDLL("libnvidia-ml.so.1")
    assert lib.nvmlInit_v2() == 0, "nvmlInit_v2 failed"
    handle = ctypes.c_void_p()
    assert lib.nvmlDeviceGetHandleByIndex_v2(0, ctypes.byref(handle)) == 0
    return lib, handle


def wait_files(paths, seconds):
    end = time.time() + seconds
    while time.time() < end and not all(os.path.exists(p) for p in paths):
        time.sleep(0.05)
    return all(os.path.exists(p) for p in paths)


def others(barrier, n, suffix):
    return [os.path.join(barrier, f"{chr(ord('a') + i)}.{suffix}") for i in range(n)]


def torch_step():
    import torch

    a = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
    (a @ b).sum().item()

    def step():
        for _ in range(10):
            a @ b
        torch.cuda.synchronize()

    return step


def driver_step():
    cuda = ctypes.CDLL("libcuda.so.1")
    dev, ctx, ptr = ctypes.c_int(), ctypes.c_void_p(), ctypes.c_uint64()
    words = 64 << 20  # 256 MiB of 32-bit words
    assert cuda.cuInit(0) == 0
    assert cuda.cuDeviceGet(ctypes.byref(dev), 0) == 0
    assert cuda.cuCtxCreate_v2(ctypes.byref(ctx), 0, dev) == 0
    assert cuda.cuMemAlloc_v2(ctypes.byref(ptr), words * 4) == 0
    value = [0]

    def step():
        for _ in range(10):
            value[0] += 1
            cuda.cuMemsetD32_v2(ptr, value[0], words)
        cuda.cuCtxSynchronize()

    return step


def worker(name, barrier, n, seconds):
    try:
        step = torch_step()
        how = "torch bf16 4096^3 matmuls"
    except Exception as err:  # no torch, or torch without CUDA
        print(f"worker {name}: torch unusable ({err.__class__.__name__}: {err}); "
              "CUDA-free of any framework: CUDA driver API memsets through ctypes (libcuda.so.1)", file=sys.stderr, flush=True)
        step = driver_step()
        how = "libcuda memsets"
    open(os.path.join(barrier, f"{name}.ready"), "w").write(str(os.getpid()))
    if not wait_files(others(barrier, n, "ready"), 120):
        print(f"worker {name}: the other workers never got ready", file=sys.stderr)
    end = time.time() + seconds
    steps = 0
    busy = 0.0
    while time.time() < end and not os.path.exists(os.path.join(barrier, "stop")):
        t = time.time()
        step()
        busy += time.time() - t
        steps += 1
        if name != "a":
            time.sleep(time.time() - t)  # half duty: its SM share is about half of a's
    open(os.path.join(barrier, f"{name}.done"), "w").write("")
    wait_files(others(barrier, n, "done"), 15)
    print(json.dumps({"worker": name, "pid": os.getpid(), "how": how, "steps": steps, "busySeconds": round(busy, 2)}), flush=True)


def idle(seconds):
    lib, h = nvml()
    mw = ctypes.c_uint()
    values = []
    end = time.time() + seconds
    while time.time() < end:
        if lib.nvmlDeviceGetPowerUsage(h, ctypes.byref(mw)) == 0:
            values.append(mw.value / 1000)
        time.sleep(0.1)
    print(f"{sum(values) / len(values):.1f}")


def poll(out, stop):
    lib, h = nvml()
    e = ctypes.c_ulonglong()
    count = ctypes.c_uint()
    rows = []
    while not os.path.exists(stop):
        t = time.time()
        if lib.nvmlDeviceGetTotalEnergyConsumption(h, ctypes.byref(e)) == 0:
            count.value = 0
            lib.nvmlDeviceGetComputeRunningProcesses_v3(h, ctypes.byref(count), None)
            rows.append([t, e.value, count.value])
        time.sleep(0.1)
    json.dump(rows, open(out, "w"))


def epoch(iso):
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def window(report):
    """The report's measured window, wall clock: its monotonic duration back from its last sample."""
    end = epoch(report["endedAt"])
    return end - report["durationSeconds"], end


def energy_at(rows, t):
    """The counter at wall time t, joules, linear between the two polls around it."""
    for (t0, e0, _), (t1, e1, _) in zip(rows, rows[1:]):
        if t0 <= t <= t1:
            return (e0 + (e1 - e0) * (t - t0) / (t1 - t0 if t1 > t0 else 1)) / 1000
    raise SystemExit(f"time {t} outside the polled span {rows[0][0]}..{rows[-1][0]}")


def held_energy(rows, start, end):
    """Counter increase over [start, end] in the polls where NVML listed a compute process at either end, joules."""
    total = 0.0
    for (t0, e0, n0), (t1, e1, n1) in zip(rows, rows[1:]):
        lo, hi = max(t0, start), min(t1, end)
        if hi <= lo or (n0 == 0 and n1 == 0) or t1 <= t0:
            continue
        total += (e1 - e0) / 1000 * (hi - lo) / (t1 - t0)
    return total


def gpu_joules(job):
    return job["energyJoules"]["gpu"]


def check(poll_json, mode, reports):
    rows = json.load(open(poll_json))
    reps = [json.load(open(r)) for r in reports]
    out = {"mode": mode}
    if mode == "selector":
        r = reps[0]
        start, end = window(r)
        jobs = {j["id"]: gpu_joules(j) for j in r["jobs"] if j["id"].startswith("PP_SHARE_JOB=")}
        reference = energy_at(rows, end) - energy_at(rows, start)
        out.update(jobs=jobs, windowSeconds=end - start, referenceJoules=reference,
                   reportDevices={d["id"]: d["energyJoules"] for d in r["devices"] if d["kind"] == "gpu"},
                   buckets={k: gpu_joules(r["buckets"][k]) for k in ("system", "idle")})
    else:
        spans = [window(r) for r in reps]
        start, end = min(s for s, _ in spans), max(e for _, e in spans)
        jobs = {f"run{i}:{j['id']}": gpu_joules(j) for i, r in enumerate(reps) for j in r["jobs"]}
        reference = held_energy(rows, start, end)
        out.update(jobs=jobs, windowSeconds=end - start, referenceJoules=reference,
                   unionWindowJoules=energy_at(rows, end) - energy_at(rows, start),
                   perRun=[{"window": [s, e], "device": {d["id"]: d["energyJoules"] for d in r["devices"] if d["kind"] == "gpu"},
                            "system": gpu_joules(r["buckets"]["system"]), "idle": gpu_joules(r["buckets"]["idle"])} for (s, e), r in zip(spans, reps)])
    total = sum(jobs.values())
    out["jobsSumJoules"] = total
    out["relativeError"] = (total - reference) / reference if reference > 0 else None
    out["pass"] = out["relativeError"] is not None and abs(out["relativeError"]) <= 0.01 and len(jobs) == 2
    json.dump(out, open(os.path.join(os.path.dirname(poll_json), f"check-{mode}.json"), "w"), indent=1)
    print(json.dumps(out, indent=1))
    return 0 if out["pass"] else 1


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "worker":
        worker(args[0], args[1], int(args[2]), float(args[3]))
    elif cmd == "idle":
        idle(float(args[0]))
    elif cmd == "poll":
        poll(args[0], args[1])
    elif cmd == "check":
        sys.exit(check(args[0], args[1], args[2:]))
    else:
        sys.exit(f"unknown command {cmd}")
