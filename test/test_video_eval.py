"""headpose-ros synth --video and eval on video: the renders' truth, the metrics, and the commands end to end."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from headpose_ros.cli import main as cli_main
from headpose_ros.core.rotation import angle_between_deg
from headpose_ros.evaluation.synth import source_faces
from headpose_ros.evaluation.video_eval import Match, SequenceRun, TruthHead, match_heads, summarise_run
from headpose_ros.evaluation.video_synth import Pose, VideoSettings, render_frame, scenario


@pytest.fixture(scope="module")
def face(photo):
    (_, textured), = source_faces(photo, names=("astronaut",), log=lambda line: None)
    return textured


def test_scenarios_move_smoothly_at_the_frame_rate():
    # The fastest is a glance: 50 degrees in 0.3 s, up to 17 degrees a frame (250 deg/s) mid-turn.
    for name in ("turn", "walk", "three", "glance", "still"):
        frames = scenario(name, 15.0)
        assert len(frames) >= 150
        for a, b in zip(frames, frames[1:]):
            for p, q in zip(a, b):
                assert abs(p.yaw - q.yaw) < 20 and np.linalg.norm(np.subtract(p.position, q.position)) < 0.1
    turn = scenario("turn", 15.0)
    assert max(p.yaw for (p,) in turn) > 89 and min(p.yaw for (p,) in turn) < -89
    walk = [p.position[2] for (p,) in scenario("walk", 15.0)]
    assert max(walk) == pytest.approx(4.5, abs=0.05) and min(walk) == pytest.approx(0.8, abs=0.05)


def test_a_head_behind_another_is_marked_hidden_and_its_truth_is_exact(face):
    settings = VideoSettings(noise=0.0)
    camera = settings.camera()
    backdrop = np.full((480, 640, 3), 90, np.uint8)
    poses = [Pose(0, (0.0, 0.0, 1.2), 20.0, -10.0, 5.0), Pose(1, (0.02, 0.0, 2.4))]  # the far one right behind
    image, heads = render_frame([face, face], poses, camera, backdrop, (1.0, 0.0), 0.0, np.random.default_rng(0))
    near, far = heads
    assert near["visible"] == pytest.approx(1.0, abs=0.02) and far["visible"] < 0.05
    assert np.allclose(near["R"], poses[0].rotation(), atol=1e-6) and near["t"] == [0.0, 0.0, 1.2]
    # The angles relative to the line of sight are the ones asked for.
    assert (near["view_yaw"], near["view_pitch"], near["view_roll"]) == (20.0, -10.0, 5.0)
    x0, y0, x1, y1 = np.round(near["box"]).astype(int)
    assert (image[y0:y1, x0:x1] != 90).mean() > 0.8  # the face is drawn inside its box
    _, (edge,) = render_frame([face], [Pose(0, (0.69, 0.0, 1.2))], camera, backdrop, (1.0, 0.0), 0.0,
                              np.random.default_rng(0))
    assert 0.2 < edge["visible"] < 0.8 and edge["box"][2] > 640  # half out of the image


def truth(person=0, yaw_deg=0.0, box=(100, 100, 160, 160), visible=1.0):
    R = cv2.Rodrigues(np.array([0.0, np.radians(yaw_deg), 0.0]))[0]
    return TruthHead(person, R, np.array([0.0, 0.0, 1.0]), np.array(box, float), visible, yaw_deg, 0.0)


def found(t: TruthHead, track_id: str, extra_deg: float = 0.0) -> Match:
    R = t.R @ cv2.Rodrigues(np.array([np.radians(extra_deg), 0.0, 0.0]))[0]
    return Match(0, t, track_id, R, t.t + [0, 0, 0.05])


def test_metrics_of_a_constructed_run():
    run = SequenceRun("x", 15.0)
    ids = [None, None, "a", "a", "a", None, None, "b", "b", "b"]
    hidden = {5, 6}
    for k, track_id in enumerate(ids):
        t = truth(yaw_deg=2.0 * k, visible=0.0 if k in hidden else 1.0)
        m = Match(k, t) if track_id is None else found(t, track_id, extra_deg=0.5 * (k % 2))
        m.frame = k
        run.matches.append([m])
    s = summarise_run(run)
    assert (s["eligible"], s["found"]) == (8, 6) and s["recall"] == pytest.approx(0.75)
    assert s["id_switches"] == 1
    assert s["first_found_frames"] == 2 and s["reappear_frames"] == 0 and s["reappearances"] == 1
    assert s["jitter_median"] == pytest.approx(0.5, abs=1e-6)  # the estimate's extra 0.5 deg flips each frame
    assert s["geodesic_mean"] == pytest.approx(0.25, abs=1e-6)
    assert s["depth_mean_m"] == pytest.approx(0.05)
    assert s["recall_per_frame"][:3] == [0.0, 0.0, 1.0] and np.isnan(s["recall_per_frame"][5])


def test_heads_are_matched_to_the_nearest_truth_box():
    a, b = truth(0, box=(100, 100, 160, 160)), truth(1, box=(300, 100, 360, 160))

    class Head:
        def __init__(self, box, track_id):
            self.box, self.track_id, self.R, self.t = np.array(box, float), track_id, np.eye(3), np.zeros(3)

    matches, false_heads = match_heads([a, b], [Head((290, 95, 365, 170), "q"), Head((500, 300, 540, 340), "z")])
    assert [m.track_id for m in matches] == [None, "q"] and false_heads == 1


def test_synth_video_and_eval_commands(tmp_path, capsys, prepared_assets):
    out = tmp_path / "video"
    assert cli_main(["synth", "--video", "--scenarios", "still,three", "--frames", "12", "--photos", "astronaut",
                     "--out", str(out)]) == 0
    labels = json.loads((out / "labels.json").read_text())
    assert labels["format"] == "headpose_ros.video/1" and [s["name"] for s in labels["sequences"]] == ["still", "three"]
    assert all(len(s["frames"]) == 12 for s in labels["sequences"])
    assert len(labels["sequences"][1]["frames"][0]["heads"]) == 3
    report = tmp_path / "report"
    capsys.readouterr()
    assert cli_main(["eval", str(out), "--backends", "landmarks", "--out", str(report)]) == 0
    doc = json.loads((report / "video.json").read_text())
    still = doc["results"]["still"]["landmarks"]
    # min_hits 3: the first two frames are not published, every later one is.
    assert (still["eligible"], still["found"]) == (12, 10) and still["id_switches"] == 0
    assert still["first_found_frames"] == 2 and still["geodesic_mean"] < 15.0 and still["false_heads"] == 0
    assert still["jitter_median"] < 1.0
    assert doc["all"]["landmarks"]["eligible"] == 12 + doc["results"]["three"]["landmarks"]["eligible"]
    assert "| still | `landmarks` |" in (report / "video.md").read_text()
    assert cv2.imread(str(report / "video.png")).shape[1] > 400
    assert "tracking on video" in capsys.readouterr().out
    assert cli_main(["synth", "--video", "--scenarios", "dance", "--out", str(tmp_path / "x")]) == 2


def test_a_tracked_head_stays_within_a_few_degrees_of_the_truth_while_it_turns(tmp_path, prepared_assets):
    from headpose_ros.evaluation.runner import make_video_engines
    from headpose_ros.evaluation.video_eval import read_video_set, run_sequence

    out = tmp_path / "turn"
    assert cli_main(["synth", "--video", "--scenarios", "turn", "--frames", "20", "--photos", "astronaut",
                     "--out", str(out)]) == 0
    video = read_video_set(out)
    engine = make_video_engines(["fusion"])["fusion"]
    run = run_sequence(engine, video.sequences[0], video.camera, video.rate_hz)
    errors = [angle_between_deg(m.R, m.truth.R) for frame in run.matches[2:] for m in frame]
    assert len(errors) == 18 and max(errors) < 15.0, errors  # yaw 0 to 31 degrees while nodding
    assert len({m.track_id for frame in run.matches[2:] for m in frame}) == 1


def test_one_face_passing_in_front_of_another_keeps_both_ids(tmp_path, prepared_assets):
    """The three-person scene up to the end of the crossing (frame 95): the nearer face covers the one behind
    it, whose followed crop slides onto the nearer face; the track that was on that face keeps it, and the
    covered one's track lets go (no id switch, no head published twice)."""
    from headpose_ros.evaluation.runner import make_video_engines
    from headpose_ros.evaluation.video_eval import evaluate_video, read_video_set

    out = tmp_path / "three"
    assert cli_main(["synth", "--video", "--scenarios", "three", "--frames", "95", "--out", str(out)]) == 0
    video = read_video_set(out)
    result = evaluate_video(video, make_video_engines(["landmarks"]))["three"]["landmarks"]
    assert result["recall"] > 0.9
    assert result["id_switches"] == 0 and result["false_heads"] == 0, result
