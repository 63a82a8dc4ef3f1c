"""What every conversion shares: its tools, how it is verified, and the head of its manifest.

* ``import_tools``: the converters are imported only when a model must be
  converted, and a missing one is an ``AssetError`` naming the pip package
  and the extra that installs it (``CONVERT_HINT``).
* Verification settings: ONNX Runtime with ORT_ENABLE_ALL, as the package
  runs it, with every intra-op thread count of ``VERIFY_THREADS`` (threads
  split the convolutions differently, which changes the rounding);
  ``batched_and_single`` runs a batch in one call and item by item, and
  batched runs must equal single ones to ``BATCH_TOLERANCE``.
* ``manifest_header``: the provenance every manifest starts with.

Only numpy and the standard library are imported here; ONNX Runtime is
imported when a session is made.
"""

from __future__ import annotations

import datetime
import hashlib
import importlib
import importlib.metadata
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ...core.files import sha256_file
from ..store import MANIFEST_FORMAT, AssetError

#: Extra that installs the converters (see ``import_tools``).
CONVERT_HINT = "pip install '.[convert]' in the headpose_ros clone (or run `make setup`)"
#: Batched and single-image runs of a dynamic-batch model must agree this well.
BATCH_TOLERANCE = 1e-4
#: ONNX Runtime intra-op thread counts the conversion is verified with.
VERIFY_THREADS = (1, 2)
#: Photo used for the real-image probe when verifying conversions.
PROBE_PHOTO = "astronaut"
#: Seed of the uniform-noise probe.
PROBE_SEED = 20241125


def import_tools(what: str, tools: Sequence[tuple[str, str, str]], versions: Sequence[str]) -> dict:
    """Import the tool chain of a conversion, or raise AssetError naming what is missing.

    tools: (key, module, pip requirement) each; the result maps each key to
    its module, and "versions" to {distribution: installed version} for
    ``versions`` (recorded in the manifest). what: the conversion, for the
    message ("the models", "the WHENet model").
    """
    modules, missing = {}, []
    for key, module, dist in tools:
        try:
            modules[key] = importlib.import_module(module)
        except ImportError:
            missing.append(dist)
    if missing:
        raise AssetError(f"converting {what} needs {', '.join(missing)}, which "
                         f"{'is' if len(missing) == 1 else 'are'} not installed; {CONVERT_HINT}")
    modules["versions"] = {dist: _dist_version(dist) for dist in versions}
    return modules


def _dist_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b|, computed in float64."""
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def batched_and_single(onnx_bytes: bytes, input_name: str, x: np.ndarray,
                       threads: Sequence[int] = VERIFY_THREADS,
                       ) -> Iterator[tuple[dict[str, np.ndarray], list[dict[str, np.ndarray]]]]:
    """For each thread count: the outputs of ``x`` run as one batch, and of each item run alone.

    Yields ({output name: (N, ...) array}, [{output name: (1, ...) array} for each item]).
    The sessions are ``core.inference.ort_session``'s (ORT_ENABLE_ALL, CPU).
    """
    from ...core.inference import ort_session

    for n in threads:
        session = ort_session(onnx_bytes, n)
        names = [o.name for o in session.get_outputs()]
        batched = dict(zip(names, session.run(None, {input_name: x})))
        yield batched, [dict(zip(names, session.run(None, {input_name: x[i:i + 1]})))
                        for i in range(len(x))]


def batch_difference(batched: dict[str, np.ndarray], singles: list[dict[str, np.ndarray]]) -> float:
    """max |batched - single| over every item and output (see ``batched_and_single``)."""
    return max(abs_diff(batched[name][i:i + 1], single[name])
               for i, single in enumerate(singles) for name in single)


def check_tolerance(spec, per_output: dict[str, float], against: str) -> tuple[float, str]:
    """(worst difference, "output 1.2e-05, ...") of a verified conversion.

    Raises AssetError when the worst difference exceeds ``spec.tolerance``;
    against: what the ONNX model was compared with ("tflite", "the keras model").
    """
    worst = max(per_output.values())
    detail = ", ".join(f"{k} {v:.1e}" for k, v in per_output.items())
    if worst > spec.tolerance:
        raise AssetError(f"{spec.name}: ONNX conversion differs from {against} by {worst:.2e} "
                         f"(> tolerance {spec.tolerance:g}; {detail}); "
                         f"check the converter versions from {CONVERT_HINT}")
    return worst, detail


def check_batch(name: str, batch_diff: float) -> float:
    """``batch_diff``, or AssetError when batched runs differ from single ones by more than BATCH_TOLERANCE."""
    if batch_diff > BATCH_TOLERANCE:
        raise AssetError(f"{name}: batched outputs differ from single runs by {batch_diff:.2e} "
                         f"(> {BATCH_TOLERANCE:g}); check the converter versions from {CONVERT_HINT}")
    return batch_diff


def check_io(spec, model, *, batch: str | None, ordered: bool, made: str) -> None:
    """Refuse an ONNX model (a ModelProto) whose input/output names or shapes are not the spec's.

    batch: the symbolic name dim 0 must have ("N"), or None for the spec's
    batch-1 shapes; ordered: the outputs must come in the spec's order;
    made: how the model was made ("converted", "exported"), for the message.
    """
    def dims(value_info):
        return tuple(d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim)

    def wanted(tensor):
        return tensor.name, tensor.shape if batch is None else (batch, *tensor.shape[1:])

    got_in = [(i.name, dims(i)) for i in model.graph.input]
    got_out = [(o.name, dims(o)) for o in model.graph.output]
    want_in = [wanted(spec.input)]
    want_out = [wanted(o) for o in spec.outputs]
    outputs_ok = got_out == want_out if ordered else sorted(got_out) == sorted(want_out)
    if got_in != want_in or not outputs_ok:
        raise AssetError(f"{spec.name}: {made} model has inputs {got_in} and outputs {got_out}, "
                         f"expected {want_in} and {want_out}; check the converter versions "
                         f"from {CONVERT_HINT}")


def onnxruntime_settings() -> dict:
    """How the conversions were run in ONNX Runtime, as the manifests record it."""
    return {"graph_optimization_level": "ORT_ENABLE_ALL", "intra_op_num_threads": list(VERIFY_THREADS)}


def manifest_header(spec, archive: Path, onnx_bytes: bytes) -> dict:
    """The manifest entries every converted model has: format, name, date, source and the ONNX's hash."""
    return {
        "format": MANIFEST_FORMAT,
        "name": spec.name,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "source": {
            "package": spec.source.package,
            "version": spec.source.version,
            "kind": spec.source.kind,
            "archive": archive.name,
            "archive_sha256": sha256_file(archive),
            "member": spec.member,
            "sha256": spec.sha256,
        },
        "onnx": {"sha256": hashlib.sha256(onnx_bytes).hexdigest(), "size": len(onnx_bytes)},
    }
