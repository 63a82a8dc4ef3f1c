"""The headpose-ros command-line tool, run as a user runs it (a subprocess of the installed command)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from headpose_ros import assets
from headpose_ros.core.camera import CameraModel
from headpose_ros.core.rotation import matrix_from_quaternion_xyzw

CLI = shutil.which("headpose-ros", path=str(Path(sys.executable).parent)) or "headpose-ros"


def cli(*args, timeout=120, env=None):
    return subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


@pytest.fixture
def camera_yaml(tmp_path):
    def write(width, height, fov=60.0):
        path = tmp_path / f"camera_{width}x{height}.yaml"
        path.write_text(yaml.safe_dump(CameraModel.from_field_of_view(width, height, fov).to_yaml_dict()))
        return path
    return write


FACE_KEYS = {"id", "method", "bbox_px", "position_m", "quaternion_xyzw", "rotation_matrix", "yaw_pitch_roll_deg",
             "confidence", "attention"}


def predict_json(*args):
    """The parsed stdout of `headpose-ros predict ARGS`, which must succeed."""
    out = cli("predict", *args)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def faces_of(result, image):
    return result["images"][str(image)]["faces"]


def test_predict_prints_one_json_object(prepared_assets, camera_yaml):
    astronaut, group = assets.photo_path("astronaut"), assets.photo_path("t1")
    result = predict_json("--camera-info", camera_yaml(512, 512), "--backend", "landmarks", "--json", astronaut)
    assert result["format"] == "headpose-ros predict 2" and list(result["images"]) == [str(astronaut)]
    entry = result["images"][str(astronaut)]
    assert (entry["width"], entry["height"], entry["intrinsics"]) == (512, 512, "camera_info")
    (face,) = entry["faces"]
    assert set(face) == FACE_KEYS and face["method"] == "landmarks"
    # The astronaut looks into the lens: she attends the robot (the camera, by default) in this very image.
    assert face["attention"]["target"] == "robot" and face["attention"]["looking_at_robot"]
    assert face["attention"]["angle_deg"] < 15 and face["attention"]["candidates"][0]["name"] == "robot"
    R = np.array(face["rotation_matrix"])
    np.testing.assert_allclose(matrix_from_quaternion_xyzw(face["quaternion_xyzw"]), R, atol=1e-4)
    yaw, pitch, roll = face["yaw_pitch_roll_deg"]
    assert face["position_m"][2] > 0.2 and abs(yaw) < 15 and 0 < face["confidence"] <= 1
    x0, y0, x1, y1 = face["bbox_px"]
    assert 0 <= x0 < x1 <= 512 and 0 <= y0 < y1 <= 512
    # Several files in one call; the group photo has 6 faces.
    assert len(faces_of(predict_json("--camera-info", camera_yaml(1280, 886), "--json", group), group)) == 6
    # The network backends answer in the same format and the same frame.
    for backend in ("hopenet", "fusion"):
        (other,) = faces_of(predict_json("--camera-info", camera_yaml(512, 512), "--backend", backend, astronaut),
                            astronaut)
        assert set(other) == FACE_KEYS and other["method"] == backend
        assert abs(other["yaw_pitch_roll_deg"][0] - yaw) < 10


def test_predict_json_says_its_frames_units_and_rounding(prepared_assets, camera_yaml):
    image = assets.photo_path("t1")
    result = predict_json("--camera-info", camera_yaml(1280, 886), image)
    assert "x right, y down, z forward" in result["frames"]["camera"]
    assert "sellion" in result["frames"]["face"] and "y to the person's left" in result["frames"]["face"]
    assert result["units"]["quaternion_xyzw"].startswith("x, y, z, w") and "metres" in result["units"]["position_m"]
    assert "degrees" in result["units"]["yaw_pitch_roll_deg"]

    def decimals(value) -> int:
        text = repr(float(value))
        return 0 if text.endswith(".0") else len(text.split(".")[1])

    faces = faces_of(result, image)
    assert len(faces) == 6
    for face in faces:
        for key, digits in (("bbox_px", 2), ("position_m", 4), ("quaternion_xyzw", 5), ("yaw_pitch_roll_deg", 2)):
            assert max(decimals(v) for v in face[key]) <= digits, (key, face[key])
        assert max(decimals(v) for row in face["rotation_matrix"] for v in row) <= 5
        assert decimals(face["confidence"]) <= 3
        assert all(decimals(c["angle_deg"]) <= 2 and decimals(c["distance_m"]) <= 4 and decimals(c["score"]) <= 3
                   for c in face["attention"]["candidates"])
        # Rounded, the quaternion and the matrix still say the same rotation.
        np.testing.assert_allclose(matrix_from_quaternion_xyzw(face["quaternion_xyzw"]), face["rotation_matrix"],
                                   atol=1e-4)


def test_predict_assumes_a_field_of_view_per_image_size_and_says_so(prepared_assets):
    """Without --camera-info: a nominal pinhole of the documented default FOV (f = image width), fitted to each
    image's size, and each entry says it was assumed; --fov sets it, and the distances follow the focal length."""
    from headpose_ros.tools.predict import DEFAULT_FOV_DEG

    astronaut, group = assets.photo_path("astronaut"), assets.photo_path("t1")
    assumed = predict_json(astronaut, group)["images"]
    assert abs(DEFAULT_FOV_DEG - 53.13) < 0.01
    for image, (w, h), faces in ((astronaut, (512, 512), 1), (group, (1280, 886), 6)):
        entry = assumed[str(image)]
        assert entry["intrinsics"] == "fov 53.1 deg (assumed: no --camera-info or --fov)"
        assert entry["K_px"] == [[w, 0, (w - 1) / 2], [0, w, (h - 1) / 2], [0, 0, 1]]
        assert len(entry["faces"]) == faces
    wide = predict_json("--fov", 60, astronaut)["images"][str(astronaut)]
    assert wide["intrinsics"] == "fov 60.0 deg"
    f60 = 256 / np.tan(np.radians(30))
    assert wide["K_px"][0][0] == pytest.approx(f60, abs=0.01)
    # Landmark PnP: the depth scales with the focal length; the angles hardly move.
    (before,), (after,) = assumed[str(astronaut)]["faces"], wide["faces"]
    assert after["position_m"][2] / before["position_m"][2] == pytest.approx(f60 / 512, rel=0.02)
    assert np.abs(np.subtract(after["yaw_pitch_roll_deg"], before["yaw_pitch_roll_deg"])).max() < 3


def test_predict_falls_back_to_fov_only_where_the_camera_info_does_not_fit(prepared_assets, camera_yaml):
    """A 1024x1024 calibration fits the 512x512 photo (a resize) but not the 1280x886 one: without --fov that file
    fails (named, exit 1, the other printed); with --fov it gets the nominal camera and says why."""
    astronaut, group, info = assets.photo_path("astronaut"), assets.photo_path("t1"), camera_yaml(1024, 1024)
    out = cli("predict", "--camera-info", info, astronaut, group)
    assert out.returncode == 1
    images = json.loads(out.stdout)["images"]
    assert images[str(astronaut)]["intrinsics"] == "camera_info scaled from 1024x1024"
    assert len(images[str(astronaut)]["faces"]) == 1
    assert "not a pure resize" in images[str(group)]["error"] and "--fov" in images[str(group)]["error"]
    assert out.stderr.count("\n") == 1 and f"{group}: {info}: camera info is for 1024x1024" in out.stderr
    images = predict_json("--camera-info", info, "--fov", 60, astronaut, group)["images"]
    assert images[str(astronaut)]["intrinsics"] == "camera_info scaled from 1024x1024"
    assert images[str(group)]["intrinsics"] == "fov 60.0 deg (--camera-info is for 1024x1024 images)"
    assert len(images[str(group)]["faces"]) == 6


def test_predict_draws_each_image(prepared_assets, tmp_path):
    import cv2

    astronaut = assets.photo_path("astronaut")
    twin = tmp_path / "elsewhere" / astronaut.name  # the same name from another folder gets its own drawing
    twin.parent.mkdir()
    shutil.copy(astronaut, twin)
    out_dir = tmp_path / "drawn" / "deeper"
    images = predict_json("--draw", out_dir, astronaut, twin)["images"]
    first, second = out_dir / "astronaut_pose.png", out_dir / "astronaut_pose_2.png"
    assert images[str(astronaut)]["drawing"] == str(first) and images[str(twin)]["drawing"] == str(second)
    original = cv2.imread(str(astronaut))
    (face,) = images[str(astronaut)]["faces"]
    x0, y0, x1, y1 = (int(v) for v in face["bbox_px"])
    for path in (first, second):
        drawn = cv2.imread(str(path))
        assert drawn is not None and drawn.shape == original.shape
        # The head is drawn inside its box, and only there and around it is the image changed.
        changed = np.any(drawn != original, axis=2)
        assert changed[y0:y1, x0:x1].mean() > 0.01 and changed.mean() < 0.2


def test_predict_refuses_a_field_of_view_out_of_range(prepared_assets):
    out = cli("predict", "--fov", 200, assets.photo_path("astronaut"))
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.count("\n") == 1 and "--fov 200" in out.stderr and "between 1 and 170" in out.stderr


def test_help_has_no_rst_markup_and_predict_documents_frames_and_units():
    from headpose_ros.cli import COMMANDS

    for command in ([], *([name] for name in COMMANDS)):
        out = cli(*command, "--help")
        assert out.returncode == 0 and "usage: headpose-ros" in out.stdout, (command, out.stderr)
        assert "``" not in out.stdout and "::" not in out.stdout, command
    text = cli("predict", "--help").stdout
    for needed in ("x right, y down, z forward", "x, y, z, w", "yaw_pitch_roll_deg degrees", "position_m metres",
                   "sellion", "--fov", "53.1"):
        assert needed in text, needed


def test_predict_takes_any_engine_setting(prepared_assets, camera_yaml):
    """--set NAME=VALUE reaches the engine: with the mirror reading the network's answer moves (it averages
    the face and its mirror image), and setting the default explicitly changes nothing."""
    info, image = camera_yaml(512, 512), assets.photo_path("astronaut")

    def angles(*extra):
        (face,) = faces_of(predict_json("--camera-info", info, "--backend", "hopenet", *extra, image), image)
        return np.array(face["yaw_pitch_roll_deg"])

    plain = angles()
    np.testing.assert_array_equal(angles("--set", "hopenet.mirror=never"), plain)
    mirrored = angles("--set", "hopenet.mirror=still", "--set", "detection.score_threshold=0.5")
    assert 0.05 < np.abs(mirrored - plain).max() < 5


@pytest.mark.parametrize("pair, says", [("hopenet.mirorr=still", "no such setting"),
                                        ("hopenet.mirror=sometimes", "hopenet.mirror 'sometimes' is unknown"),
                                        ("detection.score_threshold=2", "detection.score_threshold must be in [0.05, 1]"),
                                        ("hopenet", "expected NAME=VALUE"), ("hopenet=1", "a group of settings")])
def test_a_wrong_setting_is_one_line_naming_it(prepared_assets, camera_yaml, pair, says):
    out = cli("predict", "--camera-info", camera_yaml(512, 512), "--set", pair, assets.photo_path("astronaut"))
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.count("\n") == 1 and says in out.stderr, out.stderr


@pytest.mark.parametrize("problem", ["missing image", "not an image", "bad camera info", "unknown backend",
                                     "tensorrt without a GPU"])
def test_predict_errors_are_one_line(prepared_assets, camera_yaml, tmp_path, problem):
    image, info = assets.photo_path("astronaut"), camera_yaml(512, 512)
    args = {"missing image": ["--camera-info", info, tmp_path / "nope.png"],
            "not an image": ["--camera-info", info, info],
            "bad camera info": ["--camera-info", tmp_path / "nope.yaml", image],
            "unknown backend": ["--camera-info", info, "--backend", "magic", image],
            "tensorrt without a GPU": ["--camera-info", info, "--engine", "tensorrt", image]}[problem]
    out = cli("predict", "--json", *args)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("headpose-ros predict: error:")
    assert "Traceback" not in out.stderr and out.stdout == ""


def test_predict_names_each_bad_file_and_still_prints_the_good_ones(prepared_assets, camera_yaml, tmp_path):
    good = assets.photo_path("astronaut")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    out = cli("predict", "--camera-info", camera_yaml(512, 512), good, broken, tmp_path / "missing.png")
    assert out.returncode == 1
    images = json.loads(out.stdout)["images"]
    assert list(images) == [str(good), str(broken), str(tmp_path / "missing.png")]
    assert len(images[str(good)]["faces"]) == 1
    assert images[str(broken)] == {"error": "not an image OpenCV can read"}
    assert images[str(tmp_path / "missing.png")] == {"error": "no such file"}
    lines = out.stderr.splitlines()
    assert len(lines) == 2 and "Traceback" not in out.stderr
    assert f"{broken}: not an image OpenCV can read" in lines[0] and f"{tmp_path / 'missing.png'}: no such file" in lines[1]


@pytest.mark.parametrize("reader, expected", [("head -c 10", '{\n  "forma'), ("head -n 1", "{\n")])
def test_a_closed_pipe_ends_quietly(prepared_assets, tmp_path, reader, expected):
    # Twelve entries of six faces: far more than a pipe holds, so the reader is gone while predict still writes.
    copies = []
    for k in range(12):
        copies.append(tmp_path / f"group_{k}.jpg")
        copies[-1].symlink_to(assets.photo_path("t1"))
    command = f"'{CLI}' predict --indent 2 " + " ".join(f"'{c}'" for c in copies) + f" | {reader}"
    out = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, timeout=120)
    assert out.stdout == expected
    assert out.stderr == "", out.stderr  # no BrokenPipeError, no "Exception ignored" from the last flush
    assert out.returncode == 141  # predict saw the pipe close (and ended as if killed by SIGPIPE)


@pytest.mark.parametrize("content, fragment", [(b"\x00\x01\xff\xfe\x89PNG", "is not a text file"),
                                               (b"camera_matrix: {rows: 3, cols: 3, data: [.inf, 0, 320, 0, 500, "
                                                b"240, 0, 0, 1]}\n", "K contains NaN or infinite values")])
def test_a_bad_camera_file_is_one_line(prepared_assets, tmp_path, content, fragment):
    info = tmp_path / "camera.yaml"
    info.write_bytes(content)
    out = cli("predict", "--camera-info", info, assets.photo_path("astronaut"))
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.count("\n") == 1 and fragment in out.stderr and "Traceback" not in out.stderr


def test_an_unknown_backend_for_soak_is_refused_before_anything_starts():
    out = cli("soak", "--backend", "nonsense", "--minutes", "0.01")
    assert out.returncode == 2 and "invalid choice: 'nonsense'" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.ros
def test_demo_runs_the_node_over_dds_and_writes_frames(prepared_assets, tmp_path):
    out = cli("demo", "--frames", 30, "--rate", 15, "--out", tmp_path / "frames", "--isolated", timeout=180)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    lines = [line for line in out.stdout.splitlines() if line.startswith("frame ")]
    with_face = [line for line in lines if "1 face(s)" in line]
    assert len(lines) >= 20 and len(with_face) >= 15
    assert "yaw" in with_face[0] and "pitch" in with_face[0] and "roll" in with_face[0]
    assert len(list((tmp_path / "frames").glob("frame_*.jpg"))) == len(lines)
    # The node's log is kept beside the frames, not left in the temp folder.
    assert "ready:" in (tmp_path / "frames" / "headpose_node.log").read_text()


@pytest.mark.ros
def test_bench_prints_every_stage_and_writes_json(prepared_assets, tmp_path):
    """The benchmark runs end to end (figures are printed, never asserted: the machine is shared)."""
    out = cli("bench", "--backends", "landmarks,hopenet,fusion", "--faces", "1,3", "--frames", 4, "--warmup", 1,
              "--ros-frames", 15, "--json", tmp_path / "bench.json", timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    for stage in ("detect", "landmarks", "pnp", "network", "track", "smooth", "end_to_end"):
        assert f"  {stage} " in out.stdout
    result = json.loads((tmp_path / "bench.json").read_text())
    runs = result["engines"]["onnxruntime"]
    for backend in ("landmarks", "hopenet", "fusion"):
        assert runs[backend]["1"]["faces"] == 1.0 and runs[backend]["3"]["faces"] == 3.0
        assert result["scaling"]["onnxruntime"][backend] > 0
    assert {"network", "detect"} <= set(runs["hopenet"]["3"]["stages"])
    assert result["naive_network"]["3"]["ratio"] > 0
    assert result["reference"]["faces"] == 1.0 and result["speedup_vs_reference"] > 0
    assert result["ros"]["answered"] > 0 and result["ros"]["publish_to_tf"]["n"] > 0


@pytest.mark.ros
def test_demo_takes_a_video_file(prepared_assets, tmp_path, photo):
    import cv2

    from support import astronaut_frame

    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 15, (640, 480))
    assert writer.isOpened()
    for k in range(20):
        writer.write(cv2.cvtColor(astronaut_frame(photo, angle_deg=k), cv2.COLOR_RGB2BGR))
    writer.release()
    out = cli("demo", "--video", video, "--frames", 20, "--out", tmp_path / "frames", "--isolated", timeout=180)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "no --camera-info: assuming an ideal 60 degree camera" in out.stdout
    assert sum("1 face(s)" in line for line in out.stdout.splitlines()) >= 12
    missing = cli("demo", "--video", tmp_path / "missing.avi", "--isolated")
    assert missing.returncode == 2 and "cannot open video" in missing.stderr


@pytest.mark.ros
def test_soak_reports_drops_latency_memory_and_crashes(prepared_assets, tmp_path):
    """A few seconds of the soak: what it reports (figures are printed, never asserted against the clock)."""
    out = cli("soak", "--minutes", 0.1, "--rate", 30, "--out", tmp_path, timeout=180)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    r = json.loads((tmp_path / "soak.json").read_text())
    assert r["published"] >= 100 and 0 < r["answered"] <= r["published"]
    assert r["dropped"] == r["published"] - r["answered"]
    assert r["latency"]["median_ms"] > 0 and r["crashes"] == 0 and r["node_alive"]
    assert r["rss_mb"]["end"] > 50 and len(r["latency_per_window"]) == 1
    assert "latency publish -> ~/heads" in out.stdout and "node RSS" in out.stdout
