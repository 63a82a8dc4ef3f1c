"""Pose estimation backends: from detected faces to one pose measurement per face.

Every backend offers the same call, so the engine, the node and the CLI pick
one by name (the `backend` parameter) and never look inside.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from .camera import CameraModel
from .detection import FaceDetections
from .face_model import FaceModel
from .landmarks import LandmarkEstimator
from .pnp import PnPSettings, PoseMeasurement, PoseRejected, solve_head_pose


@dataclass
class Estimate:
    """A backend's answer for one face: a measurement, or the reason there is none.

    confidence: in [0, 1], the backend's belief in this face (detector score
        times the backend's own score).
    landmarks: (k, 2) image pixels of the points the backend fitted, if any.
    """

    measurement: PoseMeasurement | None
    confidence: float
    reason: str = ""
    landmarks: np.ndarray | None = None


class PoseBackend(Protocol):
    method: str  # the HeadPose.method value it reports
    timings: dict[str, float]  # milliseconds per sub-stage of the last call

    def estimate(
        self,
        image_rgb: np.ndarray,
        faces: FaceDetections,
        camera: CameraModel,
        priors: Sequence[PoseMeasurement | None],
    ) -> list[Estimate]:
        """One Estimate per face, in the order of `faces`."""
        ...


class LandmarkPnPBackend:
    """Face mesh landmarks on each face, then solvePnP against the metric face model."""

    method = "landmarks"

    def __init__(self, landmarks: LandmarkEstimator, face_model: FaceModel, pnp: PnPSettings, presence_threshold: float):
        self.landmarks = landmarks
        self.face_model = face_model
        self.pnp = pnp
        self.presence_threshold = presence_threshold
        self._fit = face_model.rigid_indices
        self._model_points = face_model.points[self._fit]
        self.timings: dict[str, float] = {}

    def estimate(self, image_rgb, faces, camera, priors):
        start = time.perf_counter()
        mesh = self.landmarks.estimate(image_rgb, faces)
        mid = time.perf_counter()
        out = []
        for i in range(len(faces)):
            confidence = float(faces.scores[i] * mesh.presence[i])
            points = mesh.points[i, :, :2]
            if mesh.presence[i] < self.presence_threshold:
                out.append(Estimate(None, confidence, f"landmark presence {mesh.presence[i]:.2f} below threshold", points))
                continue
            try:
                m = solve_head_pose(points[self._fit], self._model_points, camera, priors[i], self.pnp)
            except PoseRejected as exc:
                out.append(Estimate(None, confidence, str(exc), points))
                continue
            out.append(Estimate(m, confidence, "", points))
        self.timings = {"landmarks": (mid - start) * 1e3, "pnp": (time.perf_counter() - mid) * 1e3}
        return out
