"""core.upright: a sideways or upside-down camera's image turned upright, and the results turned back exactly."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from headpose_ros.core.camera import CameraModel, CameraModelError
from headpose_ros.core.config import with_values
from headpose_ros.core.upright import Upright

from support import astronaut_frame, single_frame_config

TURNS = [0, 90, 180, 270]


def camera_with_distortion(model_size: int = 5) -> CameraModel:
    K = np.array([[610.0, 0.0, 300.5], [0.0, 600.0, 250.25], [0.0, 0.0, 1.0]])
    D = np.array([-0.12, 0.05, 0.003, -0.002, 0.01, 0.001, -0.002, 0.0005, 0.0012, -0.0004, 0.0008, 0.0003, 0, 0])
    return CameraModel(K, D[:model_size], 640, 480, "cam", "rational_polynomial" if model_size > 5 else "plumb_bob")


@pytest.mark.parametrize("degrees", TURNS)
@pytest.mark.parametrize("model_size", [5, 8, 12])
def test_the_turned_camera_sees_every_point_where_the_turned_image_has_it(degrees, model_size):
    camera = camera_with_distortion(model_size)
    upright = Upright(degrees, camera.width, camera.height)
    turned = upright.camera(camera)
    rng = np.random.default_rng(3)
    points = np.column_stack([rng.uniform(-0.4, 0.4, 50), rng.uniform(-0.3, 0.3, 50), rng.uniform(0.8, 3.0, 50)])
    zero = np.zeros(3)
    pixels, _ = cv2.projectPoints(points, zero, zero, camera.K, camera.opencv_distortion)
    turned_pixels, _ = cv2.projectPoints(points @ upright.Q.T, zero, zero, turned.K, turned.opencv_distortion)
    expected = pixels.reshape(-1, 2) @ upright.A[:2, :2].T + upright.A[:2, 2]
    np.testing.assert_allclose(turned_pixels.reshape(-1, 2), expected, atol=1e-6)
    assert (turned.width, turned.height) == ((480, 640) if degrees % 180 else (640, 480))


@pytest.mark.parametrize("degrees", TURNS)
def test_the_image_turns_clockwise_and_boxes_with_it(degrees):
    image = np.zeros((4, 6, 3), np.uint8)
    image[0, 0] = 255  # the top-left pixel
    upright = Upright(degrees, 6, 4)
    turned = upright.image(image)
    corner = np.argwhere(turned[:, :, 0] == 255)[0][::-1]  # (u, v) of where the top-left pixel went
    np.testing.assert_allclose(upright.A[:2, :2] @ [0, 0] + upright.A[:2, 2], corner)
    if degrees == 90:  # clockwise: the top-left corner goes to the top-right
        assert tuple(corner) == (3, 0)
    whole = upright.boxes(np.array([[0.0, 0.0, 6.0, 4.0]]))[0]
    np.testing.assert_allclose(whole, [0, 0, turned.shape[1], turned.shape[0]])


def test_a_tilted_sensor_model_cannot_be_turned():
    camera = camera_with_distortion(14)
    camera = CameraModel(camera.K, np.r_[camera.D[:12], 0.01, 0.0], 640, 480, "cam", "rational_polynomial")
    with pytest.raises(CameraModelError, match="tilted-sensor"):
        Upright(90, 640, 480).camera(camera)


@pytest.fixture(scope="module")
def upright_answer(photo):
    """The astronaut's pose from an upright camera: (frame, camera, head)."""
    from headpose_ros.pipeline import create_engine

    frame = astronaut_frame(photo)
    camera = CameraModel.from_field_of_view(640, 480, 60.0, "cam")
    heads = create_engine(single_frame_config()).process(frame, camera, 1.0).heads
    assert len(heads) == 1
    return frame, camera, heads[0]


@pytest.mark.parametrize("mounted, rotation", [(270, 90), (180, 180), (90, 270)])
def test_a_camera_mounted_sideways_reports_the_pose_in_its_own_optical_frame(upright_answer, mounted, rotation):
    """The camera rolled by `mounted` degrees sees the face turned; image_rotation turns it back upright, and the
    pose comes out in the rolled camera's frame: the upright pose turned by the same roll."""
    from headpose_ros.pipeline import create_engine

    frame, camera, head = upright_answer
    roll = Upright(mounted, camera.width, camera.height)
    seen, seen_camera = roll.image(frame), roll.camera(camera)
    engine = create_engine(with_values(single_frame_config(), {"image_rotation": rotation}))
    heads = engine.process(seen, seen_camera, 1.0).heads
    assert len(heads) == 1
    np.testing.assert_allclose(heads[0].R, roll.Q @ head.R, atol=1e-6)
    np.testing.assert_allclose(heads[0].t, roll.Q @ head.t, atol=1e-6)
    np.testing.assert_allclose(heads[0].box, roll.boxes(head.box.reshape(1, 4))[0], atol=1e-6)
    landmarks = head.landmarks_px @ roll.A[:2, :2].T + roll.A[:2, 2]
    np.testing.assert_allclose(heads[0].landmarks_px, landmarks, atol=1e-6)
    assert engine.process(seen, seen_camera, 2.0).camera.width == seen.shape[1]


@pytest.mark.parametrize("mounted", [90, 180, 270])
def test_the_group_photo_seen_by_a_turned_camera_gives_all_six_faces_only_with_image_rotation(photo, mounted):
    """Why the setting exists: the detector expects upright faces (before: 2, 0 and 1 of the 6 faces)."""
    from headpose_ros.pipeline import create_engine

    group = photo("t1")
    h, w = group.shape[:2]
    roll = Upright(mounted, w, h)
    seen, seen_camera = roll.image(group), roll.camera(CameraModel.from_field_of_view(w, h, 60.0, "cam"))
    assert len(create_engine(single_frame_config()).process(seen, seen_camera, 1.0).heads) < 6
    engine = create_engine(with_values(single_frame_config(), {"image_rotation": (360 - mounted) % 360}))
    assert len(engine.process(seen, seen_camera, 1.0).heads) == 6


def test_image_rotation_takes_quarter_turns_only():
    assert with_values(single_frame_config(), {"image_rotation": 45}).problems() == [
        "image_rotation must be one of: 0, 90, 180, 270, not 45"]
