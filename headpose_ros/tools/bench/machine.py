"""What the bench measures with: the machine, the process's threads and memory, timed loops, statistics."""

from __future__ import annotations

import gc
import os
import platform
import time
from pathlib import Path

import numpy as np


def machine() -> dict[str, str]:
    """The CPU's model name, its cores and the software versions, for the report."""
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import onnxruntime

    return {"cpu": cpu, "cores": str(os.cpu_count()), "python": platform.python_version(),
            "onnxruntime": onnxruntime.__version__, "system": f"{platform.system()} {platform.release()}"}


def proc_status(field: str, pid: int | str = "self") -> int | None:
    """The first number of a /proc/<pid>/status line ("Threads", "VmRSS" in kB, ...); None where it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def process_threads() -> int | None:
    """Threads this process runs right now (None where there is no /proc)."""
    return proc_status("Threads")


def threads_before() -> int | None:
    """The process's threads once the sessions of earlier cases are gone (so each case counts its own)."""
    gc.collect()
    return process_threads()


def stats(samples_ms) -> dict[str, float]:
    """{"median_ms", "p90_ms", "n"} of samples in ms."""
    a = np.asarray(samples_ms, dtype=float)
    return {"median_ms": float(np.median(a)), "p90_ms": float(np.percentile(a, 90)), "n": int(a.size)}


def timed(call, args) -> tuple[list[float], list]:
    """call(i) for i in 0..warmup+frames-1; the wall ms and the results of the last --frames calls."""
    times, results = [], []
    for i in range(args.warmup + args.frames):
        start = time.perf_counter()
        result = call(i)
        if i >= args.warmup:
            times.append((time.perf_counter() - start) * 1e3)
            results.append(result)
    return times, results
