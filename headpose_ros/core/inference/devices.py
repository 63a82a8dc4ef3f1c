"""What can run here: an NVIDIA GPU (asked of its driver directly), TensorRT, ONNX Runtime's providers."""

from __future__ import annotations

import ctypes
import importlib
import importlib.util
import threading

# How long gpu_status() waits for the CUDA driver before giving up: a driver in
# a bad state can block cuInit, and start-up must never hang on a probe.
GPU_PROBE_TIMEOUT_S = 10.0

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
