"""Pose estimation backends: from detected faces to one pose estimate per face.

Every backend offers the same calls (PoseBackend), so the engine, the node
and the CLI pick one by name (the `backend` setting) and never look inside:
estimate() for a frame, apply() for live setting changes, describe() for
logs and diagnostics.
"""

from __future__ import annotations

import time
from typing import Protocol, Sequence

import numpy as np

from .camera import CameraModel
from .config import EngineConfig
from . import fusion
from .face_model import FaceModel
from .headpose_net import BoxDistancePrior, HeadPoseNetEstimator, camera_from_ray, rotation_along_ray
from .landmarks import LEFT_EYE_KEYPOINT, RIGHT_EYE_KEYPOINT, FaceMesh, eye_line_angle
from .pnp import PoseRejected, fit_translation, solve_head_pose
from .track_state import NetworkKeyframe, TrackState
from .types import Estimate, EstimateStatus, FaceDetections, PoseMeasurement


class PoseBackend(Protocol):
    method: str  # the HeadPose.method value it reports
    needs_landmarks: bool  # its faces must come with the face mesh's landmarks (FaceDetections.landmarks)
    timings: dict[str, float]  # milliseconds per sub-stage of the last call

    def estimate(
        self,
        image_rgb: np.ndarray,
        faces: FaceDetections,
        camera: CameraModel,
        states: Sequence[TrackState],
    ) -> list[Estimate]:
        """One Estimate per face, in the order of `faces`; states: each face's track memory (core.track_state).

        image_rgb and `faces` are in the pixels of the image `camera` describes.
        """
        ...

    def apply(self, config: EngineConfig) -> None:
        """Take the live settings of `config` from the next frame on."""
        ...

    def describe(self) -> dict[str, str]:
        """Its models and runtimes, by stage ("landmarks", "network"), for logs and diagnostics."""
        ...


class LandmarkPnPBackend:
    """solvePnP of each face's mesh landmarks (found by core.finding) against the metric face model."""

    method = "landmarks"
    needs_landmarks = True

    def __init__(self, mesh: FaceMesh, face_model: FaceModel, config: EngineConfig):
        self.mesh = mesh  # described here; it runs in the engine's face finder
        self._fit_indices = face_model.rigid_indices  # the landmarks PnP fits
        self._model_points = face_model.points[self._fit_indices]
        self._model_normals = None if face_model.normals is None else face_model.normals[self._fit_indices]
        self.timings: dict[str, float] = {}
        self.apply(config)

    def apply(self, config: EngineConfig) -> None:
        self.presence_threshold = config.landmarks.presence_threshold
        self.pnp = config.pnp

    def describe(self) -> dict[str, str]:
        return {"landmarks": self.mesh.describe()}

    def estimate(self, image_rgb, faces, camera, states):
        start = time.perf_counter()
        out = []
        for i in range(len(faces)):
            presence = faces.presence[i]
            confidence = float(faces.scores[i] * presence)
            points = faces.landmarks[i, :, :2]
            if presence < self.presence_threshold:
                out.append(Estimate(None, confidence, EstimateStatus.NO_FACE,
                                    f"landmark presence {presence:.2f} below threshold", points))
                continue
            try:
                m = solve_head_pose(points[self._fit_indices], self._model_points, camera, states[i].last_pose,
                                    self.pnp, self._model_normals)
            except PoseRejected as exc:
                out.append(Estimate(None, confidence, exc.status, str(exc), points))
                continue
            out.append(Estimate(m, confidence, landmarks_px=points))
        self.timings = {"pnp": (time.perf_counter() - start) * 1e3}
        return out

    def fit_position(self, landmarks_px: np.ndarray, camera: CameraModel, R: np.ndarray,
                     t0: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """Where the face whose mesh landmarks are `landmarks_px` (468, 2) is, given its rotation R (3, 3).

        Starts from t0 (3,) m. Returns t (3,) m, its covariance (3, 3) and the
        reprojection RMS (px); raises PoseRejected when the face would be behind the camera.
        """
        return fit_translation(landmarks_px[self._fit_indices], self._model_points, camera, R, t0)


# A face is levelled for the network only when its eyes are at least this far apart, in box widths
# (about 0.4 facing the camera, under 0.25 beyond about 50 deg of yaw, where the eye line says little).
LEVEL_MIN_EYE_SPAN = 0.25


def screen_turn(theta_deg: float) -> np.ndarray:
    """(3, 3) the rotation about the viewing axis that turns what a camera sees counter-clockwise on screen by θ."""
    c, s = np.cos(np.radians(theta_deg)), np.sin(np.radians(theta_deg))
    return np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])  # v points down: a negative turn about z


# Beyond this |yaw| (the network's, along the viewing ray) a face's rotation is not carried by its landmarks;
# nor once its gaze has turned this far from the keyframe's (the network then runs again).
CARRY_MAX_YAW_DEG = 45.0
CARRY_MAX_TURN_DEG = 10.0


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
    Covariance: rotation from the network's measured error at this |yaw|
    (core.fusion.NETWORK_SIGMA_DEG), position from the box-size prior.

    Video: with `landmark_pnp`, the network runs on a followed face at least
    every hopenet.keyframe_interval frames, and whenever its gaze has turned
    more than CARRY_MAX_TURN_DEG out of the image plane since the last run; in
    between, its last rotation is carried forward by the rotation change of the
    face's landmark fit since then (R = R_fit_now R_fit_then^T R_net_then;
    in-plane turns, which landmarks follow exactly, carry at any size). Faces
    without a landmark fit, and faces turned further than CARRY_MAX_YAW_DEG
    (where landmarks are less reliable than the network), get the network every
    frame.

    Mirror images (hopenet.mirror): the network also reads each crop's mirror
    image, in the same batch, and the two readings are averaged
    (headpose_net.mirror_average): more accurate, at twice the network's time.
    """

    method = "hopenet"
    needs_landmarks = False

    def __init__(self, network: HeadPoseNetEstimator, prior: BoxDistancePrior, config: EngineConfig,
                 landmark_pnp: LandmarkPnPBackend | None = None):
        self.network = network
        self.prior = prior
        self.landmark_pnp = landmark_pnp
        self.timings: dict[str, float] = {}
        self.apply(config)

    def apply(self, config: EngineConfig) -> None:
        """Only how often the network runs, and on what, is live: its model and prior need a restart."""
        still = config.tracking.static_image_mode
        self.keyframe_interval = 1 if still else config.hopenet.keyframe_interval
        self.mirror = config.hopenet.mirror == "always" or (config.hopenet.mirror == "still" and still)
        if self.landmark_pnp is not None:
            self.landmark_pnp.apply(config)

    def describe(self) -> dict[str, str]:
        return {"network": self.network.describe()}

    def measure(self, image_rgb, faces, camera, states, fits=None) -> list[tuple[PoseMeasurement, float]]:
        """A measurement per face, and the yaw (degrees, the network's convention) along its viewing ray.

        fits: each face's landmark-fit measurement this frame, or None: with a
        fit and a recent keyframe in its state, the network is not run for it.
        """
        n = len(faces)
        fits = fits if fits is not None else [None] * n
        carried = [self._carries(states[i], fits[i]) for i in range(n)]
        run = [i for i in range(n) if not carried[i]]
        # Each face's eye line (counter-clockwise on screen, degrees) from its keypoints: a tilted face is
        # levelled before the network sees it, and the turn is given back about its viewing ray.
        # Only where the eyes are far enough apart for their line to mean something (not on a profile).
        eyes = faces.keypoints[:, LEFT_EYE_KEYPOINT] - faces.keypoints[:, RIGHT_EYE_KEYPOINT]
        spread = np.linalg.norm(eyes, axis=1) >= LEVEL_MIN_EYE_SPAN * (faces.boxes[:, 2] - faces.boxes[:, 0])
        roll = np.where(spread, np.degrees(eye_line_angle(eyes)), 0.0)
        angles = self.network.estimate(image_rgb, faces.boxes[run], roll[run], self.mirror) if run else None
        out = []
        for i in range(n):
            t, t_cov = self.prior.position(faces.boxes[i], camera)
            if carried[i]:
                key = states[i].keyframe
                key.age += 1
                R = fits[i].R @ key.R_fit.T @ key.R_net
                cx, cy = (faces.boxes[i, :2] + faces.boxes[i, 2:]) / 2
                yaw = self.network.model.convention.angles_deg(camera_from_ray(camera, cx, cy).T @ R)[0]
            else:
                k = run.index(i)
                cb = angles.crop_boxes[k]
                to_camera = camera_from_ray(camera, (cb[0] + cb[2]) / 2, (cb[1] + cb[3]) / 2)
                levelled = rotation_along_ray(self.network.model, angles.ypr_deg[k])
                R = to_camera @ screen_turn(angles.level_deg[k]) @ levelled
                yaw = float(angles.ypr_deg[k, 0])
                states[i].keyframe = NetworkKeyframe(R, fits[i].R, yaw) if fits[i] is not None else None
            rotation_cov = fusion.rotation_covariance(R, fusion.network_sigma_deg(self.network.model.mae_deg, yaw))
            out.append((PoseMeasurement(R=R, t=t, covariance=_covariance(t_cov, rotation_cov)), yaw))
        return out

    def _carries(self, state: TrackState, fit: PoseMeasurement | None) -> bool:
        key = state.keyframe
        if fit is None or key is None or key.age + 1 >= self.keyframe_interval or abs(key.yaw_deg) > CARRY_MAX_YAW_DEG:
            return False
        # How far the face has turned out of the image plane since the keyframe (its x axis, the gaze).
        turn = np.degrees(np.arccos(np.clip(fit.R[:, 0] @ key.R_fit[:, 0], -1.0, 1.0)))
        return turn <= CARRY_MAX_TURN_DEG

    def estimate(self, image_rgb, faces, camera, states):
        start = time.perf_counter()
        fits = None
        if self.landmark_pnp is not None and faces.landmarks is not None and self.keyframe_interval > 1:
            fits = [e.measurement for e in self.landmark_pnp.estimate(image_rgb, faces, camera, states)]
        mid = time.perf_counter()
        measured = self.measure(image_rgb, faces, camera, states, fits)
        self.timings = {"pnp": (mid - start) * 1e3, "network": (time.perf_counter() - mid) * 1e3}
        return [Estimate(m, float(faces.scores[i])) for i, (m, _) in enumerate(measured)]


class FusionBackend:
    """Both estimators on every face, their rotations combined by their uncertainties (core.fusion).

    Per face: the network's rotation, and landmark PnP's where the face mesh
    is confident, PnP succeeds and the network's |yaw| is at most
    `max_landmark_yaw_deg`. Each gets a covariance from the measured tables of
    core.fusion at that |yaw| (the landmarks lose out as the face turns
    toward a profile, where they collapse), and the fused rotation is their
    uncertainty-weighted mean: it moves smoothly from one estimator toward the
    other as the face turns, with no switch to jump at. The position is fitted
    to the landmarks with the fused rotation held fixed (the box prior when
    there are no usable landmarks). The published covariance is the fused one.
    """

    method = "fusion"
    needs_landmarks = True

    def __init__(self, landmark_pnp: LandmarkPnPBackend, network: NetworkBackend, config: EngineConfig):
        self.landmark_pnp = landmark_pnp
        self.network = network
        self.timings: dict[str, float] = {}
        self.apply(config)

    def apply(self, config: EngineConfig) -> None:
        self.max_landmark_yaw_deg = config.fusion.max_landmark_yaw_deg
        self.landmark_pnp.apply(config)
        self.network.apply(config)

    def describe(self) -> dict[str, str]:
        return {**self.landmark_pnp.describe(), **self.network.describe()}

    def estimate(self, image_rgb, faces, camera, states):
        start = time.perf_counter()
        from_landmarks = self.landmark_pnp.estimate(image_rgb, faces, camera, states)
        mid = time.perf_counter()
        from_network = self.network.measure(image_rgb, faces, camera, states,
                                            [e.measurement for e in from_landmarks])
        self.timings = {"network": (time.perf_counter() - mid) * 1e3, "pnp": (mid - start) * 1e3}
        out = []
        for i, ((net, net_yaw), lm) in enumerate(zip(from_network, from_landmarks)):
            R, rotation_cov = net.R, net.covariance[3:, 3:]
            if lm.measurement is not None and abs(net_yaw) <= self.max_landmark_yaw_deg:
                lm_cov = fusion.rotation_covariance(lm.measurement.R, fusion.landmark_sigma_deg(net_yaw))
                R, rotation_cov = fusion.fuse_rotations(lm.measurement.R, lm_cov, net.R, rotation_cov)
            measurement = PoseMeasurement(R=R, t=net.t, covariance=_covariance(net.covariance[:3, :3], rotation_cov))
            usable = lm.landmarks_px is not None and lm.status is not EstimateStatus.NO_FACE
            if usable:
                start_t = lm.measurement.t if lm.measurement is not None else net.t
                try:
                    t, t_cov, rms = self.landmark_pnp.fit_position(lm.landmarks_px, camera, R, start_t)
                    measurement = PoseMeasurement(R=R, t=t, covariance=_covariance(t_cov, rotation_cov),
                                                  reprojection_rms_px=rms)
                except PoseRejected:
                    pass  # keep the box prior's position
            out.append(Estimate(measurement, lm.confidence if usable else float(faces.scores[i]),
                                landmarks_px=lm.landmarks_px))
        return out
