"""Training-loop marks for powerprint: tell `powerprint run` which phase the job is in and how
much work it has done, so it reports energy per phase and per sample/token.

Standard library only; a single file. Put its folder on PYTHONPATH:

    PYTHONPATH="$(powerprint python-path)" powerprint run -- python train.py

and in train.py:

    from powerprint_marks import mark, phase

    for step, batch in enumerate(loader, 1):
        ...
        mark(phase="train", step=step, samples=seen, tokens=tokens_seen)   # cumulative totals
    with phase("eval"):
        evaluate()                                                         # back to "train" after

Each call appends one JSON line to the file named by $POWERPRINT_MARKS (set by `powerprint run`),
stamped with `timeMillis` (the wall clock when mark() was called, Unix epoch ms): powerprint
splits the sampling interval a mark falls in between the phases by that time, so a phase shorter
than the interval still gets its share. Counters are cumulative totals so far (a lost line loses
nothing), whole numbers. Outside powerprint (variable
unset) every call is a no-op. Lines are written with a single os.write on an O_APPEND descriptor,
so DataLoader worker processes or threads calling mark() never interleave partial lines.
"""

import json
import os
import threading
import time
from contextlib import contextmanager

__all__ = ["mark", "phase", "current_phase", "enabled"]

_lock = threading.Lock()
_state = {"phase": None, "step": None, "samples": None, "tokens": None}


def enabled():
    """True when running under powerprint (POWERPRINT_MARKS is set)."""
    return bool(os.environ.get("POWERPRINT_MARKS"))


def current_phase():
    """The phase most recently marked in this process (None before any)."""
    return _state["phase"]


def _write(record):
    path = os.environ.get("POWERPRINT_MARKS")
    if not path:
        return
    line = (json.dumps(record, separators=(",", ":")) + "\n").encode("utf-8")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    except OSError:
        # Measuring must never break training: a mark that cannot be written is dropped.
        pass


def mark(phase=None, step=None, samples=None, tokens=None):
    """Records the current phase and the cumulative counters (totals so far, not increments).

    Arguments left as None keep their previous value; the phase defaults to the last one marked
    (or "main" before any). No-op when POWERPRINT_MARKS is unset.
    """
    # Taken first: the phase boundary is when mark() was called, not when the lock was free.
    now_millis = time.time() * 1000.0
    with _lock:
        if phase is not None:
            _state["phase"] = str(phase)
        for key, value in (("step", step), ("samples", samples), ("tokens", tokens)):
            if value is not None:
                _state[key] = value
        if not enabled():
            return
        record = {"phase": _state["phase"] or "main"}
        for key in ("step", "samples", "tokens"):
            if _state[key] is not None:
                record[key] = _state[key]
        record["timeMillis"] = round(now_millis, 3)
        _write(record)


@contextmanager
def phase(name, **counters):
    """Marks `name` on enter and returns to the previous phase on exit (also on an exception).

    Keyword counters (step, samples, tokens) are passed to the entering mark.
    """
    previous = current_phase()
    mark(phase=name, **counters)
    try:
        yield
    finally:
        if previous is not None:
            mark(phase=previous)
