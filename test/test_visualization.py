"""core.visualization: the annotated image draws each head where its pose projects, and what it attends."""

import numpy as np

from headpose_ros.core.attention import Candidate, FaceAttention
from headpose_ros.core.camera import CameraModel
from headpose_ros.core.rotation import camera_from_yaw_pitch_roll_deg
from headpose_ros.core.types import HeadPose
from headpose_ros.core.visualization import AXIS_COLOURS, BOX_COLOUR, GAZE_COLOUR, annotate

CAMERA = CameraModel.from_field_of_view(640, 480, 60.0)


def head(t=(0.0, 0.0, 0.6)):
    return HeadPose("0001", camera_from_yaw_pitch_roll_deg(30, 0, 0), np.array(t), np.eye(6),
                    np.array([250.0, 170.0, 390.0, 310.0]), 0.9, "landmarks")


def colour_near(canvas, uv, colour, radius=4):
    u, v = int(round(uv[0])), int(round(uv[1]))
    patch = canvas[max(0, v - radius):v + radius + 1, max(0, u - radius):u + radius + 1].reshape(-1, 3)
    return bool(np.any(np.all(np.abs(patch.astype(int) - colour) <= 30, axis=1)))


def test_box_axes_and_label_are_drawn_on_a_bgr_copy():
    image = np.full((480, 640, 3), 60, np.uint8)
    h = head()
    canvas = annotate(image, CAMERA, [h])
    assert canvas.shape == image.shape and image.max() == 60  # the input is untouched
    assert colour_near(canvas, (250, 240), BOX_COLOUR, radius=1)  # the box's left edge
    # The face's x axis (red) from the sellion, turned 30 deg: its tip projects where the pose says.
    tip = CAMERA.K @ (h.t + 0.08 * h.R[:, 0])
    assert colour_near(canvas, tip[:2] / tip[2], AXIS_COLOURS[0])
    assert np.any(np.all(canvas[312:360, 250:400] == 255, axis=2))  # white label text below the box


def test_an_attended_target_in_front_gets_a_line_and_a_ring():
    target = np.array([0.2, 0.0, 1.0])
    attended = Candidate("table", "camera_optical_frame", 3.0, 0.5, 0.9, 15.0, True, target)
    attention = {"0001": FaceAttention("0001", "table", "camera_optical_frame", 3.0, 0.5, 0.9, 1.2, False, False,
                                       [attended])}
    canvas = annotate(np.zeros((480, 640, 3), np.uint8), CAMERA, [head()], attention)
    ring = CAMERA.K @ target
    assert colour_near(canvas, ring[:2] / ring[2] + [12, 0], (0, 255, 0), radius=2)
    sellion = CAMERA.K @ head().t
    mid = (ring[:2] / ring[2] + sellion[:2] / sellion[2]) / 2
    assert colour_near(canvas, mid, GAZE_COLOUR, radius=2)
