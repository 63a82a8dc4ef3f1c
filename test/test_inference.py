"""create_runtime: the engine choice, its log line and its refusals, on the real cached models.

These run wherever the suite runs. On a machine without an NVIDIA GPU and
tensorrt (this project's development machines and CI) `auto` must pick ONNX
Runtime and say why, and `tensorrt` must fail at once with the fix; where
TensorRT can run, the same tests check the other side of each choice.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from headpose_ros import assets
from headpose_ros.core.inference import devices
from headpose_ros.core.inference import (
    TENSORRT_INSTALL_HINT,
    InferenceError,
    OnnxRuntime,
    create_runtime,
    gpu_status,
    tensorrt_status,
)

TENSORRT_USABLE, TENSORRT_REASON = tensorrt_status()


@pytest.fixture(scope="module")
def landmark_model(prepared_assets):
    return assets.model_path("face_landmark")


@pytest.fixture(scope="module")
def detector_model(prepared_assets):
    return assets.model_path("face_detection_short_range")


def test_gpu_status_answers_quickly_and_never_raises():
    start = time.perf_counter()
    usable, reason = gpu_status(refresh=True)
    elapsed = time.perf_counter() - start
    assert isinstance(usable, bool) and isinstance(reason, str) and reason
    assert elapsed < devices.GPU_PROBE_TIMEOUT_S + 1.0
    if not usable:
        # The reason names what is missing, e.g. "no NVIDIA driver (libcuda.so.1 not found)".
        assert any(word in reason for word in ("driver", "device", "CUDA")), reason
    # Cached: the second call does not probe again.
    start = time.perf_counter()
    assert gpu_status() == (usable, reason)
    assert time.perf_counter() - start < 0.01


def test_gpu_status_reports_a_hanging_driver_instead_of_hanging(monkeypatch):
    """A driver whose cuInit never returns: gpu_status gives up after its timeout with a reason."""
    import threading

    release = threading.Event()

    def stuck_probe():
        release.wait(30)
        return True, "never"

    monkeypatch.setattr(devices, "_probe_cuda_driver", stuck_probe)
    monkeypatch.setattr(devices, "GPU_PROBE_TIMEOUT_S", 0.2)
    try:
        start = time.perf_counter()
        usable, reason = gpu_status(refresh=True)
        assert time.perf_counter() - start < 2.0
        assert not usable and "did not answer" in reason
    finally:
        release.set()
        monkeypatch.undo()
        gpu_status(refresh=True)  # leave the real answer cached for the other tests


def test_gpu_status_turns_a_probe_crash_into_a_reason(monkeypatch):
    def broken_probe():
        raise OSError("libcuda.so.1: invalid ELF header")

    monkeypatch.setattr(devices, "_probe_cuda_driver", broken_probe)
    try:
        usable, reason = gpu_status(refresh=True)
        assert not usable and "invalid ELF header" in reason
    finally:
        monkeypatch.undo()
        gpu_status(refresh=True)


@pytest.mark.skipif(TENSORRT_USABLE, reason="TensorRT can run on this machine")
def test_auto_picks_onnxruntime_and_says_why(landmark_model):
    lines: list[str] = []
    engine = create_runtime(landmark_model, kind="auto", threads=1, max_batch=4, fp16=True, log=lines.append)
    assert isinstance(engine, OnnxRuntime)
    assert engine.name.startswith("onnxruntime:")
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith("engine auto for face_landmark.onnx: onnxruntime:"), line
    # The reason is the same one tensorrt_status() gives, e.g. "tensorrt is not installed; ...".
    assert TENSORRT_REASON in line
    # And it works.
    out = engine.run({engine.input_names[0]: np.zeros((2, 3, 192, 192), np.float32)})
    assert all(v.shape[0] == 2 for v in out.values())


@pytest.mark.skipif(not TENSORRT_USABLE, reason="needs an NVIDIA GPU and tensorrt")
def test_auto_picks_tensorrt_where_it_can_run(landmark_model, tmp_path):
    lines: list[str] = []
    engine = create_runtime(landmark_model, kind="auto", max_batch=2, cache_dir=tmp_path, log=lines.append)
    try:
        assert engine.name.startswith("tensorrt:")
        assert any(line.startswith("engine auto for face_landmark.onnx: tensorrt:") for line in lines), lines
    finally:
        engine.close()


@pytest.mark.skipif(TENSORRT_USABLE, reason="TensorRT can run on this machine")
def test_tensorrt_kind_fails_at_once_with_the_missing_piece_and_the_fix(landmark_model):
    start = time.perf_counter()
    with pytest.raises(InferenceError) as err:
        create_runtime(landmark_model, kind="tensorrt", log=lambda line: None)
    assert time.perf_counter() - start < 2.0  # no build, no long probe: it fails at once
    message = str(err.value)
    assert "tensorrt" in message
    assert TENSORRT_REASON in message  # what is missing (tensorrt, cuda-python, the GPU)
    assert TENSORRT_INSTALL_HINT in message
    assert "onnxruntime" in message  # the alternative


def test_tensorrt_reason_names_every_missing_piece(monkeypatch):
    monkeypatch.setattr(devices.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(devices, "gpu_status", lambda refresh=False: (False, "no NVIDIA driver (test)"))
    usable, reason = tensorrt_status()
    assert not usable
    assert "tensorrt is not installed" in reason
    assert "cuda-python is not installed" in reason
    assert "no NVIDIA driver (test)" in reason


def test_unknown_kind_is_refused(landmark_model):
    with pytest.raises(InferenceError, match="unknown inference engine 'bogus'.*onnxruntime, tensorrt, auto"):
        create_runtime(landmark_model, kind="bogus")


def test_bad_max_batch_is_refused(landmark_model):
    with pytest.raises(InferenceError, match="max_batch"):
        create_runtime(landmark_model, kind="onnxruntime", max_batch=0)


@pytest.mark.parametrize("kind", ["onnxruntime", "auto"])
def test_missing_model_names_the_file_and_the_fix(tmp_path, kind):
    missing = tmp_path / "nothing.onnx"
    with pytest.raises(InferenceError, match="nothing.onnx does not exist.*headpose-ros prepare"):
        create_runtime(missing, kind=kind, log=lambda line: None)


def test_onnxruntime_engine_name_threads_and_providers(landmark_model):
    engine = create_runtime(landmark_model, kind="onnxruntime", threads=1)
    assert isinstance(engine, OnnxRuntime)
    providers = engine._session.get_providers()
    assert engine.name == f"onnxruntime:{providers[0]}"
    assert engine._session.get_session_options().intra_op_num_threads == 1
    if not gpu_status()[0]:
        assert providers == ["CPUExecutionProvider"]


def test_onnxruntime_providers_put_cuda_first_only_with_a_gpu(monkeypatch):
    import onnxruntime as ort

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(devices, "gpu_status", lambda refresh=False: (True, "GPU (test)"))
    assert devices.onnxruntime_providers() == ("CUDAExecutionProvider", "CPUExecutionProvider")
    monkeypatch.setattr(devices, "gpu_status", lambda refresh=False: (False, "no GPU (test)"))
    assert devices.onnxruntime_providers() == ("CPUExecutionProvider",)
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    monkeypatch.setattr(devices, "gpu_status", lambda refresh=False: (True, "GPU (test)"))
    assert devices.onnxruntime_providers() == ("CPUExecutionProvider",)


def test_accepts_batch_dynamic_landmarks_and_fixed_detector(landmark_model, detector_model):
    mesh = create_runtime(landmark_model, kind="onnxruntime")
    detector = create_runtime(detector_model, kind="onnxruntime")
    assert mesh.accepts_batch(mesh.input_names[0]) is True
    assert detector.accepts_batch(detector.input_names[0]) is False
    # What accepts_batch promises: a batch of 3 in one run equals three single runs.
    rng = np.random.default_rng(0)
    x = rng.random((3, 3, 192, 192), dtype=np.float32)
    batched = mesh.run({mesh.input_names[0]: x})
    for i in range(3):
        single = mesh.run({mesh.input_names[0]: x[i:i + 1]})
        for name in mesh.output_names:
            np.testing.assert_allclose(batched[name][i:i + 1], single[name], rtol=1e-4, atol=1e-4)


def test_run_batched_is_one_call_where_the_batch_is_dynamic_and_one_per_item_where_it_is_fixed(landmark_model,
                                                                                           detector_model):
    from headpose_ros.core.inference import run_batched

    class Counting:
        """A real runtime that counts its runs."""

        def __init__(self, runtime):
            self.runtime, self.runs = runtime, 0

        def accepts_batch(self, name):
            return self.runtime.accepts_batch(name)

        def run(self, inputs):
            self.runs += 1
            return self.runtime.run(inputs)

    rng = np.random.default_rng(1)
    for path, size, batched in ((landmark_model, 192, True), (detector_model, 128, False)):
        runtime = Counting(create_runtime(path, kind="onnxruntime"))
        name = runtime.runtime.input_names[0]
        x = rng.random((3, 3, size, size), dtype=np.float32)
        out = run_batched(runtime, name, x, runtime.runtime.output_names)
        assert runtime.runs == (1 if batched else 3)
        for k, v in out.items():
            assert v.shape[0] == 3
            np.testing.assert_allclose(v[1:2], runtime.runtime.run({name: x[1:2]})[k], rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="at least one item"):
        run_batched(runtime, name, x[:0], runtime.runtime.output_names)
