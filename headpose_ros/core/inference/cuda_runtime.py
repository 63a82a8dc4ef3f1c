"""The CUDA runtime calls the TensorRT runtime makes, through cuda-python: the one seam to the GPU.

Everything here is a thin, checked wrapper; tests substitute a fake with the
same methods on machines without a GPU.
"""

from __future__ import annotations

from typing import Any

from .base import TENSORRT_INSTALL_HINT, InferenceError


class CudaRuntime:
    """The CUDA runtime calls TensorRTRuntime makes, through cuda-python: the one seam to the GPU.

    cuda-python functions return a tuple (cudaError_t, results...); every
    method here checks the error and raises InferenceError naming the call.
    Pointers (device and pinned host) are ints; a stream is an opaque object
    for these methods, and stream_handle() gives the integer TensorRT takes.
    The runtime uses the current device (device 0 unless the process chose
    another; CUDA_VISIBLE_DEVICES selects which GPU that is).
    """

    def __init__(self) -> None:
        try:
            from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
        except ImportError:
            try:
                from cuda import cudart  # older cuda-python (this module was removed in 13.0)
            except ImportError:
                raise InferenceError(
                    f"cuda-python is not installed (the TensorRT runtime copies through it): {TENSORRT_INSTALL_HINT}"
                ) from None
        self._rt = cudart

    def _check(self, what: str, result: tuple) -> Any:
        err = result[0]
        if err != self._rt.cudaError_t.cudaSuccess:
            raise InferenceError(f"CUDA {what} failed: {self._error_text(err)}")
        if len(result) == 1:
            return None
        return result[1] if len(result) == 2 else result[1:]

    def _error_text(self, err) -> str:
        try:
            name = self._rt.cudaGetErrorName(err)[1]
            text = self._rt.cudaGetErrorString(err)[1]
            return f"{_text(name)} ({_text(text)})"
        except Exception:
            return str(err)

    def device_info(self) -> tuple[str, tuple[int, int]]:
        """(name, (major, minor) compute capability) of the current device."""
        device = self._check("cudaGetDevice", self._rt.cudaGetDevice())
        prop = self._check("cudaGetDeviceProperties", self._rt.cudaGetDeviceProperties(device))
        return _text(prop.name), (int(prop.major), int(prop.minor))

    def malloc(self, nbytes: int) -> int:
        return int(self._check("cudaMalloc", self._rt.cudaMalloc(max(1, int(nbytes)))))

    def free(self, ptr: int) -> None:
        self._check("cudaFree", self._rt.cudaFree(ptr))

    def malloc_host(self, nbytes: int) -> int:
        """Pinned (page-locked) host memory: what makes cudaMemcpyAsync truly asynchronous."""
        return int(self._check("cudaMallocHost", self._rt.cudaMallocHost(max(1, int(nbytes)))))

    def free_host(self, ptr: int) -> None:
        self._check("cudaFreeHost", self._rt.cudaFreeHost(ptr))

    def create_stream(self) -> Any:
        return self._check("cudaStreamCreate", self._rt.cudaStreamCreate())

    def stream_handle(self, stream: Any) -> int:
        """The stream as the integer TensorRT's execute_async_v3 takes."""
        try:
            from cuda.bindings.utils import get_cuda_native_handle  # preferred since 12.9 / 13.0

            return int(get_cuda_native_handle(stream))
        except ImportError:
            return int(stream)

    def destroy_stream(self, stream: Any) -> None:
        self._check("cudaStreamDestroy", self._rt.cudaStreamDestroy(stream))

    def copy_to_device_async(self, dst: int, src: int, nbytes: int, stream: Any) -> None:
        kind = self._rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._check("cudaMemcpyAsync (host to device)", self._rt.cudaMemcpyAsync(dst, src, int(nbytes), kind, stream))

    def copy_to_host_async(self, dst: int, src: int, nbytes: int, stream: Any) -> None:
        kind = self._rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._check("cudaMemcpyAsync (device to host)", self._rt.cudaMemcpyAsync(dst, src, int(nbytes), kind, stream))

    def synchronize(self, stream: Any) -> None:
        self._check("cudaStreamSynchronize", self._rt.cudaStreamSynchronize(stream))


def _text(value: Any) -> str:
    """cuda-python returns C strings as bytes (NUL-padded char arrays for device names)."""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).split(b"\0", 1)[0].decode(errors="replace")
    return str(value).strip()
