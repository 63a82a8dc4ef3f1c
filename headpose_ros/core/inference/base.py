"""What every inference runtime offers the stages, and the one way a batch of crops is run."""

from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np

TENSORRT_INSTALL_HINT = "pip install '.[tensorrt]' in the headpose_ros clone"


class InferenceError(RuntimeError):
    """A model that cannot be loaded or run; the message names the file and the fix."""


class Runtime(Protocol):
    """One network on one runtime: named float32 arrays in, named float32 arrays out.

    Stages hold a Runtime and never know which library is behind it.
    """

    name: str  # e.g. "onnxruntime:CPUExecutionProvider", "tensorrt:NVIDIA H100 fp16"
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    threads: dict[str, int] | None  # CPU thread pools ({"intra_op", "inter_op"}); None on a GPU runtime

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once; every output by name."""
        ...

    def accepts_batch(self, input_name: str) -> bool:
        """True when one run() may carry several crops in this input (batch dimension not fixed)."""
        ...

    def close(self) -> None:
        """Release what the runtime holds (GPU memory); idempotent."""
        ...


class NetworkStage:
    """A stage that runs one network, described by data (core.models: its `asset` name and I/O), on one runtime."""

    def __init__(self, model, runtime: Runtime):
        self.model = model
        self.runtime = runtime

    def describe(self) -> str:
        """The model and the runtime it runs on, e.g. "face_landmark (onnxruntime:CPUExecutionProvider)"."""
        return f"{self.model.asset} ({self.runtime.name})"


def run_batched(runtime: Runtime, input_name: str, tensor: np.ndarray,
                outputs: Sequence[str]) -> dict[str, np.ndarray]:
    """`outputs` of `runtime` for a batch `tensor` (n, ...) fed to `input_name`, each (n, ...).

    One call when the runtime takes batches in that input, else one call per
    item, concatenated: the stages never need to know which.
    """
    if len(tensor) == 0:
        raise ValueError("run_batched needs at least one item")
    if runtime.accepts_batch(input_name):
        out = runtime.run({input_name: tensor})
        return {k: out[k] for k in outputs}
    singles = [runtime.run({input_name: tensor[i:i + 1]}) for i in range(len(tensor))]
    return {k: np.concatenate([s[k] for s in singles]) for k in outputs}
