"""ONNX Runtime: the one place its sessions are configured, and the Runtime that runs them."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .base import InferenceError


def ort_session(model: bytes | str | os.PathLike, threads: int = 2, *,
                providers: tuple[str, ...] = ("CPUExecutionProvider",), spin_while_running: bool = True):
    """An ONNX Runtime session as the package runs every network, for a model file or its bytes.

    threads: intra-op threads (0 lets ONNX Runtime pick, which is every core);
        one inter-op thread. Graph optimisation ORT_ENABLE_ALL.
    spin_while_running: worker threads spin while a run is in progress
        (waking sleeping threads costs ~40% on the small ops of these networks)
        and stop spinning when it ends, so they do not burn the cores between
        camera frames. Measured here on WHENet at 2 threads with 20 ms gaps:
        7.5 ms and 52% CPU, against 13.3 ms and 45% with no spinning and 7.4 ms
        and 127% with ONNX Runtime's default. False: never spin (for timing
        single conversions without a busy core).
    Raises what onnxruntime raises for an unreadable model.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(0, int(threads))
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin_while_running else "0")
    if spin_while_running:
        options.add_session_config_entry("session.force_spinning_stop", "1")
    available = set(ort.get_available_providers())
    chosen = [p for p in providers if p in available] or ["CPUExecutionProvider"]
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    source = model if isinstance(model, bytes) else os.fspath(model)
    return ort.InferenceSession(source, options, providers=chosen)


class OnnxRuntime:
    """One ONNX model in an ONNX Runtime session (see ort_session for its settings).

    threads: intra-op threads (0: every core).
    providers: execution providers in preference order; one this onnxruntime
    build lacks is skipped, and the CPU provider is the last resort.
    """

    def __init__(self, model_path: str | Path, threads: int = 2,
                 providers: tuple[str, ...] = ("CPUExecutionProvider",)):
        path = Path(model_path)
        if not path.is_file():
            raise InferenceError(f"model file {path} does not exist: run `make setup` or `headpose-ros prepare`")
        try:
            self._session = ort_session(path, threads, providers=providers)
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

    @property
    def threads(self) -> dict[str, int]:
        """The session's thread pools as created: {"intra_op": n, "inter_op": m}."""
        options = self._session.get_session_options()
        return {"intra_op": options.intra_op_num_threads, "inter_op": options.inter_op_num_threads}

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = self._session.run(None, inputs)
        return dict(zip(self.output_names, outputs))

    def accepts_batch(self, input_name: str) -> bool:
        """True when the input's batch dimension is symbolic (several crops per call)."""
        dim = self.input_shapes[input_name][0]
        return not isinstance(dim, int)

    def close(self) -> None:
        """Nothing to release explicitly (the session frees itself); here for symmetry with TensorRT."""
