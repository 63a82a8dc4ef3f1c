"""ros.markers: the RViz markers of each head (five namespaces, one stable id per track) and their deletion.

Pure functions on hand-built heads and attention values, with the real
visualization_msgs types.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("rclpy")

from builtin_interfaces.msg import Time  # noqa: E402
from std_msgs.msg import Header  # noqa: E402
from visualization_msgs.msg import Marker, MarkerArray  # noqa: E402

from headpose_ros.core.attention import Candidate, FaceAttention  # noqa: E402
from headpose_ros.core.rotation import camera_from_yaw_pitch_roll_deg  # noqa: E402
from headpose_ros.core.types import HeadPose  # noqa: E402
from headpose_ros.ros.markers import (ATTENDING, CONE_SEGMENTS, IDLE, NAMESPACES, MarkerIds, deletions,  # noqa: E402
                                      head_markers, marker_array)

FRAME = "markers_camera_optical_frame"
KINDS = {"head_axes": Marker.LINE_LIST, "gaze": Marker.ARROW, "cone": Marker.TRIANGLE_LIST,
         "label": Marker.TEXT_VIEW_FACING, "target": Marker.SPHERE}


def header() -> Header:
    return Header(stamp=Time(sec=42, nanosec=7), frame_id=FRAME)


def head(track_id="0001", ypr=(20.0, -10.0, 5.0), t=(0.1, -0.05, 1.2)) -> HeadPose:
    return HeadPose(track_id=track_id, R=camera_from_yaw_pitch_roll_deg(*ypr, position=np.array(t)), t=np.array(t), covariance=-np.eye(6),
                    box=np.array([250.0, 140.0, 390.0, 300.0]), confidence=0.9, method="landmarks")


def attention(face_id="0001", target="robot", position=(0.0, 0.0, 0.0), dwell=1.25) -> FaceAttention:
    candidates = [Candidate("robot", FRAME, 4.0, 1.2, 0.9, 15.0, True, np.array(position))]
    if not target:
        return FaceAttention(face_id, "", "", math.nan, math.nan, 0.0, 0.0, False, False, candidates)
    return FaceAttention(face_id, target, FRAME, 4.0, 1.2, 0.9, dwell, target == "robot", False, candidates)


def xyz(p) -> np.ndarray:
    return np.array([p.x, p.y, p.z])


def colour(c) -> tuple:
    return (c.r, c.g, c.b, c.a)


# -- MarkerIds ------------------------------------------------------------------------------------------------------


def test_each_track_keeps_one_id_for_its_life():
    ids = MarkerIds()
    assert ids.of("abcde") == 1
    assert ids.of("fghij") == 2
    assert ids.of("abcde") == 1
    assert ids.of("fghij") == 2


def test_a_released_id_is_returned_once_and_never_reused():
    ids = MarkerIds()
    ids.of("a")
    ids.of("b")
    assert ids.release("a") == 1
    assert ids.release("a") is None
    assert ids.release("never seen") is None
    assert ids.of("c") == 3
    assert ids.of("a") == 4  # a track id seen again is a new track
    assert ids.of("b") == 2


# -- head_markers ---------------------------------------------------------------------------------------------------


def test_five_markers_one_per_namespace_with_the_tracks_id():
    hdr = header()
    markers = head_markers(hdr, head(), attention(), 7, 15.0, 1.0)
    assert [m.ns for m in markers] == list(NAMESPACES) == ["head_axes", "gaze", "cone", "label", "target"]
    assert [m.type for m in markers] == [KINDS[ns] for ns in NAMESPACES]
    assert {m.id for m in markers} == {7}
    assert all(m.header == hdr for m in markers)
    assert all(m.action == Marker.ADD for m in markers)
    assert all((m.lifetime.sec, m.lifetime.nanosec) == (0, 0) for m in markers)  # until replaced or deleted


def test_the_axes_are_ten_centimetres_along_the_face_axes_in_red_green_blue():
    h = head()
    axes = head_markers(header(), h, None, 1, 15.0, 1.0)[0]
    assert len(axes.points) == 6 and len(axes.colors) == 6
    for k in range(3):
        np.testing.assert_allclose(xyz(axes.points[2 * k]), h.t)
        np.testing.assert_allclose(xyz(axes.points[2 * k + 1]), h.t + 0.1 * h.R[:, k])
    assert [colour(c) for c in axes.colors] == [(1.0, 0.0, 0.0, 1.0)] * 2 + [(0.0, 1.0, 0.0, 1.0)] * 2 + [
        (0.0, 0.0, 1.0, 1.0)] * 2


def test_the_gaze_arrow_is_half_a_metre_along_the_face_x_axis():
    h = head()
    gaze = head_markers(header(), h, None, 1, 15.0, 1.0)[1]
    assert len(gaze.points) == 2
    np.testing.assert_allclose(xyz(gaze.points[0]), h.t)
    np.testing.assert_allclose(xyz(gaze.points[1]), h.t + 0.5 * h.R[:, 0])


def test_the_cone_has_the_given_half_angle_and_length():
    h = head()
    cone = head_markers(header(), h, None, 1, 20.0, 0.8)[2]
    assert len(cone.points) == 3 * CONE_SEGMENTS
    apexes = cone.points[0::3]
    for p in apexes:
        np.testing.assert_allclose(xyz(p), h.t)
    rim = np.array([xyz(p) for k, p in enumerate(cone.points) if k % 3]) - h.t
    along = rim @ h.R[:, 0]
    across = np.linalg.norm(rim - np.outer(along, h.R[:, 0]), axis=1)
    np.testing.assert_allclose(along, 0.8, atol=1e-9)
    np.testing.assert_allclose(across, 0.8 * math.tan(math.radians(20.0)), atol=1e-9)


def test_the_cone_is_green_while_the_face_attends_something_and_grey_otherwise():
    attending = head_markers(header(), head(), attention(target="robot"), 1, 15.0, 1.0)[2]
    idle = head_markers(header(), head(), attention(target=""), 1, 15.0, 1.0)[2]
    without = head_markers(header(), head(), None, 1, 15.0, 1.0)[2]
    assert colour(attending.color) == colour(ATTENDING) == pytest.approx((0.1, 0.9, 0.2, 0.25))
    assert colour(idle.color) == colour(IDLE) == pytest.approx((0.7, 0.7, 0.7, 0.15))
    assert colour(without.color) == colour(IDLE)


def test_the_label_names_the_head_its_angles_and_its_target():
    h = head("0001", ypr=(20.0, -10.0, 5.0))
    label = head_markers(header(), h, attention(target="robot", dwell=1.34), 1, 15.0, 1.0)[3]
    assert label.text == "0001  y+20 p-10 r+5\n-> robot 1.3 s"
    np.testing.assert_allclose(xyz(label.pose.position), h.t + [0.0, -0.15, 0.0])  # above the head
    idle = head_markers(header(), h, attention(target=""), 1, 15.0, 1.0)[3]
    assert idle.text == "0001  y+20 p-10 r+5\n-> (none)"
    no_attention = head_markers(header(), h, None, 1, 15.0, 1.0)[3]
    assert no_attention.text == "0001  y+20 p-10 r+5"


def test_the_target_sphere_sits_on_the_attended_target():
    target = head_markers(header(), head(), attention(target="robot", position=(0.2, -0.1, 0.05)), 3, 15.0, 1.0)[4]
    assert target.action == Marker.ADD and target.type == Marker.SPHERE
    np.testing.assert_allclose(xyz(target.pose.position), [0.2, -0.1, 0.05])
    assert (target.scale.x, target.scale.y, target.scale.z) == (0.08, 0.08, 0.08)


@pytest.mark.parametrize("face_attention", [None, attention(target=""),
                                            attention(target="door")])  # a target not among the candidates
def test_the_target_sphere_is_deleted_when_nothing_is_attended(face_attention):
    target = head_markers(header(), head(), face_attention, 3, 15.0, 1.0)[4]
    assert (target.ns, target.id, target.action) == ("target", 3, Marker.DELETE)


# -- deletions, marker_array ----------------------------------------------------------------------------------------


def test_deletions_remove_every_marker_of_a_face():
    hdr = header()
    gone = deletions(hdr, 9)
    assert [(m.ns, m.id, m.action) for m in gone] == [(ns, 9, Marker.DELETE) for ns in NAMESPACES]
    assert all(m.header == hdr for m in gone)


def test_marker_array_draws_every_head_with_its_own_stable_id():
    ids = MarkerIds()
    heads = [head("aaaaa"), head("bbbbb", t=(-0.3, 0.0, 1.5))]
    first = marker_array(header(), heads, {"aaaaa": attention("aaaaa")}, [], ids, 15.0, 1.0)
    assert isinstance(first, MarkerArray)
    assert [(m.ns, m.id) for m in first.markers] == [(ns, 1) for ns in NAMESPACES] + [(ns, 2) for ns in NAMESPACES]
    # Only the attending face has a target sphere.
    assert [m.action for m in first.markers if m.ns == "target"] == [Marker.ADD, Marker.DELETE]
    again = marker_array(header(), list(reversed(heads)), {}, [], ids, 15.0, 1.0)
    assert [m.id for m in again.markers] == [2] * 5 + [1] * 5


def test_an_ended_track_has_all_its_markers_deleted_and_its_id_released():
    ids = MarkerIds()
    marker_array(header(), [head("aaaaa"), head("bbbbb")], {}, [], ids, 15.0, 1.0)
    frame = marker_array(header(), [head("bbbbb")], {}, ["aaaaa"], ids, 15.0, 1.0)
    assert [(m.ns, m.id, m.action) for m in frame.markers[:5]] == [(ns, 1, Marker.DELETE) for ns in NAMESPACES]
    assert [(m.ns, m.id) for m in frame.markers[5:]] == [(ns, 2) for ns in NAMESPACES]
    assert len(frame.markers) == 10
    assert ids.release("aaaaa") is None


def test_an_ended_track_that_was_never_drawn_deletes_nothing():
    ids = MarkerIds()
    frame = marker_array(header(), [], {}, ["zzzzz"], ids, 15.0, 1.0)
    assert frame.markers == []
