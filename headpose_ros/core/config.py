"""The engine's settings, in one dataclass tree mirrored by config/headpose.yaml.

The node declares one ROS parameter per leaf, named by its dotted path
(``detection.score_threshold``), with the docstring line as its description.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterator

from .attention import AttentionSettings
from .filtering import OneEuroSettings
from .pnp import PnPSettings
from .tracking import TrackerSettings

BACKENDS = ("landmarks", "hopenet", "fusion")
DETECTOR_MODELS = ("full_range", "short_range")
ID_STYLES = ("random", "sequential")
ENGINES = ("auto", "onnxruntime", "tensorrt")
NETWORKS = ("whenet", "hopenet")


@dataclass(frozen=True)
class DetectionConfig:
    model: str = "full_range"
    """BlazeFace model: full_range (faces up to about 5 m) or short_range (up to about 2 m, faster)."""
    score_threshold: float = 0.5
    """Minimum face detection score in [0, 1]."""
    nms_iou_threshold: float = 0.3
    """Detections overlapping more than this IoU are merged into one face."""
    max_faces: int = 6
    """At most this many faces (the highest scoring) are processed per image."""
    min_face_size_px: float = 20.0
    """Faces whose box is smaller than this many pixels (full-resolution image) are ignored."""


@dataclass(frozen=True)
class LandmarksConfig:
    presence_threshold: float = 0.5
    """Minimum face-mesh presence score in [0, 1]; below it the crop is taken not to hold a face."""


@dataclass(frozen=True)
class TrackingConfig:
    min_hits: int = 3
    """Detections a new face needs before it is published."""
    max_misses: int = 5
    """Consecutive frames a face may go undetected before its track (and id) is dropped."""
    iou_threshold: float = 0.3
    """Minimum box overlap (IoU) for a detection to continue a track."""
    id_style: str = "random"
    """Track ids: random (5 letters, as REP-155 suggests) or sequential (0001, 0002, ...)."""

    def tracker_settings(self) -> TrackerSettings:
        return TrackerSettings(self.min_hits, self.max_misses, self.iou_threshold)


@dataclass(frozen=True)
class SmoothingConfig:
    enabled: bool = True
    """Smooth each track's pose over time with One-Euro filters."""
    position_min_cutoff: float = 1.0
    """Position filter cutoff at rest, Hz (lower is smoother, more lag)."""
    position_beta: float = 2.0
    """Position filter speed gain, per m/s (higher follows motion faster)."""
    rotation_min_cutoff: float = 1.0
    """Orientation filter cutoff at rest, Hz."""
    rotation_beta: float = 2.0
    """Orientation filter speed gain, per unit of quaternion rate (about rad/s / 2)."""

    def position(self) -> OneEuroSettings:
        return OneEuroSettings(self.position_min_cutoff, self.position_beta)

    def rotation(self) -> OneEuroSettings:
        return OneEuroSettings(self.rotation_min_cutoff, self.rotation_beta)


@dataclass(frozen=True)
class PnPConfig:
    outlier_threshold: float = 0.05
    """A landmark whose reprojection error exceeds this fraction of the face's size is an outlier."""
    ransac_iterations: int = 50
    """RANSAC rounds for a face with no previous pose."""
    max_facing_angle_deg: float = 100.0
    """Reject poses whose face points further than this from the camera (degrees)."""

    def settings(self) -> PnPSettings:
        return PnPSettings(self.outlier_threshold, self.ransac_iterations, self.max_facing_angle_deg)


@dataclass(frozen=True)
class InferenceConfig:
    engine: str = "auto"
    """Runtime of every network: auto (TensorRT when tensorrt and an NVIDIA GPU are present, else ONNX Runtime), onnxruntime or tensorrt."""
    fp16: bool = True
    """TensorRT only: build FP16 engines where the GPU supports them."""
    engine_cache_dir: str = ""
    """TensorRT only: where built engines are cached; empty uses <asset cache>/tensorrt."""


@dataclass(frozen=True)
class HopenetConfig:
    network: str = "whenet"
    """Network of the hopenet and fusion backends: whenet (built in, converted at setup) or hopenet (the authors' weights, see model_file)."""
    model_file: str = ""
    """ONNX file of the network; empty uses the built-in WHENet. For hopenet: the file `headpose-ros export-hopenet` wrote."""
    face_width_m: float = 0.155
    """Width (m) a detector box spans at the face's depth: the prior that turns box size into distance."""
    sellion_offset: float = -0.19
    """Vertical offset of the sellion from the box centre, as a fraction of the box height (negative is up)."""
    depth_rel_sigma: float = 0.10
    """Relative standard deviation of the box-size distance, reported in the covariance."""


@dataclass(frozen=True)
class FusionConfig:
    max_landmark_yaw_deg: float = 30.0
    """Up to this |yaw| (by the network), landmark PnP gives the pose; beyond it, the network's rotation is kept and only the position is fitted to the landmarks."""


@dataclass(frozen=True)
class EngineConfig:
    backend: str = "landmarks"
    """Estimation method: landmarks (face mesh + solvePnP with K and D), hopenet (a Hopenet-family network; distance from the box size) or fusion (landmark PnP, with the network's rotation where landmarks fail)."""
    num_threads: int = 2
    """CPU threads each network may use (ONNX Runtime intra-op threads)."""
    model_dir: str = ""
    """Directory holding the converted .onnx models; empty uses the asset cache filled by `make setup`."""
    max_image_side_px: int = 1920
    """Images whose longer side exceeds this are shrunk to it (area averaging) before processing; boxes are still reported in full-resolution pixels and poses in metres. 0 never shrinks."""
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    detection: DetectionConfig = field(default_factory=DetectionConfig)
    landmarks: LandmarksConfig = field(default_factory=LandmarksConfig)
    pnp: PnPConfig = field(default_factory=PnPConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    smoothing: SmoothingConfig = field(default_factory=SmoothingConfig)
    hopenet: HopenetConfig = field(default_factory=HopenetConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    attention: AttentionSettings = field(default_factory=AttentionSettings)

    def problems(self) -> list[str]:
        """What is wrong with these settings; empty when they are usable."""
        found = []
        if self.backend not in BACKENDS:
            found.append(f"backend '{self.backend}' is unknown (choose {', '.join(BACKENDS)})")
        if self.detection.model not in DETECTOR_MODELS:
            found.append(f"detection.model '{self.detection.model}' is unknown (choose {', '.join(DETECTOR_MODELS)})")
        if self.inference.engine not in ENGINES:
            found.append(f"inference.engine '{self.inference.engine}' is unknown (choose {', '.join(ENGINES)})")
        if self.hopenet.network not in NETWORKS:
            found.append(f"hopenet.network '{self.hopenet.network}' is unknown (choose {', '.join(NETWORKS)})")
        elif self.hopenet.network == "hopenet" and not self.hopenet.model_file and self.backend != "landmarks":
            found.append("hopenet.network is hopenet but hopenet.model_file is empty: export the authors' weights "
                         "with `headpose-ros export-hopenet hopenet_robust_alpha1.pkl -o hopenet.onnx` and set "
                         "hopenet.model_file to that file")
        if self.hopenet.face_width_m <= 0:
            found.append("hopenet.face_width_m must be > 0")
        if self.tracking.id_style not in ID_STYLES:
            found.append(f"tracking.id_style '{self.tracking.id_style}' is unknown (choose {', '.join(ID_STYLES)})")
        for name in ("detection.score_threshold", "landmarks.presence_threshold"):
            if not 0.0 <= get_path(self, name) <= 1.0:
                found.append(f"{name} must be in [0, 1]")
        if self.detection.max_faces < 1:
            found.append("detection.max_faces must be at least 1")
        if self.tracking.min_hits < 1 or self.tracking.max_misses < 0:
            found.append("tracking.min_hits must be >= 1 and tracking.max_misses >= 0")
        if self.max_image_side_px < 0:
            found.append("max_image_side_px must be >= 0 (0: never shrink)")
        if self.num_threads < 0:
            found.append("num_threads must be >= 0 (0 lets ONNX Runtime choose)")
        return found + self.attention.problems()


def leaves(config: Any, prefix: str = "") -> Iterator[tuple[str, Any, str]]:
    """Every setting as (dotted name, value, one-line description), depth first."""
    docs = _field_docs(type(config))
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        name = prefix + f.name
        if dataclasses.is_dataclass(value):
            yield from leaves(value, name + ".")
        else:
            yield name, value, docs.get(f.name, "")


def get_path(config: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        config = getattr(config, part)
    return config


def with_values(config: Any, values: dict[str, Any]) -> Any:
    """A copy of `config` with dotted-name settings replaced; unknown names raise KeyError."""
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
            direct[head] = type(current)(value) if isinstance(current, (int, float, str, bool)) else value
    for head, sub in groups.items():
        direct[head] = with_values(getattr(config, head), sub)
    return dataclasses.replace(config, **direct)


def _field_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings (the string literal under each field), read from the source."""
    import ast
    import inspect
    import textwrap

    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):
        return {}
    docs = {}
    body = tree.body[0].body
    for node, nxt in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if isinstance(nxt, ast.Expr) and isinstance(getattr(nxt, "value", None), ast.Constant):
                docs[node.target.id] = " ".join(str(nxt.value.value).split())
    return docs


# Settings a running engine can take (HeadPoseEngine.apply_settings): thresholds, tracking,
# smoothing and attention. The others choose models and runtimes, and need a restart.
LIVE_SETTINGS = frozenset({
    "max_image_side_px",
    "detection.score_threshold", "detection.nms_iou_threshold", "detection.min_face_size_px",
    "landmarks.presence_threshold",
    "pnp.outlier_threshold", "pnp.ransac_iterations", "pnp.max_facing_angle_deg",
    "tracking.min_hits", "tracking.max_misses", "tracking.iou_threshold",
    "smoothing.enabled", "smoothing.position_min_cutoff", "smoothing.position_beta",
    "smoothing.rotation_min_cutoff", "smoothing.rotation_beta",
    "fusion.max_landmark_yaw_deg",
    "attention.cone_half_angle_deg", "attention.max_distance_m", "attention.min_dwell_s", "attention.release_s",
    "attention.exit_cone_factor", "attention.faces_as_targets",
})


# Independent still images (the CLI's predict and eval): every detected face is
# reported at once, nothing is smoothed across images, ids are 0001, 0002, ...
STILL_IMAGE_VALUES = {"tracking.min_hits": 1, "tracking.id_style": "sequential", "smoothing.enabled": False}


def still_image_config(values: dict[str, Any] | None = None) -> EngineConfig:
    """EngineConfig for unrelated images, with dotted-name `values` on top (see with_values)."""
    return with_values(EngineConfig(), {**STILL_IMAGE_VALUES, **(values or {})})
