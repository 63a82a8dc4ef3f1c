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


def test_time_jumping_forward_resets_tracks_and_attention(engine, photo, camera):
    """A paused bag or a stalled camera: an hour later, nothing of before carries over (no dwell of an hour)."""
    frame = astronaut_frame(photo)
    first = run(engine, frame, camera, frames=10, t0=100.0)
    looking = [a for a in first.attention if a.target == "robot"]
    assert looking, "the astronaut looks at the camera"
    later = engine.process(frame, camera, 100.0 + 3600.0)
    assert "jumped forward by 3599.7" in later.reset and "tracking.max_frame_gap_s" in later.reset
    assert first.heads[0].track_id in later.ended and later.heads[0].track_id != first.heads[0].track_id
    assert all(a.dwell_s < 1.0 for a in later.attention)
    # Within the bound, frames are one stream.
    steady = engine.process(frame, camera, 100.0 + 3601.5)
    assert steady.reset == "" and steady.heads[0].track_id == later.heads[0].track_id


def test_a_pose_that_fails_the_last_check_is_reported_not_published(engine, photo, camera, monkeypatch):
    """Whatever a backend returns, a NaN pose never leaves the engine: the face is reported with the reason."""
    from headpose_ros.core.types import EstimateStatus

    frame = astronaut_frame(photo)
    real = engine.backend.estimate

    def broken(*args):
        estimates = real(*args)
        for e in estimates:
            e.measurement.t = np.array([np.nan, 0.0, 1.0])
        return estimates

    monkeypatch.setattr(engine.backend, "estimate", broken)
    result = run(engine, frame, camera)
    assert result.heads == [] and result.faces_detected == 1
    (rejection,) = result.rejected
    assert rejection.status is EstimateStatus.NOT_FINITE and "NaN" in rejection.detail


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


# --- property: whatever the intrinsics, stamps and live settings, poses pass the last check or there are none --

from hypothesis import HealthCheck, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

WILD = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64), st.sampled_from([0.0, -1.0, 1e-9, 1e12]))
LIVE_VALUES = st.dictionaries(
    st.sampled_from(["smoothing.position_min_cutoff", "smoothing.rotation_beta", "pnp.outlier_threshold",
                     "pnp.max_facing_angle_deg", "attention.min_dwell_s", "attention.max_distance_m",
                     "detection.score_threshold", "tracking.max_frame_gap_s", "landmarks.presence_threshold"]),
    WILD, max_size=3)


@st.composite
def cameras(draw):
    """Half of them a plausible camera (where faces are found and their poses checked), half anything at all."""
    if draw(st.booleans()):
        f = draw(st.floats(300.0, 1500.0))
        K = [[f, 0.0, draw(st.floats(250.0, 390.0))],
             [0.0, f * draw(st.floats(0.9, 1.1)), draw(st.floats(180.0, 300.0))], [0.0, 0.0, 1.0]]
        D = draw(st.lists(st.floats(-0.5, 0.5), min_size=5, max_size=5))
    else:
        wild = st.one_of(st.floats(-3000.0, 1e7), WILD)
        K = [[draw(wild), draw(st.sampled_from([0.0, 3.0, np.nan])), draw(wild)], [0.0, draw(wild), draw(wild)],
             [0.0, 0.0, draw(st.sampled_from([1.0, 1.0, 2.0, 0.0]))]]
        D = draw(st.lists(st.floats(-50.0, 50.0) | WILD, min_size=0, max_size=5))
        D = D if len(D) in (0, 4, 5) else (D + [0.0] * 4)[:4]
    return CameraModel(K, D, 640, 480, "cam")


@pytest.fixture(scope="module")
def video_engine(prepared_assets):
    return create_engine(single_frame_config(backend="landmarks"))


@settings(max_examples=80, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(camera=cameras(), stamps=st.lists(st.floats(-1e6, 1e9) | st.just(0.0), min_size=1, max_size=4),
       values=LIVE_VALUES)
def test_any_intrinsics_stamps_and_settings_give_sane_poses_or_none_with_a_reason(video_engine, photo, camera, stamps,
                                                                                    values):
    """No NaN and no exception out of the engine, ever: a pose passes the last check (core.guard), or there is
    none and a reason (refused intrinsics or settings, a rejection with its status)."""
    from headpose_ros.core.config import with_values
    from headpose_ros.core.engine import ConfigError
    from headpose_ros.core.guard import pose_problem
    from headpose_ros.core.types import EstimateStatus

    engine, frame = video_engine, astronaut_frame(photo)
    base = engine.config
    engine.reset()
    try:
        try:
            engine.apply(with_values(base, values))
        except ConfigError as exc:
            assert str(exc) and "\n" not in str(exc)  # refused by name, the settings stay
        for stamp in stamps:
            try:
                result = engine.process(frame, camera, stamp)
            except CameraModelError as exc:
                assert str(exc)  # refused intrinsics: no pose, and the reason
                event("intrinsics refused")
                continue
            event("poses" if result.heads else "rejected" if result.rejected else "no face")
            for head in result.heads:
                assert pose_problem(head.R, head.t, head.covariance, head.box, result.camera,
                                    engine._distance_prior) is None
                assert np.all(np.isfinite(head.yaw_pitch_roll_deg)) and 0 <= head.confidence <= 1
            for rejection in result.rejected:
                assert isinstance(rejection.status, EstimateStatus) and rejection.detail
            for attention in result.attention:
                assert np.isfinite(attention.dwell_s) and attention.dwell_s >= 0
                assert attention.dwell_s <= engine.config.tracking.max_frame_gap_s * len(stamps)
    finally:
        engine.apply(base)
        engine.reset()
