"""``headpose-ros soak``: the node under sustained load, measured (never asserted against the clock).

headpose_node runs in its own process, exactly as ``ros2 run`` starts it;
this process publishes 640x480 frames over DDS on localhost at --rate Hz for
--minutes, cycling through frames that hold 1, 2 and 3 faces, and reports:

- frames published, answered (a HeadPoseArray came back) and dropped: the
  node's subscriptions keep the last frame only, so under load it skips to
  the newest one by design;
- the latency from publish to the HeadPoseArray's arrival, median and p99,
  overall and per minute (per 10 s in runs under 3 minutes): a queue that
  grows shows as a latency that grows;
- the node's resident memory (VmRSS) after the warm-up and at the end, and
  its growth;
- whether the node is still alive, and any traceback or error in its log.

A burst is the same at a rate the node cannot keep up with, e.g.
``headpose-ros soak --rate 120 --minutes 1``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from ..cli import CommandError
from ..core.config import BACKENDS
from .bench.machine import proc_status

WARMUP_S = 10.0


def add_arguments(parser) -> None:
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to publish (default: 10)")
    parser.add_argument("--rate", type=float, default=30.0, help="frames per second published (default: 30)")
    parser.add_argument("--backend", default="landmarks", choices=BACKENDS, help="backend of the node (default: landmarks)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads per network (default: 2)")
    parser.add_argument("--out", type=Path, default=Path("out/soak"), help="folder for soak.json (default: out/soak)")


def rss_mb(pid: int) -> float | None:
    """Resident memory of a process in MB (VmRSS), None if it is gone."""
    kb = proc_status("VmRSS", pid)
    return None if kb is None else kb / 1024.0


def _stats(values) -> dict:
    a = np.asarray(values, dtype=float)
    if not a.size:
        return {"n": 0}
    return {"n": int(a.size), "median_ms": float(np.median(a)), "p99_ms": float(np.percentile(a, 99)),
            "max_ms": float(a.max())}


def run(args) -> int:
    from .bench.frames import bench_frame
    from .bench.machine import machine
    from .ros_harness import Pacer, isolated_ros, node_with_camera, stamp_key, stamp_now

    if args.rate <= 0 or args.minutes <= 0:
        raise CommandError("--rate and --minutes must be > 0")
    frames = [bench_frame(n) for n in (1, 2, 3)]
    sent: dict[tuple[int, int], float] = {}
    latencies: list[tuple[float, float]] = []  # (seconds since start, ms)
    memory: list[tuple[float, float]] = []  # (seconds since start, MB)
    published = 0

    def on_heads(now: float, msg) -> None:
        t = sent.pop(stamp_key(msg.header.stamp), None)
        if t is not None:
            latencies.append((t - start, (now - t) * 1000.0))

    with isolated_ros(), node_with_camera("/soak/image", "/soak/camera_info",
                                          {"backend": args.backend, "num_threads": args.threads},
                                          log_dir=args.out) as (node, client):
        client.on_heads(on_heads)
        client.wait_for_node(node, timeout=60)
        pid = node.process.pid
        print(f"soak: headpose_node (pid {pid}, {args.backend}) at {args.rate:g} Hz for {args.minutes:g} min, "
              "frames with 1, 2 and 3 faces", flush=True)
        start = time.monotonic()
        pacer = Pacer(args.rate, max_lag_s=1.0)  # if this process falls behind, no burst to catch up
        next_sample = start
        end = start + 60.0 * args.minutes
        while time.monotonic() < end and node.alive():
            stamp = stamp_now()
            frame, camera = frames[(published // 30) % len(frames)]  # a second of each, at 30 Hz
            sent[stamp_key(stamp)] = time.monotonic()
            client.publish_frame(frame, camera, stamp, "camera_optical_frame")
            published += 1
            now = time.monotonic()
            if now >= next_sample:
                memory.append((now - start, rss_mb(pid) or float("nan")))
                next_sample += 10.0
                if len(memory) % 6 == 1:
                    done = len(latencies)
                    print(f"  {now - start:6.0f} s: {published} published, {done} answered, "
                          f"node RSS {memory[-1][1]:.1f} MB", flush=True)
            pacer.wait()
        time.sleep(1.0)
        memory.append((time.monotonic() - start, rss_mb(pid) or float("nan")))
        alive = node.alive()
    log = node.output()
    result = summarise(args, published, latencies, memory, alive, log, machine())
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "soak.json").write_text(json.dumps(result, indent=1))
    print_summary(result)
    print(f"wrote {args.out / 'soak.json'}; node log: {node.log_path}")
    return 0 if result["crashes"] == 0 else 1


def summarise(args, published: int, latencies, memory, alive: bool, log: str, machine_info: dict) -> dict:
    """The figures of one soak run (see the module docstring); JSON-ready."""
    answered = len(latencies)
    window = 60 if args.minutes >= 3 else 10  # seconds: enough windows to see a latency that grows
    per_window = {}
    for k in range(int(np.ceil(60.0 * args.minutes / window))):
        inside = [ms for t, ms in latencies if k * window <= t < (k + 1) * window]
        per_window[f"{k * window}-{(k + 1) * window} s"] = _stats(inside)
    after_warmup = [mb for t, mb in memory if t >= WARMUP_S] or [mb for _, mb in memory]
    rss_start = after_warmup[0] if after_warmup else float("nan")
    rss_end = memory[-1][1] if memory else float("nan")
    crashes = int(not alive) + int("Traceback" in log)
    return {
        "command": "headpose-ros soak " + " ".join(sys.argv[2:]), "machine": machine_info,
        "rate_hz": args.rate, "minutes": args.minutes, "backend": args.backend,
        "published": published, "answered": answered, "dropped": published - answered,
        "dropped_fraction": (published - answered) / published if published else 0.0,
        "processing_rate_hz": answered / (60.0 * args.minutes),
        "latency": _stats([ms for _, ms in latencies]), "latency_per_window": per_window,
        "rss_mb": {"after_warmup": rss_start, "end": rss_end, "growth": rss_end - rss_start,
                   "samples": [[round(t, 1), round(mb, 1)] for t, mb in memory]},
        "crashes": crashes, "node_alive": alive,
        "errors_in_log": sum(1 for line in log.splitlines() if "[ERROR]" in line or "[FATAL]" in line),
    }


def print_summary(r: dict) -> None:
    lat = r["latency"]
    print(f"\n{r['published']} frames published at {r['rate_hz']:g} Hz over {r['minutes']:g} min; "
          f"{r['answered']} answered ({r['processing_rate_hz']:.1f} Hz), {r['dropped']} dropped by the "
          f"newest-frame policy ({100 * r['dropped_fraction']:.1f}%)")
    if lat["n"]:
        print(f"latency publish -> ~/heads: median {lat['median_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms, "
              f"max {lat['max_ms']:.1f} ms")
        windows = [(w, s) for w, s in r["latency_per_window"].items() if s["n"]]
        print("over time (median / p99 ms): " + ", ".join(
            f"{w}: {s['median_ms']:.1f} / {s['p99_ms']:.1f}" for w, s in windows))
    m = r["rss_mb"]
    print(f"node RSS: {m['after_warmup']:.1f} MB after the warm-up, {m['end']:.1f} MB at the end "
          f"({m['growth']:+.1f} MB)")
    print(f"crashes: {r['crashes']} (node alive at the end: {r['node_alive']}); "
          f"error lines in its log: {r['errors_in_log']}")
