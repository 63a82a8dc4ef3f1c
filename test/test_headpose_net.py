"""Hopenet-family model descriptions: bin decoding, crops, and the ray-to-camera rotation."""

import numpy as np
import pytest

from headpose_ros.core.camera import CameraModel
from headpose_ros.core.headpose_net import BoxDistancePrior, camera_from_ray, rotation_along_ray
from headpose_ros.core.models import HEADPOSE_NETWORKS, HOPENET, WHENET, AngleBins, CropRule
from headpose_ros.core.rotation import FACING_CAMERA, angle_between_deg, camera_from_yaw_pitch_roll_deg


@pytest.mark.parametrize("model", list(HEADPOSE_NETWORKS.values()), ids=list(HEADPOSE_NETWORKS))
def test_bins_decode_to_their_centres_and_ranges(model):
    for bins in (model.yaw, model.pitch, model.roll):
        onehot = np.full((3, bins.count), -50.0)
        for row, k in enumerate((0, bins.count // 2, bins.count - 1)):
            onehot[row, k] = 50.0
        angle = bins.decode(onehot)
        np.testing.assert_allclose(angle, bins.offset_deg + bins.width_deg * np.array([0, bins.count // 2, bins.count - 1]),
                                   atol=1e-9)
        flat = bins.decode(np.zeros((1, bins.count)))
        assert flat[0] == pytest.approx(bins.offset_deg + bins.width_deg * (bins.count - 1) / 2)


def test_whenet_and_hopenet_ranges():
    """WHENet's yaw covers the full circle in 120 bins; everything else is +-99 deg in 66 bins."""
    assert (WHENET.yaw.count, WHENET.yaw.offset_deg, WHENET.yaw.offset_deg + 3 * 120) == (120, -180, 180)
    for bins in (WHENET.pitch, WHENET.roll, HOPENET.yaw, HOPENET.pitch, HOPENET.roll):
        assert (bins.count, bins.width_deg, bins.offset_deg) == (66, 3.0, -99.0)
    assert WHENET.outputs == ("yaw", "pitch", "roll") and WHENET.input.size == (224, 224)


def test_decoding_two_neighbouring_bins():
    bins = AngleBins("yaw", 66, 3.0, -99.0)
    logits = np.full((1, 66), -80.0)
    logits[0, 33] = logits[0, 34] = 5.0
    assert bins.decode(logits)[0] == pytest.approx(33 * 3 - 99 + 1.5)


def test_crop_rule_pads_each_side_by_its_fraction():
    crop = CropRule(left=0.2, top=0.1, right=0.2, bottom=0.1).apply(np.array([[100, 50, 200, 250]]))
    np.testing.assert_allclose(crop, [[80, 30, 220, 270]])


def test_zero_angles_face_the_camera_along_the_ray():
    np.testing.assert_allclose(rotation_along_ray(WHENET, np.zeros(3)), FACING_CAMERA, atol=1e-12)


@pytest.mark.parametrize("u, v", [(319.5, 239.5), (620.0, 240.0), (10.0, 20.0), (600.0, 460.0)])
def test_a_pose_round_trips_through_the_ray_frame(u, v):
    """The camera-frame rotation is recovered from angles measured relative to any viewing ray."""
    camera = CameraModel([[500.0, 0, 319.5], [0, 500.0, 239.5], [0, 0, 1]], [-0.2, 0.05, 0, 0, 0], 640, 480)
    truth = camera_from_yaw_pitch_roll_deg(25, -10, 8)
    to_camera = camera_from_ray(camera, u, v)
    along_ray = to_camera.T @ truth
    ypr = WHENET.convention.angles_deg(along_ray)  # the network convention's angles of it
    np.testing.assert_allclose(WHENET.convention.rotation(ypr), along_ray, atol=1e-12)
    assert angle_between_deg(to_camera @ rotation_along_ray(WHENET, ypr), truth) < 1e-6


def test_the_ray_rotation_points_the_optical_axis_at_the_pixel():
    camera = CameraModel([[400.0, 0, 320], [0, 400.0, 240], [0, 0, 1]], [], 640, 480)
    R = camera_from_ray(camera, 720.0, 240.0)  # 400 px right of centre: 45 degrees
    np.testing.assert_allclose(R @ [0, 0, 1], [np.sqrt(0.5), 0, np.sqrt(0.5)], atol=1e-12)
    assert angle_between_deg(np.eye(3), R) == pytest.approx(45)


def test_box_distance_prior():
    camera = CameraModel([[500.0, 0, 319.5], [0, 500.0, 239.5], [0, 0, 1]], [], 640, 480)
    prior = BoxDistancePrior(face_width_m=0.15, sellion_offset=-0.2, depth_rel_sigma=0.1)
    t, cov = prior.position(np.array([269.5, 189.5, 369.5, 289.5]), camera)  # 100 px wide, centred
    assert t[2] == pytest.approx(500 * 0.15 / 100)
    assert t[1] < 0  # the sellion is above the box centre
    assert np.sqrt(cov[2, 2]) == pytest.approx(0.1 * np.linalg.norm(t), rel=0.02)
