"""``headpose-ros eval``: accuracy of every backend on a dataset, or consistency on real photos.

    headpose-ros eval DATASET [--format auto|aflw2000|biwi|folder|video] [--protocol auto|detector|box|both]
                              [--backends ...] [--out DIR]
    headpose-ros eval --consistency [--photos astronaut,obama,...] [--backends ...] [--out DIR]
    headpose-ros eval VIDEO_SET [--sequences turn,walk,...] [--backends ...] [--out DIR]

DATASET is an AFLW2000-3D folder, a BIWI database folder or cropped-face
.npz, or a folder in this package's format (what ``headpose-ros synth``
writes). Writes eval.json, eval.md and error_vs_yaw.png (or consistency.json
and consistency.md) into --out, and prints the tables. A video set (what
``headpose-ros synth --video`` writes) is played through the tracking engine
in order instead: video.json, video.md and video.png. Metrics and protocols:
headpose_ros.evaluation (video: evaluation.video_eval).

Protocols (evaluation.runner): ``detector``, the package's own detector finds
the faces (MAE over the faces it found), and ``box``, the labelled face box is
given and no detector runs, as the published tables do. By default (auto)
both, side by side, when every sample has a labelled box (AFLW2000-3D, BIWI
crops, a synth set), else the detector's only.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from ..cli import CommandError, add_set_argument, setting_values

DEFAULT_BACKENDS = "landmarks,hopenet,fusion"


def add_arguments(parser) -> None:
    parser.add_argument("dataset", nargs="?", type=Path, help="dataset folder or file (not with --consistency)")
    parser.add_argument("--format", default="auto", help="auto (default), aflw2000, biwi, folder or video")
    parser.add_argument("--protocol", default="auto", choices=("auto", "detector", "box", "both"),
                        help="where the faces come from: the package's detector, the labelled boxes (no detector, "
                             "as published tables), or both side by side (default auto: both when every sample "
                             "has a labelled box, else detector)")
    parser.add_argument("--consistency", action="store_true",
                        help="flip, in-plane rotation and jitter on the sample photos instead of a dataset")
    parser.add_argument("--photos", default="", help="--consistency: comma-separated sample photos (default: all)")
    parser.add_argument("--backends", default=DEFAULT_BACKENDS, help=f"comma-separated (default: {DEFAULT_BACKENDS})")
    parser.add_argument("--out", type=Path, default=Path("out/eval"), help="output folder (default: out/eval)")
    parser.add_argument("--limit", type=int, default=None, help="read at most this many samples")
    parser.add_argument("--fov", type=float, default=None,
                        help="horizontal field of view (deg) of the ideal camera assumed for images without "
                             "intrinsics (default: focal length = image width, 53.1 deg)")
    parser.add_argument("--engine", default="onnxruntime", help="onnxruntime (default), tensorrt or auto")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads per network (default: 2)")
    parser.add_argument("--sequences", default="", help="video set: comma-separated sequences (default: all)")
    parser.add_argument("--jitter-frames", type=int, default=30, help="--consistency: noisy copies per photo")
    add_set_argument(parser)


def _engines(args, video: bool = False):
    from ..assets import AssetError
    from ..core.config import BACKENDS
    from ..core.engine import ConfigError
    from ..core.inference import InferenceError
    from ..evaluation.runner import make_engines, make_video_engines

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown or not backends:
        raise CommandError(f"unknown backend(s) {', '.join(unknown) or '(none given)'} (choose {', '.join(BACKENDS)})")
    try:
        return (make_video_engines if video else make_engines)(
            backends, {"num_threads": args.threads, "inference.engine": args.engine, **setting_values(args.settings)})
    except (ConfigError, InferenceError, AssetError) as exc:
        raise CommandError(str(exc)) from None


def _progress(done: int, total: int) -> None:
    if done == total or done % 25 == 0:
        print(f"  {done}/{total}", file=sys.stderr, flush=True)


def run(args) -> int:
    if args.consistency:
        if args.dataset is not None:
            raise CommandError("give a dataset or --consistency, not both")
        return run_consistency(args)
    if args.dataset is None:
        raise CommandError("give a dataset folder (or file), or --consistency")
    from ..evaluation.video_eval import is_video_set

    if args.format == "video" or (args.format == "auto" and is_video_set(args.dataset)):
        return run_video(args)
    from ..evaluation.datasets import NOMINAL_FOV_DEG, DatasetError, read_dataset
    from ..evaluation.report import write_eval
    from ..evaluation.runner import evaluate

    try:
        dataset = read_dataset(args.dataset, args.format, args.fov or NOMINAL_FOV_DEG, args.limit)
    except DatasetError as exc:
        raise CommandError(str(exc)) from None
    protocols = _protocols(args.protocol, dataset)
    engines = _engines(args)
    print(f"{dataset.name}: {len(dataset.samples)} samples ({len(dataset.dropped)} dropped by the protocol); "
          f"backends {', '.join(engines)}", file=sys.stderr)
    start = time.perf_counter()
    outcomes = {}
    try:
        for protocol in protocols:
            print(f" {protocol} protocol", file=sys.stderr, flush=True)
            outcomes[protocol] = evaluate(dataset, engines, _progress, protocol)
    except DatasetError as exc:
        raise CommandError(str(exc)) from None
    result = write_eval(args.out, dataset, outcomes, _meta(engines, start))
    return _report(args.out, "eval", result["plot_skipped"], "error_vs_yaw.png")


def _protocols(choice: str, dataset) -> list[str]:
    """The protocols --protocol asks for on this dataset (see the module docstring)."""
    if choice == "auto":
        return ["detector", "box"] if dataset.boxes else ["detector"]
    wanted = ["detector", "box"] if choice == "both" else [choice]
    if "box" in wanted and not dataset.boxes:
        raise CommandError(f"{dataset.name}: --protocol {choice} needs a labelled box for every sample")
    return wanted


def _meta(engines, start: float) -> dict:
    """What every eval output records of its run: the command, how long it took, the engines."""
    return {"command": "headpose-ros eval " + " ".join(sys.argv[2:]), "seconds": round(time.perf_counter() - start, 1),
            "engines": {b: e.describe() for b, e in engines.items()}}


def _report(out: Path, stem: str, plot_skipped: str | None, plot: str) -> int:
    """Print `stem`.md's tables and what was written (the plot, or why not)."""
    print((out / f"{stem}.md").read_text())
    if plot_skipped:
        print(f"plot skipped: {plot_skipped}", file=sys.stderr)
    print(f"wrote {out}/{stem}.json, {stem}.md" + ("" if plot_skipped else f", {plot}"))
    return 0


def run_consistency(args) -> int:
    from .. import assets
    from ..evaluation.consistency import (AGREEMENT_FOV_DEG, CONSISTENCY_FOV_DEG, CONSISTENCY_PHOTOS, frontal_agreement,
                                          measure)
    from ..evaluation.report import consistency_markdown

    names = [n.strip() for n in args.photos.split(",") if n.strip()] or list(CONSISTENCY_PHOTOS)
    try:
        photos = {n: assets.read_photo(n) for n in names}
    except assets.AssetError as exc:
        raise CommandError(str(exc)) from None
    engines = _engines(args)
    measured = {}
    for backend, engine in engines.items():
        print(f"{backend}: {len(photos)} photos", file=sys.stderr, flush=True)
        measured[backend] = measure(engine, photos, jitter_frames=args.jitter_frames)
    results = {backend: m.summary() for backend, m in measured.items()}
    agreement = {}
    if {"landmarks", "hopenet"} <= set(engines):
        # One frontal: the same photos and mirror images through the consistency camera and a portrait lens.
        agreement[f"{CONSISTENCY_FOV_DEG:g}"] = frontal_agreement(measured["landmarks"], measured["hopenet"])
        narrow = {k: measure(engines[k], photos, rotations=(), jitter_frames=0, fov_deg=AGREEMENT_FOV_DEG)
                  for k in ("landmarks", "hopenet")}
        agreement[f"{AGREEMENT_FOV_DEG:g}"] = frontal_agreement(narrow["landmarks"], narrow["hopenet"])
    args.out.mkdir(parents=True, exist_ok=True)
    table = consistency_markdown(results)
    for fov, a in agreement.items():
        if a["faces"]:
            table += (f"\nOne frontal, {a['faces']} faces (the photos and their mirror images, a {fov} deg centred "
                      f"camera): `landmarks` reads {a['pitch_difference']:+.2f} deg of pitch more than `hopenet` "
                      f"on average ({a['pitch_difference_abs']:.2f} deg apart per face).\n")
    (args.out / "consistency.json").write_text(json.dumps(
        {"photos": names, "command": "headpose-ros eval " + " ".join(sys.argv[2:]), "results": results,
         "frontal_agreement": agreement}, indent=1))
    (args.out / "consistency.md").write_text(table)
    print(f"Consistency on {len(photos)} real photos ({', '.join(names)}); degrees:\n")
    print(table)
    print(f"wrote {args.out}/consistency.json, consistency.md")
    return 0


def run_video(args) -> int:
    from ..evaluation.datasets import DatasetError
    from ..evaluation.video_eval import evaluate_video, read_video_set, write_video_eval

    try:
        video = read_video_set(args.dataset, [n.strip() for n in args.sequences.split(",") if n.strip()])
        engines = _engines(args, video=True)
        print(f"{video.name}: {len(video.sequences)} sequences at {video.rate_hz:g} Hz; backends "
              f"{', '.join(engines)}", file=sys.stderr)
        start = time.perf_counter()
        results = evaluate_video(video, engines, lambda line: print(f"  {line}", file=sys.stderr, flush=True))
    except DatasetError as exc:
        raise CommandError(str(exc)) from None
    result = write_video_eval(args.out, video, results, _meta(engines, start))
    return _report(args.out, "video", result["plot_skipped"], "video.png")
