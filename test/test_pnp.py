"""Landmark PnP on the metric face model, through real OpenCV, with known ground truth."""

import cv2
import numpy as np
import pytest

from headpose_ros.core.camera import CameraModel
from headpose_ros.core.face_model import load_face_model
from headpose_ros.core.config import PnPConfig
from headpose_ros.core.pnp import PoseRejected, solve_head_pose
from headpose_ros.core.types import EstimateStatus, PoseMeasurement
from headpose_ros.core.rotation import angle_between_deg, camera_from_yaw_pitch_roll_deg, yaw_pitch_roll_deg

FACE = load_face_model()
PTS = FACE.points[FACE.rigid_indices]


def project(R, t, camera):
    rvec, _ = cv2.Rodrigues(R)
    img, _ = cv2.projectPoints(PTS, rvec, t, camera.K, camera.opencv_distortion)
    return img.reshape(-1, 2)


@pytest.fixture
def distorted_camera():
    K = np.array([[600.0, 0, 330], [0, 610.0, 235], [0, 0, 1]])
    return CameraModel(K, [-0.25, 0.08, 0.001, -0.001, 0.0], 640, 480)


@pytest.mark.parametrize("ypr", [(0, 0, 0), (35, -10, 15), (-60, 20, -25), (10, 30, 0)])
def test_recovers_a_known_pose_through_distortion(ypr, distorted_camera):
    R = camera_from_yaw_pitch_roll_deg(*ypr)
    t = np.array([0.1, -0.05, 0.9])
    rng = np.random.default_rng(1)
    img = project(R, t, distorted_camera) + rng.normal(0, 0.3, (len(PTS), 2))
    m = solve_head_pose(img, PTS, distorted_camera)
    assert angle_between_deg(m.R, R) < 1.0
    np.testing.assert_allclose(m.t, t, atol=0.01)
    np.testing.assert_allclose(yaw_pitch_roll_deg(m.R), ypr, atol=1.0)
    assert m.reprojection_rms_px < 1.0
    # A real covariance: positive definite, depth the least certain position axis.
    sd = np.sqrt(np.diag(m.covariance))
    assert np.all(np.linalg.eigvalsh(m.covariance) > 0)
    assert sd[2] > sd[0] and sd[2] > sd[1]


def test_ignoring_distortion_would_be_wrong(distorted_camera):
    """The solver must use D: the same points read with D = 0 give a visibly different pose."""
    R, t = camera_from_yaw_pitch_roll_deg(20, 0, 0), np.array([0.15, 0.1, 0.8])
    img = project(R, t, distorted_camera)
    with_d = solve_head_pose(img, PTS, distorted_camera)
    without_d = solve_head_pose(img, PTS, CameraModel(distorted_camera.K, [], 640, 480))
    assert np.linalg.norm(with_d.t - t) < 0.002
    assert np.linalg.norm(without_d.t - t) > 5 * np.linalg.norm(with_d.t - t)


def test_outliers_are_left_out(distorted_camera):
    R, t = camera_from_yaw_pitch_roll_deg(-20, 10, 5), np.array([0.0, 0.0, 0.7])
    img = project(R, t, distorted_camera)
    bad = np.random.default_rng(2).choice(len(img), len(img) // 5, replace=False)
    img[bad] += np.random.default_rng(3).uniform(-60, 60, (len(bad), 2))
    m = solve_head_pose(img, PTS, distorted_camera)
    assert angle_between_deg(m.R, R) < 1.0
    assert 0.75 < m.inlier_fraction < 0.85


def test_a_prior_pose_is_used_and_a_wrong_one_recovered_from(distorted_camera):
    R, t = camera_from_yaw_pitch_roll_deg(40, 0, 0), np.array([0.0, 0.0, 1.0])
    img = project(R, t, distorted_camera)
    good = solve_head_pose(img, PTS, distorted_camera, prior=PoseMeasurement(R, t + 0.01))
    assert angle_between_deg(good.R, R) < 0.5
    # A prior turned the other way (a flip) must not trap the solver.
    wrong = PoseMeasurement(camera_from_yaw_pitch_roll_deg(-40, 0, 0), np.array([0.2, 0.0, 2.0]))
    recovered = solve_head_pose(img, PTS, distorted_camera, prior=wrong)
    assert angle_between_deg(recovered.R, R) < 0.5


def test_a_face_seen_from_behind_is_rejected(distorted_camera):
    R, t = camera_from_yaw_pitch_roll_deg(0, 0, 0), np.array([0.0, 0.0, 0.8])
    img = project(R, t, distorted_camera)
    with pytest.raises(PoseRejected, match="turned away") as rejected:
        solve_head_pose(img, PTS, distorted_camera, settings=PnPConfig(max_facing_angle_deg=-1))
    assert rejected.value.status is EstimateStatus.TURNED_AWAY


def test_the_model_normals_point_out_of_the_face():
    normals = FACE.normals
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-9)
    from headpose_ros.core import face_model as fm
    assert normals[fm.NOSE_TIP, 0] > 0.7 and normals[fm.FOREHEAD, 0] > 0.5  # the front faces +x
    assert normals[454, 1] > 0.5 and normals[234, 1] < -0.5  # the cheeks' outer edges face the sides


def test_landmarks_a_turned_face_hides_are_dropped_from_the_fit(distorted_camera):
    """The face mesh places hidden landmarks by guess, pulled toward where a frontal face has them: with the
    model's normals the fit drops the landmarks the fitted face turns away from the camera, and the guesses
    no longer pull the pose."""
    normals = FACE.normals[FACE.rigid_indices]
    R = camera_from_yaw_pitch_roll_deg(60, 0, 0)
    t = np.array([0.0, 0.0, 0.8])
    img = project(R, t, distorted_camera)
    view = -(PTS @ R.T + t)
    hidden = np.einsum("ij,ij->i", normals @ R.T, view) <= 0
    assert 0.05 * len(PTS) < hidden.sum() < 0.5 * len(PTS)  # the premise: a turned face hides some of them
    guessed = img.copy()
    guessed[hidden] += [6.0, 0.0]  # a systematic guess, as for a face turned less
    plain = solve_head_pose(guessed, PTS, distorted_camera, settings=PnPConfig(outlier_threshold=0.2))
    with_normals = solve_head_pose(guessed, PTS, distorted_camera, settings=PnPConfig(outlier_threshold=0.2),
                                   model_normals=normals)
    assert angle_between_deg(with_normals.R, R) < 0.5 < angle_between_deg(plain.R, R)
