"""Inference engines behind one small interface.

An engine runs one network: a dict of named float32 arrays in, a dict of
named arrays out. Stages hold an engine and never know which runtime is
behind it. ONNX Runtime (CPU, or CUDA where present) is the default.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol


import numpy as np


class InferenceError(RuntimeError):
    """A model that cannot be loaded or run; the message names the file and the fix."""


class InferenceEngine(Protocol):
    """What every runtime offers to the stages."""

    name: str  # e.g. "onnxruntime:CPUExecutionProvider"
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once; every output by name."""
        ...


class OnnxRuntimeEngine:
    """ONNX Runtime session with a bounded thread pool.

    threads: intra-op threads (0 lets ONNX Runtime pick, which is every core).
    providers: execution providers in preference order; CUDA is used only if
    this onnxruntime build has it.
    """

    def __init__(self, model_path: str | Path, threads: int = 2, providers: tuple[str, ...] = ("CPUExecutionProvider",)):
        import onnxruntime as ort

        path = Path(model_path)
        if not path.is_file():
            raise InferenceError(f"model file {path} does not exist: run `make setup` or `headpose-ros prepare`")
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(0, int(threads))
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Spinning threads burn a core between frames of a 30 Hz camera for no gain.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        available = set(ort.get_available_providers())
        chosen = [p for p in providers if p in available] or ["CPUExecutionProvider"]
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
        self.name = f"onnxruntime:{self._session.get_providers()[0]}"

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = self._session.run(None, inputs)
        return dict(zip(self.output_names, outputs))

    def accepts_batch(self, input_name: str) -> bool:
        """True when the input's batch dimension is symbolic (several crops per call)."""
        dim = self.input_shapes[input_name][0]
        return not isinstance(dim, int)


def create_engine(model_path: str | Path, *, kind: str = "onnxruntime", threads: int = 2) -> InferenceEngine:
    """The engine of `kind` for a model file. Only ONNX Runtime exists so far."""
    if kind in ("onnxruntime", "auto"):
        return OnnxRuntimeEngine(model_path, threads=threads)
    raise InferenceError(f"unknown inference engine '{kind}' (available: onnxruntime, auto)")
