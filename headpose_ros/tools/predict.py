"""``headpose-ros predict``: head poses of the faces in image files, as one JSON object.

Each image is an independent single frame (no tracking or smoothing across
files), so every detected face is reported; ids are sequential within one
call (0001, 0002, ...). Output, keyed by path:
``[{"id", "bbox": [x0, y0, x1, y1], "quaternion": [x, y, z, w], "R": 3x3,
"t": [x, y, z], "yaw", "pitch", "roll", "confidence", "attention"}, ...]`` where R,
quaternion and t (metres) are the face frame in the camera optical frame and
the angles are degrees (convention: msg/HeadPose.msg). "attention" is what the
face looks at in this image (msg/AttentionTarget.msg): {"target" ("robot", i.e.
the camera, another face "face_<id>", or "" for none), "angle_deg", "distance_m",
"score", "looking_at_robot", "candidates": [{"name", "angle_deg", "distance_m",
"score", "in_view"}, ...]}, with null where there is no target.

A file that cannot be read is named on stderr, one line each, and the
others are printed all the same (exit status 1); when no file could be read
there is no JSON (exit status 2).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from ..cli import CommandError, add_set_argument, setting_values


def add_arguments(parser) -> None:
    parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="image files (any format OpenCV reads)")
    parser.add_argument("--camera-info", required=True, type=Path, metavar="CAMERA_INFO.yaml",
                        help="camera_calibration_parsers YAML with the camera's K and D")
    parser.add_argument("--backend", default="landmarks", help="landmarks (default), hopenet or fusion")
    parser.add_argument("--engine", default="auto", help="auto (default), onnxruntime or tensorrt")
    parser.add_argument("--network-file", default="", metavar="ONNX",
                        help="hopenet/fusion: the network's ONNX (default: the built-in WHENet); "
                             "a file from `headpose-ros export-hopenet` selects Hopenet")
    parser.add_argument("--json", action="store_true", help="print JSON (the default and only format, kept for clarity)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads per network (default: 2)")
    parser.add_argument("--model-dir", default="", help="directory of the .onnx models, each with its .json "
                        "manifest (default: the asset cache)")
    parser.add_argument("--unchecked-models", action="store_true",
                        help="use --model-dir's .onnx files without checking them against manifests")
    parser.add_argument("--indent", type=int, default=None, help="indent the JSON output")
    add_set_argument(parser)


def _number(value: float) -> float | None:
    """JSON has no NaN: a missing value (no attended target) is null."""
    return None if math.isnan(value) else float(value)


def attention_record(a) -> dict:
    """A core.attention.FaceAttention as JSON."""
    return {
        "target": a.target, "angle_deg": _number(a.angle_deg), "distance_m": _number(a.distance_m),
        "score": float(a.score), "looking_at_robot": bool(a.looking_at_robot),
        "candidates": [{"name": c.name, "angle_deg": float(c.angle_deg), "distance_m": float(c.distance_m),
                        "score": float(c.score), "in_view": bool(c.in_view)} for c in a.candidates],
    }


def face_record(head, attention=None) -> dict:
    return {
        "id": head.track_id,
        "bbox": [round(float(v), 2) for v in head.box],
        "quaternion": [float(v) for v in head.quaternion_xyzw],
        "R": [[float(v) for v in row] for row in head.R],
        "t": [float(v) for v in head.t],
        **{k: float(v) for k, v in zip(("yaw", "pitch", "roll"), head.yaw_pitch_roll_deg)},
        "confidence": float(head.confidence),
        "attention": None if attention is None else attention_record(attention),
    }


def run(args) -> int:
    from ..assets import AssetError
    from ..core.camera import CameraModel, CameraModelError
    from ..core.config import still_image_config
    from ..core.engine import ConfigError
    from ..core.inference import InferenceError
    from ..pipeline import create_engine

    try:
        camera = CameraModel.from_yaml(args.camera_info).validated()
    except CameraModelError as exc:
        raise CommandError(f"{args.camera_info}: {exc}") from None
    config = still_image_config({
        "backend": args.backend, "num_threads": args.threads, "inference.engine": args.engine,
        "hopenet.network": "hopenet" if args.network_file else "whenet", "hopenet.model_file": args.network_file,
        **setting_values(args.settings),
    })
    try:
        # stdout is the JSON; keep stderr for errors
        engine = create_engine(config, model_dir=args.model_dir, unchecked_models=args.unchecked_models,
                               log=lambda line: None)
    except (ConfigError, InferenceError, AssetError) as exc:
        raise CommandError(str(exc)) from None
    results, failed = {}, []
    for path in args.images:
        try:
            results[str(path)] = _predict_one(engine, camera, path)
        except CommandError as exc:
            failed.append(str(exc))
    if not results:  # nothing to print: the one error line (or the first of several)
        raise CommandError(failed[0] + (f" (and {len(failed) - 1} more files failed)" if len(failed) > 1 else ""))
    for line in failed:  # each bad file is named; the good ones are printed all the same
        print(f"headpose-ros predict: error: {line}", file=sys.stderr)
    json.dump(results, sys.stdout, indent=args.indent)
    sys.stdout.write("\n")
    return 1 if failed else 0


def _predict_one(engine, camera, path: Path) -> list[dict]:
    """The face records of one image file; CommandError saying what is wrong with the file."""
    import cv2

    from ..core.camera import CameraModelError

    if not path.is_file():
        raise CommandError(f"{path}: no such file")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise CommandError(f"{path}: not an image OpenCV can read")
    engine.reset()
    try:
        result = engine.process(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), camera, 0.0)
    except CameraModelError as exc:
        raise CommandError(f"{path}: {exc}") from None
    attention = {a.face_id: a for a in result.attention}
    return [face_record(h, attention.get(h.track_id)) for h in result.heads]
