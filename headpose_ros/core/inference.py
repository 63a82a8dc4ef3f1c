"""Inference engines behind one small interface.

An engine runs one network: a dict of named float32 arrays in, a dict of
named float32 arrays out. Stages hold an engine and never know which runtime
is behind it. `create_engine` is the one place that picks the runtime:

- ``onnxruntime``: ONNX Runtime, with its CUDA execution provider first when
  this onnxruntime build has it (``onnxruntime-gpu``) and a GPU is usable,
  else the CPU provider.
- ``tensorrt``: TensorRT 10 (``core.tensorrt_engine``), engines built once
  from the ONNX file and cached on disk. Needs ``pip install
  'headpose_ros[tensorrt]'`` and an NVIDIA GPU with its driver.
- ``auto``: TensorRT when it can run here, else ONNX Runtime; one log line
  says which and why.
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.util
import os
import threading
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

ENGINE_KINDS = ("onnxruntime", "tensorrt", "auto")
TENSORRT_INSTALL_HINT = "pip install 'headpose_ros[tensorrt]'"

# How long gpu_status() waits for the CUDA driver before giving up: a driver in
# a bad state can block cuInit, and start-up must never hang on a probe.
GPU_PROBE_TIMEOUT_S = 10.0


class InferenceError(RuntimeError):
    """A model that cannot be loaded or run; the message names the file and the fix."""


class InferenceEngine(Protocol):
    """What every runtime offers to the stages."""

    name: str  # e.g. "onnxruntime:CPUExecutionProvider", "tensorrt:NVIDIA H100 fp16"
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once; every output by name."""
        ...

    def accepts_batch(self, input_name: str) -> bool:
        """True when one run() may carry several crops in this input (batch dimension not fixed)."""
        ...


class OnnxRuntimeEngine:
    """ONNX Runtime session with a bounded thread pool.

    threads: intra-op threads (0 lets ONNX Runtime pick, which is every core).
    providers: execution providers in preference order; one this onnxruntime
    build lacks is skipped, and the CPU provider is the last resort.
    """

    def __init__(self, model_path: str | Path, threads: int = 2,
                 providers: tuple[str, ...] = ("CPUExecutionProvider",)):
        import onnxruntime as ort

        path = Path(model_path)
        if not path.is_file():
            raise InferenceError(f"model file {path} does not exist: run `make setup` or `headpose-ros prepare`")
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(0, int(threads))
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Worker threads spin while a run is in progress (waking sleeping threads costs
        # ~40% on the small ops of these networks) and stop spinning when it ends, so
        # they do not burn the cores between camera frames. Measured here on WHENet at
        # 2 threads with 20 ms gaps: 7.5 ms and 52% CPU, against 13.3 ms and 45% with
        # no spinning and 7.4 ms and 127% with ONNX Runtime's default.
        options.add_session_config_entry("session.intra_op.allow_spinning", "1")
        options.add_session_config_entry("session.force_spinning_stop", "1")
        available = set(ort.get_available_providers())
        chosen = [p for p in providers if p in available] or ["CPUExecutionProvider"]
        if "CPUExecutionProvider" not in chosen:
            chosen.append("CPUExecutionProvider")
        try:
            self._session = ort.InferenceSession(os.fspath(path), options, providers=chosen)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise InferenceError(
                f"cannot load model {path}: {str(exc).splitlines()[0]} "
                "(corrupt or incompatible file? rerun `headpose-ros prepare --force`)"
            ) from None
        self.path = path
        self.input_names = tuple(i.name for i in self._session.get_inputs())
        self.output_names = tuple(o.name for o in self._session.get_outputs())
        self.input_shapes = {i.name: tuple(i.shape) for i in self._session.get_inputs()}
        # The provider that really runs the graph: a CUDA provider that failed to
        # initialise is dropped by ONNX Runtime, and the name must say so.
        self.name = f"onnxruntime:{self._session.get_providers()[0]}"

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = self._session.run(None, inputs)
        return dict(zip(self.output_names, outputs))

    def accepts_batch(self, input_name: str) -> bool:
        """True when the input's batch dimension is symbolic (several crops per call)."""
        dim = self.input_shapes[input_name][0]
        return not isinstance(dim, int)

    def close(self) -> None:
        """Nothing to release explicitly (the session frees itself); here for symmetry with TensorRT."""


# --- what can run here --------------------------------------------------------------------------

_gpu_lock = threading.Lock()
_gpu_cached: tuple[bool, str] | None = None


def gpu_status(refresh: bool = False) -> tuple[bool, str]:
    """Whether an NVIDIA GPU is usable here, and why not or which one.

    Returns (True, "NVIDIA H100 80GB HBM3 (compute 9.0, driver CUDA 12.4)") or
    (False, "no NVIDIA driver (libcuda.so.1 not found)") and the like. Asks the
    CUDA driver itself through ctypes, so it needs neither cuda-python nor
    tensorrt. Never raises, and returns within GPU_PROBE_TIMEOUT_S even if
    the driver hangs. The answer is cached for the process (the hardware does
    not change under a running node); refresh=True asks again.
    Honors CUDA_VISIBLE_DEVICES (the driver applies it) and reports device 0,
    the one the engines use.
    """
    global _gpu_cached
    with _gpu_lock:
        if _gpu_cached is not None and not refresh:
            return _gpu_cached
        box: list[tuple[bool, str]] = [(False, f"the CUDA driver did not answer within {GPU_PROBE_TIMEOUT_S:g} s")]

        def probe() -> None:
            try:
                box[0] = _probe_cuda_driver()
            except Exception as exc:  # a broken driver install must not break start-up
                box[0] = (False, f"the CUDA driver probe failed: {exc}")

        # A daemon thread: if cuInit blocks forever, the process can still exit.
        thread = threading.Thread(target=probe, name="headpose-gpu-probe", daemon=True)
        thread.start()
        thread.join(GPU_PROBE_TIMEOUT_S)
        _gpu_cached = box[0]
        return _gpu_cached


# Driver API constants (cuda.h): stable since CUDA 2.x.
_CUDA_SUCCESS = 0
_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75
_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76


def _probe_cuda_driver() -> tuple[bool, str]:
    """gpu_status's work: load libcuda, cuInit, count devices, name device 0."""
    lib = None
    for soname in ("libcuda.so.1", "libcuda.so"):
        try:
            lib = ctypes.CDLL(soname)
            break
        except OSError:
            continue
    if lib is None:
        return False, "no NVIDIA driver (libcuda.so.1 not found)"

    def error_name(code: int) -> str:
        name = ctypes.c_char_p()
        try:
            if lib.cuGetErrorName(ctypes.c_int(code), ctypes.byref(name)) == _CUDA_SUCCESS and name.value:
                return name.value.decode(errors="replace")
        except AttributeError:
            pass
        return f"CUDA driver error {code}"

    code = lib.cuInit(ctypes.c_uint(0))
    if code != _CUDA_SUCCESS:
        return False, f"the NVIDIA driver cannot initialise CUDA ({error_name(code)})"
    count = ctypes.c_int(0)
    code = lib.cuDeviceGetCount(ctypes.byref(count))
    if code != _CUDA_SUCCESS:
        return False, f"the NVIDIA driver cannot list devices ({error_name(code)})"
    if count.value < 1:
        return False, "the NVIDIA driver sees no CUDA device (check CUDA_VISIBLE_DEVICES)"
    device = ctypes.c_int(0)
    code = lib.cuDeviceGet(ctypes.byref(device), ctypes.c_int(0))
    if code != _CUDA_SUCCESS:
        return False, f"CUDA device 0 is not usable ({error_name(code)})"
    raw = ctypes.create_string_buffer(256)
    name = "NVIDIA GPU"
    if lib.cuDeviceGetName(raw, ctypes.c_int(len(raw)), device) == _CUDA_SUCCESS and raw.value:
        name = raw.value.decode(errors="replace").strip()
    major, minor = ctypes.c_int(0), ctypes.c_int(0)
    lib.cuDeviceGetAttribute(ctypes.byref(major), ctypes.c_int(_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR), device)
    lib.cuDeviceGetAttribute(ctypes.byref(minor), ctypes.c_int(_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR), device)
    version = ctypes.c_int(0)
    driver = ""
    if lib.cuDriverGetVersion(ctypes.byref(version)) == _CUDA_SUCCESS and version.value > 0:
        driver = f", driver CUDA {version.value // 1000}.{version.value % 1000 // 10}"
    return True, f"{name} (compute {major.value}.{minor.value}{driver})"


def tensorrt_status() -> tuple[bool, str]:
    """Whether the TensorRT engine can run here: (usable?, what is missing or the GPU).

    Needs three pieces: the `tensorrt` Python package, `cuda-python` (the engine's
    host<->device copies), and a usable NVIDIA GPU (gpu_status). The reason
    lists every missing piece, so one message tells the whole fix. tensorrt is
    only imported when everything else is present (importing it is slow and
    pointless without a GPU). Never raises.
    """
    missing = []
    trt_spec = importlib.util.find_spec("tensorrt")
    if trt_spec is None:
        missing.append("tensorrt is not installed")
    if not _cuda_python_present():
        missing.append("cuda-python is not installed")
    gpu_ok, gpu = gpu_status()
    if not gpu_ok:
        missing.append(f"no usable NVIDIA GPU: {gpu}")
    if missing:
        return False, "; ".join(missing)
    try:
        trt = importlib.import_module("tensorrt")
    except Exception as exc:  # a wheel whose libraries do not load raises OSError, not ImportError
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return False, f"tensorrt is installed but does not import: {detail}"
    return True, f"tensorrt {getattr(trt, '__version__', '?')} on {gpu}"


def _cuda_python_present() -> bool:
    """cuda-python's runtime bindings: cuda.bindings.runtime (12.6+), or cuda.cudart before that."""
    for name in ("cuda.bindings.runtime", "cuda.cudart"):
        try:
            if importlib.util.find_spec(name) is not None:
                return True
        except (ImportError, ValueError):  # parent package `cuda` missing, or a namespace oddity
            continue
    return False


def onnxruntime_providers() -> tuple[str, ...]:
    """ONNX Runtime providers to ask for: CUDA first when this build has it and a GPU is usable."""
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers() and gpu_status()[0]:
        return ("CUDAExecutionProvider", "CPUExecutionProvider")
    return ("CPUExecutionProvider",)


# --- the factory ----------------------------------------------------------------------------------


def create_engine(
    model_path: str | Path,
    *,
    kind: str = "onnxruntime",
    threads: int = 2,
    max_batch: int = 1,
    fp16: bool = False,
    cache_dir: str | Path | None = None,
    log: Callable[[str], None] = print,
) -> InferenceEngine:
    """The engine of `kind` for one ONNX model file.

    kind: "onnxruntime", "tensorrt" or "auto" (TensorRT when tensorrt_status()
        says it can run here, else ONNX Runtime; logs one line with the choice
        and the reason, and falls back to ONNX Runtime if building the
        TensorRT engine fails).
    threads: ONNX Runtime intra-op threads (0: every core). TensorRT ignores it.
    max_batch: most crops one run() carries; TensorRT builds its optimisation
        profile for 1..max_batch (larger batches are split). ONNX Runtime
        ignores it (it takes any batch the model allows).
    fp16: TensorRT only: build an FP16 engine where the GPU supports it.
    cache_dir: TensorRT only: where built engines are kept (default: the asset
        cache's "tensorrt" folder).
    log: one-line messages (engine choice, TensorRT builds, cache problems).

    Raises InferenceError for an unknown kind, a missing or unloadable model,
    or kind="tensorrt" where TensorRT cannot run (the message names what is
    missing and how to install it).
    """
    if kind not in ENGINE_KINDS:
        raise InferenceError(f"unknown inference engine '{kind}' (choose {', '.join(ENGINE_KINDS)})")
    if max_batch < 1:
        raise InferenceError(f"max_batch must be at least 1, not {max_batch}")
    path = Path(model_path)
    if kind == "onnxruntime":
        return OnnxRuntimeEngine(path, threads=threads, providers=onnxruntime_providers())

    usable, reason = tensorrt_status()
    if kind == "tensorrt":
        if not usable:
            raise InferenceError(
                f"inference engine 'tensorrt' cannot run here: {reason}. Install it with "
                f"`{TENSORRT_INSTALL_HINT}` on a machine with an NVIDIA GPU and driver, "
                "or choose the engine onnxruntime (or auto, which falls back to it)"
            )
        return _tensorrt_engine(path, max_batch=max_batch, fp16=fp16, cache_dir=cache_dir, log=log)

    # auto
    if usable:
        try:
            engine = _tensorrt_engine(path, max_batch=max_batch, fp16=fp16, cache_dir=cache_dir, log=log)
        except Exception as exc:
            # auto promises a working engine: any TensorRT failure (an operator it
            # lacks, an API difference in another TensorRT release) falls back,
            # and the log line says what happened. A missing file fails either way.
            if not path.is_file():
                raise
            reason = f"tensorrt failed for this model ({type(exc).__name__}: {exc})"
        else:
            log(f"engine auto for {path.name}: {engine.name} ({reason})")
            return engine
    engine = OnnxRuntimeEngine(path, threads=threads, providers=onnxruntime_providers())
    log(f"engine auto for {path.name}: {engine.name}: {reason}")
    return engine


def _tensorrt_engine(path: Path, *, max_batch: int, fp16: bool, cache_dir, log) -> InferenceEngine:
    # Imported here: the module is light, but keeping it out of import time keeps
    # `import headpose_ros.core.inference` identical on machines without TensorRT.
    from .tensorrt_engine import TensorRTEngine

    return TensorRTEngine(path, max_batch=max_batch, fp16=fp16, cache_dir=cache_dir, log=log)
