"""`headpose-ros bench` in this process, on the real models: what it writes, never how fast it is."""

from __future__ import annotations

import json

import cv2
import pytest

from headpose_ros.cli import main

BACKENDS = ("landmarks", "hopenet", "fusion")
FACES = (1, 3)


@pytest.fixture(scope="module")
def bench_out(prepared_assets, tmp_path_factory):
    """One short bench run without ROS (about 5 s on 2 cores): (return code, output folder)."""
    out = tmp_path_factory.mktemp("bench")
    code = main(["bench", "--faces", ",".join(map(str, FACES)), "--frames", "3", "--warmup", "1",
                 "--no-ros", "--out", str(out)])
    return code, out


@pytest.mark.slow
def test_bench_times_every_backend_and_its_naive_baseline(bench_out):
    code, out = bench_out
    assert code == 0
    result = json.loads((out / "bench.json").read_text())
    runs = result["engines"]["onnxruntime"]
    for backend in BACKENDS:
        for n in FACES:
            run = runs[backend][str(n)]
            assert run["end_to_end"]["median_ms"] > 0
            assert run["faces"] == n, (backend, n)
            naive = result["naive"][backend][str(n)]
            assert naive["faces"] == n and naive["vs"]["onnxruntime"] > 0, (backend, n)
    assert result["threads"]["cpu_count"] > 0 and runs["landmarks"]["1"]["process_threads"]["during"] > 0
    assert result["attention"]["faces"] == max(FACES) and result["attention"]["targets"] == 10
    assert result["attention"]["update"]["median_ms"] > 0


@pytest.mark.slow
def test_bench_writes_a_table_and_a_chart(bench_out):
    _, out = bench_out
    table = (out / "bench.md").read_text()
    for backend in BACKENDS:
        assert f"| `{backend}` | onnxruntime |" in table
    png = out / "bench.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = cv2.imread(str(png))
    assert image is not None and image.shape[1] > 300


@pytest.mark.slow
def test_bench_times_steady_state_tracking_on_video_against_mediapipe(bench_out):
    _, out = bench_out
    video = json.loads((out / "bench.json").read_text())["video"]
    one = video["sequences"]["1"]
    for variant in ("landmarks", "landmarks (max_faces 1)", "hopenet", "fusion"):
        r = one["backends"][variant]
        d = r["detector_frames"]
        assert d["image"] + d["none"] <= r["frames_timed"] and d["none"] > 0, (variant, d)
        assert r["faces_mean"] > 0.9 and r["stages_mean_ms"]["landmarks"] > 0, variant
    # Told the face count, a backend stops searching once it follows the face: almost no detector runs.
    assert one["backends"]["landmarks (max_faces 1)"]["detector_frames"]["image"] <= 2
    assert video["sequences"]["3"]["backends"]["landmarks"]["faces_mean"] > 2.5
    if "skipped" in video.get("mediapipe", {}):  # its wheel could not be installed here: said, and only it skipped
        assert video["mediapipe"]["skipped"]
    else:
        assert one["mediapipe"]["faces_mean"] > 0.9
        assert one["backends"]["landmarks"]["vs_mediapipe"]["ratio"] > 0
    table = (out / "bench.md").read_text()
    assert "## Video: steady-state tracking" in table and "| demo (1 face) | `landmarks (max_faces 1)` |" in table
