"""The perception pipeline: detect -> track -> estimate -> smooth -> attend, one camera image at a time.

Plain Python: the node, the CLI and the benchmark all drive this class. Each
stage is its own module; the values between them are in core.types.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from .attention import AttentionScene, AttentionTracker, place_scene
from .backends import FusionBackend, LandmarkPnPBackend, NetworkBackend, PoseBackend
from .camera import CameraModel
from .config import LIVE_SETTINGS, EngineConfig, get_path, leaves
from .detection import FaceDetector
from .face_model import load_face_model
from .finding import FaceFinder
from .guard import measurement_problem, smoothed_problem
from .headpose_net import BoxDistancePrior, HeadPoseNetEstimator
from .inference import Runtime, create_runtime
from .landmarks import FaceMesh
from .models import DETECTORS, FACE_MESH, HEADPOSE_NETWORKS, shrink
from .track_state import TrackState, track_state_factory
from .tracking import FaceTracker, ids_of_style
from .types import FrameResult, HeadPose, Rejection
from .upright import Upright


class ConfigError(ValueError):
    """Settings the engine cannot run with; the message lists every problem."""


class ModelFiles(Protocol):
    """Where the engine finds its networks (headpose_ros.assets.ModelStore is the package's)."""

    def onnx(self, asset: str) -> Path:
        """The ONNX file of a model named in core.models (its `asset`), checked as far as the store can."""
        ...

    @property
    def tensorrt_cache(self) -> Path:
        """The folder of cached TensorRT engines (used when inference.engine_cache_dir is empty)."""
        ...


class HeadPoseEngine:
    """Head poses of every face in a stream of images from one camera.

    config: the settings (core.config); ConfigError lists what is wrong.
    models: where the model files are.
    log: one-line messages (runtime choice, TensorRT builds).

    process() must be called with images in stamp order; a stamp that goes
    backwards (a replayed bag, a restarted clock), or forward by more than
    tracking.max_frame_gap_s (a paused bag, a stalled camera), resets every
    track and what each face attends, and FrameResult.reset says why.
    """

    def __init__(self, config: EngineConfig, models: ModelFiles, log: Callable[[str], None] = print):
        problems = config.problems()
        if problems:
            raise ConfigError("; ".join(problems))
        self.config = config
        self._models = models
        self._log = log
        det_model = DETECTORS[config.detection.model]
        self.detector = FaceDetector(det_model, self._runtime(models.onnx(det_model.asset), max_batch=1),
                                     config.detection)
        # The face mesh: for the backends that fit landmarks, and for following faces in video.
        # And for checking what the zoomed searches find (tiles).
        needs_landmarks = config.backend in ("landmarks", "fusion") or not config.tracking.static_image_mode
        needs_mesh = needs_landmarks or config.detection.tiles > 0
        self.mesh = FaceMesh(FACE_MESH, self._runtime(models.onnx(FACE_MESH.asset), config.detection.max_faces)) \
            if needs_mesh else None
        self.backend: PoseBackend = self._make_backend(config)
        self.finder = FaceFinder(self.detector, self._zoom_detector(config), self.mesh, config, needs_landmarks)
        self.tracker: FaceTracker[TrackState] = FaceTracker(
            config.tracking, track_state_factory(config.smoothing), ids_of_style(config.tracking.id_style, config.tracking.ids_prefix))
        self.attention = AttentionTracker(config.attention) if config.attention.enabled else None
        # What a face of human size looks like through the camera: the last check on every pose (core.guard).
        h = config.hopenet
        self._distance_prior = BoxDistancePrior(h.face_width_m, h.sellion_offset, h.depth_rel_sigma)
        self._last_stamp: float | None = None
        self._last_size: tuple[int, int] | None = None  # (width, height) of the previous image
        self._fitted_camera: tuple | None = None  # (camera, size, fitted camera) of the previous image
        self._turned: tuple | None = None  # (camera, size, Upright, fitted camera, turned camera): image_rotation

    def _runtime(self, path: Path, max_batch: int) -> Runtime:
        """The runtime for one network, as the inference settings ask (see core.inference.create_runtime)."""
        i = self.config.inference
        return create_runtime(path, kind=i.engine, threads=self.config.num_threads, max_batch=max_batch,
                              fp16=i.fp16, cache_dir=i.engine_cache_dir or self._models.tensorrt_cache, log=self._log)

    def _zoom_detector(self, config: EngineConfig) -> FaceDetector | None:
        """The detector of the zoomed searches: tiles (small faces), around lost faces (video).

        The full-range model: on a quarter of a 640x480 image it finds faces of
        16 px and more, where the short-range one needs a ninth of the image for 28 px.
        """
        if config.detection.tiles <= 0 and (config.tracking.static_image_mode or self.mesh is None):
            return None
        model = DETECTORS["full_range"]
        if self.detector.model is model:
            return self.detector
        return FaceDetector(model, self._runtime(self._models.onnx(model.asset), max_batch=1), config.detection)

    def _make_backend(self, config: EngineConfig) -> PoseBackend:
        faces = config.detection.max_faces
        landmark_pnp = network = None
        if self.mesh is not None:  # fitted by landmarks and fusion; carries the network between keyframes in video
            landmark_pnp = LandmarkPnPBackend(self.mesh, load_face_model(), config)
        if config.backend in ("hopenet", "fusion"):
            h = config.hopenet
            model = HEADPOSE_NETWORKS[h.network]
            path = Path(h.model_file).expanduser() if h.model_file else self._models.onnx(model.asset)
            prior = BoxDistancePrior(h.face_width_m, h.sellion_offset, h.depth_rel_sigma)
            network = NetworkBackend(HeadPoseNetEstimator(model, self._runtime(path, faces)), prior, config,
                                     landmark_pnp if config.backend == "hopenet" else None)
        if config.backend == "fusion":
            return FusionBackend(landmark_pnp, network, config)
        return network if config.backend == "hopenet" else landmark_pnp

    def apply(self, config: EngineConfig) -> None:
        """Switch to `config` while running; only LIVE_SETTINGS may differ from the current one.

        Thresholds apply from the next image; tracking and smoothing settings to
        tracks that start after the change. Raises ConfigError naming what
        cannot change without a restart, or what is wrong with the values.
        """
        problems = config.problems()
        frozen = [name for name, value, _ in leaves(config)
                  if name not in LIVE_SETTINGS and value != get_path(self.config, name)]
        if config.attention.targets != self.config.attention.targets:
            frozen.append("attention.targets")
        if frozen:
            problems.append(f"{', '.join(frozen)} only change{'s' if len(frozen) == 1 else ''} with a restart "
                            "(they choose models and runtimes)")
        if problems:
            raise ConfigError("; ".join(problems))
        self.finder.apply(config)
        self.backend.apply(config)
        self.tracker.apply(config.tracking)
        self.tracker.make_state = track_state_factory(config.smoothing)
        if self.attention is not None:
            self.attention.apply(config.attention)
        self.config = config

    def describe(self) -> dict[str, str]:
        """Models and runtimes in use, for logs and diagnostics."""
        out = {"backend": self.backend.method, "detector": self.detector.describe()}
        if self.finder.zoom_detector is not None:
            out["zoom detector"] = self.finder.zoom_detector.describe()
        if self.mesh is not None:
            out["landmarks"] = self.mesh.describe()
        return {**out, **self.backend.describe()}

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

    def _fitted(self, camera: CameraModel, size: tuple[int, int]) -> CameraModel:
        """`camera` checked and fitted to an image of `size`; the same camera object again costs nothing."""
        cached = self._fitted_camera
        if cached is None or cached[0] is not camera or cached[1] != size:
            # Checked as given, then again at the image's size (field of view, principal point).
            self._fitted_camera = (camera, size, camera.validated().fitted_to(*size).validated())
        return self._fitted_camera[2]

    def reset(self) -> list[str]:
        """Forget every track and what each face attended; returns the ids that ended."""
        ended = [t.id for t in self.tracker.reset()]
        self.finder.reset()
        if self.attention is not None:
            self.attention.reset()
        self._last_stamp = None
        self._last_size = None
        return ended

    def process(self, image_rgb: np.ndarray, camera: CameraModel, stamp: float,
                scene: AttentionScene | None = None, boxes: np.ndarray | None = None) -> FrameResult:
        """Head poses, and what each face attends, in one image.

        With image_rotation, the image is turned upright first and the results
        turned back (core.upright): the arguments and the result are always in
        the camera's own frame and pixels.

        image_rgb: (h, w, 3) uint8, RGB.
        camera: the intrinsics of this image; when its size differs from the
            image's by a pure resize (same aspect ratio) it is scaled to fit.
        stamp: the image's time in seconds (it drives tracking, smoothing and dwell times).
        scene: the attention targets placed in this image's camera frame (the
            node places them with TF); None places those given in the camera's
            own frame (core.attention.place_scene).
        boxes: (n, 4) x0, y0, x1, y1 full-image pixels of the faces, in the
            detector's box convention (e.g. a dataset's labelled boxes), for
            still images only (tracking.static_image_mode): the detector does
            not run, and these are the faces found (core.finding.FaceFinder.given).
        Raises CameraModelError for unusable intrinsics, ValueError for boxes in video mode.
        """
        if self.config.image_rotation == 0:
            return self._process(image_rgb, camera, stamp, scene, boxes)
        size = (image_rgb.shape[1], image_rgb.shape[0])
        cached = self._turned
        if cached is None or cached[0] is not camera or cached[1] != size:
            upright = Upright(self.config.image_rotation, *size)
            full_camera = camera.validated().fitted_to(*size).validated()
            self._turned = (camera, size, upright, full_camera, upright.camera(full_camera))
        _, _, upright, full_camera, turned_camera = self._turned
        if scene is None and self.attention is not None:
            scene = place_scene(self.config.attention, full_camera.frame_id)
        result = self._process(upright.image(image_rgb), turned_camera, stamp, upright.scene(scene),
                               None if boxes is None else upright.boxes(boxes))
        return upright.result(result, full_camera)

    def _process(self, image_rgb: np.ndarray, camera: CameraModel, stamp: float,
                 scene: AttentionScene | None, boxes: np.ndarray | None) -> FrameResult:
        """process() on an upright image."""
        if boxes is not None and not self.config.tracking.static_image_mode:
            raise ValueError("given face boxes need still images (tracking.static_image_mode)")
        timings: dict[str, float] = {}
        clock = time.perf_counter()
        size = (image_rgb.shape[1], image_rgb.shape[0])
        full_camera = self._fitted(camera, size)
        image_rgb, camera, to_full = self._within_size(image_rgb, full_camera)
        reset_reason, ended = "", []
        if self._last_stamp is not None and stamp < self._last_stamp:
            reset_reason = f"time moved backwards by {self._last_stamp - stamp:.3f} s"
        elif (self._last_stamp is not None and not self.config.tracking.static_image_mode
              and stamp - self._last_stamp > self.config.tracking.max_frame_gap_s):
            reset_reason = (f"time jumped forward by {stamp - self._last_stamp:.3f} s (more than "
                            f"tracking.max_frame_gap_s = {self.config.tracking.max_frame_gap_s:g} s)")
        elif self._last_size is not None and size != self._last_size:
            # Another stream (or a reconfigured camera): last frame's face regions mean nothing here.
            reset_reason = f"the image size changed from {self._last_size[0]}x{self._last_size[1]} to {size[0]}x{size[1]}"
        if reset_reason:
            ended = self.reset()
        self._last_stamp, self._last_size = stamp, size

        if boxes is None:
            found = self.finder.find(image_rgb, float(to_full.max()), self.tracker.tracks)
        else:
            found = self.finder.given(image_rgb, np.asarray(boxes, np.float64).reshape(-1, 4) / np.tile(to_full, 2))
        faces = found.faces
        # The finder reports its own sub-stages; the rest of the lap (shrinking, checks) counts as detection.
        timings.update(self.finder.timings)
        timings["detect"] += max(0.0, _lap(clock) - sum(self.finder.timings.values()))
        clock = time.perf_counter()

        update = self.tracker.update(faces.boxes, found.known)
        self.finder.remember(update.tracks, found)
        ended += [t.id for t in update.ended]
        estimates = self.backend.estimate(image_rgb, faces, camera, [t.state for t in update.tracks])
        # The backend reports its own sub-stages; what remains of the lap is tracking.
        timings["track"] = max(0.0, _lap(clock) - sum(self.backend.timings.values()))
        timings.update(self.backend.timings)
        clock = time.perf_counter()

        heads, rejected = [], []
        for i, (track, est) in enumerate(zip(update.tracks, estimates)):
            m = est.measurement
            problem = (est.status, est.detail) if m is None else \
                measurement_problem(m, faces.boxes[i], camera, self._distance_prior)
            if problem is None:
                R, t = track.state.measured(m, stamp, self.config.smoothing.enabled)
                problem = smoothed_problem(R, t)
            if problem is not None:
                rejected.append(Rejection(track.id, *problem))
                continue
            if track.confirmed:
                landmarks = None if est.landmarks_px is None else est.landmarks_px * to_full
                heads.append(HeadPose(track.id, R, t, m.covariance, faces.boxes[i] * np.tile(to_full, 2),
                                      est.confidence, self.backend.method, landmarks))
        timings["smooth"] = _lap(clock)
        result = FrameResult(stamp, full_camera, heads, len(faces), rejected, ended, reset_reason,
                             searched=found.searched)

        if self.attention is not None:
            clock = time.perf_counter()
            self.attention.forget(ended)
            if scene is None:
                scene = place_scene(self.config.attention, full_camera.frame_id)
            result.attention, result.events = self.attention.update(heads, scene.targets, stamp, scene.robot_gaze)
            timings["attention"] = _lap(clock)
        timings["total"] = sum(timings.values())
        result.timings_ms = timings
        return result


def _lap(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0
