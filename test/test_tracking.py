"""Track ids, confirmation and loss; One-Euro smoothing and its reset."""

import numpy as np
import pytest

from headpose_ros.core.filtering import OneEuroFilter, OneEuroSettings, PoseFilter
from headpose_ros.core.rotation import angle_between_deg, camera_from_yaw_pitch_roll_deg
from headpose_ros.core.config import TrackingConfig
from headpose_ros.core.tracking import FaceTracker, random_ids, sequential_ids


def make_tracker(**kw):
    return FaceTracker(TrackingConfig(**kw), lambda: None, sequential_ids())


def box(x, y, size=100):
    return [x, y, x + size, y + size]


def test_ids_stay_with_moving_faces_and_new_faces_get_new_ids():
    tracker = make_tracker()
    tracks = tracker.update(np.array([box(0, 0), box(300, 0)], float)).tracks
    ids = [t.id for t in tracks]
    assert ids == ["0001", "0002"]
    for step in range(1, 10):  # both drift 10 px per frame; order of detections swapped
        update = tracker.update(np.array([box(300 + 10 * step, 0), box(10 * step, 0)], float))
        assert [t.id for t in update.tracks] == ["0002", "0001"] and not update.ended
    tracks = tracker.update(np.array([box(600, 300)], float)).tracks
    assert tracks[0].id == "0003"


def test_confirmation_after_min_hits_and_drop_after_max_misses():
    tracker = make_tracker(min_hits=3, max_misses=2)
    for i in range(3):
        update = tracker.update(np.array([box(0, 0)], float))
        (track,) = update.tracks
        assert track.confirmed == (i == 2)
        assert (update.confirmed, update.tentative) == (([track], []) if i == 2 else ([], [track]))
    assert tracker.update(np.zeros((0, 4))).ended == []
    assert tracker.update(np.zeros((0, 4))).ended == []
    dropped = tracker.update(np.zeros((0, 4))).ended
    assert [t.id for t in dropped] == ["0001"] and tracker.tracks == []
    (track,) = tracker.update(np.array([box(0, 0)], float)).tracks
    assert track.id == "0002" and not track.confirmed


def test_the_tracker_refuses_settings_it_cannot_work_with():
    with pytest.raises(ValueError, match="tracking.min_hits must be >= 1"):
        make_tracker(min_hits=0)
    tracker = make_tracker()
    with pytest.raises(ValueError, match=r"tracking.iou_threshold must be in \[0, 1\]"):
        tracker.apply(TrackingConfig(iou_threshold=1.5))


def test_random_ids_are_five_lowercase_letters():
    ids = {random_ids()() for _ in range(50)}
    assert len(ids) > 45 and all(len(i) == 5 and i.isalpha() and i.islower() for i in ids)


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
