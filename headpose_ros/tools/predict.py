"""``headpose-ros predict``: head poses of the faces in image files, as one JSON object.

Each image is an independent single frame (no tracking or smoothing across
files), so every detected face is reported; ids are sequential within one
call (0001, 0002, ...). The output format, its frames and units are the
``EPILOG`` below, which ``headpose-ros predict --help`` prints; the JSON
repeats its frames and units under "frames" and "units".

Intrinsics, per image size: the --camera-info YAML fitted to the image (a
pure resize scales K), else a nominal pinhole camera of --fov degrees
(default ``DEFAULT_FOV_DEG``, the focal length of ``eval``'s datasets without
intrinsics). Each image's entry says which ("intrinsics").

A file that cannot be read gets an {"error": ...} entry and a line on stderr,
and the others are printed all the same (exit status 1); when no file could
be read there is no JSON (exit status 2).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..cli import CommandError, add_set_argument, check_fov, setting_values
from ..evaluation.datasets import NOMINAL_FOV_DEG

if TYPE_CHECKING:
    from ..core.camera import CameraModel

#: Horizontal field of view (degrees) assumed without --camera-info or --fov: focal length = image width,
#: as `headpose-ros eval` assumes for datasets without intrinsics.
DEFAULT_FOV_DEG = NOMINAL_FOV_DEG
#: Bumped when the JSON layout changes.
FORMAT = "headpose-ros predict 2"

# Decimals kept in the JSON: 0.01 px and deg, 0.1 mm, 1e-5 for unit quaternions and rotation matrices,
# 0.001 for scores (well below what any estimate here resolves).
PX, DEG, METRES, UNIT, SCORE = 2, 2, 4, 5, 3

FRAMES = {
    "camera": "camera optical frame (the image's): x right, y down, z forward",
    "face": "REP-155 face frame face_<id>: origin at the sellion (between the eyes on the nose bridge), "
            "x out of the face, y to the person's left, z up; each pose is this frame in the camera frame",
}
UNITS = {
    "bbox_px": "x0, y0, x1, y1: pixels of the input image",
    "position_m": "x, y, z: the sellion in the camera frame, metres",
    "quaternion_xyzw": "x, y, z, w (ROS order, w >= 0): orientation of the face frame in the camera frame",
    "rotation_matrix": "3x3, the same orientation: its columns are the face's x, y, z axes in camera coordinates",
    "yaw_pitch_roll_deg": "degrees; all zero when the person faces the camera squarely along the line of sight; "
                          "yaw > 0 turns to the person's left, pitch > 0 looks down, roll > 0 tilts toward the "
                          "person's right shoulder (msg/HeadPose.msg)",
    "confidence": "0 to 1",
    "attention": "what the face looks at (msg/AttentionTarget.msg): angle_deg degrees, distance_m metres, "
                 "score 0 to 1",
    "K_px": "the camera matrix used, pixels",
}

EPILOG = f"""\
output (stdout): one JSON object
  {{"format": "{FORMAT}", "frames": {{...}}, "units": {{...}},
   "images": {{"a.jpg": IMAGE, "broken.jpg": {{"error": "not an image ..."}}}}}}
  IMAGE: {{"width": 1280, "height": 886, "intrinsics": SOURCE,
          "K_px": [[fx, 0, cx], [0, fy, cy], [0, 0, 1]], "faces": [FACE, ...],
          "drawing": "DIR/a_pose.png" (with --draw)}}
  SOURCE: "camera_info", "camera_info scaled from 640x480", "fov 60.0 deg",
          "fov {DEFAULT_FOV_DEG:.1f} deg (assumed: no --camera-info or --fov)", ...
  FACE: {{"id": "0001", "method": "landmarks", "bbox_px": [x0, y0, x1, y1],
         "position_m": [x, y, z], "quaternion_xyzw": [x, y, z, w],
         "rotation_matrix": 3x3, "yaw_pitch_roll_deg": [yaw, pitch, roll],
         "confidence": c, "attention": ATTENTION or null}}
  ATTENTION: {{"target", "angle_deg", "distance_m", "score", "looking_at_robot",
              "candidates": [{{"name", "angle_deg", "distance_m", "score",
              "in_view"}}, ...]}}

frames (REP-103 / REP-155):
  camera optical frame: x right, y down, z forward.
  face frame (face_<id>): origin at the sellion (between the eyes), x out of the
  face, y to the person's left, z up. position_m, quaternion_xyzw and
  rotation_matrix are the face frame in the camera optical frame.

units and rounding:
  bbox_px pixels (0.01); position_m metres (0.0001); quaternion_xyzw unit
  quaternion in ROS order x, y, z, w with w >= 0 (1e-5); rotation_matrix
  columns = face x, y, z axes in camera coordinates (1e-5);
  yaw_pitch_roll_deg degrees (0.01), zero when the person faces the camera
  squarely along the line of sight, yaw > 0 to the person's left, pitch > 0
  down, roll > 0 toward the right shoulder (msg/HeadPose.msg); confidence and
  scores 0..1 (0.001). attention: what the face looks at in this image
  (target "robot" = the camera, "face_<id>", or "" for none).

intrinsics, per image:
  --camera-info: its K and D, scaled for a resized image of the same aspect
  ratio ("camera_info", "camera_info scaled from WxH"). Without it, or with
  --fov for images it does not fit: an ideal pinhole camera (no distortion,
  centred principal point) of --fov degrees, by default {DEFAULT_FOV_DEG:.1f}
  (focal length = image width) ("fov ... deg"). A guessed focal length
  scales position_m; angles depend on it much less.

exit status: 0 all files done; 1 some failed (each has an "error" entry and
a line on stderr; the others are printed); 2 nothing could be done (one line
on stderr, no JSON).
"""


def add_arguments(parser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="image files (any format OpenCV reads)")
    parser.add_argument("--camera-info", type=Path, default=None, metavar="CAMERA_INFO.yaml",
                        help="camera_calibration_parsers YAML with the camera's K and D (default: an assumed "
                             "field of view, see --fov)")
    parser.add_argument("--fov", type=float, default=None, metavar="DEG",
                        help="horizontal field of view of the nominal pinhole camera used without --camera-info, "
                             "or for images the YAML does not fit (default without --camera-info: "
                             f"{DEFAULT_FOV_DEG:.1f}, focal length = image width)")
    parser.add_argument("--backend", default="landmarks", help="landmarks (default), hopenet or fusion")
    parser.add_argument("--engine", default="auto", help="auto (default), onnxruntime or tensorrt")
    parser.add_argument("--network-file", default="", metavar="ONNX",
                        help="hopenet/fusion: the network's ONNX (default: the built-in WHENet); "
                             "a file from `headpose-ros export-hopenet` selects Hopenet")
    parser.add_argument("--draw", type=Path, default=None, metavar="DIR",
                        help="also write each image with its heads drawn to DIR/<name>_pose.png (created)")
    parser.add_argument("--json", action="store_true", help="print JSON (the default and only format, kept for clarity)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads per network (default: 2)")
    parser.add_argument("--model-dir", default="", help="directory of the .onnx models, each with its .json "
                        "manifest, e.g. one written by `headpose-ros prepare --export` (default: the asset cache)")
    parser.add_argument("--unchecked-models", action="store_true",
                        help="use --model-dir's .onnx files without checking them against manifests")
    parser.add_argument("--indent", type=int, default=None, help="indent the JSON output")
    add_set_argument(parser)


# --- JSON records -------------------------------------------------------------


def _rounded(values, digits: int):
    """Nested lists of floats rounded to `digits` decimals (no -0.0)."""
    if hasattr(values, "__len__"):
        return [_rounded(v, digits) for v in values]
    return round(float(values), digits) + 0.0


def _number(value: float, digits: int) -> float | None:
    """JSON has no NaN: a missing value (no attended target) is null."""
    return None if math.isnan(value) else _rounded(value, digits)


def attention_record(a) -> dict:
    """A core.attention.FaceAttention as JSON."""
    return {
        "target": a.target, "angle_deg": _number(a.angle_deg, DEG), "distance_m": _number(a.distance_m, METRES),
        "score": _rounded(a.score, SCORE), "looking_at_robot": bool(a.looking_at_robot),
        "candidates": [{"name": c.name, "angle_deg": _rounded(c.angle_deg, DEG),
                        "distance_m": _rounded(c.distance_m, METRES), "score": _rounded(c.score, SCORE),
                        "in_view": bool(c.in_view)} for c in a.candidates],
    }


def face_record(head, attention=None) -> dict:
    """A core.types.HeadPose (and what it attends) as JSON; see EPILOG."""
    return {
        "id": head.track_id,
        "method": head.method,
        "bbox_px": _rounded(head.box, PX),
        "position_m": _rounded(head.t, METRES),
        "quaternion_xyzw": _rounded(head.quaternion_xyzw, UNIT),
        "rotation_matrix": _rounded(head.R, UNIT),
        "yaw_pitch_roll_deg": _rounded(head.yaw_pitch_roll_deg, DEG),
        "confidence": _rounded(head.confidence, SCORE),
        "attention": None if attention is None else attention_record(attention),
    }


# --- intrinsics ---------------------------------------------------------------


@dataclass
class Intrinsics:
    """The camera of each image size: the camera-info YAML fitted to it, else a nominal pinhole of a FOV.

    camera_info: the validated --camera-info camera, or None; camera_info_path: its file.
    fov_deg: --fov, or None (then DEFAULT_FOV_DEG without camera_info, and no fallback with it).
    """

    camera_info: CameraModel | None = None
    camera_info_path: Path | None = None
    fov_deg: float | None = None
    _by_size: dict = field(default_factory=dict)

    def for_size(self, width: int, height: int) -> tuple[CameraModel, str]:
        """(CameraModel, where it came from) for an image of width x height; CommandError if none fits.

        The same object for the same size, so the engine checks it once.
        """
        if (width, height) not in self._by_size:
            self._by_size[(width, height)] = self._choose(width, height)
        return self._by_size[(width, height)]

    def _choose(self, width: int, height: int) -> tuple[CameraModel, str]:
        from ..core.camera import CameraModel, CameraModelError

        if self.camera_info is None:
            fov = DEFAULT_FOV_DEG if self.fov_deg is None else self.fov_deg
            said = f"fov {fov:.1f} deg" + (" (assumed: no --camera-info or --fov)" if self.fov_deg is None else "")
            return CameraModel.from_field_of_view(width, height, fov, "camera_optical_frame").validated(), said
        try:
            camera = self.camera_info.fitted_to(width, height).validated()
        except CameraModelError as exc:
            if self.fov_deg is None:
                raise CommandError(f"{self.camera_info_path}: {exc}; or give --fov DEG to assume a nominal "
                                   "camera for such images") from None
            info = self.camera_info
            camera = CameraModel.from_field_of_view(width, height, self.fov_deg, info.frame_id).validated()
            return camera, (f"fov {self.fov_deg:.1f} deg (--camera-info is for {info.width}x{info.height} "
                            "images)")
        if (width, height) == (self.camera_info.width, self.camera_info.height) or self.camera_info.width <= 0:
            return camera, "camera_info"
        return camera, f"camera_info scaled from {self.camera_info.width}x{self.camera_info.height}"


def _intrinsics(args) -> Intrinsics:
    from ..core.camera import CameraModel, CameraModelError

    check_fov(args.fov)
    if args.camera_info is None:
        return Intrinsics(fov_deg=args.fov)
    try:
        camera = CameraModel.from_yaml(args.camera_info).validated()
    except CameraModelError as exc:
        raise CommandError(f"{args.camera_info}: {exc}") from None
    return Intrinsics(camera, args.camera_info, args.fov)


# --- the command ----------------------------------------------------------------


def run(args) -> int:
    from ..assets import AssetError
    from ..core.config import still_image_config
    from ..core.engine import ConfigError
    from ..core.inference import InferenceError
    from ..pipeline import create_engine

    intrinsics = _intrinsics(args)
    config = still_image_config({
        "backend": args.backend, "num_threads": args.threads, "inference.engine": args.engine,
        "hopenet.network": "hopenet" if args.network_file else "whenet", "hopenet.model_file": args.network_file,
        **setting_values(args.settings),
    })
    drawings = _Drawings(args.draw) if args.draw is not None else None
    try:
        # stdout is the JSON; keep stderr for errors
        engine = create_engine(config, model_dir=args.model_dir, unchecked_models=args.unchecked_models,
                               log=lambda line: None)
    except (ConfigError, InferenceError, AssetError) as exc:
        raise CommandError(str(exc)) from None
    images, failed = {}, []
    for path in args.images:
        try:
            images[str(path)] = _predict_one(engine, intrinsics, path, drawings)
        except CommandError as exc:
            images[str(path)] = {"error": str(exc)}
            failed.append(f"{path}: {exc}")
    if len(failed) == len(images):  # nothing to print: the one error line (or the first of several)
        raise CommandError(failed[0] + (f" (and {len(failed) - 1} more files failed)" if len(failed) > 1 else ""))
    for line in failed:  # each bad file is named; the good ones are printed all the same
        print(f"headpose-ros predict: error: {line}", file=sys.stderr)
    json.dump({"format": FORMAT, "frames": FRAMES, "units": UNITS, "images": images}, sys.stdout,
              indent=args.indent)
    sys.stdout.write("\n")
    return 1 if failed else 0


def _predict_one(engine, intrinsics: Intrinsics, path: Path, drawings: "_Drawings | None") -> dict:
    """The entry of one image file; CommandError saying what is wrong with the file (without its name)."""
    import cv2

    from ..core.camera import CameraModelError

    if not path.is_file():
        raise CommandError("no such file")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise CommandError("not an image OpenCV can read")
    height, width = image.shape[:2]
    camera, source = intrinsics.for_size(width, height)
    engine.reset()
    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    try:
        result = engine.process(rgb, camera, 0.0)
    except CameraModelError as exc:
        raise CommandError(str(exc)) from None
    attention = {a.face_id: a for a in result.attention}
    entry = {"width": width, "height": height, "intrinsics": source, "K_px": _rounded(result.camera.K, PX),
             "faces": [face_record(h, attention.get(h.track_id)) for h in result.heads]}
    if drawings is not None:
        entry["drawing"] = str(drawings.write(path, rgb, result.camera, result.heads, attention))
    return entry


class _Drawings:
    """--draw: each image annotated (core.visualization.annotate) as DIR/<stem>_pose.png, a name used once per run."""

    def __init__(self, folder: Path):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CommandError(f"--draw {folder}: cannot create it ({exc.strerror or exc})") from None
        self.folder = folder
        self.used: set[str] = set()

    def write(self, source: Path, rgb, camera, heads, attention) -> Path:
        import cv2

        from ..core.visualization import annotate

        name, n = f"{source.stem}_pose.png", 1
        while name in self.used:  # the same stem from two folders: photo_pose.png, photo_pose_2.png
            n += 1
            name = f"{source.stem}_pose_{n}.png"
        self.used.add(name)
        target = self.folder / name
        if not cv2.imwrite(str(target), annotate(rgb, camera, heads, attention)):
            raise CommandError(f"cannot write the drawing {target}")
        return target
