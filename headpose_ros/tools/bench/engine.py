"""The engine timed in this process: each backend on each inference engine, and the attention stage."""

from __future__ import annotations

import numpy as np

from .machine import process_threads, stats, threads_before, timed
from .report import STAGE_ORDER

ATTENTION_TARGETS = 10  # the robot and nine configured targets, besides the other faces


def _quiet(line: str) -> None:
    """The engine's log while it is timed: nothing."""


def bench_engine(frame, camera, args, backend: str, engine_kind: str) -> dict:
    """One backend on one inference engine, --frames calls on `frame` as still images (every call
    searched whole and in every tile, nothing followed: what `predict` and `eval` do): stages, end to
    end, faces, threads. Video is bench_video's."""
    from ...core.config import still_image_config
    from ...pipeline import create_engine

    before = threads_before()
    engine = create_engine(still_image_config({
        "backend": backend, "num_threads": args.threads, "detection.model": args.detector,
        "inference.engine": engine_kind}), log=_quiet)
    wall, results = timed(lambda i: engine.process(frame, camera, i / 30.0), args)
    per_stage: dict[str, list[float]] = {}
    for result in results:
        for stage, ms in result.timings_ms.items():
            per_stage.setdefault(stage, []).append(ms)
    return {"stages": {s: stats(per_stage[s]) for s in STAGE_ORDER if s in per_stage},
            "end_to_end": stats(wall),
            "faces": float(np.mean([len(r.heads) for r in results])),
            "describe": engine.describe(),
            "process_threads": {"before": before, "during": process_threads()},
            "ort_threads": _ort_threads(engine)}


def _ort_threads(engine) -> dict[str, int] | None:
    """Intra- and inter-op threads of the detector's ONNX Runtime session as created; None under TensorRT."""
    return engine.detector.runtime.threads


def bench_attention(frame, camera, args) -> dict:
    """AttentionTracker.update for every face of `frame` (from the landmarks engine) against ATTENTION_TARGETS
    targets spread in front of the camera, other faces being targets too; --frames calls at 30 Hz stamps."""
    from ...core.attention import ROBOT, AttentionTracker, TargetPoint
    from ...core.config import still_image_config
    from ...pipeline import create_engine

    heads = create_engine(still_image_config({"num_threads": args.threads, "detection.model": args.detector}),
                          log=_quiet).process(frame, camera, 0.0).heads
    rng = np.random.default_rng(0)
    targets = [TargetPoint(ROBOT, "camera", np.zeros(3))] + [
        TargetPoint(f"target_{k}", "camera", rng.uniform([-1, -0.5, 0.3], [1, 0.5, 3.0]))
        for k in range(ATTENTION_TARGETS - 1)]
    tracker = AttentionTracker()
    times, _ = timed(lambda i: tracker.update(heads, targets, i / 30.0), args)
    return {"faces": len(heads), "targets": len(targets), "update": stats(times)}


def bench_video(engine, frames, camera, warmup: int) -> dict:
    """One pass of `engine` (reset first) over a sequence at 15 Hz stamps: per-frame wall times after
    `warmup` frames, stage means, faces published and which frames ran the detector."""
    import time

    from .sequences import RATE_HZ

    engine.reset()
    wall, stages, heads, searched = [], {}, [], {"image": 0, "tiles": 0, "none": 0}
    for i, frame in enumerate(frames):
        start = time.perf_counter()
        result = engine.process(frame, camera, 1000.0 + i / RATE_HZ)
        ms = (time.perf_counter() - start) * 1e3
        if i < warmup:
            continue
        wall.append(ms)
        heads.append(len(result.heads))
        for stage, v in result.timings_ms.items():
            stages.setdefault(stage, []).append(v)
        searched["image"] += "image" in result.searched
        searched["tiles"] += "tile" in result.searched
        searched["none"] += not result.searched
    return {"ms": wall, "stages_mean_ms": {s: float(np.mean(stages[s])) for s in STAGE_ORDER if s in stages},
            "faces_mean": float(np.mean(heads)), "detector_frames": searched, "frames": len(wall)}
