"""tools.demo's printed lines and evaluation.demo_sequence's script (the demo run itself: test_cli)."""

from types import SimpleNamespace

import pytest

from headpose_ros.evaluation.demo_sequence import DURATION_S, Truth, script, truth_at
from headpose_ros.cli import CommandError
from headpose_ros.tools.demo import LINE_WIDTH, confirmation_note, demo_source, frame_line, part_summary


def head(face_id, yaw=12.0, pitch=-3.0, roll=1.0, z=1.25):
    position = SimpleNamespace(x=0.1, y=0.0, z=z)
    return SimpleNamespace(id=face_id, yaw=yaw, pitch=pitch, roll=roll, confidence=0.9,
                           pose=SimpleNamespace(pose=SimpleNamespace(position=position)))


def test_one_face_gets_its_angles_distance_and_target():
    line = frame_line(42, 0.0123, [head("esuwn")], {"esuwn": SimpleNamespace(target="robot", dwell_s=0.4)})
    assert line.startswith("frame   42   12.3 ms  1 face(s)  yaw/pitch/roll")
    assert line.endswith("esuwn +12/-3/+1 1.25m ->robot 0.4s")


@pytest.mark.parametrize("faces", [6, 64])
def test_many_faces_fit_one_bounded_line(faces):
    heads = [head(f"f{k:04d}", yaw=-80.0 + k, pitch=30.0, roll=-10.0) for k in range(faces)]
    attention = {h.id: SimpleNamespace(target="kitchen_table", dwell_s=12.5) for h in heads}
    line = frame_line(1234, 0.5, heads, attention, truth=Truth(-85.0, 30.0, -4.0))
    assert len(line) <= LINE_WIDTH
    assert f"{faces} face(s)" in line and "f0000 -80/+30/-10" in line and line.endswith("| truth -85/+30/-4")
    shown = sum(h.id in line for h in heads)
    assert 3 <= shown < faces and f"+{faces - shown} more" in line
    assert len(frame_line(1234, 0.5, heads[:6], {})) <= LINE_WIDTH
    assert sum(h.id in frame_line(1234, 0.5, heads[:6], {}) for h in heads) >= 4  # without the truth: 4 of 6


def test_a_frame_without_faces_and_the_confirmation_delay_are_said():
    assert frame_line(0, 0.01, [], {}, truth=Truth(0.0, 0.0, 0.0)).endswith("0 face(s)  -  | truth +0/+0/+0")
    assert "tracking.min_hits=3" in confirmation_note(3) and "first 2 frame(s) print '0 face(s)'" in confirmation_note(3)
    assert "tracking.min_hits" in confirmation_note(None)


def test_the_script_turns_to_both_profiles_nods_and_comes_back():
    frames = script(15.0)
    assert len(frames) == round(DURATION_S * 15)
    yaws = [t.yaw for t in frames]
    pitches = [t.pitch for t in frames]
    assert max(yaws) >= 84 and min(yaws) <= -84 and max(pitches) >= 29 and min(pitches) <= -29
    assert abs(truth_at(0).yaw) < 1 and abs(frames[-1].yaw) < 1 and abs(frames[-1].pitch) < 1
    parts = [t.part for t in frames]
    assert parts[:15] == ["other"] * 15  # the first second faces the camera: the face is confirmed there
    assert parts.count("profile") >= 45 and parts.count("nod") >= 10
    steps = [abs(a - b) for a, b in zip(yaws, yaws[1:])]
    assert max(steps) < 12  # no jump a tracker could not follow at 15 Hz


def test_the_summary_counts_the_frames_with_a_pose_in_each_part():
    truth = [Truth(0, 0, 0), Truth(80, 0, 0), Truth(85, 0, 0), Truth(-80, 0, 0), Truth(0, 30, 0), Truth(85, 0, 0)]
    # Frame 3 was dropped; frame 5's pose is 45 deg off.
    measured = {0: (2.0, 1.0, 0.0), 1: (70.0, 0.0, 0.0), 2: None, 4: (0.0, 20.0, 0.0), 5: (40.0, 0.0, 0.0)}
    profile, nod, other = part_summary(truth, measured)
    assert "profile" in profile and "2 of   3 answered frames with a pose,   1 close" in profile
    assert "yaw 27.5, pitch  0.0 deg" in profile
    assert "nod" in nod and "1 of   1 answered frames with a pose,   1 close" in nod and "pitch 10.0 deg" in nod
    assert "1 of   1" in other and "yaw  2.0, pitch  1.0 deg" in other


@pytest.mark.parametrize("frames, rate, message", [(0, 15.0, "--frames must be at least 1"),
                                                   (None, 0.0, "--rate must be positive")])
def test_a_source_that_cannot_play_is_refused_before_anything_starts(frames, rate, message):
    args = SimpleNamespace(frames=frames, rate=rate, video=None, camera=None, camera_info=None)
    with pytest.raises(CommandError, match=message):
        demo_source(args)
