"""core.tracking: track ids, confirmation and loss, decided by the tracker alone."""

import numpy as np
import pytest

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
    tracker = make_tracker(min_hits=3, max_misses=2, reacquire_frames=0)
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


def lose(tracker, frames):
    ended = []
    for _ in range(frames):
        ended += tracker.update(np.zeros((0, 4))).ended
    return ended


def test_a_face_back_near_where_its_track_ended_takes_its_id_back_confirmed():
    tracker = make_tracker(min_hits=3, max_misses=2, reacquire_frames=10)
    for _ in range(3):
        tracker.update(np.array([box(100, 100)], float))
    assert [t.id for t in lose(tracker, 3)] == ["0001"]
    lose(tracker, 5)  # 8 frames after it ended: still within reacquire_frames
    (track,) = tracker.update(np.array([box(160, 120)], float)).tracks  # moved 60 px: no overlap left
    assert track.id == "0001" and track.confirmed
    assert tracker.update(np.array([box(165, 120), box(400, 300)], float)).tracks[1].id == "0002"


def test_a_face_far_from_an_ended_track_or_too_late_gets_a_new_id():
    tracker = make_tracker(min_hits=1, max_misses=0, reacquire_frames=3)
    tracker.update(np.array([box(100, 100)], float))
    lose(tracker, 1)
    assert tracker.update(np.array([box(300, 100)], float)).tracks[0].id == "0002"  # 2 sides away
    assert tracker.update(np.array([box(300, 100), box(100, 100, size=30)], float)).tracks[1].id == "0003"  # too small
    tracker = make_tracker(min_hits=1, max_misses=0, reacquire_frames=3)
    tracker.update(np.array([box(100, 100)], float))
    lose(tracker, 4)
    assert tracker.update(np.array([box(100, 100)], float)).tracks[0].id == "0002"
    tracker = make_tracker(min_hits=3, max_misses=0, reacquire_frames=30)
    tracker.update(np.array([box(100, 100)], float))  # never confirmed: not kept for reacquisition
    lose(tracker, 1)
    assert tracker.update(np.array([box(100, 100)], float)).tracks[0].id == "0002"


def test_a_face_beside_a_missed_track_continues_it_when_no_box_overlaps():
    tracker = make_tracker(min_hits=1, max_misses=3)
    tracker.update(np.array([box(100, 100)], float))
    lose(tracker, 2)
    update = tracker.update(np.array([box(180, 110), box(500, 300)], float))  # IoU 0.1 with the old box
    assert [t.id for t in update.tracks] == ["0001", "0002"] and not update.ended
    assert update.tracks[0].misses == 0


def test_the_tracker_refuses_settings_it_cannot_work_with():
    with pytest.raises(ValueError, match=r"tracking.min_hits must be in \[1, 1000\], not 0"):
        make_tracker(min_hits=0)
    tracker = make_tracker()
    with pytest.raises(ValueError, match=r"tracking.iou_threshold must be in \[0, 1\]"):
        tracker.apply(TrackingConfig(iou_threshold=1.5))


def test_random_ids_are_five_lowercase_letters():
    ids = {random_ids()() for _ in range(50)}
    assert len(ids) > 45 and all(len(i) == 5 and i.isalpha() and i.islower() for i in ids)


def test_ids_carry_the_prefix_in_both_styles():
    from headpose_ros.core.tracking import ids_of_style

    assert ids_of_style("sequential", "left_")() == "left_0001"
    random_id = ids_of_style("random", "left_")()
    assert random_id.startswith("left_") and len(random_id) == 10 and random_id[5:].isalpha()


@pytest.mark.parametrize("name, prefix", [
    ("/headpose_node", ""), ("/head_camera/headpose_node", "head_camera_"), ("/headpose_chest", "headpose_chest_"),
    ("/robot/front/headpose_node", "robot_front_"),
])
def test_the_automatic_id_prefix_comes_from_the_node_name(name, prefix):
    from headpose_ros.core.config import ids_scope

    assert ids_scope(name) == prefix


def test_an_id_prefix_that_cannot_be_part_of_a_frame_name_is_refused():
    from headpose_ros.core.config import EngineConfig, with_values

    assert with_values(EngineConfig(), {"tracking.id_prefix": "cam_1"}).problems() == []
    assert with_values(EngineConfig(), {"tracking.id_prefix": "auto"}).tracking.ids_prefix == ""
    problems = with_values(EngineConfig(), {"tracking.id_prefix": "cam/1"}).problems()
    assert problems == ["tracking.id_prefix 'cam/1': only letters, digits and '_' (it becomes part of TF frame and "
                        "topic names)"]
