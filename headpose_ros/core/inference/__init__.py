"""Inference runtimes behind one small interface (base.Runtime).

A runtime runs one network: a dict of named float32 arrays in, a dict of
named float32 arrays out. Stages hold a runtime and never know which library
is behind it; `run_batched` feeds them a batch of crops either way.

- base.py: the Runtime protocol, InferenceError, run_batched, NetworkStage (a stage's model + runtime).
- onnx_runtime.py: OnnxRuntime, and ort_session, the one place ONNX Runtime
  sessions are configured (the conversions use it too).
- tensorrt_runtime.py, tensorrt_cache.py, cuda_runtime.py: TensorRT 10, its
  on-disk engine cache, and the CUDA calls it makes.
- devices.py: what can run here (an NVIDIA GPU, TensorRT, ONNX Runtime providers).
- factory.py: create_runtime, the one place a runtime is chosen.
"""

from .base import TENSORRT_INSTALL_HINT, InferenceError, NetworkStage, Runtime, run_batched
from .devices import GPU_PROBE_TIMEOUT_S, gpu_status, onnxruntime_providers, tensorrt_status
from .factory import RUNTIME_KINDS, create_runtime
from .onnx_runtime import OnnxRuntime, ort_session

__all__ = [
    "GPU_PROBE_TIMEOUT_S",
    "InferenceError",
    "NetworkStage",
    "OnnxRuntime",
    "RUNTIME_KINDS",
    "Runtime",
    "TENSORRT_INSTALL_HINT",
    "create_runtime",
    "gpu_status",
    "onnxruntime_providers",
    "ort_session",
    "run_batched",
    "tensorrt_status",
]
