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


def test_predict_prints_one_json_object(prepared_assets, camera_yaml):
    astronaut, group = assets.photo_path("astronaut"), assets.photo_path("t1")
    out = cli("predict", "--camera-info", camera_yaml(512, 512), "--backend", "landmarks", "--json", astronaut)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    (face,) = result[str(astronaut)]
    assert set(face) == {"id", "bbox", "quaternion", "R", "t", "yaw", "pitch", "roll", "confidence", "attention"}
    # The astronaut looks into the lens: she attends the robot (the camera, by default) in this very image.
    assert face["attention"]["target"] == "robot" and face["attention"]["looking_at_robot"]
    assert face["attention"]["angle_deg"] < 15 and face["attention"]["candidates"][0]["name"] == "robot"
    R = np.array(face["R"])
    np.testing.assert_allclose(matrix_from_quaternion_xyzw(face["quaternion"]), R, atol=1e-6)
    assert face["t"][2] > 0.2 and abs(face["yaw"]) < 15 and 0 < face["confidence"] <= 1
    x0, y0, x1, y1 = face["bbox"]
    assert 0 <= x0 < x1 <= 512 and 0 <= y0 < y1 <= 512
    # Several files in one call; the group photo has 6 faces.
    out = cli("predict", "--camera-info", camera_yaml(1280, 886), "--json", group)
    assert out.returncode == 0, out.stderr
    assert len(json.loads(out.stdout)[str(group)]) == 6
    # The network backends answer in the same format and the same frame.
    for backend in ("hopenet", "fusion"):
        out = cli("predict", "--camera-info", camera_yaml(512, 512), "--backend", backend, "--json", astronaut)
        assert out.returncode == 0, out.stderr
        (other,) = json.loads(out.stdout)[str(astronaut)]
        assert set(other) == set(face) and abs(other["yaw"] - face["yaw"]) < 10


def test_predict_takes_any_engine_setting(prepared_assets, camera_yaml):
    """--set NAME=VALUE reaches the engine: with the mirror reading the network's answer moves (it averages
    the face and its mirror image), and setting the default explicitly changes nothing."""
    info, image = camera_yaml(512, 512), assets.photo_path("astronaut")

    def angles(*extra):
        out = cli("predict", "--camera-info", info, "--backend", "hopenet", *extra, image)
        assert out.returncode == 0, out.stderr
        (face,) = json.loads(out.stdout)[str(image)]
        return np.array([face["yaw"], face["pitch"], face["roll"]])

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
    assert list(json.loads(out.stdout)) == [str(good)] and len(json.loads(out.stdout)[str(good)]) == 1
    lines = out.stderr.splitlines()
    assert len(lines) == 2 and "Traceback" not in out.stderr
    assert f"{broken}: not an image OpenCV can read" in lines[0] and f"{tmp_path / 'missing.png'}: no such file" in lines[1]


def test_a_closed_pipe_ends_quietly(prepared_assets, camera_yaml):
    import subprocess

    command = (f"'{CLI}' predict --camera-info '{camera_yaml(1280, 886)}' --indent 2 '{assets.photo_path('t1')}' "
               "| head -c 10")
    out = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, timeout=120)
    assert len(out.stdout) == 10
    assert out.stderr == "", out.stderr  # no BrokenPipeError, no "Exception ignored" from the last flush


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
