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
from .headpose_net import BoxDistancePrior, HeadPoseNetEstimator, camera_from_ray, rotation_along_ray, rotation_covariance
from .landmarks import LandmarkEstimator
from .pnp import PnPSettings, PoseMeasurement, PoseRejected, fit_translation, solve_head_pose


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
        self.fit_indices = face_model.rigid_indices  # the landmarks PnP fits
        self.model_points = face_model.points[self.fit_indices]
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
                m = solve_head_pose(points[self.fit_indices], self.model_points, camera, priors[i], self.pnp)
            except PoseRejected as exc:
                out.append(Estimate(None, confidence, str(exc), points))
                continue
            out.append(Estimate(m, confidence, "", points))
        self.timings = {"landmarks": (mid - start) * 1e3, "pnp": (time.perf_counter() - mid) * 1e3}
        return out


def _covariance(position_cov: np.ndarray, rotation_cov: np.ndarray) -> np.ndarray:
    """(6, 6) over (x, y, z, rotation about X, Y, Z), with unknown cross terms left 0."""
    cov = np.zeros((6, 6))
    cov[:3, :3] = position_cov
    cov[3:, 3:] = rotation_cov
    return cov


class NetworkBackend:
    """Rotation from a Hopenet-family network, position from the face box and the intrinsics.

    The network sees a centred crop, so its angles are relative to the
    viewing ray through the face; they are turned into the camera frame by
    the rotation that takes the optical axis onto that ray (from K and D).
    Covariance: rotation from the network's published error, position from
    the box-size prior.
    """

    method = "hopenet"

    def __init__(self, network: HeadPoseNetEstimator, prior: BoxDistancePrior):
        self.network = network
        self.prior = prior
        self.timings: dict[str, float] = {}

    def measure(self, image_rgb, faces, camera) -> list[tuple[PoseMeasurement, np.ndarray]]:
        """A measurement per face, and the network's own angles (n, 3) degrees, its convention."""
        angles = self.network.estimate(image_rgb, faces.boxes)
        out = []
        for i in range(len(faces)):
            cb = angles.crop_boxes[i]
            to_camera = camera_from_ray(camera, (cb[0] + cb[2]) / 2, (cb[1] + cb[3]) / 2)
            R = to_camera @ rotation_along_ray(self.network.model, angles.ypr_deg[i])
            t, t_cov = self.prior.position(faces.boxes[i], camera)
            cov = _covariance(t_cov, rotation_covariance(self.network.model))
            out.append((PoseMeasurement(R=R, t=t, covariance=cov), angles.ypr_deg[i]))
        return out

    def estimate(self, image_rgb, faces, camera, priors):
        start = time.perf_counter()
        measured = self.measure(image_rgb, faces, camera)
        self.timings = {"network": (time.perf_counter() - start) * 1e3}
        return [Estimate(m, float(faces.scores[i])) for i, (m, _) in enumerate(measured)]


class FusionBackend:
    """Landmark PnP where it is reliable, the network's rotation where it is not.

    Rule, per face: the network's |yaw| (full range, never collapses) decides.
    At most `max_landmark_yaw_deg`, with the face mesh confident and PnP
    successful, the landmark pose is used (it is the more precise). Beyond
    that, or when the mesh or PnP fails, the rotation is the network's and
    only the position is fitted to the landmarks with that rotation fixed
    (the box prior when there are no usable landmarks).
    """

    method = "fusion"

    def __init__(self, landmarks: LandmarkPnPBackend, network: NetworkBackend, max_landmark_yaw_deg: float):
        self.landmarks = landmarks
        self.network = network
        self.max_landmark_yaw_deg = max_landmark_yaw_deg
        self.timings: dict[str, float] = {}

    def estimate(self, image_rgb, faces, camera, priors):
        start = time.perf_counter()
        from_network = self.network.measure(image_rgb, faces, camera)
        mid = time.perf_counter()
        from_landmarks = self.landmarks.estimate(image_rgb, faces, camera, priors)
        self.timings = {"network": (mid - start) * 1e3, **self.landmarks.timings}
        out = []
        fit = self.landmarks.fit_indices
        for i, ((net, net_ypr), lm) in enumerate(zip(from_network, from_landmarks)):
            if lm.measurement is not None and abs(net_ypr[0]) <= self.max_landmark_yaw_deg:
                out.append(lm)
                continue
            measurement = net
            usable = lm.landmarks is not None and not lm.reason.startswith("landmark presence")
            if usable:
                try:
                    t, t_cov, rms = fit_translation(lm.landmarks[fit], self.landmarks.model_points,
                                                    camera, net.R, net.t)
                    cov = net.covariance.copy()
                    cov[:3, :3] = t_cov
                    measurement = PoseMeasurement(R=net.R, t=t, covariance=cov, reprojection_rms_px=rms)
                except PoseRejected:
                    pass  # keep the box prior's position
            out.append(Estimate(measurement, lm.confidence if usable else float(faces.scores[i]),
                                "", lm.landmarks))
        return out
