"""core.filtering: One-Euro smoothing of positions and orientations, and its restart."""

import numpy as np

from headpose_ros.core.filtering import OneEuroFilter, OneEuroSettings, PoseFilter
from headpose_ros.core.rotation import angle_between_deg, camera_from_yaw_pitch_roll_deg


def test_one_euro_smooths_jitter_and_follows_motion():
    f = OneEuroFilter(OneEuroSettings(min_cutoff=1.0, beta=0.5))
    rng = np.random.default_rng(0)
    still = [f(np.array([1.0]) + rng.normal(0, 0.01, 1), k / 30)[0] for k in range(90)]
    assert np.std(still[30:]) < 0.4 * 0.01
    moving = [f(np.array([1.0 + k / 30.0]), 3 + k / 30)[0] for k in range(60)]
    assert abs(moving[-1] - (1.0 + 59 / 30)) < 0.1  # lag under 0.1 at 1 unit/s


def test_one_euro_restarts_when_time_goes_backwards():
    f = OneEuroFilter(OneEuroSettings())
    f(np.array([0.0]), 10.0)
    f(np.array([0.0]), 10.1)
    out = f(np.array([5.0]), 3.0)  # a replayed bag: no NaN, no blend with the old state
    assert out[0] == 5.0


def test_pose_filter_handles_the_quaternion_sign_and_resets():
    pf = PoseFilter(OneEuroSettings(), OneEuroSettings())
    R0 = camera_from_yaw_pitch_roll_deg(179, 0, 0)
    R1 = camera_from_yaw_pitch_roll_deg(-179, 0, 0)  # 2 degrees away, opposite quaternion hemisphere
    pf(R0, np.zeros(3), 0.0)
    R, _ = pf(R1, np.zeros(3), 0.033)
    assert angle_between_deg(R, R0) < 2.5 and angle_between_deg(R, R1) < 2.5
    pf.reset()
    R, t = pf(camera_from_yaw_pitch_roll_deg(0, 0, 0), np.ones(3), 0.066)
    assert angle_between_deg(R, camera_from_yaw_pitch_roll_deg(0, 0, 0)) < 1e-6
    np.testing.assert_allclose(t, 1)
