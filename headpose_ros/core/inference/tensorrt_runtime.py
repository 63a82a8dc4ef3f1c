"""TensorRT 10: an ONNX model built once into a GPU engine, cached on disk, run per frame.

`TensorRTRuntime` is a Runtime (core.inference.base) created by
`create_runtime(kind="tensorrt" | "auto")`.

Life of an engine (TensorRT's word for a network compiled for one GPU):

1. Build (first run only, tens of seconds): the ONNX file is parsed with
   TensorRT's OnnxParser; every input whose batch dimension is dynamic gets an
   optimisation profile min 1, opt max_batch, max max_batch (the other
   dimensions come from the ONNX); FP16 is enabled when asked for and the GPU
   has fast FP16; the builder's workspace is capped with set_memory_pool_limit.
2. Cache (core.inference.tensorrt_cache): the serialized engine is stored
   with a key of everything that makes it valid; a later start with the same
   key deserializes it (well under a second); a stale, corrupt or
   undeserializable entry is rebuilt, with a log line saying why.
3. Run: inputs are staged in pinned host buffers, copied to device buffers
   allocated once for max_batch, executed with execute_async_v3 on a stream
   the runtime owns, and copied back; the stream is synchronized before run()
   returns. Batches larger than max_batch are split.

Only this module imports `tensorrt`, lazily (inside TensorRTRuntime), and all
CUDA calls go through `CudaRuntime` (core.inference.cuda_runtime). That is
what lets the tests substitute a fake `tensorrt` module and a fake CUDA layer
on machines without a GPU.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .base import TENSORRT_INSTALL_HINT, InferenceError
from .cuda_runtime import CudaRuntime
from .tensorrt_cache import EngineCacheSlot, cache_key_fields

# Upper bound on the scratch memory a layer may use while building and running.
# A cap, not an allocation; these face networks need a few MB.
DEFAULT_WORKSPACE_BYTES = 512 << 20


# --- TensorRT logging ------------------------------------------------------------------------------

_loggers: dict[int, tuple[Any, Any]] = {}
_loggers_lock = threading.Lock()


def _trt_logger(trt) -> Any:
    """One TensorRT logger per process (per tensorrt module), forwarding warnings and errors to a sink.

    TensorRT wants its logger to outlive every object made through it, and
    older releases treated it as a process-wide singleton; so the logger is
    created once and each new engine points its sink at its own log function.
    """
    with _loggers_lock:
        entry = _loggers.get(id(trt))
        if entry is not None and entry[0] is trt:
            return entry[1]
        severity = trt.ILogger.Severity
        labels = {severity.INTERNAL_ERROR: "internal error", severity.ERROR: "error", severity.WARNING: "warning"}

        class ForwardingLogger(trt.ILogger):
            def __init__(self) -> None:
                trt.ILogger.__init__(self)  # required for a Python subclass, per the TensorRT docs
                self.sink: Callable[[str], None] | None = None

            def log(self, sev, msg) -> None:
                label = labels.get(sev)
                sink = self.sink
                if label is not None and sink is not None:
                    sink(f"tensorrt {label}: {msg}")

        logger = ForwardingLogger()
        # The module is kept referenced with its logger, so its id cannot be reused by another.
        _loggers[id(trt)] = (trt, logger)
        return logger


class TensorRTRuntime:
    """One ONNX network run by TensorRT on the GPU (see the module docstring for build, cache and run).

    onnx_path: the ONNX file (one file; weights stored in external files are
        not part of the cache key).
    cache_dir: the folder of cached engines (core.inference.tensorrt_cache).
    max_batch: most crops per execution; the optimisation profile covers
        1..max_batch for inputs with a dynamic batch dimension. An input with a
        fixed batch runs exactly that batch, and run() loops over larger ones.
    fp16: build an FP16 engine where the GPU has fast FP16 (inputs and outputs
        stay float32 at this interface either way). Without it the engine is
        strict FP32 (TF32 disabled), matching ONNX Runtime to float rounding.
    log: one-line messages: builds and why, cache problems, TensorRT's own
        warnings and errors.
    workspace_bytes: the builder's workspace cap (set_memory_pool_limit).
    cuda: the CUDA layer; None creates CudaRuntime() (tests pass a fake).

    Raises InferenceError when tensorrt or cuda-python is missing, the model
    file is missing, TensorRT cannot parse or build the model, or CUDA fails.
    Not re-entrant: run() holds a lock (the buffers and the context are shared).
    """

    def __init__(self, onnx_path: str | Path, cache_dir: str | Path, *, max_batch: int = 1, fp16: bool = False,
                 log: Callable[[str], None] = print, workspace_bytes: int = DEFAULT_WORKSPACE_BYTES,
                 cuda: CudaRuntime | None = None):
        # Set first so close()/__del__ work on a runtime that failed half-way.
        self._closed = False
        self._device: dict[str, int] = {}
        self._host_ptr: dict[str, int] = {}
        self._stream = None
        self._context = None
        self._engine = None
        self._lock = threading.Lock()

        self.path = Path(onnx_path)
        if not self.path.is_file():
            raise InferenceError(f"model file {self.path} does not exist: run `make setup` or `headpose-ros prepare`")
        if int(max_batch) < 1:
            raise InferenceError(f"max_batch must be at least 1, not {max_batch}")
        self.max_batch = int(max_batch)
        self.fp16 = bool(fp16)
        self.cache_dir = Path(cache_dir).expanduser()
        self.workspace_bytes = int(workspace_bytes)
        self._log = log

        try:
            trt = importlib.import_module("tensorrt")
        except ImportError:
            raise InferenceError(f"tensorrt is not installed: {TENSORRT_INSTALL_HINT}") from None
        self._trt = trt
        self._cuda = cuda if cuda is not None else CudaRuntime()
        self._logger = _trt_logger(trt)
        self._logger.sink = log

        self.gpu_name, self.compute_capability = self._cuda.device_info()
        self.requested_precision = "fp16" if self.fp16 else "fp32"
        onnx_bytes = self.path.read_bytes()
        self.cache = EngineCacheSlot(self.cache_dir, self.path, cache_key_fields(
            hashlib.sha256(onnx_bytes).hexdigest(), getattr(trt, "__version__", "unknown"), self.gpu_name,
            self.compute_capability, self.requested_precision, self.max_batch), log)

        # Outcome of construction, for logs, tests and diagnostics.
        self.built = False  # True when this construction built the engine (no usable cache entry)
        self.build_seconds = 0.0
        self.load_seconds = 0.0
        self.cached = False  # True when the engine is (now) on disk under the current key

        self._runtime = trt.Runtime(self._logger)
        self._engine, self.precision = self._load_or_build(onnx_bytes)
        self._setup_io()
        self.name = f"tensorrt:{self.gpu_name} {self.precision}"
        self.threads = None  # no CPU thread pools: the GPU does the work

    @property
    def key(self) -> str:
        return self.cache.key

    @property
    def key_fields(self) -> dict[str, Any]:
        return self.cache.key_fields

    @property
    def engine_file(self) -> Path:
        """The cache slot's engine file (tensorrt_cache.EngineCacheSlot)."""
        return self.cache.engine_file

    @property
    def meta_file(self) -> Path:
        """The JSON sidecar of engine_file: key, key fields, engine checksum, built precision."""
        return self.cache.meta_file

    # -- cache ---------------------------------------------------------------------------------

    def _load_or_build(self, onnx_bytes: bytes) -> tuple[Any, str]:
        """(deserialized engine, built precision): from the cache when its entry is valid, else a fresh build."""
        start = time.perf_counter()
        engine, meta, problem = self._from_cache()
        what = f"{self.path.name} ({self.requested_precision}, batch up to {self.max_batch})"
        if engine is not None:
            self.load_seconds = time.perf_counter() - start
            self.cached = True
            precision = meta.get("built_precision", self.requested_precision)
            self._log(f"tensorrt: loaded the cached engine for {what} in {self.load_seconds:.2f} s")
            return engine, precision

        self._log(f"tensorrt: building the engine for {what}: {problem}; this takes a while, once")
        start = time.perf_counter()
        plan, precision = self._build(onnx_bytes)
        self.build_seconds = time.perf_counter() - start
        self.built = True
        self.cached = self.cache.write(plan, precision)
        where = f"cached as {self.engine_file}" if self.cached else "not cached (cache directory not writable)"
        self._log(f"tensorrt: built {self.path.name} in {self.build_seconds:.1f} s ({precision}); {where}")
        engine = self._deserialize(plan)
        if engine is None:
            raise InferenceError(f"TensorRT built an engine for {self.path} but cannot load it (see its log)")
        return engine, precision

    def _from_cache(self) -> tuple[Any, dict, str]:
        """(engine, metadata, "") on a valid entry, else (None, {}, why the entry cannot be used)."""
        plan, meta, problem = self.cache.read()
        if plan is None:
            return None, {}, problem
        engine = self._deserialize(plan)
        if engine is None:
            return None, {}, f"the cached engine {self.engine_file.name} is corrupt (TensorRT cannot deserialize it)"
        return engine, meta, ""

    def _deserialize(self, plan: bytes) -> Any:
        """The engine, or None when TensorRT rejects the bytes (it returns None or raises, by release)."""
        try:
            return self._runtime.deserialize_cuda_engine(plan)
        except Exception as exc:
            self._log(f"tensorrt: deserializing failed: {exc}")
            return None

    # -- build ---------------------------------------------------------------------------------

    def _build(self, onnx_bytes: bytes) -> tuple[bytes, str]:
        """Parse the ONNX and build a serialized engine: (plan bytes, "fp16" or "fp32")."""
        trt = self._trt
        builder = trt.Builder(self._logger)
        # TensorRT 10 networks are always explicit-batch; the old EXPLICIT_BATCH flag is ignored.
        network = builder.create_network(0)
        parser = trt.OnnxParser(network, self._logger)
        # Parse the very bytes that were hashed for the key; the path lets the
        # parser find weights stored next to the model, if any.
        if not parser.parse(onnx_bytes, str(self.path)):
            errors = [_parser_error_text(parser.get_error(i)) for i in range(parser.num_errors)]
            raise InferenceError(
                f"TensorRT cannot parse {self.path}: {'; '.join(errors) or 'no detail given'} "
                "(engine onnxruntime runs this model)")

        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, self.workspace_bytes)
        profile = None
        for i in range(network.num_inputs):
            tensor = network.get_input(i)
            shape = tuple(int(d) for d in tensor.shape)
            if not shape:
                continue
            if any(d < 0 for d in shape[1:]):
                raise InferenceError(
                    f"input '{tensor.name}' of {self.path} has the shape {shape}: only its batch dimension may be "
                    "dynamic for the TensorRT engine (engine onnxruntime runs this model)")
            if shape[0] < 0:
                if profile is None:
                    profile = builder.create_optimization_profile()
                rest = shape[1:]
                profile.set_shape(tensor.name, (1, *rest), (self.max_batch, *rest), (self.max_batch, *rest))
        if profile is not None:
            config.add_optimization_profile(profile)

        precision = "fp32"
        if self.fp16:
            fp16_flag = getattr(trt.BuilderFlag, "FP16", None)
            if fp16_flag is None:
                self._log("tensorrt: fp16 was asked for, but this TensorRT has no FP16 builder flag "
                          "(TensorRT 11 takes fp16 only from an fp16 ONNX); building fp32")
            elif not _platform_has_fast_fp16(builder):
                self._log(f"tensorrt: fp16 was asked for, but the {self.gpu_name} has no fast fp16; building fp32")
            else:
                config.set_flag(fp16_flag)
                precision = "fp16"
        if precision == "fp32":
            # TensorRT allows TF32 (10-bit mantissa) in "fp32" engines by default on
            # Ampere and later; fp32 here means fp32, so results match ONNX Runtime.
            tf32_flag = getattr(trt.BuilderFlag, "TF32", None)
            if tf32_flag is not None:
                config.clear_flag(tf32_flag)

        plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise InferenceError(f"TensorRT could not build an engine for {self.path} (its log says why; "
                                 "engine onnxruntime runs this model)")
        return bytes(memoryview(plan)), precision

    # -- buffers -------------------------------------------------------------------------------

    def _setup_io(self) -> None:
        """Read the I/O tensors, fix the batch capacity, allocate device and pinned buffers once, bind them."""
        trt, engine, cuda = self._trt, self._engine, self._cuda
        self._context = engine.create_execution_context()
        if self._context is None:
            raise InferenceError(f"TensorRT cannot create an execution context for {self.path} (out of GPU memory?)")
        inputs, outputs = [], []
        self._dtype: dict[str, np.dtype] = {}
        engine_shape: dict[str, tuple[int, ...]] = {}
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            self._dtype[name] = _numpy_dtype(trt, engine.get_tensor_dtype(name), name)
            engine_shape[name] = tuple(int(d) for d in engine.get_tensor_shape(name))
            (inputs if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else outputs).append(name)
        self.input_names = tuple(inputs)
        self.output_names = tuple(outputs)

        for name in inputs:
            shape = engine_shape[name]
            if not shape or any(d < 0 for d in shape[1:]):
                raise InferenceError(f"input '{name}' of {self.path} has the shape {shape}: only a leading "
                                     "dynamic batch dimension is supported")
        dynamic = {name for name in inputs if engine_shape[name][0] < 0}
        if dynamic and len(dynamic) != len(inputs):
            raise InferenceError(f"{self.path}: some inputs have a dynamic batch and some a fixed one; not supported")
        self._dynamic = bool(dynamic)
        if self._dynamic:
            self.batch_capacity = self.max_batch
        else:
            fixed = {engine_shape[name][0] for name in inputs}
            if len(fixed) > 1:
                raise InferenceError(f"{self.path}: inputs disagree on their fixed batch size {sorted(fixed)}")
            self.batch_capacity = fixed.pop() if fixed else 1
        self._input_rest = {name: engine_shape[name][1:] for name in inputs}

        # Output sizes at the largest batch: set every input to its maximum shape and ask the context.
        max_shape: dict[str, tuple[int, ...]] = {}
        for name in inputs:
            max_shape[name] = (self.batch_capacity, *self._input_rest[name])
            if self._dynamic and not self._context.set_input_shape(name, max_shape[name]):
                raise InferenceError(f"TensorRT rejects the shape {max_shape[name]} for input '{name}' of {self.path}")
        self._shape_set = {name: max_shape[name] for name in inputs} if self._dynamic else {}
        for name in outputs:
            shape = tuple(int(d) for d in self._context.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise InferenceError(f"output '{name}' of {self.path} has a data-dependent shape {shape}; "
                                     "not supported")
            max_shape[name] = shape
        self._output_rest = {name: max_shape[name][1:] for name in outputs}

        for name in (*inputs, *outputs):
            nbytes = int(np.prod(max_shape[name], dtype=np.int64)) * self._dtype[name].itemsize
            self._device[name] = cuda.malloc(nbytes)
            self._host_ptr[name] = cuda.malloc_host(nbytes)
            if not self._context.set_tensor_address(name, self._device[name]):
                raise InferenceError(f"TensorRT rejects the device buffer of '{name}' of {self.path}")
        # Flat numpy views of the pinned buffers, typed as the engine's tensors.
        self._host = {
            name: np.frombuffer((ctypes.c_uint8 * max(1, int(np.prod(max_shape[name], dtype=np.int64))
                                                      * self._dtype[name].itemsize)).from_address(ptr),
                                dtype=np.uint8).view(self._dtype[name])
            for name, ptr in self._host_ptr.items()
        }
        self._stream = cuda.create_stream()
        self._stream_handle = cuda.stream_handle(self._stream)

    # -- running -------------------------------------------------------------------------------

    def accepts_batch(self, input_name: str) -> bool:
        """True when the input's batch dimension is dynamic (several crops per call, up to max_batch at once)."""
        if input_name not in self._input_rest:
            raise KeyError(input_name)
        return self._dynamic

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the network on a batch.

        inputs: every input name -> array of shape (n, *the model's other
            dimensions), any real dtype (converted to the engine's tensor type).
            All inputs share n; n may exceed max_batch (it is run in chunks).
        Returns every output name -> float32 array of shape (n, ...).
        """
        with self._lock:
            if self._closed:
                raise InferenceError(f"the TensorRT engine for {self.path.name} is closed")
            arrays = {}
            for name in self.input_names:
                if name not in inputs:
                    raise InferenceError(f"{self.path.name}: input '{name}' is missing (got {sorted(inputs)})")
                a = np.asarray(inputs[name])
                rest = self._input_rest[name]
                if a.ndim != len(rest) + 1 or tuple(a.shape[1:]) != rest:
                    raise InferenceError(f"{self.path.name}: input '{name}' has the shape {a.shape}, "
                                         f"the engine takes (n, {', '.join(map(str, rest))})")
                arrays[name] = a
            sizes = {a.shape[0] for a in arrays.values()}
            if len(sizes) > 1:
                raise InferenceError(f"{self.path.name}: inputs disagree on the batch size {sorted(sizes)}")
            n = sizes.pop() if sizes else self.batch_capacity
            step = self.batch_capacity
            if not self._dynamic and n % step:
                raise InferenceError(f"{self.path.name} has a fixed batch of {step}; got {n}")
            if n == 0:
                return {name: np.zeros((0, *self._output_rest[name]), np.float32) for name in self.output_names}
            parts = [self._run_chunk({k: a[s:s + step] for k, a in arrays.items()}) for s in range(0, n, step)]
            if len(parts) == 1:
                return parts[0]
            return {name: np.concatenate([p[name] for p in parts]) for name in self.output_names}

    def _run_chunk(self, chunk: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One execution of at most batch_capacity items: stage, copy in, execute, copy out, synchronize."""
        cuda, context, stream = self._cuda, self._context, self._stream
        for name, a in chunk.items():
            if self._dynamic and self._shape_set.get(name) != a.shape:
                if not context.set_input_shape(name, a.shape):
                    raise InferenceError(f"TensorRT rejects the shape {a.shape} for input '{name}' of {self.path.name}")
                self._shape_set[name] = a.shape
            # Staging in pinned memory converts dtype (e.g. to fp16 inputs) in the same pass.
            np.copyto(self._host[name][:a.size].reshape(a.shape), a, casting="same_kind")
            cuda.copy_to_device_async(self._device[name], self._host_ptr[name], a.size * self._dtype[name].itemsize,
                                      stream)
        shapes = {name: tuple(int(d) for d in context.get_tensor_shape(name)) for name in self.output_names}
        ok = context.execute_async_v3(self._stream_handle)
        if not ok:
            cuda.synchronize(stream)  # let the queued copies finish before anyone touches the buffers
            raise InferenceError(f"TensorRT failed to execute {self.path.name} (see its log)")
        sizes = {name: int(np.prod(shape, dtype=np.int64)) for name, shape in shapes.items()}
        for name in self.output_names:
            cuda.copy_to_host_async(self._host_ptr[name], self._device[name], sizes[name] * self._dtype[name].itemsize,
                                    stream)
        cuda.synchronize(stream)
        # astype copies: the pinned buffers are reused by the next run.
        return {name: self._host[name][:sizes[name]].reshape(shapes[name]).astype(np.float32)
                for name in self.output_names}

    # -- cleanup -------------------------------------------------------------------------------

    def close(self) -> None:
        """Release the context, the engine, the stream and every buffer. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            cuda = getattr(self, "_cuda", None)
            if cuda is not None and self._stream is not None:
                try:
                    cuda.synchronize(self._stream)
                except Exception:
                    pass
            # TensorRT objects go before the memory they were bound to.
            self._context = None
            self._engine = None
            self._host = {}
            if cuda is None:
                return
            for ptr in self._device.values():
                _quietly(cuda.free, ptr)
            for ptr in self._host_ptr.values():
                _quietly(cuda.free_host, ptr)
            self._device, self._host_ptr = {}, {}
            if self._stream is not None:
                _quietly(cuda.destroy_stream, self._stream)
                self._stream = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: modules may already be gone
            pass

    def __enter__(self) -> "TensorRTRuntime":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _quietly(fn: Callable, *args) -> None:
    try:
        fn(*args)
    except Exception:
        pass


def _platform_has_fast_fp16(builder) -> bool:
    """builder.platform_has_fast_fp16 (deprecated in TensorRT 10.5, still present in 10.x); True where absent."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return bool(getattr(builder, "platform_has_fast_fp16", True))


def _numpy_dtype(trt, trt_dtype, name: str) -> np.dtype:
    """numpy dtype of a TensorRT tensor type; InferenceError for types numpy lacks (bf16, fp8, int4)."""
    try:
        return np.dtype(trt.nptype(trt_dtype))
    except Exception:
        raise InferenceError(f"tensor '{name}' has the TensorRT type {trt_dtype}, which this engine cannot stage "
                             "(float32, float16 and the integer types are supported)") from None


def _parser_error_text(error) -> str:
    """One ONNX parser error as text: its description, and the node it concerns where known."""
    try:
        text = str(error.desc())
    except Exception:
        return str(error)
    node = ""
    for attr in ("node_name", "node_operator"):
        getter = getattr(error, attr, None)
        if getter is not None:
            try:
                value = str(getter())
            except Exception:
                value = ""
            if value:
                node += (" " if node else "") + value
    return f"{text} (node {node})" if node else text
