"""The three backends on real photos and on renders of known pose, through the real networks.

Renders: the metric face model textured from the astronaut photo (evaluation.render),
drawn at a known camera-frame pose: exact ground truth for rotation and position.
"""

import numpy as np
import pytest

from headpose_ros.pipeline import create_engine
from headpose_ros.core import fusion
from headpose_ros.core.headpose_net import rotation_along_ray
from headpose_ros.core.models import WHENET
from headpose_ros.core.rotation import angle_between_deg, camera_from_yaw_pitch_roll_deg

from support import astronaut_frame, centred_frame, render_camera, single_frame_config, textured_astronaut


@pytest.fixture(scope="module")
def engines(prepared_assets):
    quiet = dict(log=lambda line: None)
    return {b: create_engine(single_frame_config(backend=b, **{"smoothing.enabled": False}), **quiet)
            for b in ("landmarks", "hopenet", "fusion")}


@pytest.fixture(scope="module")
def face(photo):
    return textured_astronaut(photo)


def estimate(engine, image, camera):
    engine.reset()
    result = engine.process(image, camera, 0.0)
    assert len(result.heads) == 1, (result.rejected, result.faces_detected)
    return result.heads[0]


# Mirroring about the principal point mirrors the camera-frame pose: yaw and roll change sign,
# pitch stays. Tolerances (yaw sum, roll sum, pitch difference): the face mesh is not exactly
# mirror-equivariant (a few degrees on these photos), the networks a little less so.
MIRROR_TOLERANCE = {"landmarks": (8, 5, 5), "hopenet": (8, 6, 6), "fusion": (8, 6, 6)}


@pytest.mark.parametrize("backend, name", [("landmarks", "obama2"), ("landmarks", "obama3"), ("landmarks", "biden"),
                                           ("hopenet", "obama3"), ("hopenet", "obama2"),
                                           ("fusion", "obama3"), ("fusion", "obama2")])
def test_mirroring_flips_yaw_and_roll(engines, photo, backend, name):
    camera = render_camera()
    a = estimate(engines[backend], centred_frame(photo(name)), camera).yaw_pitch_roll_deg
    b = estimate(engines[backend], centred_frame(photo(name), mirror=True), camera).yaw_pitch_roll_deg
    yaw_sum, roll_sum, pitch_diff = MIRROR_TOLERANCE[backend]
    assert abs(a[0]) > 8, "needs a turned face to be meaningful"
    assert np.sign(a[0]) == -np.sign(b[0]) and abs(a[0] + b[0]) < yaw_sum
    assert abs(a[2] + b[2]) < roll_sum and b[1] == pytest.approx(a[1], abs=pitch_diff)


@pytest.mark.parametrize("backend, theta", [(b, t) for b in ("landmarks", "hopenet", "fusion") for t in (-25, 15, 30)]
                         + [("landmarks", -10)])
def test_in_plane_rotation_changes_roll_by_the_angle(engines, photo, backend, theta):
    """Rotating the image about the principal point is rolling the camera about its optical axis."""
    camera = render_camera()
    base = estimate(engines[backend], astronaut_frame(photo), camera)
    rolled = estimate(engines[backend], astronaut_frame(photo, angle_deg=theta), camera)
    assert rolled.yaw_pitch_roll_deg[2] - base.yaw_pitch_roll_deg[2] == pytest.approx(theta, abs=5)
    if backend == "landmarks":
        # The whole rotation, not only roll: R' = Rz(-theta) R in the optical frame (v points down).
        c, s = np.cos(np.radians(-theta)), np.sin(np.radians(-theta))
        expected = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ base.R
        assert angle_between_deg(rolled.R, expected) < 5


def test_the_network_agrees_with_landmark_pnp_on_real_photos(engines, photo):
    """Two independent methods, one camera frame: rotations within 12 deg, depths within 15%."""
    for name in ("astronaut", "obama", "obama3", "grace_hopper"):
        image = photo(name)
        camera = render_camera(image.shape[1], image.shape[0])
        a, b = estimate(engines["landmarks"], image, camera), estimate(engines["hopenet"], image, camera)
        assert angle_between_deg(a.R, b.R) < 12, name
        assert b.t[2] == pytest.approx(a.t[2], rel=0.15), name


YAWS = (-75, -60, -45, -30, 0, 30, 45, 60, 75)


@pytest.fixture(scope="module")
def yaw_sweep(engines, face):
    """Rotation error (deg) per backend and yaw on renders at 0.6 m in front of the camera."""
    camera = render_camera()
    errors = {b: {} for b in engines}
    for yaw in YAWS:
        truth = camera_from_yaw_pitch_roll_deg(yaw, 0, 0)
        image, _ = face.render(truth, np.array([0.0, 0.0, 0.6]), camera)
        for backend, engine in engines.items():
            errors[backend][yaw] = angle_between_deg(estimate(engine, image, camera).R, truth)
    return errors


def test_network_backends_keep_tracking_where_landmarks_fail(yaw_sweep):
    for backend in ("hopenet", "fusion"):
        assert max(yaw_sweep[backend].values()) < 10, (backend, yaw_sweep[backend])
    # The face mesh's landmarks collapse toward the profile: PnP falls 20+ deg short at 75 deg.
    assert yaw_sweep["landmarks"][75] > 20 and yaw_sweep["landmarks"][-75] > 20, yaw_sweep["landmarks"]
    assert yaw_sweep["hopenet"][75] < yaw_sweep["landmarks"][75] / 2


def test_a_face_at_the_image_edge_gets_the_same_rotation_as_at_the_centre(engines, face):
    """The network sees the face along its viewing ray; the backend turns that into the camera frame."""
    camera = render_camera()
    truth = camera_from_yaw_pitch_roll_deg(15, 5, 0)
    centre_img, _ = face.render(truth, np.array([0.0, 0.0, 0.6]), camera)
    edge_img, _ = face.render(truth, np.array([0.28, 0.0, 0.6]), camera)  # about 25 deg off axis
    centre = estimate(engines["hopenet"], centre_img, camera)
    edge = estimate(engines["hopenet"], edge_img, camera)
    assert angle_between_deg(centre.R, truth) < 8 and angle_between_deg(edge.R, truth) < 8
    assert angle_between_deg(edge.R, centre.R) < 6
    # Without the ray correction the edge face would be off by about the ray's angle.
    network = engines["hopenet"].backend.network
    raw = network.estimate(edge_img, np.array([edge.box]))
    uncorrected = rotation_along_ray(WHENET, raw.ypr_deg[0])
    assert angle_between_deg(uncorrected, truth) > 18


def test_hopenet_position_and_covariance(engines, face):
    camera = render_camera()
    truth_t = np.array([0.05, -0.02, 0.8])
    image, _ = face.render(camera_from_yaw_pitch_roll_deg(0, 0, 0), truth_t, camera)
    head = estimate(engines["hopenet"], image, camera)
    assert head.method == "hopenet"
    assert np.linalg.norm(head.t - truth_t) < 0.1 * truth_t[2]
    sd = np.sqrt(np.diag(head.covariance))
    assert np.all(sd > 0) and sd[2] > sd[0]  # depth from box size is the least certain
    # The rotation's: the network's measured error near frontal, about the face's own axes (core.fusion).
    about_face_axes = np.degrees(np.sqrt(np.diag(head.R.T @ head.covariance[3:, 3:] @ head.R)))
    np.testing.assert_allclose(about_face_axes, fusion.network_sigma_deg(WHENET.mae_deg, 0.0), rtol=0.15)


def test_faces_of_a_frame_go_through_the_network_in_one_batch(engines, photo):
    group = photo("t1")
    network = engines["hopenet"].backend.network
    assert network.runtime.accepts_batch(WHENET.input.name)
    boxes = engines["hopenet"].detector.detect(group).boxes
    together = network.estimate(group, boxes).ypr_deg
    alone = np.concatenate([network.estimate(group, boxes[i:i + 1]).ypr_deg for i in range(len(boxes))])
    assert len(boxes) == 6
    np.testing.assert_allclose(together, alone, atol=1e-3)


def test_fusion_weighs_both_estimators_and_trusts_the_network_toward_a_profile(engines, face):
    camera = render_camera()
    truth_t = np.array([0.0, 0.0, 0.6])
    shares = {}
    for yaw in (0, 70):
        image, _ = face.render(camera_from_yaw_pitch_roll_deg(yaw, 0, 0), truth_t, camera)
        fused = estimate(engines["fusion"], image, camera)
        lm = estimate(engines["landmarks"], image, camera)
        hn = estimate(engines["hopenet"], image, camera)
        assert fused.method == "fusion"
        apart = angle_between_deg(lm.R, hn.R)
        to_lm, to_net = angle_between_deg(fused.R, lm.R), angle_between_deg(fused.R, hn.R)
        assert apart > 1 and to_lm + to_net == pytest.approx(apart, abs=0.5)  # between the two, not beside them
        shares[yaw] = to_lm / apart  # 0: the landmarks' rotation, 1: the network's
        # The fused estimate is surer than the network alone.
        assert np.trace(fused.covariance[3:, 3:]) < np.trace(hn.covariance[3:, 3:])
        # Position fitted to the landmarks with the fused rotation beats the box-size prior.
        assert np.linalg.norm(fused.t - truth_t) < 0.7 * np.linalg.norm(hn.t - truth_t)
    assert 0.2 < shares[0] < 0.8 and shares[70] > 0.85, shares


# Up to 70 deg: beyond, the render is no longer a head (it has no far side), and the network's own roll
# reading moves by 2-3 deg between steps.
SWEEP_YAWS = tuple(range(-70, 71, 5))


def test_fusion_does_not_jump_as_the_head_turns(engines, face):
    """Sweeping yaw across the range: fused pitch and roll (truth 0) change < 1.5 deg between neighbouring steps.

    Where the network's own reading moves by more than that between two steps (its roll, by 1.5 deg
    once here), the fused one may move as much as the network's does, plus a quarter degree.
    """
    camera = render_camera()
    fused, net = [], []
    for yaw in SWEEP_YAWS:
        image, _ = face.render(camera_from_yaw_pitch_roll_deg(yaw, 0, 0), np.array([0.0, 0.0, 0.6]), camera)
        fused.append(estimate(engines["fusion"], image, camera).yaw_pitch_roll_deg)
        net.append(estimate(engines["hopenet"], image, camera).yaw_pitch_roll_deg)
    steps = np.abs(np.diff(np.array(fused), axis=0))[:, 1:]
    allowed = np.maximum(1.5, np.abs(np.diff(np.array(net), axis=0))[:, 1:] + 0.25)
    assert np.all(steps < allowed), np.round(np.array(fused), 1).tolist()
    assert np.abs(np.array(fused)[:, 1:]).max() < 4  # and near the truth throughout


# Where the face is (metres, camera frame): on the axis, above it, to the side, in a corner (17-25 deg off axis).
LOOKING_INTO_THE_LENS_AT = ((0.0, 0.0, 0.7), (0.0, -0.22, 0.7), (0.25, 0.0, 0.7), (-0.2, 0.16, 0.7))


@pytest.mark.parametrize("backend", ["landmarks", "hopenet", "fusion"])
def test_a_face_looking_into_the_lens_reads_zero_anywhere_in_the_image(engines, face, backend):
    """HeadPose angles are relative to the line of sight: 0/0/0 wherever the face is; the rotation stays exact."""
    camera = render_camera()
    for position in LOOKING_INTO_THE_LENS_AT:
        t = np.array(position)
        truth = camera_from_yaw_pitch_roll_deg(0, 0, 0, position=t)
        head = estimate(engines[backend], face.render(truth, t, camera)[0], camera)
        assert np.all(np.abs(head.yaw_pitch_roll_deg) < 6), (position, head.yaw_pitch_roll_deg)
        assert angle_between_deg(head.R, truth) < 6, position
        off_axis = np.degrees(np.arctan2(np.hypot(t[0], t[1]), t[2]))
        # Relative to the optical axis the same face is turned by the angle of its line of sight.
        assert np.degrees(np.linalg.norm(np.radians(head.optical_yaw_pitch_roll_deg))) == \
            pytest.approx(off_axis, abs=6), position


@pytest.mark.parametrize("theta", [-45, 50])
def test_the_network_sees_a_tilted_face_levelled(engines, photo, theta, monkeypatch):
    """A face turned in the image plane beyond LEVEL_MIN_ROLL_DEG is levelled by its eye line before the
    network sees it, and the turn is given back: the roll follows the image (here by 45-50 deg), which
    the network alone does not."""
    from headpose_ros.core import headpose_net

    camera = render_camera()
    base = estimate(engines["hopenet"], astronaut_frame(photo), camera)
    turned = astronaut_frame(photo, angle_deg=theta)
    rolled = estimate(engines["hopenet"], turned, camera)
    assert rolled.yaw_pitch_roll_deg[2] - base.yaw_pitch_roll_deg[2] == pytest.approx(theta, abs=5)
    monkeypatch.setattr(headpose_net, "LEVEL_MIN_ROLL_DEG", 90.0)  # never level: the network on its own
    unlevelled = estimate(engines["hopenet"], turned, camera)
    assert abs(unlevelled.yaw_pitch_roll_deg[2] - base.yaw_pitch_roll_deg[2] - theta) > 8


def test_mirror_average_negates_the_mirror_images_yaw_and_roll_and_wraps_yaw():
    from headpose_ros.core.headpose_net import mirror_average

    out = mirror_average(np.array([[10.0, 5.0, 3.0], [179.0, -20.0, 0.0]]),
                         np.array([[-14.0, 7.0, -1.0], [179.0, -22.0, 4.0]]))
    np.testing.assert_allclose(out[0], [12.0, 6.0, 2.0])
    assert abs(out[1, 0]) == pytest.approx(180.0) and out[1, 1:] == pytest.approx([-21.0, -2.0])


def test_with_its_mirror_image_the_network_reads_a_mirrored_face_exactly_mirrored(engines, photo):
    """On its own WHENet reads a face and its mirror image a few degrees apart; averaged with the mirror
    reading, the two are exact mirrors (same crops, reversed), as a face and its mirror image are."""
    network = engines["hopenet"].backend.network
    frame = centred_frame(photo("obama3"))
    W = frame.shape[1]
    box = np.round(engines["hopenet"].detector.detect(frame).boxes[:1])
    flipped_box = np.array([[W - box[0, 2], box[0, 1], W - box[0, 0], box[0, 3]]])
    flipped = np.ascontiguousarray(frame[:, ::-1])
    plain = [network.estimate(frame, box).ypr_deg[0], network.estimate(flipped, flipped_box).ypr_deg[0]]
    both = [network.estimate(frame, box, mirror=True).ypr_deg[0],
            network.estimate(flipped, flipped_box, mirror=True).ypr_deg[0]]
    assert abs(both[0][0]) > 8, "needs a turned face to be meaningful"
    np.testing.assert_allclose(both[1], both[0] * [-1, 1, -1], atol=0.05)
    assert np.abs(plain[1] - plain[0] * [-1, 1, -1]).max() > 0.5  # not trivially so


def test_the_network_reads_mirror_images_where_its_setting_says(engines):
    from headpose_ros.core.config import with_values

    backend = engines["hopenet"].backend
    config = engines["hopenet"].config
    still = {"tracking.static_image_mode": True}
    try:
        assert backend.mirror is False  # the default: never (it doubles the network's time)
        backend.apply(with_values(config, {**still, "hopenet.mirror": "still"}))
        assert backend.mirror is True
        backend.apply(with_values(config, {"hopenet.mirror": "still"}))  # video
        assert backend.mirror is False
        backend.apply(with_values(config, {"hopenet.mirror": "always"}))
        assert backend.mirror is True
    finally:
        backend.apply(config)
