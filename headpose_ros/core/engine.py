"""The perception pipeline: detect -> track -> estimate -> smooth, one camera image at a time.

Plain Python: the node, the CLI and the benchmark all drive this class.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .backends import FusionBackend, LandmarkPnPBackend, NetworkBackend, PoseBackend
from .camera import CameraModel, CameraModelError
from .config import LIVE_SETTINGS, EngineConfig, get_path, leaves
from .detection import FaceDetector
from .face_model import load_face_model
from .filtering import PoseFilter
from .headpose_net import BoxDistancePrior, HeadPoseNetEstimator
from .inference import create_runtime
from .landmarks import LandmarkEstimator
from .models import DETECTORS, FACE_MESH, HEADPOSE_NETWORKS, shrink
from .rotation import quaternion_xyzw, yaw_pitch_roll_deg
from .tracking import FaceTracker, random_ids, sequential_ids


class ConfigError(ValueError):
    """Settings the engine cannot run with; the message lists every problem."""


@dataclass
class HeadPose:
    """One published head: the face frame in the camera optical frame.

    R: (3, 3) orientation (face axes as columns, camera coordinates), smoothed.
    t: (3,) sellion position, metres, smoothed.
    covariance: (6, 6) of this frame's measurement (x, y, z, rotation about
        camera X, Y, Z), -1 on the diagonal where unknown.
    box: (4,) x0, y0, x1, y1 in full-image pixels.
    confidence: in [0, 1].
    method: the backend that measured it.
    landmarks: (k, 2) fitted image points, pixels, or None.
    """

    track_id: str
    R: np.ndarray
    t: np.ndarray
    covariance: np.ndarray
    box: np.ndarray
    confidence: float
    method: str
    landmarks: np.ndarray | None = None

    @property
    def yaw_pitch_roll_deg(self) -> np.ndarray:
        return yaw_pitch_roll_deg(self.R)

    @property
    def quaternion_xyzw(self) -> np.ndarray:
        return quaternion_xyzw(self.R)


@dataclass
class FrameResult:
    """What one image produced.

    heads: confirmed faces with a pose this frame.
    detections: faces the detector found (confirmed or not).
    rejected: (track id, reason) for faces found but not measured.
    ended: ids of tracks that ended in this frame (publishers delete their frames/markers).
    reset: why all tracks were reset before this frame ("" if they were not).
    timings_ms: time per stage.
    """

    stamp: float
    heads: list[HeadPose]
    detections: int
    rejected: list[tuple[str, str]] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)
    reset: str = ""
    timings_ms: dict[str, float] = field(default_factory=dict)


def resolve_model(asset: str, model_dir: str) -> Path:
    """The ONNX file of a model: in `model_dir` when given, else in the asset cache."""
    if model_dir:
        return Path(model_dir).expanduser() / f"{asset}.onnx"
    from .. import assets

    return assets.model_path(asset)


class HeadPoseEngine:
    """Head poses of every face in a stream of images from one camera.

    process() must be called with images in stamp order; a stamp that goes
    backwards (a replayed bag, a restarted clock) resets every track.
    """

    def __init__(self, config: EngineConfig = EngineConfig(), log=print):
        problems = config.problems()
        if problems:
            raise ConfigError("; ".join(problems))
        self.config = config
        self._log = log
        det_model = DETECTORS[config.detection.model]
        d = config.detection
        self.detector = FaceDetector(
            det_model,
            self._engine(resolve_model(det_model.asset, config.model_dir), max_batch=1),
            score_threshold=d.score_threshold,
            nms_iou_threshold=d.nms_iou_threshold,
            max_faces=d.max_faces,
            min_face_size_px=d.min_face_size_px,
        )
        self.backend: PoseBackend = self._make_backend(config)
        s = config.smoothing
        make_id = random_ids() if config.tracking.id_style == "random" else sequential_ids()
        self.tracker = FaceTracker(
            config.tracking.tracker_settings(),
            make_filter=lambda: PoseFilter(s.position(), s.rotation()),
            make_id=make_id,
        )
        self._last_stamp: float | None = None

    def _engine(self, path: Path, max_batch: int):
        """The runtime for one network, as the inference settings ask (see core.inference.create_runtime)."""
        i = self.config.inference
        return create_runtime(path, kind=i.engine, threads=self.config.num_threads, max_batch=max_batch,
                             fp16=i.fp16, cache_dir=i.engine_cache_dir or _default_tensorrt_cache(), log=self._log)

    def _make_backend(self, config: EngineConfig) -> PoseBackend:
        faces = config.detection.max_faces
        landmarks = network = None
        if config.backend in ("landmarks", "fusion"):
            mesh = LandmarkEstimator(FACE_MESH, self._engine(resolve_model(FACE_MESH.asset, config.model_dir), faces))
            landmarks = LandmarkPnPBackend(mesh, load_face_model(), config.pnp.settings(),
                                           config.landmarks.presence_threshold)
        if config.backend in ("hopenet", "fusion"):
            h = config.hopenet
            model = HEADPOSE_NETWORKS[h.network]
            path = Path(h.model_file).expanduser() if h.model_file else resolve_model(model.asset, config.model_dir)
            prior = BoxDistancePrior(h.face_width_m, h.sellion_offset, h.depth_rel_sigma)
            network = NetworkBackend(HeadPoseNetEstimator(model, self._engine(path, faces)), prior)
        if config.backend == "fusion":
            return FusionBackend(landmarks, network, config.fusion.max_landmark_yaw_deg)
        return landmarks or network

    def apply_settings(self, config: EngineConfig) -> None:
        """Switch to `config` while running; only LIVE_SETTINGS may differ from the current one.

        Thresholds apply from the next image; tracking and smoothing settings to
        tracks that start after the change. Raises ConfigError naming what
        cannot change without a restart, or what is wrong with the values.
        """
        problems = config.problems()
        frozen = [name for name, value, _ in leaves(config)
                  if name not in LIVE_SETTINGS and value != get_path(self.config, name)]
        if frozen:
            problems.append(f"{', '.join(frozen)} only change{'s' if len(frozen) == 1 else ''} with a restart "
                            "(they choose models and runtimes)")
        if problems:
            raise ConfigError("; ".join(problems))
        d = config.detection
        self.detector.score_threshold, self.detector.nms_iou_threshold = d.score_threshold, d.nms_iou_threshold
        self.detector.min_face_size_px = d.min_face_size_px
        for part in (self.backend, getattr(self.backend, "landmarks", None)):
            if isinstance(part, LandmarkPnPBackend):
                part.presence_threshold, part.pnp = config.landmarks.presence_threshold, config.pnp.settings()
        if isinstance(self.backend, FusionBackend):
            self.backend.max_landmark_yaw_deg = config.fusion.max_landmark_yaw_deg
        s = config.smoothing
        self.tracker.settings = config.tracking.tracker_settings()
        self.tracker.make_filter = lambda: PoseFilter(s.position(), s.rotation())
        self.config = config

    def describe(self) -> dict[str, str]:
        """Models and runtimes in use, for logs and diagnostics."""
        out = {"backend": self.backend.method,
               "detector": f"{self.detector.model.asset} ({self.detector.engine.name})"}
        for part in (self.backend, getattr(self.backend, "landmarks", None), getattr(self.backend, "network", None)):
            if isinstance(part, LandmarkPnPBackend):
                out["landmarks"] = f"{FACE_MESH.asset} ({part.landmarks.engine.name})"
            elif isinstance(part, NetworkBackend):
                est = part.network
                out["network"] = f"{est.model.asset} ({est.engine.name})"
        return out

    def _within_size(self, image_rgb: np.ndarray, camera: CameraModel):
        """The image shrunk to max_image_side_px (if larger), its camera, and the (2,) x, y scale back to full size."""
        limit = self.config.max_image_side_px
        h, w = image_rgb.shape[:2]
        if limit <= 0 or max(h, w) <= limit:
            return image_rgb, camera, np.ones(2)
        s = limit / max(h, w)
        small_w, small_h = max(1, round(w * s)), max(1, round(h * s))
        small = shrink(image_rgb, small_w, small_h)
        return small, camera.scaled_to(small_w, small_h), np.array([w / small_w, h / small_h])

    def reset(self) -> list[str]:
        """Forget every track; returns the ids that ended."""
        ended = [t.id for t in self.tracker.tracks]
        self.tracker.reset()
        self._last_stamp = None
        return ended

    def process(self, image_rgb: np.ndarray, camera: CameraModel, stamp: float) -> FrameResult:
        """Head poses in one image.

        image_rgb: (h, w, 3) uint8, RGB.
        camera: the intrinsics of this image; when its size differs from the
            image's by a pure resize (same aspect ratio) it is scaled to fit.
        stamp: the image's time in seconds (it drives tracking and smoothing).
        Raises CameraModelError for unusable intrinsics.
        """
        timings: dict[str, float] = {}
        clock = time.perf_counter()
        camera = fit_camera_to_image(camera.validated(), image_rgb.shape[1], image_rgb.shape[0])
        image_rgb, camera, to_full = self._within_size(image_rgb, camera)
        reset_reason, ended = "", []
        if self._last_stamp is not None and stamp < self._last_stamp:
            reset_reason = f"time moved backwards by {self._last_stamp - stamp:.3f} s"
            ended = self.reset()
        self._last_stamp = stamp

        faces = self.detector.detect(image_rgb, self.config.detection.min_face_size_px / float(to_full.max()))
        timings["detect"] = _lap(clock)
        clock = time.perf_counter()

        tracks, dropped = self.tracker.update(faces.boxes)
        ended += [t.id for t in dropped]
        estimates = self.backend.estimate(image_rgb, faces, camera, [t.last_pose for t in tracks])
        # The backend reports its own sub-stages; what remains of the lap is tracking.
        timings["track"] = max(0.0, _lap(clock) - sum(self.backend.timings.values()))
        timings.update(self.backend.timings)
        clock = time.perf_counter()

        heads, rejected = [], []
        min_hits = self.config.tracking.min_hits
        for i, (track, est) in enumerate(zip(tracks, estimates)):
            m = est.measurement
            if m is None:
                rejected.append((track.id, est.reason))
                continue
            track.last_pose = m
            if self.config.smoothing.enabled:
                R, t = track.filter(m.R, m.t, stamp)
            else:
                R, t = m.R, m.t
            if track.confirmed(min_hits):
                landmarks = None if est.landmarks is None else est.landmarks * to_full
                heads.append(HeadPose(track.id, R, t, m.covariance, faces.boxes[i] * np.tile(to_full, 2),
                                      est.confidence, self.backend.method, landmarks))
        timings["smooth"] = _lap(clock)
        timings["total"] = sum(timings.values())
        return FrameResult(stamp, heads, len(faces), rejected, ended, reset_reason, timings)


def fit_camera_to_image(camera: CameraModel, width: int, height: int) -> CameraModel:
    """The camera model for an image of width x height pixels.

    Unknown size (0) is taken as the image's. A pure resize (same aspect
    ratio within half a pixel) scales K; anything else raises CameraModelError,
    because the intrinsics would not describe this image.
    """
    if camera.width <= 0 or camera.height <= 0:
        return CameraModel(camera.K, camera.D, width, height, camera.frame_id, camera.distortion_model)
    if (camera.width, camera.height) == (width, height):
        return camera
    if abs(camera.width * height / camera.height - width) <= 0.5 and abs(camera.height * width / camera.width - height) <= 0.5:
        return camera.scaled_to(width, height)
    raise CameraModelError(
        f"camera info is for {camera.width}x{camera.height} images but the image is {width}x{height} "
        "(not a pure resize): calibrate for this resolution or publish matching CameraInfo"
    )


def _default_tensorrt_cache() -> Path:
    from .. import assets

    return assets.cache_dir() / "tensorrt"


def _lap(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0
