"""core.visualization: the annotated image draws each head where its pose projects, and what it attends."""

import numpy as np

from headpose_ros.core.attention import Candidate, FaceAttention
from headpose_ros.core.camera import CameraModel
from headpose_ros.core.rotation import camera_from_yaw_pitch_roll_deg
from headpose_ros.core.types import HeadPose
from headpose_ros.core.visualization import (AXIS_COLOURS, BOX_COLOUR, GAZE_COLOUR, annotate, label_lines, label_size,
                                             place_labels)

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


def crowd(n=6):
    """Six small faces side by side against the right edge, two rows, their labels bound to collide."""
    heads = []
    for k in range(n):
        x0, y0 = 550 + 15 * (k % 3), 180 + 50 * (k // 3)
        t = np.array([0.3 + 0.02 * k, 0.0, 1.5])
        heads.append(HeadPose(f"face{k}", camera_from_yaw_pitch_roll_deg(10 * k - 25, 5, 0), t, np.eye(6),
                              np.array([x0, y0, x0 + 40.0, y0 + 40.0]), 0.9, "landmarks"))
    return heads


def label_rects(heads, attention=None):
    lines = [label_lines(h.track_id, h.R, h.t, "-> robot 1.0s" if attention else "") for h in heads]
    return place_labels(np.array([h.box for h in heads]), np.array([label_size(text) for text in lines]), (640, 480))


def disjoint(a, b):
    return a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]


def test_crowded_labels_stay_inside_the_image_and_apart():
    rects = label_rects(crowd())
    assert rects.shape == (6, 4)
    assert np.all(rects[:, :2] >= 0) and np.all(rects[:, 2] <= 640) and np.all(rects[:, 3] <= 480)
    assert all(disjoint(rects[i], rects[j]) for i in range(6) for j in range(i + 1, 6))
    # Left where they want to be (below their boxes), they would leave the image and cover each other.
    naive = [(h.box[0], h.box[3] + 2, h.box[0] + r[2] - r[0], h.box[3] + 2 + r[3] - r[1]) for h, r in zip(crowd(), rects)]
    assert all(r[2] > 640 for r in naive) and not disjoint(naive[0], naive[1])


def test_the_labels_are_drawn_where_they_are_placed():
    heads = crowd()
    canvas = annotate(np.full((480, 640, 3), 60, np.uint8), CAMERA, heads)
    white = np.all(canvas == 255, axis=2)
    inside = np.zeros_like(white)
    for x0, y0, x1, y1 in label_rects(heads):
        assert white[y0:y1, x0:x1].sum() > 20  # a label's text is there
        inside[y0:y1, x0:x1] = True
    assert white.sum() > 0 and not np.any(white & ~inside)  # and no text anywhere else


def test_a_label_goes_below_its_box_or_above_it_at_the_bottom_edge():
    size = np.array([[100, 36]])
    below = place_labels(np.array([[250.0, 170.0, 390.0, 310.0]]), size, (640, 480))[0]
    assert tuple(below) == (250, 312, 350, 348)
    above = place_labels(np.array([[250.0, 400.0, 390.0, 470.0]]), size, (640, 480))[0]
    assert above[3] <= 400 and above[1] >= 0 and above[0] == 250
