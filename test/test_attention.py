"""The engine's attention logic on constructed poses (camera optical frame, metres, seconds)."""

import math

import numpy as np
import pytest

from headpose_ros.core.attention import (ROBOT, AttentionTracker, RobotGaze, TargetPoint, attention_score,
                                         gaze_geometry)
from headpose_ros.core.config import AttentionConfig
from headpose_ros.core.camera import CameraModel
from headpose_ros.core.types import HeadPose
from headpose_ros.core.headpose_net import camera_from_ray
from headpose_ros.core.rotation import camera_from_yaw_pitch_roll_deg, rotation_between

CAMERA = TargetPoint(ROBOT, "camera_optical_frame", np.zeros(3))
FRAME = 1 / 30


def head(face_id, t, yaw=0.0, pitch=0.0, towards=None):
    """A head at t whose gaze (face x) points at `towards`, or at the camera turned by yaw/pitch."""
    t = np.asarray(t, dtype=float)
    if towards is not None:
        R = rotation_between(np.array([0.0, 0.0, -1.0]), np.asarray(towards, float) - t) @ camera_from_yaw_pitch_roll_deg(0, 0, 0)
    else:
        # Facing the camera along the ray through the sellion, then turned.
        to_camera = rotation_between(np.array([0.0, 0.0, 1.0]), t)
        R = to_camera @ camera_from_yaw_pitch_roll_deg(yaw, pitch, 0)
    return HeadPose(face_id, R, t, np.eye(6), np.array([0, 0, 10, 10.0]), 1.0, "landmarks")


def run(tracker, frames, targets=(CAMERA,), start=0.0, **kw):
    """Feed a list of head lists, one per frame at 30 Hz; return the per-frame attention and every event."""
    out, events = [], []
    for i, heads in enumerate(frames):
        attention, ev = tracker.update(heads, list(targets), start + i * FRAME, **kw)
        out.append({a.face_id: a for a in attention})
        events += ev
    return out, events


def test_a_target_dead_ahead_is_at_zero_degrees_with_full_score():
    h = head("a", [0.1, -0.05, 1.2])
    angle, distance = gaze_geometry(h.R, h.t, np.zeros((1, 3)))
    assert angle[0] == pytest.approx(0, abs=1e-6) and distance[0] == pytest.approx(np.linalg.norm(h.t))
    assert attention_score(0.0, 1.0, 15.0, 4.0) == pytest.approx(1.0)
    assert attention_score(15.0, 1.0, 15.0, 4.0) == pytest.approx(0.5)  # the cone's edge
    assert attention_score(30.0, 1.0, 15.0, 4.0) == pytest.approx(0.0)
    assert attention_score(0.0, 3.0, 15.0, 4.0) == pytest.approx(0.5)  # halfway from 2 m to 4 m


def test_looking_at_the_camera_is_attending_the_robot_after_the_dwell():
    tracker = AttentionTracker(AttentionConfig(min_dwell_s=0.2))
    frames, events = run(tracker, [[head("a", [0, 0, 1.0])]] * 12)
    assert frames[0]["a"].target == ""  # not before min_dwell_s
    last = frames[-1]["a"]
    assert last.target == ROBOT and last.looking_at_robot and last.angle_deg < 1e-6
    assert last.dwell_s == pytest.approx(11 * FRAME - 6 * FRAME, abs=1e-9)  # taken at 0.2 s, now 11 frames in
    assert [(e.previous, e.current) for e in events] == [("", ROBOT)]


def test_a_target_20_degrees_off_with_a_15_degree_cone_is_not_attended():
    tracker = AttentionTracker(AttentionConfig(cone_half_angle_deg=15.0))
    frames, events = run(tracker, [[head("a", [0, 0, 1.0], yaw=20)]] * 20)
    a = frames[-1]["a"]
    assert a.target == "" and not a.looking_at_robot and math.isnan(a.angle_deg) and a.dwell_s == 0
    robot = a.candidates[0]
    assert robot.name == ROBOT and robot.angle_deg == pytest.approx(20, abs=1e-6) and not robot.in_view
    assert 0 < robot.score < 0.5 and events == []


def test_a_one_frame_blip_does_not_flip_the_target():
    tracker = AttentionTracker(AttentionConfig(min_dwell_s=0.2, release_s=0.3))
    table = TargetPoint("table", "camera_optical_frame", np.array([0.5, 0.3, 1.0]))
    at = [head("a", [0, 0, 1.0])]
    away = [head("a", [0, 0, 1.0], towards=table.position)]
    frames, events = run(tracker, [at] * 10 + [away] + [at] * 10, targets=(CAMERA, table))
    assert all(f["a"].target == ROBOT for f in frames[6:])  # through the blip
    assert [(e.previous, e.current) for e in events] == [("", ROBOT)]
    # A sustained turn to the table: it takes over after min_dwell_s.
    frames, events = run(tracker, [away] * 10, targets=(CAMERA, table), start=21 * FRAME)
    assert frames[-1]["a"].target == "table"
    assert [(e.previous, e.current) for e in events] == [(ROBOT, "table")]
    assert events[0].previous_dwell_s > 0.5


def test_dwell_accumulates_and_resets():
    tracker = AttentionTracker(AttentionConfig(min_dwell_s=0.1, release_s=0.2))
    look = [head("a", [0, 0, 1.0])]
    away = [head("a", [0, 0, 1.0], yaw=60)]
    frames, events = run(tracker, [look] * 30 + [away] * 15 + [look] * 10)
    dwell = [f["a"].dwell_s for f in frames]
    assert dwell[29] > dwell[20] > dwell[10] > 0  # grows while looking
    assert dwell[44] == 0 and frames[44]["a"].target == ""  # released while away
    assert 0 < dwell[-1] < dwell[29]  # starts again from the new look
    assert [(e.previous, e.current) for e in events] == [("", ROBOT), (ROBOT, ""), ("", ROBOT)]
    assert events[1].previous_dwell_s == pytest.approx(dwell[29] + FRAME * 7, abs=0.1)


def test_two_faces_facing_each_other_attend_each_other():
    a_pos, b_pos = np.array([-0.4, 0.0, 1.5]), np.array([0.4, 0.0, 1.5])
    frames, _ = run(AttentionTracker(), [[head("a", a_pos, towards=b_pos), head("b", b_pos, towards=a_pos)]] * 10)
    a, b = frames[-1]["a"], frames[-1]["b"]
    assert a.target == "face_b" and b.target == "face_a" and a.target_frame == "face_b"
    assert a.angle_deg == pytest.approx(0, abs=1e-6) and a.distance_m == pytest.approx(0.8)
    assert not a.looking_at_robot
    # With other faces not counted as targets, neither attends anything.
    frames, _ = run(AttentionTracker(AttentionConfig(faces_as_targets=False)),
                    [[head("a", a_pos, towards=b_pos), head("b", b_pos, towards=a_pos)]] * 10)
    assert frames[-1]["a"].target == "" and frames[-1]["b"].target == ""


def test_far_targets_and_per_target_cones():
    tracker = AttentionTracker(AttentionConfig(max_distance_m=2.0))
    frames, _ = run(tracker, [[head("a", [0, 0, 2.5])]] * 10)
    assert frames[-1]["a"].target == ""  # the robot is 2.5 m away
    wide = TargetPoint(ROBOT, "camera_optical_frame", np.zeros(3), cone_half_angle_deg=30.0)
    frames, _ = run(AttentionTracker(), [[head("a", [0, 0, 1.0], yaw=20)]] * 10, targets=(wide,))
    assert frames[-1]["a"].target == ROBOT


def test_mutual_gaze_needs_the_robot_to_look_back():
    person = [head("a", [0.0, 0.0, 1.0])]
    ahead = RobotGaze(np.zeros(3), np.array([0.0, 0.0, 1.0]))
    aside = RobotGaze(np.zeros(3), camera_from_ray(CameraModel.from_field_of_view(640, 480, 60), 630, 240)[:, 2])
    frames, _ = run(AttentionTracker(), [person] * 10, robot_gaze=ahead)
    assert frames[-1]["a"].mutual_gaze
    frames, _ = run(AttentionTracker(), [person] * 10, robot_gaze=aside)
    assert frames[-1]["a"].looking_at_robot and not frames[-1]["a"].mutual_gaze
    frames, _ = run(AttentionTracker(), [person] * 10)
    assert not frames[-1]["a"].mutual_gaze


def test_ended_tracks_and_resets_forget_their_state():
    tracker = AttentionTracker(AttentionConfig(min_dwell_s=0.0))
    run(tracker, [[head("a", [0, 0, 1.0])]] * 3)
    tracker.forget(["a"])
    frames, events = run(tracker, [[head("a", [0, 0, 1.0])]], start=1.0)
    assert frames[0]["a"].dwell_s == 0 and [(e.previous, e.current) for e in events] == [("", ROBOT)]


def test_settings_are_checked():
    assert AttentionConfig().problems() == []
    assert len(AttentionConfig(cone_half_angle_deg=0, max_distance_m=-1, exit_cone_factor=0.5).problems()) == 3


def test_the_scene_places_targets_in_the_camera_frame_and_reports_the_others():
    from headpose_ros.core.attention import place_scene
    from headpose_ros.core.config import TargetConfig

    config = AttentionConfig(robot_offset=(0.0, -0.1, 0.0), mutual_gaze=True, target_names=("screen", "table"),
                             targets=(TargetConfig("screen", "", (0.3, 0.1, 0.0), 10.0),
                                      TargetConfig("table", "map", (1.0, 0.0, 0.75))))
    scene = place_scene(config, "cam")
    assert [(t.name, t.frame) for t in scene.targets] == [(ROBOT, "cam"), ("screen", "cam")]
    np.testing.assert_allclose(scene.targets[0].position, [0.0, -0.1, 0.0])
    assert scene.targets[0].cone_half_angle_deg is None and scene.targets[1].cone_half_angle_deg == 10.0
    np.testing.assert_allclose(scene.robot_gaze.direction, [0, 0, 1])  # the optical axis
    assert len(scene.problems) == 1 and "target 'table': no transform cam <- map" in scene.problems[0]

    # With a lookup (TF in the node), the table is placed through its frame's transform.
    turn = camera_from_yaw_pitch_roll_deg(0, 0, 90)
    scene = place_scene(config, "cam", lambda frame: (turn, np.array([0.0, 0.0, 2.0])))
    table = next(t for t in scene.targets if t.name == "table")
    np.testing.assert_allclose(table.position, turn @ [1.0, 0.0, 0.75] + [0, 0, 2.0])
    assert table.frame == "map" and scene.problems == []


def test_target_settings_are_checked_together():
    from headpose_ros.core.config import TargetConfig

    bad = AttentionConfig(target_names=("robot", "lamp"), targets=(TargetConfig("robot"), TargetConfig(
        "shelf", offset=(1.0, float("nan"), 0.0))))
    problems = " ".join(bad.problems())
    assert "target names must be unique (and not 'robot'): robot" in problems
    assert "target 'shelf': offset must be three finite numbers" in problems
    assert "attention.target_names lists lamp without a description" in problems
