"""core.track_state: what the engine keeps per face between frames, and the factory that makes it."""

import numpy as np

from headpose_ros.core.config import SmoothingConfig
from headpose_ros.core.rotation import angle_between_deg, camera_from_yaw_pitch_roll_deg
from headpose_ros.core.track_state import track_state_factory
from headpose_ros.core.types import PoseMeasurement


def measurement(yaw, z):
    return PoseMeasurement(camera_from_yaw_pitch_roll_deg(yaw, 0, 0), np.array([0.0, 0.0, z]))


def test_the_latest_measurement_is_kept_as_the_next_fits_prior():
    state = track_state_factory(SmoothingConfig())()
    assert state.last_pose is None
    m = measurement(10, 1.0)
    state.measured(m, 0.0, smooth=True)
    assert state.last_pose is m


def test_smoothing_pulls_a_jump_toward_the_past_and_off_passes_it_through():
    smooth = track_state_factory(SmoothingConfig())()
    raw = track_state_factory(SmoothingConfig())()
    for k in range(10):
        smooth.measured(measurement(0, 1.0), k / 30, smooth=True)
        raw.measured(measurement(0, 1.0), k / 30, smooth=False)
    R, t = smooth.measured(measurement(20, 1.2), 10 / 30, smooth=True)
    assert 0 < angle_between_deg(R, camera_from_yaw_pitch_roll_deg(0, 0, 0)) < 15
    assert 1.0 < t[2] < 1.2
    R, t = raw.measured(measurement(20, 1.2), 10 / 30, smooth=False)
    assert angle_between_deg(R, camera_from_yaw_pitch_roll_deg(20, 0, 0)) < 1e-9 and t[2] == 1.2


def test_the_factory_applies_the_smoothing_settings_to_new_states():
    def after_a_jump(settings):
        state = track_state_factory(settings)()
        state.measured(measurement(0, 1.0), 0.0, smooth=True)
        return state.measured(measurement(0, 2.0), 1 / 30, smooth=True)[1][2]

    gentle = after_a_jump(SmoothingConfig(position_min_cutoff=0.1, position_beta=0.0))
    eager = after_a_jump(SmoothingConfig(position_min_cutoff=10.0, position_beta=0.0))
    assert 1.0 < gentle < eager < 2.0
