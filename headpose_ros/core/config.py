"""The engine's settings: one definition each, in one dataclass tree mirrored by config/headpose.yaml.

Every setting is a dataclass field made by `setting()`, which records its
description, its range or choices, and whether it may change while the
engine runs. Everything else is derived from that one definition:

- `problems()` checks a whole tree (type, range, choices, and the few rules
  that join two settings);
- `LIVE_SETTINGS` is the set of settings HeadPoseEngine.apply accepts;
- the node declares one ROS parameter per setting, named by its dotted path
  (``detection.score_threshold``), with that description, range and
  read-only flag (ros.parameters), and the YAML is tested against it.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any, Iterator

BACKENDS = ("landmarks", "hopenet", "fusion")
DETECTOR_MODELS = ("full_range", "short_range")
ID_STYLES = ("random", "sequential")
IMAGE_ROTATIONS = (0, 90, 180, 270)
ENGINES = ("auto", "onnxruntime", "tensorrt")
NETWORKS = ("whenet", "hopenet")
MIRROR_MODES = ("never", "still", "always")
GAZE_AXES = ("x", "y", "z")
ROBOT = "robot"  # the name of the robot as an attention target


@dataclass(frozen=True)
class Setting:
    """What one setting may hold, and what it means.

    low/high: bounds (None: unbounded); low_open/high_open: the bound itself
    is excluded. choices: the allowed strings. live: may change while the
    engine runs (HeadPoseEngine.apply). note: added to the range in messages.
    """

    description: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple = ()  # strings, or the only numbers allowed (within low and high)
    live: bool = False
    note: str = ""

    def range_text(self) -> str:
        """The allowed values in words: "[0, 1]", "> 0", "one of: a, b"; "" when anything goes."""
        if self.choices:
            return "one of: " + ", ".join(str(c) for c in self.choices)
        if self.low is not None and self.high is not None:
            return f"{'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        if self.high is not None:
            return f"{'<' if self.high_open else '<='} {self.high:g}"
        return ""

    def problem(self, name: str, value: Any, kind: type) -> str | None:
        """Why `value` cannot be setting `name` of type `kind`; None when it can."""
        if kind is bool:
            if not isinstance(value, bool):
                return f"{name} must be true or false, not {value!r}"
            return None
        if kind is str:
            if not isinstance(value, str):
                return f"{name} must be a string, not {value!r}"
            if self.choices and value not in self.choices:
                return f"{name} '{value}' is unknown (choose {', '.join(self.choices)})"
            return None
        if kind in (int, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and isinstance(value, float)):
                return f"{name} must be {'an integer' if kind is int else 'a number'}, not {value!r}"
            if not math.isfinite(value):
                return f"{name} must be a finite number in {self.range_text() or 'range'}, not {value!r}"
            if self.choices and value not in self.choices:
                return f"{name} must be {self.range_text()}, not {value!r}"
            return self._range_problem(name, value)
        if kind is tuple:
            if not isinstance(value, (tuple, list)):
                return f"{name} must be a list, not {value!r}"
            return None
        return None

    def _range_problem(self, name: str, value: float) -> str | None:
        below = self.low is not None and not (value > self.low if self.low_open else value >= self.low)
        above = self.high is not None and not (value < self.high if self.high_open else value <= self.high)
        if below or above:
            text = self.range_text()
            where = f"in {text}" if self.low is not None and self.high is not None else text
            return f"{name} must be {where}" + (f" ({self.note})" if self.note else "") + f", not {value!r}"
        return None


def setting(default: Any, description: str, **rules: Any) -> Any:
    """A settings dataclass field: its default, its description and its rules (see Setting)."""
    return field(default=default, metadata={"setting": Setting(" ".join(description.split()), **rules)})


def unit_interval(default: float, description: str, live: bool = True) -> Any:
    return setting(default, description, low=0.0, high=1.0, live=live)


class Settings:
    """Base of every settings group: checks its own fields (and its groups') from their definitions."""

    def problems(self, prefix: str = "") -> list[str]:
        """What is wrong with these settings (names prefixed by `prefix`); empty when they are usable."""
        found = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            spec = f.metadata.get("setting")
            if spec is not None:
                problem = spec.problem(prefix + f.name, value, _kind(f.default))
                if problem:
                    found.append(problem)
            elif isinstance(value, Settings):
                found += value.problems(f"{prefix}{f.name}.")
        return found + self.joint_problems()

    def joint_problems(self) -> list[str]:
        """Rules that join several settings of this group (overridden where there are some)."""
        return []


@dataclass(frozen=True)
class DetectionConfig(Settings):
    model: str = setting("full_range", "BlazeFace model: full_range (faces up to about 5 m) or short_range (up to "
                         "about 2 m, faster).", choices=DETECTOR_MODELS)
    # At 0 every one of the detector's 2,304 anchors is a face to check: 0.37-0.91 s a frame on the dev machine, and
    # false faces; from 0.05 the cost is within a millisecond of 0.5's (measured on the sample photos).
    score_threshold: float = setting(0.5, "Face detection score in [0.05, 1] from which a face is kept (the face mesh "
                                     "must still see a face in it, at a low bar).", low=0.05, high=1.0, live=True,
                                     note="below 0.05 every anchor is a face to check")
    candidate_threshold: float = setting(0.2, "Still images: faces the whole-image search scores between this and "
                                         "score_threshold (mostly profiles) are kept when the face mesh confirms "
                                         "them (core/finding.py); nothing scoring below both thresholds is kept; at "
                                         "or above score_threshold: off.", low=0.05, high=1.0, live=True,
                                         note="below 0.05 every anchor is a face to check")
    nms_iou_threshold: float = unit_interval(0.3, "Detections overlapping more than this IoU are merged into one face.")
    max_faces: int = setting(6, "At most this many faces (the highest scoring) are processed per image.", low=1,
                             high=64)
    min_face_size_px: float = setting(20.0, "Faces whose box is smaller than this many pixels (full-resolution "
                                      "image) are ignored.", low=0.0, high=4096.0, live=True)
    search_period: int = setting(10, "Video: while some faces are followed and fewer than max_faces, the detector "
                                 "searches the whole image for new faces every this many frames (every frame while "
                                 "none is followed, and at once when a followed face is lost).", low=1, high=1000,
                                 live=True)
    tiles: int = setting(2, "Small faces: the image is also searched in tiles x tiles zoomed tiles with the "
                         "full-range detector (still images and no face followed: all at once); 0 turns this off.",
                         low=0, high=6)
    tile_period: int = setting(10, "Video, while some faces are followed and fewer than max_faces: frames between two "
                               "tile searches (one tile each, round robin).", low=1, high=1000, live=True)
    lost_search_frames: int = setting(45, "Video: frames during which the surroundings of a lost face are searched "
                                      "(while fewer faces are seen than before it was lost); 0: never.", low=0,
                                      high=10000, live=True)


@dataclass(frozen=True)
class LandmarksConfig(Settings):
    presence_threshold: float = unit_interval(0.5, "Minimum face-mesh presence score in [0, 1]; below it the crop "
                                              "is taken not to hold a face.")


# tracking.id_prefix's default: the node derives the prefix from its name (ids_scope); elsewhere none.
AUTO_ID_PREFIX = "auto"


def ids_scope(fully_qualified_name: str) -> str:
    """The id prefix `auto` stands for in a node: its namespace and name as one token, without a final
    'headpose_node' ('/head_camera/headpose_node' -> 'head_camera_', '/headpose_node' -> '')."""
    tokens = [t for t in fully_qualified_name.split("/") if t]
    if len(tokens) > 0 and tokens[-1] == "headpose_node":
        tokens = tokens[:-1]
    return "".join(t + "_" for t in tokens)


def for_node(config: "EngineConfig", fully_qualified_name: str) -> "EngineConfig":
    """`config` as the node of that name runs it: a tracking.id_prefix of `auto` becomes ids_scope(name)."""
    if config.tracking.id_prefix != AUTO_ID_PREFIX:
        return config
    return with_values(config, {"tracking.id_prefix": ids_scope(fully_qualified_name)})


@dataclass(frozen=True)
class TrackingConfig(Settings):
    min_hits: int = setting(3, "Detections a new face needs before it is published.", low=1, high=1000, live=True)
    max_misses: int = setting(5, "Consecutive frames a face may go undetected before its track (and id) is dropped.",
                              low=0, high=10000, live=True)
    iou_threshold: float = unit_interval(0.3, "Minimum box overlap (IoU) for a detection to continue a track.")
    reacquire_frames: int = setting(45, "Frames after a track ended during which a new face found near its last box "
                                    "takes its id back, published at once (a face that turned to a profile or was "
                                    "hidden for a moment keeps its id); 0: never.", low=0, high=100000, live=True)
    max_frame_gap_s: float = setting(2.0, "Video: a frame stamped more than this many seconds after the previous one "
                                     "resets every track and what each face attends, as a stamp going backwards "
                                     "does (a paused bag, a stalled camera: speeds, dwell times and ids from before "
                                     "the gap would be wrong).", low=0.0, high=3600.0, low_open=True, live=True)
    id_style: str = setting("random", "Track ids: random (5 letters, as REP-155 suggests) or sequential (0001, "
                            "0002, ...).", choices=ID_STYLES)
    id_prefix: str = setting(AUTO_ID_PREFIX, "Prepended to every track id, so to face_<id> and gaze_<id>. auto: "
                             "from the node's namespace and name ('/head_camera/headpose_node' gives 'head_camera_', "
                             "'/headpose_node' nothing), so that nodes on several cameras never share a TF frame; "
                             "letters, digits and '_' otherwise ('' for plain REP-155 ids).")
    static_image_mode: bool = setting(False, "Treat images as unrelated stills: detect every face in every image and "
                                      "all its tiles, follow nothing (the CLI's predict and eval). Off: a video, "
                                      "faces followed from their landmarks, the detector a search for new ones.")

    def joint_problems(self) -> list[str]:
        if self.id_prefix != AUTO_ID_PREFIX and not re.fullmatch(r"[A-Za-z0-9_]*", self.id_prefix):
            return [f"tracking.id_prefix {self.id_prefix!r}: only letters, digits and '_' (it becomes part of TF "
                    "frame and topic names)"]
        return []

    @property
    def ids_prefix(self) -> str:
        """The prefix in force outside a node (where `auto` has no name to come from: none)."""
        return "" if self.id_prefix == AUTO_ID_PREFIX else self.id_prefix


@dataclass(frozen=True)
class SmoothingConfig(Settings):
    enabled: bool = setting(True, "Smooth each track's pose over time with One-Euro filters.", live=True)
    position_min_cutoff: float = setting(1.0, "Position filter cutoff at rest, Hz (lower is smoother, more lag).",
                                         low=0.0, high=1000.0, low_open=True, live=True)
    position_beta: float = setting(2.0, "Position filter speed gain, per m/s (higher follows motion faster).",
                                   low=0.0, high=1000.0, live=True)
    rotation_min_cutoff: float = setting(1.0, "Orientation filter cutoff at rest, Hz.", low=0.0, high=1000.0,
                                         low_open=True, live=True)
    rotation_beta: float = setting(2.0, "Orientation filter speed gain, per unit of quaternion rate (about "
                                   "rad/s / 2).", low=0.0, high=1000.0, live=True)


@dataclass(frozen=True)
class PnPConfig(Settings):
    outlier_threshold: float = setting(0.05, "A landmark whose reprojection error exceeds this fraction of the "
                                       "face's size is an outlier.", low=0.0, high=1.0, low_open=True, live=True)
    ransac_iterations: int = setting(50, "RANSAC rounds for a face with no previous pose.", low=1, high=10000,
                                     live=True)
    max_facing_angle_deg: float = setting(100.0, "Reject poses whose face points further than this from the "
                                          "camera (degrees).", low=0.0, high=180.0, low_open=True, live=True)


@dataclass(frozen=True)
class InferenceConfig(Settings):
    engine: str = setting("auto", "Runtime of every network: auto (TensorRT when tensorrt and an NVIDIA GPU are "
                          "present, else ONNX Runtime), onnxruntime or tensorrt.", choices=ENGINES)
    fp16: bool = setting(True, "TensorRT only: build FP16 engines where the GPU supports them.")
    engine_cache_dir: str = setting("", "TensorRT only: where built engines are cached; empty uses "
                                    "<asset cache>/tensorrt.")


@dataclass(frozen=True)
class HopenetConfig(Settings):
    network: str = setting("whenet", "Network of the hopenet and fusion backends: whenet (built in, converted at "
                           "setup) or hopenet (the authors' weights, see model_file).", choices=NETWORKS)
    model_file: str = setting("", "ONNX file of the network; empty uses the built-in WHENet. For hopenet: the file "
                              "`headpose-ros export-hopenet` wrote.")
    face_width_m: float = setting(0.155, "Width (m) a detector box spans at the face's depth: the prior that turns "
                                  "box size into distance.", low=0.0, high=1.0, low_open=True)
    sellion_offset: float = setting(-0.19, "Vertical offset of the sellion from the box centre, as a fraction of "
                                    "the box height (negative is up).", low=-1.0, high=1.0)
    depth_rel_sigma: float = setting(0.10, "Relative standard deviation of the box-size distance, reported in the "
                                     "covariance.", low=0.0, high=10.0, low_open=True)
    keyframe_interval: int = setting(6, "Video: the network runs on a followed face at least every this many "
                                     "frames, and when its gaze turned 10 degrees out of the image plane since; in "
                                     "between, its last rotation is carried forward by the change of the face's "
                                     "landmark fit (1: every frame; faces without landmarks or turned beyond 45 "
                                     "degrees: every frame).",
                                     low=1, high=30, live=True)
    mirror: str = setting("never", "Also run the network on each face's mirror image and average the two readings "
                          "(its yaw and roll negated): cancels the network's left-right bias and part of its noise "
                          "(AFLW2000-3D: hopenet 3.66 -> 3.47 deg, fusion 3.35 -> 3.24), for twice the network's "
                          "time per face. never, still (in still images only: tracking.static_image_mode) or "
                          "always.", choices=MIRROR_MODES, live=True)


@dataclass(frozen=True)
class FusionConfig(Settings):
    max_landmark_yaw_deg: float = setting(90.0, "Up to this |yaw| (by the network), landmark PnP's rotation is fused "
                                          "with the network's, each weighted by its measured uncertainty at that "
                                          "yaw; beyond it the network's rotation is used alone. The position is "
                                          "fitted to the landmarks either way.", low=0.0, high=180.0, live=True)


@dataclass(frozen=True)
class TargetConfig(Settings):
    """One further attention target, declared as attention.targets.<name>.* (name from attention.target_names)."""

    name: str = setting("", "The target's name, as attention messages report it.")
    frame: str = setting("", "TF frame of the target; empty: the camera's optical frame.")
    offset: tuple = setting((0.0, 0.0, 0.0), "Position (m) of the target in its frame.")
    cone_half_angle_deg: float = setting(0.0, "The target's own cone half-angle (deg); 0: "
                                         "attention.cone_half_angle_deg.", low=0.0, high=90.0, high_open=True)

    def joint_problems(self) -> list[str]:
        if len(self.offset) != 3 or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in self.offset):
            return [f"target '{self.name}': offset must be three finite numbers [x, y, z] (metres)"]
        return []


# Names of the parameters that describe one target, below attention.targets.<name>.
TARGET_PARAMETER_KEYS = ("frame", "offset", "cone_half_angle_deg")


@dataclass(frozen=True)
class AttentionConfig(Settings):
    """Who looks at what (core.attention): the cone, range and hysteresis, and where the targets are."""

    enabled: bool = setting(True, "Work out who looks at what (publishes ~/attention and ~/attention_events).")
    cone_half_angle_deg: float = setting(15.0, "A target within this angle (degrees) of a face's gaze ray is in "
                                         "view (a target may set its own).", low=0.0, high=90.0, low_open=True,
                                         high_open=True, live=True)
    max_distance_m: float = setting(4.0, "Targets farther than this (metres) from the face are never attended.",
                                    low=0.0, high=1000.0, low_open=True, live=True)
    min_dwell_s: float = setting(0.2, "Seconds a new target must stay the best one in view before it is attended.",
                                 low=0.0, high=3600.0, live=True)
    release_s: float = setting(0.3, "Seconds the attended target may stay outside its widened cone before it is "
                               "released.", low=0.0, high=3600.0, live=True)
    exit_cone_factor: float = setting(1.3, "The attended target is kept while within this many times its cone "
                                      "(hysteresis, >= 1).", low=1.0, high=10.0, live=True)
    faces_as_targets: bool = setting(True, "Other tracked faces are targets too (\"person A looks at person B\").",
                                     live=True)
    robot_frame: str = setting("", "TF frame of the robot as an attention target; empty: the camera's optical frame.")
    robot_offset: tuple = setting((0.0, 0.0, 0.0), "Position (m) of the robot target in attention.robot_frame.")
    mutual_gaze: bool = setting(False, "Report mutual gaze: needs the robot's own gaze "
                                "(attention.robot_gaze_frame).")
    robot_gaze_frame: str = setting("", "Frame whose axis attention.robot_gaze_axis is where the robot looks; "
                                    "empty: the camera's optical frame.")
    robot_gaze_axis: str = setting("z", "Looking axis of attention.robot_gaze_frame: z for optical frames, x for "
                                   "body frames (REP-103).", choices=GAZE_AXES)
    target_names: tuple = setting((), "Names of further targets; each is described by "
                                  "attention.targets.<name>.frame, .offset and .cone_half_angle_deg.")
    # The targets named by target_names (not a parameter of its own: the node reads them from
    # attention.targets.<name>.*, the CLI from the same keys in a YAML file).
    targets: tuple[TargetConfig, ...] = ()

    @property
    def robot(self) -> TargetConfig:
        return TargetConfig(ROBOT, self.robot_frame, tuple(self.robot_offset))

    def joint_problems(self) -> list[str]:
        found = [p for t in (self.robot, *self.targets) for p in t.problems()]
        names = [ROBOT, *(t.name for t in self.targets)]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            found.append(f"target names must be unique (and not '{ROBOT}'): {', '.join(duplicates)}")
        missing = sorted(set(self.target_names) - {t.name for t in self.targets})
        if missing:
            found.append(f"attention.target_names lists {', '.join(missing)} without a description "
                         "(attention.targets.<name>.frame, .offset)")
        return found


@dataclass(frozen=True)
class EngineConfig(Settings):
    backend: str = setting("landmarks", "Estimation method: landmarks (face mesh + solvePnP with K and D), hopenet "
                           "(a Hopenet-family network; distance from the box size) or fusion (landmark PnP, with the "
                           "network's rotation where landmarks fail).", choices=BACKENDS)
    num_threads: int = setting(2, "CPU threads each network may use (ONNX Runtime intra-op threads).", low=0,
                               high=256, note="0 lets ONNX Runtime choose")
    max_image_side_px: int = setting(1920, "Images whose longer side exceeds this are shrunk to it (area averaging) "
                                     "before processing; boxes are still reported in full-resolution pixels and "
                                     "poses in metres. 0 never shrinks.", low=0, high=65536, live=True,
                                     note="0: never shrink")
    image_rotation: int = setting(0, "Degrees clockwise (as seen on screen) that turn the camera's images upright: "
                                  "90 or 270 for a camera mounted sideways, 180 upside down. The faces are found "
                                  "and measured in the turned image; poses are still reported in the camera's "
                                  "optical frame and boxes in the image's own pixels.", low=0, high=270,
                                  choices=IMAGE_ROTATIONS)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    detection: DetectionConfig = field(default_factory=DetectionConfig)
    landmarks: LandmarksConfig = field(default_factory=LandmarksConfig)
    pnp: PnPConfig = field(default_factory=PnPConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    smoothing: SmoothingConfig = field(default_factory=SmoothingConfig)
    hopenet: HopenetConfig = field(default_factory=HopenetConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    attention: AttentionConfig = field(default_factory=AttentionConfig)

    def joint_problems(self) -> list[str]:
        if self.hopenet.network == "hopenet" and not self.hopenet.model_file and self.backend != "landmarks":
            return ["hopenet.network is hopenet but hopenet.model_file is empty: export the authors' weights "
                    "with `headpose-ros export-hopenet hopenet_robust_alpha1.pkl -o hopenet.onnx` and set "
                    "hopenet.model_file to that file"]
        return []


def _walk(config: Any, prefix: str) -> Iterator[tuple[str, Any, Setting]]:
    """(dotted name, value, definition) of every setting below `config`, depth first, in field order."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        spec = f.metadata.get("setting")
        if spec is not None:
            yield prefix + f.name, value, spec
        elif isinstance(value, Settings):
            yield from _walk(value, f"{prefix}{f.name}.")


def _kind(default: Any) -> type:
    for kind in (bool, int, float, str, tuple):
        if isinstance(default, kind):
            return kind
    raise TypeError(f"unsupported setting default {default!r}")


def leaves(config: Any, prefix: str = "") -> Iterator[tuple[str, Any, Setting]]:
    """Every setting as (dotted name, value, its definition), depth first."""
    yield from _walk(config, prefix)


def definitions(config_type: type = None) -> dict[str, Setting]:
    """Dotted name -> definition of every setting of a settings tree (default: EngineConfig)."""
    return {name: spec for name, _, spec in leaves((config_type or EngineConfig)())}


def get_path(config: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        config = getattr(config, part)
    return config


def with_values(config: Any, values: dict[str, Any]) -> Any:
    """A copy of `config` with dotted-name settings replaced; unknown names raise KeyError.

    Values are taken as given, except that lists become tuples and an integer
    given for a float setting becomes a float; problems() says what is wrong.
    """
    groups: dict[str, dict[str, Any]] = {}
    direct: dict[str, Any] = {}
    names = {f.name for f in dataclasses.fields(config)}
    for dotted, value in values.items():
        head, _, rest = dotted.partition(".")
        if head not in names:
            raise KeyError(dotted)
        if rest:
            groups.setdefault(head, {})[rest] = value
        else:
            current = getattr(config, head)
            if isinstance(value, list):
                value = tuple(value)
            elif isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            direct[head] = value
    for head, sub in groups.items():
        direct[head] = with_values(getattr(config, head), sub)
    return dataclasses.replace(config, **direct)


# Settings a running engine can take (HeadPoseEngine.apply): thresholds, tracking,
# smoothing and attention. The others choose models, runtimes and frames, and need a restart.
LIVE_SETTINGS = frozenset(name for name, spec in definitions().items() if spec.live)


# Independent still images (the CLI's predict and eval): every detected face is
# reported at once, nothing is smoothed across images, ids are 0001, 0002, ...,
# and each face attends the best target in view at once (no dwell across images).
STILL_IMAGE_VALUES = {"tracking.min_hits": 1, "tracking.id_style": "sequential", "tracking.static_image_mode": True,
                      "smoothing.enabled": False, "attention.min_dwell_s": 0.0}


def still_image_config(values: dict[str, Any] | None = None) -> EngineConfig:
    """EngineConfig for unrelated images, with dotted-name `values` on top (see with_values)."""
    return with_values(EngineConfig(), {**STILL_IMAGE_VALUES, **(values or {})})
