"""core.types: the values between stages check their shapes, and a head's angles follow its rotation."""

import numpy as np
import pytest

from headpose_ros.core.rotation import camera_from_yaw_pitch_roll_deg
from headpose_ros.core.types import EstimateStatus, FaceDetections, HeadPose, PoseMeasurement


def test_face_detections_refuse_inconsistent_shapes_and_take_subsets():
    boxes = np.arange(12, dtype=np.float32).reshape(3, 4)
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    points = np.zeros((3, 6, 2), np.float32)
    faces = FaceDetections(boxes, scores, points)
    assert len(faces) == 3
    subset = faces.take(np.array([False, True, True]))
    assert len(subset) == 2 and subset.scores.tolist() == pytest.approx([0.8, 0.7])
    assert len(faces.take(slice(0, 1))) == 1
    with pytest.raises(ValueError, match="inconsistent shapes"):
        FaceDetections(boxes, scores[:2], points)
    empty = FaceDetections.empty()
    assert len(empty) == 0 and empty.keypoints.shape == (0, 6, 2)


def test_a_measurement_without_covariance_says_unknown():
    m = PoseMeasurement(np.eye(3), np.zeros(3))
    assert np.all(np.diag(m.covariance) == -1)


def test_head_angles_and_quaternion_come_from_its_rotation():
    R = camera_from_yaw_pitch_roll_deg(20, -10, 5)
    head = HeadPose("0001", R, np.array([0, 0, 1.0]), np.eye(6), np.zeros(4), 0.9, "landmarks")
    np.testing.assert_allclose(head.yaw_pitch_roll_deg, [20, -10, 5], atol=1e-9)
    q = head.quaternion_xyzw
    assert q[3] >= 0 and np.linalg.norm(q) == pytest.approx(1.0)


def test_every_rejection_has_a_status_in_words():
    assert {s.value for s in EstimateStatus} == {"measured", "no face", "no fit", "behind the camera", "turned away",
                                                 "not finite", "implausible distance"}
