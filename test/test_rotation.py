"""The angle convention written in msg/HeadPose.msg, checked on constructed rotations."""

import numpy as np
import pytest

from headpose_ros.core.rotation import (
    FACING_CAMERA, GAZE_IN_FACE, angle_between_deg, camera_from_yaw_pitch_roll_deg, matrix_from_quaternion_xyzw,
    quaternion_xyzw, rotation_between, yaw_pitch_roll_deg,
)


def test_facing_camera_is_a_right_handed_rep155_frame():
    x, y, z = FACING_CAMERA.T  # face axes in camera optical coordinates
    np.testing.assert_allclose(x, [0, 0, -1])  # out of the face, toward the camera
    np.testing.assert_allclose(y, [1, 0, 0])  # person's left = image right
    np.testing.assert_allclose(z, [0, -1, 0])  # up = image up
    assert np.linalg.det(FACING_CAMERA) == pytest.approx(1.0)
    np.testing.assert_allclose(yaw_pitch_roll_deg(FACING_CAMERA), 0, atol=1e-9)


def test_gaze_frame_is_optical_along_face_x():
    x, y, z = GAZE_IN_FACE.T
    np.testing.assert_allclose(z, [1, 0, 0])  # gaze along face x
    np.testing.assert_allclose(x, [0, -1, 0])  # right
    np.testing.assert_allclose(y, [0, 0, -1])  # down
    assert np.linalg.det(GAZE_IN_FACE) == pytest.approx(1.0)


def test_positive_yaw_turns_the_nose_toward_image_right():
    forward = camera_from_yaw_pitch_roll_deg(30, 0, 0)[:, 0]
    assert forward[0] > 0.4 and forward[2] < 0


def test_positive_pitch_looks_down():
    forward = camera_from_yaw_pitch_roll_deg(0, 20, 0)[:, 0]
    assert forward[1] > 0.3  # camera y points down


def test_positive_roll_is_counter_clockwise_in_the_image():
    up = camera_from_yaw_pitch_roll_deg(0, 0, 20)[:, 2]
    # Image up is -y; counter-clockwise on screen tilts "up" toward image left (-x).
    assert up[0] < -0.3 and up[1] < 0


@pytest.mark.parametrize("ypr", [(10, -20, 30), (-75, 35, -30), (170, 5, -5), (0, 89, 0)])
def test_yaw_pitch_roll_round_trip(ypr):
    R = camera_from_yaw_pitch_roll_deg(*ypr)
    np.testing.assert_allclose(yaw_pitch_roll_deg(R), ypr, atol=1e-6)


def test_quaternion_round_trip_and_ros_order():
    R = camera_from_yaw_pitch_roll_deg(20, 10, -5)
    q = quaternion_xyzw(R)
    assert q[3] >= 0 and np.linalg.norm(q) == pytest.approx(1)
    np.testing.assert_allclose(matrix_from_quaternion_xyzw(q), R, atol=1e-12)
    # 90 degrees about z: (0, 0, sin 45, cos 45) in x, y, z, w order.
    Rz = np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1.0]])
    np.testing.assert_allclose(quaternion_xyzw(Rz), [0, 0, np.sqrt(0.5), np.sqrt(0.5)], atol=1e-12)


def test_rotation_between_and_geodesic_angle():
    a, b = np.array([0, 0, 1.0]), np.array([1, 0, 1.0]) / np.sqrt(2)
    R = rotation_between(a, b)
    np.testing.assert_allclose(R @ a, b, atol=1e-12)
    assert angle_between_deg(np.eye(3), R) == pytest.approx(45)
    np.testing.assert_allclose(rotation_between(a, -a) @ a, -a, atol=1e-12)
