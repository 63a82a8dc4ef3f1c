"""The values that flow between the engine's stages, with their shapes, units and frames.

detection -> FaceDetections -> tracking, backends -> Estimate (a PoseMeasurement
or a status saying why not) -> smoothing -> HeadPose -> attention -> FrameResult.

Rotations are (3, 3) matrices whose columns are the face frame's axes (REP-155:
x out of the face, y to the person's left, z up) in the camera optical frame
(x right, y down, z forward); positions are metres in that frame; image
coordinates are pixels of the full-resolution image.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from .rotation import quaternion_xyzw, yaw_pitch_roll_deg

if TYPE_CHECKING:
    from .attention import AttentionEvent, FaceAttention
    from .camera import CameraModel


@dataclass
class FaceDetections:
    """The faces found in one image (by the detector, or followed from their landmarks), vectorised over n
    faces, in full-image pixels.

    boxes: (n, 4) float32 x0, y0, x1, y1 (BlazeFace's box convention, also for followed faces).
    scores: (n,) float32 in [0, 1], the detector's score (for a followed face, the one it had when detected).
    keypoints: (n, k, 2) float32 (u, v); for BlazeFace k = 6: the person's
        right eye, left eye, nose tip, mouth centre, right and left ear tragion.
    landmarks: (n, 468, 3) float32 face-mesh landmarks (u, v px, depth at the face's scale), or None
        when the mesh did not run.
    presence: (n,) float32 in [0, 1], the face mesh's belief that each face is there, or None.
    """

    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray
    landmarks: np.ndarray | None = None
    presence: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.boxes)
        if self.boxes.shape != (n, 4) or self.scores.shape != (n,) or self.keypoints.shape[:1] != (n,):
            raise ValueError(
                f"inconsistent shapes: boxes {self.boxes.shape}, scores {self.scores.shape}, "
                f"keypoints {self.keypoints.shape}"
            )
        if (self.landmarks is None) != (self.presence is None) or (
                self.landmarks is not None and (self.landmarks.shape[:1] != (n,) or self.presence.shape != (n,))):
            raise ValueError("landmarks and presence come together, one per face")

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def empty(cls, num_keypoints: int = 6) -> "FaceDetections":
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, num_keypoints, 2), np.float32))

    def take(self, index) -> "FaceDetections":
        """The faces at `index` (an index array, a slice or a boolean mask)."""
        return FaceDetections(self.boxes[index], self.scores[index], self.keypoints[index],
                              None if self.landmarks is None else self.landmarks[index],
                              None if self.presence is None else self.presence[index])

    def with_landmarks(self, landmarks: np.ndarray, presence: np.ndarray) -> "FaceDetections":
        """These faces with the face mesh's landmarks (n, 468, 3) and presence (n,)."""
        return FaceDetections(self.boxes, self.scores, self.keypoints, landmarks, presence)

    @classmethod
    def concatenate(cls, parts: list["FaceDetections"]) -> "FaceDetections":
        """The faces of every part, in order; landmarks are kept only when every part has them."""
        parts = [p for p in parts if len(p)] or parts[:1]
        with_mesh = all(p.landmarks is not None for p in parts)
        return cls(np.concatenate([p.boxes for p in parts]), np.concatenate([p.scores for p in parts]),
                   np.concatenate([p.keypoints for p in parts]),
                   np.concatenate([p.landmarks for p in parts]) if with_mesh else None,
                   np.concatenate([p.presence for p in parts]) if with_mesh else None)


@dataclass
class PoseMeasurement:
    """One frame's measured pose of the face frame in the camera optical frame.

    R: (3, 3) rotation (face axes as columns, in camera coordinates).
    t: (3,) position of the face origin (the sellion), metres.
    covariance: (6, 6) over (x, y, z, rotation about camera X, Y, Z), m and rad;
        -1 on the diagonal where unknown.
    reprojection_rms_px: RMS of the fitted landmarks' reprojection error, pixels.
    inlier_fraction: fraction of the fitted landmarks kept by the robust fit.
    """

    R: np.ndarray
    t: np.ndarray
    covariance: np.ndarray = field(default_factory=lambda: -np.eye(6))
    reprojection_rms_px: float = float("nan")
    inlier_fraction: float = 1.0


class EstimateStatus(enum.Enum):
    """Whether a backend measured a face, and if not, why."""

    MEASURED = "measured"
    NO_FACE = "no face"  # the face mesh's presence score says the crop holds no face
    NO_FIT = "no fit"  # the landmark fit found no consistent pose
    BEHIND_CAMERA = "behind the camera"
    TURNED_AWAY = "turned away"
    NOT_FINITE = "not finite"  # core.guard: NaN, infinity, or not a rotation
    IMPLAUSIBLE_DISTANCE = "implausible distance"  # core.guard: too near or far for a face of its size


class Rejection(NamedTuple):
    """A face that was found but gets no pose this frame: its track, the status saying why, and the detail."""

    track_id: str
    status: EstimateStatus
    detail: str


@dataclass
class Estimate:
    """A backend's answer for one face: a measurement, or the status and detail saying why there is none.

    confidence: in [0, 1], the backend's belief in this face (detector score
        times the backend's own score).
    landmarks_px: (k, 2) image pixels of the points the backend fitted, if any.
    detail: the status in words, with its numbers (for logs and diagnostics).
    """

    measurement: PoseMeasurement | None
    confidence: float
    status: EstimateStatus = EstimateStatus.MEASURED
    detail: str = ""
    landmarks_px: np.ndarray | None = None


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
    landmarks_px: (k, 2) fitted image points, full-image pixels, or None.
    """

    track_id: str
    R: np.ndarray
    t: np.ndarray
    covariance: np.ndarray
    box: np.ndarray
    confidence: float
    method: str
    landmarks_px: np.ndarray | None = None

    @property
    def yaw_pitch_roll_deg(self) -> np.ndarray:
        """(3,) degrees, zero when the face looks straight at the camera (along its line of sight; msg/HeadPose.msg)."""
        return yaw_pitch_roll_deg(self.R, self.t)

    @property
    def optical_yaw_pitch_roll_deg(self) -> np.ndarray:
        """(3,) degrees, zero when the face looks back along the camera's optical axis, wherever it is."""
        return yaw_pitch_roll_deg(self.R)

    @property
    def quaternion_xyzw(self) -> np.ndarray:
        return quaternion_xyzw(self.R)


@dataclass
class FrameResult:
    """What one image produced.

    camera: the intrinsics the poses were solved with, fitted to this image's
        full resolution (None only when the engine did not get that far).
    heads: confirmed faces with a pose this frame.
    faces_detected: how many faces were found, detected or followed (confirmed or not).
    rejected: a Rejection (track id, status, detail) for each face found but not measured, or whose
        pose failed the last check (core.guard).
    ended: ids of tracks that ended in this frame (publishers delete their frames/markers).
    reset: why all tracks were reset before this frame ("" if they were not).
    attention: what each head attends (core.attention), in the order of heads;
        empty when attention is disabled.
    events: changes of attended target in this frame.
    searched: what the detector searched this frame ("" when every face was followed from
        its landmarks; "image", "tile k", or both).
    timings_ms: time per stage.
    """

    stamp: float
    camera: "CameraModel | None"
    heads: list[HeadPose]
    faces_detected: int
    rejected: list[Rejection] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)
    reset: str = ""
    attention: "list[FaceAttention]" = field(default_factory=list)
    events: "list[AttentionEvent]" = field(default_factory=list)
    searched: str = ""
    timings_ms: dict[str, float] = field(default_factory=dict)
