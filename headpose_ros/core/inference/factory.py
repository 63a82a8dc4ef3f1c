"""The one place that picks a runtime for a network: ONNX Runtime, TensorRT, or the best that runs here."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from . import devices
from .base import TENSORRT_INSTALL_HINT, InferenceError, Runtime
from .onnx_runtime import OnnxRuntime

RUNTIME_KINDS = ("onnxruntime", "tensorrt", "auto")


def create_runtime(
    model_path: str | Path,
    *,
    kind: str = "onnxruntime",
    threads: int = 2,
    max_batch: int = 1,
    fp16: bool = False,
    cache_dir: str | Path | None = None,
    log: Callable[[str], None] = print,
) -> Runtime:
    """The runtime of `kind` for one ONNX model file.

    kind: "onnxruntime" (its CUDA provider first where this onnxruntime build
        has it and a GPU is usable, else the CPU), "tensorrt" or "auto"
        (TensorRT when devices.tensorrt_status() says it can run here, else
        ONNX Runtime; logs one line with the choice and the reason, and falls
        back to ONNX Runtime if building the TensorRT engine fails).
    threads: ONNX Runtime intra-op threads (0: every core). TensorRT ignores it.
    max_batch: most crops one run() carries; TensorRT builds its optimisation
        profile for 1..max_batch (larger batches are split). ONNX Runtime
        ignores it (it takes any batch the model allows).
    fp16: TensorRT only: build an FP16 engine where the GPU supports it.
    cache_dir: TensorRT only, and needed there: where built engines are kept.
    log: one-line messages (runtime choice, TensorRT builds, cache problems).

    Raises InferenceError for an unknown kind, a missing or unloadable model,
    or kind="tensorrt" where TensorRT cannot run (the message names what is
    missing and how to install it).
    """
    if kind not in RUNTIME_KINDS:
        raise InferenceError(f"unknown inference engine '{kind}' (choose {', '.join(RUNTIME_KINDS)})")
    if max_batch < 1:
        raise InferenceError(f"max_batch must be at least 1, not {max_batch}")
    path = Path(model_path)
    if kind == "onnxruntime":
        return OnnxRuntime(path, threads=threads, providers=devices.onnxruntime_providers())

    usable, reason = devices.tensorrt_status()
    if kind == "tensorrt":
        if not usable:
            raise InferenceError(
                f"inference engine 'tensorrt' cannot run here: {reason}. Install it with "
                f"`{TENSORRT_INSTALL_HINT}` on a machine with an NVIDIA GPU and driver, "
                "or choose the engine onnxruntime (or auto, which falls back to it)"
            )
        return _tensorrt(path, cache_dir, max_batch=max_batch, fp16=fp16, log=log)

    # auto
    if usable:
        try:
            runtime = _tensorrt(path, cache_dir, max_batch=max_batch, fp16=fp16, log=log)
        except Exception as exc:
            # auto promises a working runtime: any TensorRT failure (an operator it
            # lacks, an API difference in another TensorRT release) falls back,
            # and the log line says what happened. A missing file fails either way.
            if not path.is_file():
                raise
            reason = f"tensorrt failed for this model ({type(exc).__name__}: {exc})"
        else:
            log(f"engine auto for {path.name}: {runtime.name} ({reason})")
            return runtime
    runtime = OnnxRuntime(path, threads=threads, providers=devices.onnxruntime_providers())
    log(f"engine auto for {path.name}: {runtime.name}: {reason}")
    return runtime


def _tensorrt(path: Path, cache_dir, *, max_batch: int, fp16: bool, log) -> Runtime:
    if cache_dir is None:
        raise InferenceError("the TensorRT runtime needs a folder for its engine cache (cache_dir)")
    # Imported here: the module is light, but keeping it out of import time keeps
    # `import headpose_ros.core.inference` identical on machines without TensorRT.
    from .tensorrt_runtime import TensorRTRuntime

    return TensorRTRuntime(path, cache_dir, max_batch=max_batch, fp16=fp16, log=log)
