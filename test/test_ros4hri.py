"""The ROS4HRI (REP-155) topics, read as a ROS4HRI client reads them (hri_msgs types, over DDS), and the face
images and gaze helpers behind them."""

from __future__ import annotations

import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
hri_msgs = pytest.importorskip("hri_msgs.msg", reason="hri_msgs is built by `make setup` (or installed by rosdep)")

from sensor_msgs.msg import Image  # noqa: E402

from headpose_ros.core.camera import CameraModel  # noqa: E402
from headpose_ros.pipeline import create_engine  # noqa: E402
from headpose_ros.ros.ros4hri import eye_line_angle_deg, face_image, gaze_receiver, ros4hri_problems  # noqa: E402
from headpose_ros.tools.ros_harness import CameraClient, NodeProcess, default_params_file, stamp_now  # noqa: E402

from support import astronaut_frame, single_frame_config  # noqa: E402

pytestmark = pytest.mark.ros


def test_ids_must_be_able_to_name_topics_and_frames_must_be_rep155s():
    assert ros4hri_problems("face_", "gaze_", "", "random") == []
    assert ros4hri_problems("face_", "gaze_", "left_", "sequential") == []
    (problem,) = ros4hri_problems("face_", "gaze_", "", "sequential")
    assert "ids here would be like '0001'" in problem
    (problem,) = ros4hri_problems("head_", "gaze_", "", "random")
    assert "face_frame_prefix 'face_'" in problem


def test_gaze_receivers_are_the_robot_or_another_face():
    assert gaze_receiver("robot") == ""
    assert gaze_receiver("face_abcde") == "abcde"
    assert gaze_receiver("table") is None and gaze_receiver("") is None


def test_a_face_box_becomes_a_centred_padded_square():
    rgb = np.zeros((100, 200, 3), np.uint8)
    rgb[20:60, 50:130] = (255, 0, 0)  # a red 80 x 40 box
    bgr = face_image(rgb, np.array([50, 20, 130, 60]), 64)
    assert bgr.shape == (64, 64, 3)
    assert (bgr[32, 32] == (0, 0, 255)).all()  # red, in BGR
    assert (bgr[2, 32] == 0).all() and (bgr[61, 32] == 0).all()  # padded above and below
    assert (bgr[32, 1] == (0, 0, 255)).all() and (bgr[32, 62] == (0, 0, 255)).all()  # fills the width


@pytest.mark.parametrize("angle", [-25.0, 20.0])
def test_the_aligned_face_levels_the_eyes(photo, angle):
    """A face turned by `angle` degrees counter-clockwise on screen: its eye line is measured as turned by that
    much, and turning it back levels the eyes."""
    frame = astronaut_frame(photo, angle_deg=angle)
    camera = CameraModel.from_field_of_view(640, 480, 60.0, "cam")
    head = create_engine(single_frame_config()).process(frame, camera, 1.0).heads[0]
    assert eye_line_angle_deg(head) == pytest.approx(angle, abs=4.0)
    upright = create_engine(single_frame_config()).process(astronaut_frame(photo), camera, 1.0).heads[0]
    assert abs(eye_line_angle_deg(upright)) < 4.0


def test_ros4hri_topics_as_a_client_reads_them(ros, photo):
    IdsList, Roi, Gaze = hri_msgs.IdsList, hri_msgs.NormalizedRegionOfInterest2D, hri_msgs.Gaze
    camera = CameraModel.from_field_of_view(640, 480, 60.0, "hri_optical_frame")
    frame = astronaut_frame(photo)
    blank = np.full_like(frame, 40)
    params = {"ros4hri.enabled": True, "tracking.min_hits": 1, "tracking.max_misses": 2,
              "ros4hri.face_image_size": 96}
    with NodeProcess(default_params_file(), params=params, name="hri_node",
                     remaps={"image": "/hri/image_raw", "camera_info": "/hri/camera_info"}) as proc:
        client = CameraClient("/hri/image_raw", "/hri/camera_info", "/hri_node/heads", name="hri_client",
                              expect_tf=True)
        tracked = client.record(IdsList, "/humans/faces/tracked", depth=50)
        gazing = client.record(Gaze, "/humans/interactions/gazing", depth=50)
        try:
            client.wait_for_node(proc, timeout=90)
            face_id = None
            for _ in range(60):
                client.publish_frame(frame, camera, stamp_now(), "hri_optical_frame")
                if client.wait_until(lambda: any(m.ids for _, m in tracked), timeout=0.3):
                    face_id = next(m.ids[0] for _, m in tracked if m.ids)
                    break
            assert face_id is not None, proc.output()[-2000:]
            # A client subscribes to the face's own topics once it sees the id (as pyhri does).
            rois = client.record(Roi, f"/humans/faces/{face_id}/roi", depth=10, expected=False)
            cropped = client.record(Image, f"/humans/faces/{face_id}/cropped", depth=10, expected=False)
            aligned = client.record(Image, f"/humans/faces/{face_id}/aligned", depth=10, expected=False)
            for _ in range(80):
                client.publish_frame(frame, camera, stamp_now(), "hri_optical_frame")
                time.sleep(0.08)
                if rois and cropped and aligned and gazing:
                    break
            heads = [m for _, m in client.received()[0] if m.heads]
            tf_children = {t.child_frame_id for _, m in client.received()[1] for t in m.transforms}
            # The face goes: the id leaves the tracked list and its topics go away.
            for _ in range(40):
                client.publish_frame(blank, camera, stamp_now(), "hri_optical_frame")
                time.sleep(0.08)
                if tracked and not tracked[-1][1].ids and client.count_publishers(f"/humans/faces/{face_id}/roi") == 0:
                    break
            roi_publishers_after = client.count_publishers(f"/humans/faces/{face_id}/roi")
            last_tracked = tracked[-1][1].ids
        finally:
            client.close()
    assert face_id.startswith("hri_node_") and len(face_id) == len("hri_node_") + 5
    assert {f"face_{face_id}", f"gaze_{face_id}"} <= tf_children
    assert all(h.id == face_id for m in heads for h in m.heads)
    roi = rois[-1][1]
    box = next(h.roi for m in reversed(heads) for h in m.heads if m.header.stamp == roi.header.stamp)
    assert roi.header.frame_id == "hri_optical_frame"
    assert roi.xmin == pytest.approx(box.x_offset / 640, abs=2e-3)
    assert roi.xmax == pytest.approx((box.x_offset + box.width) / 640, abs=2e-3)
    assert roi.ymin == pytest.approx(box.y_offset / 480, abs=2e-3) and 0 < roi.c <= 1
    for image in (cropped[-1][1], aligned[-1][1]):
        assert (image.width, image.height, image.encoding) == (96, 96, "bgr8")
        pixels = np.frombuffer(bytes(image.data), np.uint8).reshape(96, 96, 3)
        assert pixels[40:56, 40:56].mean() > 30  # the face, not padding
    assert all(g.sender == face_id and g.receiver == "" for _, g in gazing)  # she looks at the camera (robot)
    assert gazing
    assert last_tracked == [] and roi_publishers_after == 0
