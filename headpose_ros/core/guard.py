"""The last check before a pose leaves the engine: finite, a rotation, in front of the camera, and as far away
as a face of its size can be.

Every backend's measurement passes here (core.engine), and the smoothed pose
is checked again for what smoothing could break (smoothed_problem): a pose
that fails is not published; the face is reported as found but not
measured, with the reason (FrameResult.rejected), which the node counts on
/diagnostics and logs.

Distance: the detector box of a real face spans about 0.155 m at the face's
depth (core.headpose_net.BoxDistancePrior, sd 8% on the sample photos), so a
box w pixels wide puts the face near f * 0.155 / w metres. A fitted position
more than DEPTH_FACTOR times nearer or farther than that is not a face of
human size seen through these intrinsics: wrong intrinsics (a focal length
off by orders of magnitude, a principal point far outside the image) or a
landmark fit that collapsed. A child's face, or an adult's box cut by the
image edge, stays well inside that factor.
"""

from __future__ import annotations

import numpy as np

from .camera import CameraModel
from .headpose_net import BoxDistancePrior
from .types import EstimateStatus, PoseMeasurement

DEPTH_FACTOR = 3.0
# How far R may be from a rotation (max |R^T R - I| entry, and |det R - 1|).
ROTATION_TOLERANCE = 1e-3


def pose_problem(R: np.ndarray, t: np.ndarray, covariance: np.ndarray | None, box: np.ndarray,
                 camera: CameraModel, prior: BoxDistancePrior) -> tuple[EstimateStatus, str] | None:
    """Why this pose (R (3, 3), t (3,) m, covariance (6, 6)) of the face in `box` (xyxy px) must not be
    published, as (status, detail); None when it may."""
    R, t = np.asarray(R, dtype=np.float64), np.asarray(t, dtype=np.float64)
    if covariance is not None and not np.isfinite(covariance).all():
        return EstimateStatus.NOT_FINITE, "the pose has NaN or infinite values"
    problem = smoothed_problem(R, t)
    if problem is not None:
        return problem
    if np.abs(R.T @ R - np.eye(3)).max() > ROTATION_TOLERANCE or abs(np.linalg.det(R) - 1.0) > ROTATION_TOLERANCE:
        return EstimateStatus.NOT_FINITE, "the rotation is not a rotation matrix"
    expected = prior.depth(box, camera)
    if not (expected / DEPTH_FACTOR <= t[2] <= expected * DEPTH_FACTOR):
        width = float(box[2] - box[0])
        return (EstimateStatus.IMPLAUSIBLE_DISTANCE,
                f"a {width:.0f} px face at {t[2]:.2f} m: a face of human size would be about {expected:.2f} m away "
                f"with these intrinsics (fx = {camera.fx:g} px); are they right?")
    return None


def smoothed_problem(R: np.ndarray, t: np.ndarray) -> tuple[EstimateStatus, str] | None:
    """The part of pose_problem smoothing could break, checked again on a smoothed pose: finite and in front."""
    if not (np.isfinite(R).all() and np.isfinite(t).all()):
        return EstimateStatus.NOT_FINITE, "the pose has NaN or infinite values"
    if t[2] <= 0:
        return EstimateStatus.BEHIND_CAMERA, f"the face would be behind the camera (z = {t[2]:.2f} m)"
    return None


def measurement_problem(m: PoseMeasurement, box: np.ndarray, camera: CameraModel,
                        prior: BoxDistancePrior) -> tuple[EstimateStatus, str] | None:
    """pose_problem of a backend's measurement."""
    return pose_problem(m.R, m.t, m.covariance, box, camera, prior)
