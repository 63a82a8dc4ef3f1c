"""Fusing two rotation estimates by their uncertainties (core.fusion)."""

import numpy as np
import pytest

from headpose_ros.core import fusion
from headpose_ros.core.rotation import angle_between_deg, camera_from_yaw_pitch_roll_deg


def test_equal_uncertainties_give_the_midpoint():
    a, b = camera_from_yaw_pitch_roll_deg(0, 0, 0), camera_from_yaw_pitch_roll_deg(10, 4, 0)
    cov = np.eye(3) * np.radians(5.0) ** 2
    R, fused_cov = fusion.fuse_rotations(a, cov, b, cov)
    assert angle_between_deg(R, a) == pytest.approx(angle_between_deg(a, b) / 2, abs=1e-6)
    assert angle_between_deg(R, b) == pytest.approx(angle_between_deg(a, b) / 2, abs=1e-6)
    np.testing.assert_allclose(fused_cov, cov / 2)


def test_the_surer_estimate_wins_axis_by_axis():
    a = camera_from_yaw_pitch_roll_deg(0, 0, 0)
    b = camera_from_yaw_pitch_roll_deg(20, 10, 0)
    # a is sure about pitch (face y) and unsure about yaw (face z); b the other way round.
    cov_a = fusion.rotation_covariance(a, np.array([5.0, 1.0, 30.0]))
    cov_b = fusion.rotation_covariance(b, np.array([5.0, 30.0, 1.0]))
    R, _ = fusion.fuse_rotations(a, cov_a, b, cov_b)
    from headpose_ros.core.rotation import yaw_pitch_roll_deg
    yaw, pitch, _ = yaw_pitch_roll_deg(R)
    assert yaw == pytest.approx(20, abs=1.5) and pitch == pytest.approx(0, abs=1.5)


def test_the_order_of_the_two_does_not_matter():
    a, b = camera_from_yaw_pitch_roll_deg(-30, 5, 3), camera_from_yaw_pitch_roll_deg(-20, -4, 8)
    cov_a = fusion.rotation_covariance(a, np.array([3.0, 6.0, 9.0]))
    cov_b = fusion.rotation_covariance(b, np.array([7.0, 2.0, 4.0]))
    assert angle_between_deg(fusion.fuse_rotations(a, cov_a, b, cov_b)[0],
                             fusion.fuse_rotations(b, cov_b, a, cov_a)[0]) < 0.01


def test_tables_interpolate_and_hold_their_ends():
    table = fusion.LANDMARK_SIGMA_DEG
    np.testing.assert_allclose(fusion.sigma_at(table, 0), table[0])
    np.testing.assert_allclose(fusion.sigma_at(table, -15), (np.array(table[0]) + table[1]) / 2)
    np.testing.assert_allclose(fusion.sigma_at(table, 170), table[-1])
    np.testing.assert_allclose(fusion.sigma_at(table, float("nan")), table[-1])


def test_landmarks_lose_weight_toward_a_profile_and_the_network_does_not_fail_with_them():
    lm = [fusion.landmark_sigma_deg(y).max() for y in (0, 30, 60, 90)]
    net = [fusion.network_sigma_deg(5.42, y)[2] for y in (0, 30, 60, 90)]  # yaw, the angle that collapses
    assert lm == sorted(lm) and lm[-1] > 3 * lm[0]
    assert lm[2] > 2 * net[2]  # at 60 deg the network's yaw is far surer
    # Another network's table scales with its published error.
    np.testing.assert_allclose(fusion.network_sigma_deg(2 * 5.42, 30), 2 * fusion.network_sigma_deg(5.42, 30))


def test_covariance_is_about_the_faces_own_axes():
    R = camera_from_yaw_pitch_roll_deg(0, 0, 0)  # face x = camera -z
    cov = fusion.rotation_covariance(R, np.array([2.0, 0.0, 0.0]))  # only roll (face x) uncertain
    assert np.degrees(np.sqrt(cov[2, 2])) == pytest.approx(2.0) and cov[0, 0] == pytest.approx(0.0)
