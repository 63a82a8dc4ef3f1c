"""ros.messages: engine results (core.types.HeadPose, core.attention values) to ROS messages.

Pure functions, tested on hand-built engine values and the real generated
message types. The message fields yaw, pitch, roll, confidence and the
attention figures are float32: they are compared at float32 precision.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("rclpy")

from builtin_interfaces.msg import Time  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from headpose_ros.core.attention import AttentionEvent, Candidate, FaceAttention  # noqa: E402
from headpose_ros.core.rotation import (camera_from_yaw_pitch_roll_deg, matrix_from_quaternion_xyzw,  # noqa: E402
                                        quaternion_xyzw)
from headpose_ros.core.types import HeadPose  # noqa: E402
from headpose_ros.msg import HeadPoseArray  # noqa: E402
from headpose_ros.ros.messages import (attention_array, attention_event, face_transforms, head_pose_array,  # noqa: E402
                                       head_pose_msg, region_of_interest)

FRAME = "messages_camera_optical_frame"
F32 = dict(rel=1e-6, abs=1e-5)


def header(frame_id: str = FRAME) -> Header:
    return Header(stamp=Time(sec=1700000123, nanosec=456000000), frame_id=frame_id)


def head(track_id="0001", ypr=(20.0, -10.0, 5.0), t=(0.1, -0.05, 1.2), box=(250.0, 140.0, 390.5, 300.2),
         confidence=0.87, method="landmarks") -> HeadPose:
    return HeadPose(track_id=track_id, R=camera_from_yaw_pitch_roll_deg(*ypr, position=np.array(t)), t=np.array(t),
                    covariance=np.arange(36, dtype=float).reshape(6, 6), box=np.array(box),
                    confidence=confidence, method=method)


# -- HeadPose -------------------------------------------------------------------------------------------------------


def test_head_pose_msg_carries_the_pose_angles_and_identity():
    h = head()
    msg = head_pose_msg(h, 640, 480)
    assert msg.id == "0001" and msg.method == "landmarks"
    p = msg.pose.pose.position
    assert (p.x, p.y, p.z) == (0.1, -0.05, 1.2)
    q = msg.pose.pose.orientation
    np.testing.assert_allclose([q.x, q.y, q.z, q.w], quaternion_xyzw(h.R))
    np.testing.assert_allclose(matrix_from_quaternion_xyzw([q.x, q.y, q.z, q.w]), h.R, atol=1e-12)
    assert (msg.yaw, msg.pitch, msg.roll) == (pytest.approx(20.0, **F32), pytest.approx(-10.0, **F32),
                                              pytest.approx(5.0, **F32))
    assert msg.confidence == pytest.approx(0.87, **F32)


def test_the_covariance_is_flattened_row_major():
    msg = head_pose_msg(head(), 640, 480)
    assert list(msg.pose.covariance) == [float(v) for v in range(36)]
    # Row 1, column 0 (y, x) is element 6.
    assert msg.pose.covariance[6] == 6.0


def test_unknown_covariance_stays_minus_one_on_the_diagonal():
    h = head()
    h.covariance = -np.eye(6)
    cov = np.array(head_pose_msg(h, 640, 480).pose.covariance).reshape(6, 6)
    np.testing.assert_array_equal(cov, -np.eye(6))


@pytest.mark.parametrize("confidence, published", [(1.3, 1.0), (-0.2, 0.0), (0.0, 0.0), (1.0, 1.0)])
def test_confidence_is_clipped_to_the_unit_interval(confidence, published):
    assert head_pose_msg(head(confidence=confidence), 640, 480).confidence == published


def test_the_roi_is_the_box_in_whole_pixels():
    roi = head_pose_msg(head(box=(250.0, 140.0, 390.5, 300.2)), 640, 480).roi
    # floor of the top-left corner, ceil of the bottom-right one
    assert (roi.x_offset, roi.y_offset, roi.width, roi.height) == (250, 140, 141, 161)
    assert roi.do_rectify is False


def test_the_roi_is_clipped_to_the_image():
    roi = region_of_interest(np.array([-10.4, 20.6, 700.2, 500.0]), 640, 480)
    assert (roi.x_offset, roi.y_offset, roi.width, roi.height) == (0, 20, 640, 460)


def test_a_box_outside_the_image_has_an_empty_roi():
    roi = region_of_interest(np.array([700.0, 500.0, 800.0, 600.0]), 640, 480)
    assert (roi.x_offset, roi.y_offset, roi.width, roi.height) == (640, 480, 0, 0)


def test_head_pose_array_keeps_the_header_and_the_order():
    hdr = header()
    msg = head_pose_array(hdr, [head("0002", t=(0.3, 0.0, 2.0)), head("0001")], 640, 480)
    assert isinstance(msg, HeadPoseArray)
    assert msg.header == hdr
    assert [h.id for h in msg.heads] == ["0002", "0001"]
    assert msg.heads[0].pose.pose.position.z == 2.0
    assert head_pose_array(hdr, [], 640, 480).heads == []


# -- TF -------------------------------------------------------------------------------------------------------------


def test_face_transforms_are_face_in_the_camera_and_gaze_in_the_face():
    hdr = header()
    h = head("abcde")
    face, gaze = face_transforms(hdr, h, "face_", "gaze_")
    assert (face.header.frame_id, face.child_frame_id) == (FRAME, "face_abcde")
    assert (gaze.header.frame_id, gaze.child_frame_id) == ("face_abcde", "gaze_abcde")
    assert face.header.stamp == hdr.stamp and gaze.header.stamp == hdr.stamp
    tr = face.transform.translation
    assert (tr.x, tr.y, tr.z) == (0.1, -0.05, 1.2)
    r = face.transform.rotation
    np.testing.assert_allclose(matrix_from_quaternion_xyzw([r.x, r.y, r.z, r.w]), h.R, atol=1e-12)
    g = gaze.transform
    assert (g.translation.x, g.translation.y, g.translation.z) == (0.0, 0.0, 0.0)


def test_the_gaze_frame_looks_along_the_face_x_axis_in_the_optical_convention():
    h = head(ypr=(-35.0, 12.0, 0.0))
    _, gaze = face_transforms(header(), h, "face_", "gaze_")
    r = gaze.transform.rotation
    gaze_in_face = matrix_from_quaternion_xyzw([r.x, r.y, r.z, r.w])
    np.testing.assert_allclose(gaze_in_face[:, 2], [1.0, 0.0, 0.0], atol=1e-12)  # z: out of the face
    np.testing.assert_allclose(gaze_in_face[:, 0], [0.0, -1.0, 0.0], atol=1e-12)  # x: the person's right
    np.testing.assert_allclose(gaze_in_face[:, 1], [0.0, 0.0, -1.0], atol=1e-12)  # y: down
    # In the camera frame, the gaze z axis is the face's x axis.
    np.testing.assert_allclose((h.R @ gaze_in_face)[:, 2], h.R[:, 0], atol=1e-12)


def test_face_transforms_use_the_given_prefixes():
    face, gaze = face_transforms(header("base_camera"), head("7"), "person/head_", "person/eyes_")
    assert face.header.frame_id == "base_camera"
    assert face.child_frame_id == "person/head_7"
    assert (gaze.header.frame_id, gaze.child_frame_id) == ("person/head_7", "person/eyes_7")


# -- attention ------------------------------------------------------------------------------------------------------


def candidate(name, angle, distance, score, in_view, frame=FRAME, position=(0.0, 0.0, 0.0)) -> Candidate:
    return Candidate(name=name, frame=frame, angle_deg=angle, distance_m=distance, score=score, cone_deg=15.0,
                     in_view=in_view, position=np.array(position))


def attending_robot() -> FaceAttention:
    return FaceAttention(
        face_id="0001", target="robot", target_frame=FRAME, angle_deg=3.5, distance_m=1.2, score=0.95, dwell_s=2.25,
        looking_at_robot=True, mutual_gaze=True,
        candidates=[candidate("robot", 3.5, 1.2, 0.95, True),
                    candidate("screen", 40.0, 1.4, 0.0, False, frame="screen_link", position=(0.35, 0.0, 0.0))])


def attending_nothing() -> FaceAttention:
    return FaceAttention(face_id="0002", target="", target_frame="", angle_deg=math.nan, distance_m=math.nan,
                         score=0.0, dwell_s=0.0, looking_at_robot=False, mutual_gaze=False,
                         candidates=[candidate("robot", 70.0, 2.0, 0.0, False)])


def test_attention_array_reports_each_faces_target_and_candidates():
    hdr = header()
    msg = attention_array(hdr, [attending_robot(), attending_nothing()])
    assert msg.header == hdr
    assert [t.id for t in msg.targets] == ["0001", "0002"]
    a = msg.targets[0]
    assert (a.target, a.target_frame, a.looking_at_robot, a.mutual_gaze) == ("robot", FRAME, True, True)
    assert (a.angle_deg, a.distance_m, a.score, a.dwell_s) == (
        pytest.approx(3.5, **F32), pytest.approx(1.2, **F32), pytest.approx(0.95, **F32), 2.25)
    assert [(c.name, c.frame, c.in_view) for c in a.candidates] == [("robot", FRAME, True),
                                                                     ("screen", "screen_link", False)]
    assert a.candidates[1].angle_deg == 40.0
    assert a.candidates[1].distance_m == pytest.approx(1.4, **F32)
    assert a.candidates[0].score == pytest.approx(0.95, **F32)


def test_a_face_attending_nothing_has_nan_angle_and_distance():
    msg = attention_array(header(), [attending_nothing()])
    t = msg.targets[0]
    assert (t.target, t.target_frame) == ("", "")
    assert math.isnan(t.angle_deg) and math.isnan(t.distance_m)
    assert (t.score, t.dwell_s, t.looking_at_robot, t.mutual_gaze) == (0.0, 0.0, False, False)
    assert [c.name for c in t.candidates] == ["robot"]


def test_an_empty_attention_list_gives_an_empty_array():
    hdr = header()
    msg = attention_array(hdr, [])
    assert msg.header == hdr and msg.targets == []


def test_attention_event_names_the_change():
    hdr = header()
    msg = attention_event(hdr, AttentionEvent(face_id="0003", previous="robot", current="screen", stamp=12.5,
                                              previous_dwell_s=1.75))
    assert msg.header == hdr
    assert (msg.id, msg.previous_target, msg.target, msg.previous_dwell_s) == ("0003", "robot", "screen", 1.75)
    first = attention_event(hdr, AttentionEvent("0004", "", "robot", 13.0, 0.0))
    assert (first.previous_target, first.target, first.previous_dwell_s) == ("", "robot", 0.0)
