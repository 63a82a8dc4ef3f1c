"""The ROS-free engine end to end, on real photos through the real models."""

import numpy as np
import pytest

from headpose_ros.core.camera import CameraModel, CameraModelError
from headpose_ros.pipeline import create_engine
from headpose_ros.core.rotation import angle_between_deg

from support import astronaut_frame, single_frame_config


@pytest.fixture(scope="module")
def engine(prepared_assets):
    return create_engine(single_frame_config())


def run(engine, frame, camera, frames=1, t0=0.0):
    engine.reset()
    result = None
    for k in range(frames):
        result = engine.process(frame, camera, t0 + k / 30)
    return result


def one_head(result):
    assert len(result.heads) == 1, result
    return result.heads[0]


def test_frontal_face_is_frontal_at_a_plausible_depth(engine, photo, camera):
    head = one_head(run(engine, astronaut_frame(photo), camera))
    yaw, pitch, roll = head.yaw_pitch_roll_deg
    assert abs(yaw) < 10 and abs(roll) < 10
    # A real face is ~0.15 m wide: the depth the box width implies at this focal length.
    expected_z = camera.fx * 0.15 / (head.box[2] - head.box[0])
    assert 0.6 * expected_z < head.t[2] < 1.5 * expected_z
    np.testing.assert_allclose(np.linalg.det(head.R), 1.0, atol=1e-9)
    assert 0.5 < head.confidence <= 1.0 and head.method == "landmarks"
    assert head.landmarks_px is not None and head.covariance.shape == (6, 6)


def test_doubling_the_focal_length_doubles_the_depth(engine, photo, camera):
    frame = astronaut_frame(photo)
    z1 = one_head(run(engine, frame, camera)).t[2]
    K2 = camera.K.copy()
    K2[0, 0] *= 2
    K2[1, 1] *= 2
    z2 = one_head(run(engine, frame, CameraModel(K2, camera.D, 640, 480))).t[2]
    assert z2 / z1 == pytest.approx(2.0, rel=0.1)


def test_group_photo_keeps_six_ids_over_ten_frames(photo, prepared_assets):
    engine = create_engine(single_frame_config(**{"tracking.min_hits": 3}))
    group = photo("t1")
    camera = CameraModel.from_field_of_view(group.shape[1], group.shape[0], 60)
    seen = []
    for k in range(10):
        result = engine.process(group, camera, k / 30)
        seen.append(sorted(h.track_id for h in result.heads))
    assert seen[0] == [] and seen[1] == []  # not published before min_hits detections
    assert all(ids == seen[2] for ids in seen[2:]) and len(set(seen[2])) == 6


def test_time_going_backwards_resets_tracks(engine, photo, camera):
    frame = astronaut_frame(photo)
    first = run(engine, frame, camera, frames=3, t0=100.0)
    later = engine.process(frame, camera, 50.0)
    assert "backwards" in later.reset and first.heads[0].track_id in later.ended
    assert later.heads[0].track_id != first.heads[0].track_id
    assert np.all(np.isfinite(later.heads[0].t))


def test_no_face_no_heads(engine, camera):
    result = run(engine, np.full((480, 640, 3), 90, np.uint8), camera)
    assert result.heads == [] and result.faces_detected == 0


def test_intrinsics_for_another_resolution_are_refused(engine, photo, camera):
    wide = CameraModel(camera.K, camera.D, 1280, 720)
    with pytest.raises(CameraModelError, match="not a pure resize"):
        engine.process(astronaut_frame(photo), wide, 0.0)
    with pytest.raises(CameraModelError, match="all zeros"):
        engine.process(astronaut_frame(photo), CameraModel(np.zeros((3, 3)), [], 640, 480), 0.0)


def test_stage_timings_are_reported(engine, photo, camera):
    result = run(engine, astronaut_frame(photo), camera)
    assert {"detect", "landmarks", "pnp", "track", "smooth", "total"} <= set(result.timings_ms)
    assert all(v >= 0 for v in result.timings_ms.values())


def test_a_4000x3000_frame_is_shrunk_for_processing_and_reported_at_full_resolution(photo, camera):
    """max_image_side_px: the pose of an upscaled frame matches the original's; boxes are in full-size pixels."""
    import cv2

    frame = astronaut_frame(photo)
    big = cv2.resize(frame, (4000, 3000), interpolation=cv2.INTER_CUBIC)
    big_camera = camera.scaled_to(4000, 3000)
    engine = create_engine(single_frame_config(max_image_side_px=1600))
    small = one_head(run(engine, frame, camera))
    large = one_head(run(engine, big, big_camera))
    np.testing.assert_allclose(large.box, small.box * 4000 / 640, rtol=0.05, atol=10)
    assert large.landmarks_px[:, 0].max() > 1000  # full-resolution pixels too
    assert angle_between_deg(large.R, small.R) < 3 and large.t[2] == pytest.approx(small.t[2], rel=0.05)
    # Without the limit the 12-megapixel frame gives the same answer, only slower.
    full = one_head(run(create_engine(single_frame_config(max_image_side_px=0)), big, big_camera))
    assert angle_between_deg(full.R, large.R) < 3


def test_attention_is_part_of_the_result(photo, camera, prepared_assets):
    """A face looking into the lens attends the robot (the camera by default) once min_dwell_s has passed."""
    engine = create_engine(single_frame_config(), log=lambda line: None)
    frame = astronaut_frame(photo)
    results = [engine.process(frame, camera, k / 30) for k in range(10)]
    first, last = results[0], results[-1]
    assert first.attention[0].face_id == first.heads[0].track_id and first.attention[0].target == ""
    assert last.attention[0].target == "robot" and last.attention[0].looking_at_robot
    assert last.attention[0].dwell_s == pytest.approx(9 / 30 - 0.2, abs=1 / 30 + 1e-9)
    events = [e for r in results for e in r.events]
    assert [(e.previous, e.current) for e in events] == [("", "robot")]
    assert last.camera is not None and last.camera.width == 640


def test_live_settings_apply_and_the_others_are_refused(photo, camera, prepared_assets):
    from headpose_ros.core.config import with_values
    from headpose_ros.core.engine import ConfigError

    engine = create_engine(single_frame_config(), log=lambda line: None)
    frame = astronaut_frame(photo)
    engine.apply(with_values(engine.config, {"detection.score_threshold": 0.999}))
    assert engine.process(frame, camera, 0.0).faces_detected == 0
    engine.apply(with_values(engine.config, {"detection.score_threshold": 0.5}))
    assert engine.process(frame, camera, 0.1).faces_detected == 1
    with pytest.raises(ConfigError, match="backend only changes with a restart"):
        engine.apply(with_values(engine.config, {"backend": "hopenet"}))
    with pytest.raises(ConfigError, match=r"attention.cone_half_angle_deg must be in \(0, 90\)"):
        engine.apply(with_values(engine.config, {"attention.cone_half_angle_deg": 95.0}))
    assert engine.config.detection.score_threshold == 0.5 and engine.config.backend == "landmarks"
