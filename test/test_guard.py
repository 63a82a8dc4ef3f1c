"""The last check on every pose (core.guard): finite, a rotation, in front of the camera, at a human face's distance."""

import numpy as np
import pytest

from headpose_ros.core.camera import CameraModel
from headpose_ros.core.guard import DEPTH_FACTOR, pose_problem, smoothed_problem
from headpose_ros.core.headpose_net import BoxDistancePrior
from headpose_ros.core.rotation import camera_from_yaw_pitch_roll_deg
from headpose_ros.core.types import EstimateStatus

CAMERA = CameraModel.from_field_of_view(640, 480, 60.0)
PRIOR = BoxDistancePrior()
BOX = np.array([270.0, 190.0, 370.0, 290.0])  # 100 px wide: a human face about 0.86 m away here
R = camera_from_yaw_pitch_roll_deg(10.0, -5.0, 3.0)
EXPECTED_Z = 0.5 * (CAMERA.fx + CAMERA.fy) * PRIOR.face_width_m / 100.0


def problem(R=R, t=(0.0, 0.0, EXPECTED_Z), covariance=None, box=BOX):
    return pose_problem(np.asarray(R), np.asarray(t, dtype=float), covariance, box, CAMERA, PRIOR)


def test_a_plausible_pose_passes():
    assert problem() is None
    assert problem(t=(0.05, -0.02, EXPECTED_Z * 0.5), covariance=np.eye(6) * 1e-4) is None
    assert problem(t=(0.0, 0.0, EXPECTED_Z * 0.99 * DEPTH_FACTOR)) is None  # a child's face, a cut box


@pytest.mark.parametrize("kwargs, status, fragment", [
    (dict(t=(np.nan, 0.0, 0.8)), EstimateStatus.NOT_FINITE, "NaN"),
    (dict(R=np.full((3, 3), np.inf)), EstimateStatus.NOT_FINITE, "NaN or infinite"),
    (dict(covariance=np.full((6, 6), np.nan)), EstimateStatus.NOT_FINITE, "NaN"),
    (dict(R=2 * R), EstimateStatus.NOT_FINITE, "not a rotation"),
    (dict(R=-R), EstimateStatus.NOT_FINITE, "not a rotation"),  # a reflection
    (dict(t=(0.0, 0.0, -0.8)), EstimateStatus.BEHIND_CAMERA, "behind the camera (z = -0.80 m)"),
    (dict(t=(0.0, 0.0, EXPECTED_Z * 1.01 * DEPTH_FACTOR)), EstimateStatus.IMPLAUSIBLE_DISTANCE, "100 px face at"),
    (dict(t=(0.0, 0.0, EXPECTED_Z / (1.01 * DEPTH_FACTOR))), EstimateStatus.IMPLAUSIBLE_DISTANCE, "about 0.86 m"),
    (dict(t=(0.0, 0.0, 1e6)), EstimateStatus.IMPLAUSIBLE_DISTANCE, "are they right?"),
])
def test_a_pose_that_must_not_leave_is_named_with_its_reason(kwargs, status, fragment):
    found = problem(**kwargs)
    assert found is not None and found[0] is status and fragment in found[1], found


def test_a_smoothed_pose_is_checked_again_for_what_smoothing_could_break():
    assert smoothed_problem(R, np.array([0.0, 0.0, 0.8])) is None
    assert smoothed_problem(R, np.array([np.nan, 0.0, 0.8]))[0] is EstimateStatus.NOT_FINITE
    assert smoothed_problem(R * np.nan, np.array([0.0, 0.0, 0.8]))[0] is EstimateStatus.NOT_FINITE
    assert smoothed_problem(R, np.array([0.0, 0.0, -0.1]))[0] is EstimateStatus.BEHIND_CAMERA
