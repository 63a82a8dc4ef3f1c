"""TensorRTRuntime: real GPU tests where TensorRT can run, and its cache and run logic everywhere.

Two parts:

(a) Real tests (``needs_gpu``): build the cached face_landmark model (dynamic
    batch) with the real TensorRT on the real GPU, FP32 and FP16; compare with
    ONNX Runtime at batch 1, at max_batch and above it (chunked); check the
    cache hit on a second construction (fast, no build), the rebuild of a
    stale entry and of a corrupt one; print per-crop timings. They are
    SKIPPED unless an NVIDIA GPU, its driver, tensorrt and cuda-python are
    all present ("needs an NVIDIA GPU and tensorrt"), as on this project's
    development machines and CI.

(b) Mock tests, which run without a GPU. THEY DO NOT RUN TENSORRT OR CUDA: a
    fake ``tensorrt`` module (substituted in sys.modules) and a fake CUDA
    layer (passed as ``cuda=``, in place of CudaRuntime) stand in for what
    cannot run here. The fake "ONNX" file is a JSON description of a tiny
    network (y[i, j] = (j + 1) * sum(x[i])) that the fake parser reads, the
    fake builder serializes, and the fake execution context computes from
    the bytes behind the device pointers; the fake CUDA layer keeps "device"
    and pinned "host" memory as host buffers and checks every copy's
    direction and size. What they cover is TensorRTRuntime's own logic:
      - the cache key: changing the ONNX bytes, the TensorRT version, the GPU
        name, the compute capability, the precision or max_batch changes it;
      - cache hit (no build) on a second construction, with the same outcome;
      - a stale entry (key mismatch) rebuilt, with a log line naming what changed;
      - a corrupt entry rebuilt, not a crash: checksum mismatch, deserialize
        returning None, deserialize raising, unreadable sidecar;
      - atomic writes (temp file in the same folder + os.replace; a failed
        write leaves the previous entry intact and no temp file behind);
      - a cache folder that cannot be written: engine kept in memory, one warning;
      - what the builder is asked for: optimisation profile (1, max_batch,
        max_batch) for a dynamic batch, none for a fixed one, workspace limit,
        FP16 flag when asked and supported (logged fallback when not), TF32 off
        for fp32; ONNX parser errors reported with the file;
      - run(): batches of 1..max_batch, larger ones split, empty ones, fixed
        batch models, fp16 I/O tensors staged and returned as float32, input
        validation; close() frees every buffer and the stream;
      - create_runtime("tensorrt" / "auto") wiring, and auto's fallback to ONNX
        Runtime when TensorRT fails for a model.
    What the mocks cannot tell, and only (a) can: that the real TensorRT and
    cuda-python accept these calls as written, and the numbers.
"""

from __future__ import annotations

import ctypes
import enum
import errno
import hashlib
import json
import os
import shutil
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest

from headpose_ros import assets
from headpose_ros.core import files
from headpose_ros.core.inference import InferenceError, OnnxRuntime, create_runtime, devices, tensorrt_status
from headpose_ros.core.inference import tensorrt_cache
from headpose_ros.core.inference import tensorrt_runtime as te
from headpose_ros.core.inference.tensorrt_cache import cache_key, cache_key_fields
from headpose_ros.core.inference.tensorrt_runtime import TensorRTRuntime

TENSORRT_USABLE, TENSORRT_REASON = tensorrt_status()
needs_gpu = pytest.mark.skipif(not TENSORRT_USABLE, reason="needs an NVIDIA GPU and tensorrt")


# =====================================================================================
# (a) Real TensorRT on a real GPU
# =====================================================================================

GPU_MAX_BATCH = 4


@pytest.fixture(scope="module")
def landmark_model(prepared_assets):
    return assets.model_path("face_landmark")


@pytest.fixture(scope="module")
def face_crops(photo):
    """(6, 3, 192, 192) float32: real face crops (the astronaut, shifted, rotated, mirrored), model-normalised."""
    import cv2

    from headpose_ros.core.models import FACE_MESH

    face = photo("astronaut")[20:300, 120:400]
    crops = []
    for angle, mirror, shift in [(0, False, 0), (10, False, 4), (-15, False, -6), (0, True, 0), (25, True, 3),
                                 (-30, False, 8)]:
        img = face[:, ::-1] if mirror else face
        M = cv2.getRotationMatrix2D((img.shape[1] / 2 + shift, img.shape[0] / 2), angle, 192 / img.shape[0])
        M[0, 2] += 96 - img.shape[1] / 2
        M[1, 2] += 96 - img.shape[0] / 2
        crops.append(cv2.warpAffine(np.ascontiguousarray(img), M, (192, 192)))
    return FACE_MESH.input.to_tensor(np.stack(crops))


@pytest.fixture(scope="module")
def gpu_cache(tmp_path_factory):
    """One engine cache for the module, so each precision is built once."""
    return tmp_path_factory.mktemp("trt-cache")


def _ort_reference(model, x):
    ort = OnnxRuntime(model, threads=2)
    outs = [ort.run({ort.input_names[0]: x[i:i + 1]}) for i in range(len(x))]
    return {name: np.concatenate([o[name] for o in outs]) for name in ort.output_names}


def _assert_close(actual, expected, rel, what):
    """max |a - e| <= rel * max(1, max |e|): the tolerance scales with each output's range (pixels, logits)."""
    for name, ref in expected.items():
        scale = max(1.0, float(np.abs(ref).max()))
        err = float(np.abs(actual[name] - ref).max())
        assert err <= rel * scale, f"{what}: output {name} differs from ONNX Runtime by {err:.4g} (scale {scale:.3g})"


@needs_gpu
@pytest.mark.slow
@pytest.mark.parametrize("fp16, rel", [(False, 1e-3), (True, 2e-2)], ids=["fp32", "fp16"])
def test_gpu_engine_matches_onnxruntime(landmark_model, face_crops, gpu_cache, fp16, rel):
    lines: list[str] = []
    engine = TensorRTRuntime(landmark_model, max_batch=GPU_MAX_BATCH, fp16=fp16, cache_dir=gpu_cache, log=lines.append)
    try:
        assert engine.name.startswith("tensorrt:") and engine.name.endswith(engine.precision)
        assert engine.accepts_batch(engine.input_names[0])
        reference = _ort_reference(landmark_model, face_crops)
        name = engine.input_names[0]
        for n in (1, GPU_MAX_BATCH, len(face_crops)):  # 6 > max_batch: split in chunks
            out = engine.run({name: face_crops[:n]})
            assert set(out) == set(reference)
            for key, value in out.items():
                assert value.dtype == np.float32 and value.shape == (n, *reference[key].shape[1:])
            _assert_close(out, {k: v[:n] for k, v in reference.items()}, rel, f"{engine.precision} batch {n}")
        assert engine.run({name: face_crops[:0]})[engine.output_names[0]].shape[0] == 0
    finally:
        engine.close()


@needs_gpu
@pytest.mark.slow
def test_gpu_cache_hit_is_fast_and_builds_nothing(landmark_model, face_crops, tmp_path):
    first_log: list[str] = []
    first = TensorRTRuntime(landmark_model, max_batch=2, fp16=True, cache_dir=tmp_path, log=first_log.append)
    out_first = first.run({first.input_names[0]: face_crops[:2]})
    first.close()
    assert first.built and first.cached and first.engine_file.is_file() and first.meta_file.is_file()

    second_log: list[str] = []
    start = time.perf_counter()
    second = TensorRTRuntime(landmark_model, max_batch=2, fp16=True, cache_dir=tmp_path, log=second_log.append)
    elapsed = time.perf_counter() - start
    try:
        assert not second.built
        assert not any("building" in line for line in second_log), second_log
        assert any("loaded the cached engine" in line for line in second_log), second_log
        assert elapsed < max(5.0, first.build_seconds / 3), (elapsed, first.build_seconds)
        out_second = second.run({second.input_names[0]: face_crops[:2]})
        for name in out_first:
            np.testing.assert_array_equal(out_second[name], out_first[name])
    finally:
        second.close()


def _copy_entry(src_engine: TensorRTRuntime, dest: Path) -> tuple[Path, Path]:
    dest.mkdir(parents=True, exist_ok=True)
    engine_file = dest / src_engine.engine_file.name
    meta_file = dest / src_engine.meta_file.name
    shutil.copy(src_engine.engine_file, engine_file)
    shutil.copy(src_engine.meta_file, meta_file)
    return engine_file, meta_file


@needs_gpu
@pytest.mark.slow
def test_gpu_stale_entry_is_rebuilt_with_the_reason(landmark_model, face_crops, gpu_cache, tmp_path):
    seed = TensorRTRuntime(landmark_model, max_batch=GPU_MAX_BATCH, cache_dir=gpu_cache, log=lambda line: None)
    seed.close()
    _, meta_file = _copy_entry(seed, tmp_path)
    meta = json.loads(meta_file.read_text())
    meta["fields"]["tensorrt"] = "0.0.0"  # as if built by another TensorRT release
    meta["key"] = cache_key(meta["fields"])
    meta_file.write_text(json.dumps(meta))

    lines: list[str] = []
    engine = TensorRTRuntime(landmark_model, max_batch=GPU_MAX_BATCH, cache_dir=tmp_path, log=lines.append)
    try:
        assert engine.built
        assert any("stale" in line and "tensorrt 0.0.0 ->" in line for line in lines), lines
        assert json.loads(meta_file.read_text())["key"] == engine.key
        out = engine.run({engine.input_names[0]: face_crops[:1]})
        _assert_close(out, _ort_reference(landmark_model, face_crops[:1]), 1e-3, "rebuilt fp32")
    finally:
        engine.close()


@needs_gpu
@pytest.mark.slow
@pytest.mark.parametrize("keep_checksum", [False, True], ids=["checksum-mismatch", "trt-rejects-bytes"])
def test_gpu_corrupt_entry_is_rebuilt(landmark_model, gpu_cache, tmp_path, keep_checksum):
    seed = TensorRTRuntime(landmark_model, max_batch=GPU_MAX_BATCH, cache_dir=gpu_cache, log=lambda line: None)
    seed.close()
    engine_file, meta_file = _copy_entry(seed, tmp_path)
    plan = engine_file.read_bytes()
    if keep_checksum:
        # Bytes that are no engine at all, with a matching checksum so that they reach
        # TensorRT's deserializer, which rejects a wrong header with an error (returns None).
        garbage = b"not a TensorRT engine" + bytes(4096)
    else:
        garbage = plan[:len(plan) // 2]  # a truncated write: caught by the checksum, never given to TensorRT
    engine_file.write_bytes(garbage)
    if keep_checksum:
        meta = json.loads(meta_file.read_text())
        meta["engine_sha256"] = hashlib.sha256(garbage).hexdigest()
        meta_file.write_text(json.dumps(meta))

    lines: list[str] = []
    engine = TensorRTRuntime(landmark_model, max_batch=GPU_MAX_BATCH, cache_dir=tmp_path, log=lines.append)
    try:
        assert engine.built
        assert any("corrupt" in line for line in lines), lines
    finally:
        engine.close()


@needs_gpu
@pytest.mark.slow
def test_gpu_timing_per_crop(landmark_model, face_crops, gpu_cache, capsys):
    """Prints per-crop inference time (copies included) for TensorRT fp32/fp16 and ONNX Runtime on the CPU."""
    rows = []

    def timed(run, x, repeats=50):
        run(x)  # warm-up
        start = time.perf_counter()
        for _ in range(repeats):
            run(x)
        return (time.perf_counter() - start) / repeats * 1000 / len(x)

    ort = OnnxRuntime(landmark_model, threads=2)
    name_in = ort.input_names[0]
    for n in (1, GPU_MAX_BATCH):
        rows.append(("onnxruntime CPU (2 threads)", n, timed(lambda x: ort.run({name_in: x}), face_crops[:n], 20)))
    for fp16 in (False, True):
        engine = TensorRTRuntime(landmark_model, max_batch=GPU_MAX_BATCH, fp16=fp16, cache_dir=gpu_cache,
                                log=lambda line: None)
        try:
            for n in (1, GPU_MAX_BATCH):
                rows.append((engine.name, n, timed(lambda x: engine.run({name_in: x}), face_crops[:n])))
        finally:
            engine.close()
    with capsys.disabled():
        print("\nface_landmark inference per crop (host<->device copies included):")
        for what, n, ms in rows:
            print(f"  {what:45s} batch {n}: {ms:7.3f} ms/crop")
    assert all(ms > 0 for _, _, ms in rows)


# =====================================================================================
# (b) Mocks: a fake `tensorrt` module and a fake CUDA layer (no GPU, no TensorRT)
# =====================================================================================


class Severity(enum.Enum):
    INTERNAL_ERROR = 0
    ERROR = 1
    WARNING = 2
    INFO = 3
    VERBOSE = 4


class DataType(enum.Enum):
    FLOAT = "float32"
    HALF = "float16"
    BF16 = "bfloat16"


class TensorIOMode(enum.Enum):
    INPUT = 1
    OUTPUT = 2


class MemoryPoolType(enum.Enum):
    WORKSPACE = 0


PLAN_MAGIC = "FAKE-TRT-PLAN"


def make_fake_tensorrt(version: str = "10.0.1") -> types.ModuleType:
    """A stand-in for the `tensorrt` module: the subset of the TensorRT 10 Python API the engine uses."""
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.fast_fp16 = True  # what Builder.platform_has_fast_fp16 reports
    trt.builds = []  # (network spec, config) of every build_serialized_network call
    trt.build_returns_none = False
    trt.DataType, trt.TensorIOMode, trt.MemoryPoolType = DataType, TensorIOMode, MemoryPoolType
    trt.BuilderFlag = enum.Enum("BuilderFlag", ["FP16", "TF32"])

    class ILogger:
        pass

    ILogger.Severity = Severity
    trt.ILogger = ILogger

    def nptype(dtype):
        if dtype is DataType.BF16:
            raise TypeError("no numpy type for bfloat16")
        return np.dtype(dtype.value).type

    trt.nptype = nptype

    class Tensor:
        def __init__(self, name, shape):
            self.name, self.shape = name, tuple(shape)

    class Network:
        def __init__(self):
            self.spec = None
            self.inputs = []

        @property
        def num_inputs(self):
            return len(self.inputs)

        def get_input(self, i):
            return self.inputs[i]

    class ParserError:
        def __init__(self, text):
            self.text = text

        def desc(self):
            return self.text

        def node_name(self):
            return "node_7"

        def node_operator(self):
            return "NonMaxSuppression"

    class OnnxParser:
        def __init__(self, network, logger):
            self.network, self.logger, self.errors = network, logger, []

        def parse(self, model, path=None):
            try:
                spec = json.loads(bytes(model))
                inputs = spec["inputs"]
            except Exception as exc:
                self.errors.append(ParserError(f"In node 7: unsupported model ({type(exc).__name__})"))
                self.logger.log(Severity.ERROR, f"ModelImporter: failed to parse {path}")
                return False
            self.network.spec = spec
            self.network.inputs = [Tensor(k, v) for k, v in inputs.items()]
            self.logger.log(Severity.INFO, "parsed (info, not forwarded)")
            if spec.get("warn"):
                self.logger.log(Severity.WARNING, spec["warn"])
            return True

        @property
        def num_errors(self):
            return len(self.errors)

        def get_error(self, i):
            return self.errors[i]

    class Profile:
        def __init__(self):
            self.shapes = {}

        def set_shape(self, name, min, opt, max):  # noqa: A002 (TensorRT's keyword names)
            self.shapes[name] = (tuple(min), tuple(opt), tuple(max))

    class Config:
        def __init__(self):
            # TensorRT enables TF32 by default on Ampere and later.
            self.flags, self.pools, self.profiles = {trt.BuilderFlag.TF32}, {}, []

        def set_memory_pool_limit(self, pool, size):
            self.pools[pool] = size

        def set_flag(self, flag):
            self.flags.add(flag)

        def clear_flag(self, flag):
            self.flags.discard(flag)

        def add_optimization_profile(self, profile):
            self.profiles.append(profile)
            return len(self.profiles) - 1

    class Builder:
        def __init__(self, logger):
            self.logger = logger
            self.platform_has_fast_fp16 = trt.fast_fp16

        def create_network(self, flags=0):
            return Network()

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            trt.builds.append((network.spec, config))
            if trt.build_returns_none:
                return None
            profile = config.profiles[0].shapes if config.profiles else {}
            for tensor in network.inputs:
                if tensor.shape[0] < 0 and tensor.name not in profile:
                    return None  # like TensorRT: a dynamic input needs a profile
            plan = {"magic": PLAN_MAGIC, "spec": network.spec, "profile": profile,
                    "fp16": getattr(trt.BuilderFlag, "FP16", None) in config.flags}
            return json.dumps(plan).encode()

    class Context:
        def __init__(self, engine):
            self.engine = engine
            self.shapes = {}
            self.addresses = {}
            self.executions = []  # batch size of each execution
            self.shape_calls = []

        def set_input_shape(self, name, shape):
            shape = tuple(int(d) for d in shape)
            self.shape_calls.append(shape)
            lo, _, hi = self.engine.profile[name]
            if len(shape) != len(lo) or not all(a <= s <= b for a, s, b in zip(lo, shape, hi)):
                return False
            self.shapes[name] = shape
            return True

        def get_tensor_shape(self, name):
            spec = self.engine.spec
            if name in spec["inputs"]:
                return self.shapes.get(name, tuple(spec["inputs"][name]))
            first = next(iter(spec["inputs"]))
            batch = self.shapes.get(first, tuple(spec["inputs"][first]))[0]
            return (batch, *spec["outputs"][name][1:])

        def set_tensor_address(self, name, ptr):
            self.addresses[name] = int(ptr)
            return True

        def _view(self, name, shape):
            dtype = np.dtype(nptype(self.engine.get_tensor_dtype(name)))
            nbytes = int(np.prod(shape)) * dtype.itemsize
            return np.frombuffer((ctypes.c_uint8 * nbytes).from_address(self.addresses[name]),
                                 dtype=np.uint8).view(dtype).reshape(shape)

        def execute_async_v3(self, stream_handle):
            assert stream_handle == FakeCuda.STREAM_HANDLE
            spec = self.engine.spec
            x = sum(self._view(n, self.get_tensor_shape(n)).astype(np.float64).reshape(
                self.get_tensor_shape(n)[0], -1).sum(axis=1) for n in spec["inputs"])
            self.executions.append(len(x))
            for name in spec["outputs"]:
                shape = self.get_tensor_shape(name)
                scale = np.arange(1, int(np.prod(shape[1:])) + 1, dtype=np.float64).reshape(shape[1:])
                self._view(name, shape)[...] = x.reshape(-1, *[1] * (len(shape) - 1)) * scale
            return True

    class Engine:
        def __init__(self, plan):
            self.spec, self.profile, self.fp16 = plan["spec"], plan["profile"], plan["fp16"]
            self.names = [*self.spec["inputs"], *self.spec["outputs"]]
            self.contexts = []

        @property
        def num_io_tensors(self):
            return len(self.names)

        def get_tensor_name(self, i):
            return self.names[i]

        def get_tensor_mode(self, name):
            return TensorIOMode.INPUT if name in self.spec["inputs"] else TensorIOMode.OUTPUT

        def get_tensor_dtype(self, name):
            return DataType(self.spec.get("io_dtype", "float32"))

        def get_tensor_shape(self, name):
            return tuple(self.spec["inputs"].get(name) or self.spec["outputs"][name])

        def create_execution_context(self):
            context = Context(self)
            self.contexts.append(context)
            return context

    class Runtime:
        def __init__(self, logger):
            self.logger = logger

        def deserialize_cuda_engine(self, data):
            data = bytes(data)
            if data.startswith(b"RAISE"):
                raise RuntimeError("Serialization assertion failed (fake)")
            try:
                plan = json.loads(data)
                assert plan["magic"] == PLAN_MAGIC
            except Exception:
                self.logger.log(Severity.ERROR, "IRuntime::deserializeCudaEngine: engine deserialization failed")
                return None
            return Engine(plan)

    trt.Builder, trt.OnnxParser, trt.Runtime = Builder, OnnxParser, Runtime
    return trt


class FakeCuda:
    """The CudaRuntime interface over host memory: "device" and pinned "host" blocks are numpy buffers.

    Copies really move bytes (ctypes.memmove), and each one is checked: the
    destination and source must be a device/host block of the right kind and
    large enough, so a swapped or oversized copy fails the test.
    """

    STREAM_HANDLE = 0x5EED

    def __init__(self, name="Fake GPU 9000", capability=(8, 9)):
        self.name, self.capability = name, capability
        self.device, self.host = {}, {}
        self.streams = set()
        self.syncs = 0
        self.freed = []

    def device_info(self):
        return self.name, self.capability

    def _alloc(self, table, nbytes):
        block = np.zeros(int(nbytes), np.uint8)
        table[block.ctypes.data] = block
        return block.ctypes.data

    def malloc(self, nbytes):
        return self._alloc(self.device, nbytes)

    def malloc_host(self, nbytes):
        return self._alloc(self.host, nbytes)

    def free(self, ptr):
        del self.device[ptr]  # KeyError on a double free
        self.freed.append(ptr)

    def free_host(self, ptr):
        del self.host[ptr]

    def create_stream(self):
        stream = object()
        self.streams.add(stream)
        return stream

    def stream_handle(self, stream):
        assert stream in self.streams
        return self.STREAM_HANDLE

    def destroy_stream(self, stream):
        self.streams.remove(stream)

    def _copy(self, dst_table, dst, src_table, src, nbytes, stream):
        assert stream in self.streams
        assert dst in dst_table and src in src_table, "copy between the wrong kinds of memory"
        assert nbytes <= dst_table[dst].nbytes and nbytes <= src_table[src].nbytes, "copy past a buffer"
        ctypes.memmove(dst, src, nbytes)

    def copy_to_device_async(self, dst, src, nbytes, stream):
        self._copy(self.device, dst, self.host, src, nbytes, stream)

    def copy_to_host_async(self, dst, src, nbytes, stream):
        self._copy(self.host, dst, self.device, src, nbytes, stream)

    def synchronize(self, stream):
        assert stream in self.streams
        self.syncs += 1


def fake_model(path: Path, inputs=None, outputs=None, **extra) -> Path:
    """A fake "ONNX" file: the JSON network description the fake parser reads."""
    spec = {"inputs": inputs or {"x": [-1, 3, 4]}, "outputs": outputs or {"y": [-1, 2], "z": [-1, 1, 3]}, **extra}
    path.write_text(json.dumps(spec))
    return path


def reference(x: np.ndarray, outputs=None) -> dict[str, np.ndarray]:
    """What the fake network computes: out[i, ...] = (flat index + 1) * sum(x[i])."""
    outputs = outputs or {"y": [-1, 2], "z": [-1, 1, 3]}
    s = x.astype(np.float64).reshape(len(x), -1).sum(axis=1)
    result = {}
    for name, shape in outputs.items():
        rest = tuple(shape[1:])
        scale = np.arange(1, int(np.prod(rest)) + 1, dtype=np.float64).reshape(rest)
        result[name] = (s.reshape(-1, *[1] * len(rest)) * scale).astype(np.float32)
    return result


@pytest.fixture
def fake_trt(monkeypatch):
    trt = make_fake_tensorrt()
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr(tensorrt_cache, "_unwritable_dirs", set())
    return trt


@pytest.fixture
def cuda():
    return FakeCuda()


@pytest.fixture
def model(tmp_path):
    return fake_model(tmp_path / "net.onnx")


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"


class Log(list):
    def has(self, *words) -> bool:
        return any(all(w in line for w in words) for line in self)


def make(model, cache, cuda, log=None, **kw) -> TensorRTRuntime:
    return TensorRTRuntime(model, cache_dir=cache, cuda=cuda, log=log if log is not None else Log().append, **kw)


# --- the key ---------------------------------------------------------------------------------------


def test_key_changes_with_every_field():
    base = dict(onnx_sha256="a" * 64, tensorrt_version="10.0.1", gpu_name="NVIDIA H100", compute_capability=(9, 0),
                precision="fp16", max_batch=6)
    key = cache_key(cache_key_fields(**base))
    assert key == cache_key(cache_key_fields(**base))  # deterministic
    changes = dict(onnx_sha256="b" * 64, tensorrt_version="10.3.0", gpu_name="NVIDIA A100", compute_capability=(8, 0),
                   precision="fp32", max_batch=8)
    keys = {key}
    for field, value in changes.items():
        other = cache_key(cache_key_fields(**{**base, field: value}))
        assert other != key, field
        keys.add(other)
    assert len(keys) == len(changes) + 1


def test_engine_key_uses_the_onnx_bytes_the_version_and_the_gpu(fake_trt, cuda, model, cache):
    engine = make(model, cache, cuda, max_batch=3, fp16=True)
    fields = engine.key_fields
    assert fields["onnx_sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert fields["tensorrt"] == "10.0.1"
    assert fields["gpu"] == "Fake GPU 9000" and fields["compute_capability"] == "8.9"
    assert fields["precision"] == "fp16" and fields["max_batch"] == 3
    assert engine.key == cache_key(fields)


# --- hit, stale, corrupt ----------------------------------------------------------------------------


def test_second_construction_loads_the_cache_without_building(fake_trt, cuda, model, cache):
    log1, log2 = Log(), Log()
    first = make(model, cache, cuda, log1.append, max_batch=4)
    assert first.built and first.cached and len(fake_trt.builds) == 1
    assert log1.has("building", "no cached engine yet") and log1.has("built", "cached as")
    meta = json.loads(first.meta_file.read_text())
    assert meta["key"] == first.key and meta["fields"] == first.key_fields
    assert meta["engine_sha256"] == hashlib.sha256(first.engine_file.read_bytes()).hexdigest()

    second = make(model, cache, cuda, log2.append, max_batch=4)
    assert not second.built and len(fake_trt.builds) == 1
    assert not log2.has("building") and log2.has("loaded the cached engine")
    x = np.random.default_rng(1).random((3, 3, 4), dtype=np.float32)
    for name, value in second.run({"x": x}).items():
        np.testing.assert_allclose(value, reference(x)[name], rtol=1e-6)


@pytest.mark.parametrize("change, expected", [
    ("onnx", "the ONNX file changed"),
    ("version", "tensorrt 10.0.1 -> 10.2.0"),
    ("gpu", "gpu Fake GPU 9000 -> NVIDIA RTX 4090"),
    ("capability", "compute_capability 8.9 -> 9.0"),
])
def test_stale_entry_is_rebuilt_with_a_line_saying_why(fake_trt, cuda, model, cache, monkeypatch, change, expected):
    first = make(model, cache, cuda)
    old_key = first.key
    if change == "onnx":
        model.write_text(model.read_text() + "\n")  # same network, different bytes
    elif change == "version":
        fake_trt.__version__ = "10.2.0"
    elif change == "gpu":
        cuda.name = "NVIDIA RTX 4090"
    else:
        cuda.capability = (9, 0)
    log = Log()
    second = make(model, cache, cuda, log.append)
    assert second.key != old_key
    assert second.built and len(fake_trt.builds) == 2
    assert log.has("building", "stale", expected), log
    # The slot now holds the new entry: a third construction is a hit.
    assert json.loads(second.meta_file.read_text())["key"] == second.key
    third = make(model, cache, cuda)
    assert not third.built and len(fake_trt.builds) == 2


@pytest.mark.parametrize("setting", [{"fp16": True}, {"max_batch": 5}])
def test_precision_and_max_batch_have_their_own_entries(fake_trt, cuda, model, cache, setting):
    base = make(model, cache, cuda)
    other = make(model, cache, cuda, **setting)
    assert other.key != base.key and other.engine_file != base.engine_file
    assert other.built and len(fake_trt.builds) == 2
    # Both stay cached side by side.
    assert not make(model, cache, cuda).built and not make(model, cache, cuda, **setting).built
    assert len(fake_trt.builds) == 2


def _rewrite_engine(engine: TensorRTRuntime, data: bytes, fix_checksum: bool) -> None:
    engine.engine_file.write_bytes(data)
    if fix_checksum:
        meta = json.loads(engine.meta_file.read_text())
        meta["engine_sha256"] = hashlib.sha256(data).hexdigest()
        engine.meta_file.write_text(json.dumps(meta))


@pytest.mark.parametrize("data, fix_checksum, expected", [
    (b"\x00" * 100, False, "checksum does not match"),  # truncated / overwritten
    (b"not an engine at all", True, "TensorRT cannot deserialize it"),  # deserialize returns None
    (b"RAISE: bad serialization tag", True, "TensorRT cannot deserialize it"),  # deserialize raises
], ids=["checksum", "deserialize-none", "deserialize-raises"])
def test_corrupt_entry_is_rebuilt_not_a_crash(fake_trt, cuda, model, cache, data, fix_checksum, expected):
    first = make(model, cache, cuda)
    _rewrite_engine(first, data, fix_checksum)
    log = Log()
    second = make(model, cache, cuda, log.append)
    assert second.built and len(fake_trt.builds) == 2
    assert log.has("building", "corrupt", expected), log
    assert second.run({"x": np.ones((1, 3, 4), np.float32)})["y"].tolist() == [[12.0, 24.0]]
    assert not make(model, cache, cuda).built  # the rebuilt entry is valid


@pytest.mark.parametrize("sidecar", [None, "{not json", "[1, 2]"], ids=["missing", "garbled", "not-an-object"])
def test_unreadable_sidecar_is_rebuilt(fake_trt, cuda, model, cache, sidecar):
    first = make(model, cache, cuda)
    if sidecar is None:
        first.meta_file.unlink()
    else:
        first.meta_file.write_text(sidecar)
    log = Log()
    assert make(model, cache, cuda, log.append).built
    assert log.has("building", "metadata", "missing or unreadable"), log


# --- writes ------------------------------------------------------------------------------------------


def test_writes_are_atomic_replacements_from_the_same_folder(fake_trt, cuda, model, cache, monkeypatch):
    replaced = []
    real_replace = os.replace

    def spy(src, dst):
        # What appears under the real name is, in one step, the complete temp file.
        replaced.append((Path(src), Path(dst), Path(src).read_bytes()))
        real_replace(src, dst)

    monkeypatch.setattr(files.os, "replace", spy)
    engine = make(model, cache, cuda)
    assert [dst for _, dst, _ in replaced] == [engine.engine_file, engine.meta_file]
    for src, dst, content in replaced:
        assert src.parent == dst.parent and src.name.startswith(".") and src.name.endswith(".tmp")
        assert not src.exists() and dst.read_bytes() == content
    meta = json.loads(engine.meta_file.read_text())
    assert meta["engine_sha256"] == hashlib.sha256(engine.engine_file.read_bytes()).hexdigest()
    assert sorted(p.name for p in cache.iterdir()) == sorted([engine.engine_file.name, engine.meta_file.name])


def test_a_failed_write_keeps_the_previous_entry_and_no_temp_file(fake_trt, cuda, model, cache, monkeypatch):
    first = make(model, cache, cuda)
    before = {p.name: p.read_bytes() for p in cache.iterdir()}
    fake_trt.__version__ = "10.9.0"  # forces a rebuild, whose write then fails half-way

    def failing_replace(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "replace", failing_replace)
    log = Log()
    engine = make(model, cache, cuda, log.append)
    assert engine.built and not engine.cached
    assert log.has("cannot write the engine cache", "No space left on device")
    assert {p.name: p.read_bytes() for p in cache.iterdir()} == before  # untouched, no .tmp left
    assert engine.run({"x": np.ones((2, 3, 4), np.float32)})["y"].shape == (2, 2)
    assert first.key != engine.key


def test_unwritable_cache_dir_keeps_the_engine_in_memory_and_warns_once(fake_trt, cuda, model, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    cache = blocker / "tensorrt"  # mkdir fails for real: a path below a regular file
    log = Log()
    first = make(model, cache, cuda, log.append)
    second = make(model, cache, cuda, log.append)
    assert first.built and second.built and not first.cached  # nothing cached, so both build
    assert sum("cannot write the engine cache" in line for line in log) == 1, log
    x = np.ones((1, 3, 4), np.float32)
    assert second.run({"x": x})["y"].tolist() == [[12.0, 24.0]]


def test_read_only_filesystem_is_tolerated(fake_trt, cuda, model, cache, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(files.tempfile, "mkstemp", read_only)
    log = Log()
    engine = make(model, cache, cuda, log.append)
    assert engine.built and not engine.cached
    assert log.has("cannot write the engine cache", "Read-only file system")
    assert engine.run({"x": np.ones((1, 3, 4), np.float32)})["z"].shape == (1, 1, 3)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_permissions_are_tolerated(fake_trt, cuda, model, cache):
    cache.mkdir()
    cache.chmod(0o500)
    try:
        log = Log()
        engine = make(model, cache, cuda, log.append)
        assert engine.built and log.has("cannot write the engine cache")
    finally:
        cache.chmod(0o700)


def test_the_engine_caches_tensorrt_engines_in_the_asset_cache_by_default(tmp_path, monkeypatch, prepared_assets):
    """inference.engine_cache_dir empty: every runtime is created with <asset cache>/tensorrt."""
    from headpose_ros.core import engine as engine_module
    from headpose_ros.core.config import still_image_config
    from headpose_ros.pipeline import create_engine

    seen = []
    real = engine_module.create_runtime
    monkeypatch.setattr(engine_module, "create_runtime", lambda path, **kw: seen.append(kw["cache_dir"]) or real(path, **kw))
    create_engine(still_image_config({"backend": "fusion", "inference.engine": "onnxruntime"}), log=lambda line: None)
    assert seen and all(Path(d) == assets.cache_dir() / "tensorrt" for d in seen), seen
    seen.clear()
    create_engine(still_image_config({"inference.engine_cache_dir": str(tmp_path)}), log=lambda line: None)
    assert seen and all(Path(d) == tmp_path for d in seen), seen


# --- what the builder is asked for -----------------------------------------------------------------


def test_dynamic_batch_gets_a_profile_workspace_and_precision_flags(fake_trt, cuda, model, cache):
    make(model, cache, cuda, max_batch=6)
    _, config = fake_trt.builds[-1]
    assert config.profiles[0].shapes == {"x": ((1, 3, 4), (6, 3, 4), (6, 3, 4))}
    assert config.pools == {MemoryPoolType.WORKSPACE: te.DEFAULT_WORKSPACE_BYTES}
    assert fake_trt.BuilderFlag.FP16 not in config.flags
    assert fake_trt.BuilderFlag.TF32 not in config.flags  # fp32 means fp32

    engine = make(model, cache, cuda, max_batch=6, fp16=True)
    _, config = fake_trt.builds[-1]
    assert fake_trt.BuilderFlag.FP16 in config.flags
    assert engine.precision == "fp16" and engine.name == "tensorrt:Fake GPU 9000 fp16"


def test_fixed_batch_model_gets_no_profile_and_runs_one_by_one(fake_trt, cuda, tmp_path, cache):
    model = fake_model(tmp_path / "det.onnx", inputs={"x": [1, 3, 4]}, outputs={"y": [1, 2]})
    engine = make(model, cache, cuda, max_batch=6)
    _, config = fake_trt.builds[-1]
    assert config.profiles == []
    assert engine.accepts_batch("x") is False and engine.batch_capacity == 1
    x = np.random.default_rng(2).random((3, 3, 4), dtype=np.float32)
    out = engine.run({"x": x})
    np.testing.assert_allclose(out["y"], reference(x, {"y": [1, 2]})["y"], rtol=1e-6)
    context = engine._context
    assert context.executions == [1, 1, 1] and context.shape_calls == []


def test_fp16_without_fast_fp16_builds_fp32_and_says_so(fake_trt, cuda, model, cache):
    fake_trt.fast_fp16 = False
    log = Log()
    engine = make(model, cache, cuda, log.append, fp16=True)
    assert log.has("fp16 was asked for", "no fast fp16", "building fp32"), log
    assert engine.precision == "fp32" and engine.name.endswith(" fp32")
    assert fake_trt.BuilderFlag.FP16 not in fake_trt.builds[-1][1].flags
    again = make(model, cache, cuda, fp16=True)  # cached under the fp16 request, still fp32 inside
    assert not again.built and again.precision == "fp32"


def test_fp16_without_the_builder_flag_builds_fp32_and_says_so(fake_trt, cuda, model, cache, monkeypatch):
    monkeypatch.setattr(fake_trt, "BuilderFlag", enum.Enum("BuilderFlag", ["TF32"]))  # as in TensorRT 11
    log = Log()
    engine = make(model, cache, cuda, log.append, fp16=True)
    assert log.has("no FP16 builder flag", "building fp32") and engine.precision == "fp32"


def test_parser_errors_are_reported_with_the_file(fake_trt, cuda, tmp_path, cache):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07 this is not parseable")
    log = Log()
    with pytest.raises(InferenceError) as err:
        make(bad, cache, cuda, log.append)
    message = str(err.value)
    assert str(bad) in message and "unsupported model" in message and "node_7" in message
    assert "onnxruntime" in message
    assert log.has("tensorrt error:", "failed to parse")  # TensorRT's own log, forwarded
    assert not cache.exists() or not any(cache.iterdir())


def test_tensorrt_warnings_reach_the_log_and_info_does_not(fake_trt, cuda, tmp_path, cache):
    model = fake_model(tmp_path / "warn.onnx", warn="Your ONNX model has INT64 weights, cast down to INT32")
    log = Log()
    make(model, cache, cuda, log.append)
    assert log.has("tensorrt warning: Your ONNX model has INT64 weights")
    assert not log.has("info, not forwarded")


def test_a_failed_build_is_an_inference_error(fake_trt, cuda, model, cache):
    fake_trt.build_returns_none = True
    with pytest.raises(InferenceError, match="could not build an engine"):
        make(model, cache, cuda)


def test_only_the_batch_may_be_dynamic(fake_trt, cuda, tmp_path, cache):
    model = fake_model(tmp_path / "any_size.onnx", inputs={"x": [-1, 3, -1]})
    with pytest.raises(InferenceError, match="only its batch dimension may be dynamic"):
        make(model, cache, cuda)


def test_unsupported_tensor_type_is_an_inference_error(fake_trt, cuda, tmp_path, cache):
    model = fake_model(tmp_path / "bf16.onnx", io_dtype="bfloat16")
    with pytest.raises(InferenceError, match="cannot stage"):
        make(model, cache, cuda)


# --- run ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 3, 4, 10])
def test_run_any_batch_size_up_to_and_beyond_max_batch(fake_trt, cuda, model, cache, n):
    engine = make(model, cache, cuda, max_batch=4)
    assert engine.accepts_batch("x") is True and engine.batch_capacity == 4
    x = np.random.default_rng(n).normal(size=(n, 3, 4)).astype(np.float32)
    out = engine.run({"x": x})
    expected = reference(x)
    assert set(out) == {"y", "z"}
    for name in out:
        assert out[name].dtype == np.float32 and out[name].shape == expected[name].shape
        np.testing.assert_allclose(out[name], expected[name], rtol=1e-5, atol=1e-5)
    chunks = [min(4, n - s) for s in range(0, n, 4)]
    assert engine._context.executions == chunks


def test_run_reuses_the_buffers_allocated_once(fake_trt, cuda, model, cache):
    engine = make(model, cache, cuda, max_batch=4)
    device_before, host_before = dict(cuda.device), dict(cuda.host)
    assert len(device_before) == 3 and len(host_before) == 3  # x, y, z
    # Sized for max_batch: x is 4 x 3 x 4 float32.
    assert cuda.device[engine._device["x"]].nbytes == 4 * 3 * 4 * 4
    for n in (1, 4, 2, 9):
        engine.run({"x": np.ones((n, 3, 4), np.float32)})
    assert cuda.device.keys() == device_before.keys() and cuda.host.keys() == host_before.keys()
    # The shape is set only when it changes (1, 4, 2, then 4 4 1 for the 9).
    assert engine._context.shape_calls[1:] == [(1, 3, 4), (4, 3, 4), (2, 3, 4), (4, 3, 4), (1, 3, 4)]


def test_run_empty_batch(fake_trt, cuda, model, cache):
    engine = make(model, cache, cuda, max_batch=2)
    out = engine.run({"x": np.zeros((0, 3, 4), np.float32)})
    assert out["y"].shape == (0, 2) and out["z"].shape == (0, 1, 3) and out["y"].dtype == np.float32
    assert engine._context.executions == []


def test_fp16_io_tensors_are_staged_and_returned_as_float32(fake_trt, cuda, tmp_path, cache):
    model = fake_model(tmp_path / "half.onnx", io_dtype="float16")
    engine = make(model, cache, cuda, max_batch=2, fp16=True)
    assert engine._dtype["x"] == np.float16
    x = np.random.default_rng(3).random((3, 3, 4)).astype(np.float64)  # float64 in, converted on staging
    out = engine.run({"x": x})
    for name, value in reference(x).items():
        assert out[name].dtype == np.float32
        np.testing.assert_allclose(out[name], value, rtol=5e-3)


def test_run_validates_its_inputs(fake_trt, cuda, model, cache):
    engine = make(model, cache, cuda, max_batch=2)
    with pytest.raises(InferenceError, match="input 'x' is missing"):
        engine.run({"other": np.zeros((1, 3, 4), np.float32)})
    with pytest.raises(InferenceError, match=r"shape \(1, 4, 3\).*\(n, 3, 4\)"):
        engine.run({"x": np.zeros((1, 4, 3), np.float32)})


def test_close_frees_every_buffer_and_the_stream(fake_trt, cuda, model, cache):
    engine = make(model, cache, cuda, max_batch=2)
    engine.run({"x": np.ones((1, 3, 4), np.float32)})
    assert cuda.device and cuda.host and cuda.streams
    engine.close()
    assert cuda.device == {} and cuda.host == {} and cuda.streams == set()
    engine.close()  # idempotent
    with pytest.raises(InferenceError, match="closed"):
        engine.run({"x": np.ones((1, 3, 4), np.float32)})


def test_del_releases_the_gpu_memory(fake_trt, cuda, model, cache):
    engine = make(model, cache, cuda)
    del engine
    import gc

    gc.collect()
    assert cuda.device == {} and cuda.host == {}


def test_missing_tensorrt_is_an_inference_error_with_the_fix(cuda, model, cache, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # `import tensorrt` raises ImportError
    with pytest.raises(InferenceError,
                       match=r"tensorrt is not installed: pip install '\.\[tensorrt\]' in the headpose_ros clone"):
        make(model, cache, cuda)


# --- create_runtime wiring ----------------------------------------------------------------------------


@pytest.fixture
def tensorrt_can_run(fake_trt, cuda, monkeypatch):
    """Pretend tensorrt, cuda-python and a GPU are present: the fakes stand in for them."""
    monkeypatch.setattr(devices, "tensorrt_status", lambda: (True, "tensorrt 10.0.1 on Fake GPU 9000 (test)"))
    monkeypatch.setattr(te, "CudaRuntime", lambda: cuda)
    return fake_trt


def test_create_runtime_tensorrt_builds_a_tensorrt_engine(tensorrt_can_run, model, cache):
    log = Log()
    engine = create_runtime(model, kind="tensorrt", max_batch=3, fp16=True, cache_dir=cache, log=log.append)
    assert isinstance(engine, TensorRTRuntime)
    assert engine.max_batch == 3 and engine.precision == "fp16" and engine.cache_dir == cache
    assert engine.name == "tensorrt:Fake GPU 9000 fp16"


def test_create_runtime_auto_picks_tensorrt_and_says_why(tensorrt_can_run, model, cache):
    log = Log()
    engine = create_runtime(model, kind="auto", cache_dir=cache, log=log.append)
    assert isinstance(engine, TensorRTRuntime)
    assert log.has("engine auto for net.onnx: tensorrt:Fake GPU 9000 fp32", "Fake GPU 9000 (test)"), log


def test_create_runtime_auto_falls_back_to_onnxruntime_when_tensorrt_fails(tensorrt_can_run, cache, prepared_assets):
    # The fake parser cannot read a real ONNX file: as if TensorRT lacked an operator of this model.
    real_model = assets.model_path("face_landmark")
    log = Log()
    engine = create_runtime(real_model, kind="auto", cache_dir=cache, log=log.append)
    assert isinstance(engine, OnnxRuntime)
    assert log.has("engine auto for face_landmark.onnx: onnxruntime:", "tensorrt failed for this model",
                   "TensorRT cannot parse"), log
