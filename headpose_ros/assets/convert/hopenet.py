"""Hopenet (Ruiz, Chong & Rehg, CVPRW 2018) in plain torch: load the authors' checkpoints safely, export ONNX.

The authors publish three checkpoints (github.com/natanielruiz/deep-head-pose):
``hopenet_robust_alpha1.pkl`` (recommended for real images), ``hopenet_alpha1.pkl``
and ``hopenet_alpha2.pkl``. Each is ``torch.save(model.state_dict())`` of their
``hopenet.Hopenet(torchvision.models.resnet.Bottleneck, [3, 4, 6, 3], 66)``
after ``model.cuda()`` (code/train_hopenet.py), so: CUDA storages, written by a
torch of 2017-2018 in the legacy (pre-1.6, non-zip) format, and possibly without
BatchNorm's ``num_batches_tracked`` (torch < 0.4.1). That state dict holds,
besides the torchvision ResNet-50 backbone (``conv1``, ``bn1``, ``layer1`` ..
``layer4`` with ``downsample.0`` / ``.1``):

- ``fc_yaw``, ``fc_pitch``, ``fc_roll``: Linear(2048 -> 66), the binned angle logits;
- ``fc_finetune``: Linear(2048 + 3 -> 3), which the authors' own code calls
  "vestigial": it is never used in ``forward``, but it is in the files.

Nothing is copied from the authors' code; the architecture is torchvision's
ResNet-50 (stride in the 3x3 convolution of each bottleneck) with the heads above.

Safety: a ``.pkl`` is a pickle, and unpickling can run arbitrary code. Checkpoints
are read only with ``torch.load(weights_only=True)``, which rebuilds tensors and
containers and refuses every other global; a refused file is reported with the
reason and nothing in it is executed.

The exported ONNX has input ``input`` (N, 3, 224, 224) float32 NCHW, already
normalised with the ImageNet mean and std (the engine normalises), and outputs
``yaw``, ``pitch``, ``roll``: raw logits (N, 66) over bins of 3 degrees from -99
(angle = softmax expectation of the bin index * 3 - 99, as in the authors' code).
The batch dimension N is dynamic.

torch is imported at module level: only ``headpose-ros export-hopenet`` (and the
tests) import this module, and they report a missing torch with the install hint.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import pickletools
import re
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ...core.files import atomic_write
from ...core.inference import ort_session

__all__ = [
    "CheckpointError",
    "ExportResult",
    "Hopenet",
    "HopenetError",
    "NUM_BINS",
    "ParityError",
    "UnsafeCheckpointError",
    "check_state_dict",
    "export_onnx",
    "load_checkpoint",
    "load_model",
]

#: Bins per angle: 3 degrees each, from -99 to +99.
NUM_BINS = 66
#: Side of the square input crop, pixels.
INPUT_SIZE = 224
#: Width of the ResNet-50 feature vector that the heads read.
FEATURES = 2048
#: ONNX opset of the export (ONNX Runtime >= 1.14 runs it).
OPSET = 17
#: ONNX Runtime must reproduce torch's logits this well (max absolute difference).
PARITY_TOLERANCE = 1e-4
INPUT_NAME = "input"
OUTPUT_NAMES = ("yaw", "pitch", "roll")

#: Keys a checkpoint may lack: BatchNorm's ``num_batches_tracked`` appeared in
#: torch 0.4.1 (after some of the 2018 files were written) and only counts training
#: steps; ``fc_finetune`` is the authors' unused head. Neither changes the output.
_OPTIONAL_KEY = re.compile(r"(^|\.)num_batches_tracked$|^fc_finetune\.")
#: How many names of each kind a mismatch message lists.
_LIST_AT_MOST = 4
_LEGIT = ("a legitimate Hopenet checkpoint (hopenet_*.pkl from github.com/natanielruiz/deep-head-pose) "
          "is a plain state dict, parameter names mapped to tensors, which torch.load(weights_only=True) reads")


class HopenetError(Exception):
    """A checkpoint or export problem, stated in one line for the user."""


class UnsafeCheckpointError(HopenetError):
    """The file would import or call something beyond tensors and containers: refused unread."""


class CheckpointError(HopenetError):
    """The file is missing, unreadable, corrupt, or not a Hopenet state dict."""


class ParityError(HopenetError):
    """ONNX Runtime's outputs differ from torch's by more than PARITY_TOLERANCE."""


# --------------------------------------------------------------------------- model


class Bottleneck(nn.Module):
    """torchvision's ResNet bottleneck: 1x1 reduce, 3x3 (carries the stride), 1x1 expand (x4), residual.

    Parameter names (conv1..3, bn1..3, downsample.0/.1) match torchvision's, and so
    the authors' checkpoints, which were built from ``torchvision.models.resnet.Bottleneck``.
    """

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class Hopenet(nn.Module):
    """ResNet-50 with three binned-angle heads (yaw, pitch, roll).

    forward(x): x (N, 3, 224, 224) float32, RGB normalised with the ImageNet mean
    and std -> (yaw, pitch, roll) logits, each (N, 66). Bin i covers
    [-99 + 3 i, -96 + 3 i) degrees; the authors' angle is sum(softmax * i) * 3 - 99.
    """

    def __init__(self, layers: tuple[int, int, int, int] = (3, 4, 6, 3), num_bins: int = NUM_BINS):
        super().__init__()
        self._inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, layers[0], stride=1)
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.layer3 = self._make_layer(256, layers[2], stride=2)
        self.layer4 = self._make_layer(512, layers[3], stride=2)
        # The authors use AvgPool2d(7), which at a 224 input is exactly a global
        # average; the adaptive form exports as ONNX GlobalAveragePool.
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        features = 512 * Bottleneck.expansion
        self.fc_yaw = nn.Linear(features, num_bins)
        self.fc_pitch = nn.Linear(features, num_bins)
        self.fc_roll = nn.Linear(features, num_bins)
        # Unused by forward; present so that the authors' files load with strict keys.
        self.fc_finetune = nn.Linear(features + 3, 3)

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self._inplanes != planes * Bottleneck.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self._inplanes, planes * Bottleneck.expansion, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * Bottleneck.expansion),
            )
        modules = [Bottleneck(self._inplanes, planes, stride, downsample)]
        self._inplanes = planes * Bottleneck.expansion
        modules += [Bottleneck(self._inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*modules)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc_yaw(x), self.fc_pitch(x), self.fc_roll(x)


# ---------------------------------------------------------------------- checkpoint


def load_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a checkpoint safely and return its state dict {name: tensor}, on the CPU.

    Only ``torch.load(path, map_location="cpu", weights_only=True)`` touches the
    file's pickle, so a file that would import or call anything beyond tensors and
    containers is refused (UnsafeCheckpointError) before anything in it runs. Both
    the zip format and the legacy format of torch < 1.6 (the authors' files) load.
    Accepted layouts: a bare state dict, or a dict with a ``state_dict`` entry; a
    ``module.`` prefix on every key (a torch.nn.DataParallel model) is removed.

    Raises CheckpointError for a missing, empty, truncated or non-torch file, or
    one that holds no state dict.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path} does not exist")
    if not path.is_file():
        raise CheckpointError(f"{path} is not a file")
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not head:
        raise CheckpointError(f"{path} is empty; download it again")
    try:
        with warnings.catch_warnings():
            # torch warns about pickle protocols and deprecated storage types while it
            # reads; the outcome is reported below in one line, so keep stderr clean.
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises UnpicklingError, RuntimeError, EOFError, ...
        raise _explain_load_failure(path, head, exc) from None
    return _state_dict_of(obj, path)


def _explain_load_failure(path: Path, head: bytes, exc: Exception) -> HopenetError:
    """Turn torch.load's multi-paragraph failure into one line that says what was wrong."""
    text = str(exc)
    if "Weights only load failed" in text or "WeightsUnpickler" in text:
        named = re.search(r"GLOBAL ([\w.]+)", text) or re.search(r"global ['`\"]?([\w.]+)", text)
        if named:
            what = f"it would import `{named.group(1)}`"
        elif head.startswith(b"PK"):
            # A torch zip whose data.pkl the safe unpickler cannot follow.
            what = f"its pickle needs more than tensors and containers ({_weights_only_reason(text)})"
        elif _is_pickle(head):
            # The safe unpickler stops at the first opcode it does not support (e.g.
            # the FRAME of protocol 4+, which torch.save never writes); name the
            # globals the pickle would load, read without executing anything.
            names = _pickle_globals(path)
            op = re.search(r"Unsupported operand (\d+)", text)
            what = (f"it would import `{'`, `'.join(names[:3])}`" if names
                    else f"it uses pickle opcode {op.group(1) if op else '?'}, which tensor checkpoints never use")
        else:
            looks = ("a web page: the download saved an HTML page instead of the file"
                     if head.lstrip()[:1] == b"<" else f"it starts with {head[:8]!r}, neither a zip nor a pickle")
            return CheckpointError(f"{path} is not a PyTorch checkpoint ({looks}); {_LEGIT}")
        return UnsafeCheckpointError(
            f"refused to load {path} for safety: {what}, and unpickling it could run code "
            f"(nothing in it was executed); {_LEGIT}")
    if isinstance(exc, EOFError) or "EOF" in text or "central directory" in text or "corrupt" in text:
        return CheckpointError(f"{path} is truncated or corrupt ({_first_sentence(text) or type(exc).__name__}); "
                               "download it again")
    return CheckpointError(f"cannot read {path} as a PyTorch checkpoint: "
                           f"{_first_sentence(text) or type(exc).__name__}")


def _weights_only_reason(text: str) -> str:
    """The line of torch's weights_only failure that says what it refused, e.g. 'Unsupported operand 149'."""
    after = text.split("WeightsUnpickler error:", 1)[1] if "WeightsUnpickler error:" in text else ""
    lines = [line.strip() for line in after.splitlines() if line.strip()]
    return lines[0] if lines else "unsupported content"


def _is_pickle(head: bytes) -> bool:
    """True for a pickle of protocol 2 or later (what torch's legacy format and raw pickles start with)."""
    return len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def _pickle_globals(path: Path, limit: int = 100_000) -> list[str]:
    """Globals ("module.name") the first pickle in `path` would import, found by reading its opcodes only.

    pickletools.genops parses without executing anything. STACK_GLOBAL takes its
    module and name from the two strings pushed just before it.
    """
    names: list[str] = []
    strings: list[str] = []
    try:
        with open(path, "rb") as f:
            for i, (op, arg, _) in enumerate(pickletools.genops(f)):
                if i >= limit:
                    break
                if op.name == "GLOBAL" or op.name == "INST":
                    names.append(str(arg).replace(" ", "."))
                elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    names.append(f"{strings[-2]}.{strings[-1]}")
                elif isinstance(arg, str):
                    strings.append(arg)
    except Exception:  # noqa: BLE001 - a malformed pickle simply yields what was read so far
        pass
    return list(dict.fromkeys(names))


def _first_sentence(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line.split(". ")[0].rstrip(".")


def _state_dict_of(obj, path: Path) -> dict[str, torch.Tensor]:
    """The {name: tensor} dict inside what torch.load returned, 'module.' prefixes removed."""
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a state dict; {_LEGIT}")
    not_tensors = [str(k) for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if not obj or not_tensors:
        detail = (f"entries that are not tensors: {_names(not_tensors)}" if not_tensors else "it is empty")
        raise CheckpointError(f"{path} is not a state dict ({detail}); {_LEGIT}")
    state = {str(k): v for k, v in obj.items()}
    # A model wrapped in torch.nn.DataParallel saves every key as "module.<name>".
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def check_state_dict(state: Mapping[str, torch.Tensor], model: Hopenet | None = None,
                     source: str = "the checkpoint") -> dict[str, torch.Tensor]:
    """Compare `state` with Hopenet's own keys and shapes; return it completed for strict loading.

    Keys that may be absent (``num_batches_tracked``, ``fc_finetune.*``, see
    _OPTIONAL_KEY) are filled from `model`. Any other missing key, any unexpected
    key, any shape mismatch and any non-finite value raises CheckpointError naming
    the first few of each, with counts, e.g. for a ResNet-18 or an unrelated dict.
    """
    model = Hopenet() if model is None else model
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not _OPTIONAL_KEY.search(k)]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
              for k, v in expected.items() if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s): {_names(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s): {_names(unexpected)}")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatch(es) (checkpoint vs Hopenet): {_names(shapes)}")
        raise CheckpointError(
            f"{source} is not a Hopenet state dict (ResNet-50 backbone, fc_yaw/fc_pitch/fc_roll of "
            f"{NUM_BINS} bins; {len(expected)} keys): " + "; ".join(parts))
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(f"{source} holds NaN or infinite values in {len(bad)} tensor(s): {_names(bad)}; "
                              "download it again")
    completed = dict(state)
    for k, v in expected.items():
        completed.setdefault(k, v)
    return completed


def _names(items: list[str]) -> str:
    shown = ", ".join(items[:_LIST_AT_MOST])
    return shown + (f", ... ({len(items) - _LIST_AT_MOST} more)" if len(items) > _LIST_AT_MOST else "")


def load_model(path: str | os.PathLike) -> Hopenet:
    """Hopenet in eval mode with the weights of the checkpoint at `path` (safe load, checked keys)."""
    model = Hopenet()
    state = check_state_dict(load_checkpoint(path), model, source=str(path))
    model.load_state_dict(state, strict=True)
    return model.eval()


# --------------------------------------------------------------------------- export


@dataclass
class ExportResult:
    """What export_onnx wrote and how well ONNX Runtime reproduced torch.

    max_abs_diff: the largest |ONNX Runtime - torch| logit over every probe,
    output and thread count; per_probe: the same per probe name.
    batch_diff: the largest |batched - single| ONNX Runtime logit.
    """

    path: Path
    size_bytes: int
    sha256: str
    max_abs_diff: float
    per_probe: dict[str, float] = field(default_factory=dict)
    batch_diff: float = 0.0
    export_s: float = 0.0
    verify_s: float = 0.0


def export_onnx(model: Hopenet, path: str | os.PathLike, *, probes: Mapping[str, np.ndarray] | None = None,
                opset: int = OPSET, metadata: Mapping[str, str] | None = None,
                tolerance: float = PARITY_TOLERANCE, threads: tuple[int, ...] = (1, 2)) -> ExportResult:
    """Export `model` to ONNX at `path`, verify it in ONNX Runtime, and only then write it (atomically).

    probes: name -> (n, 3, 224, 224) float32 normalised inputs to compare on; a
    seeded standard-normal batch of 2 is always added. Every probe runs in ONNX
    Runtime (ORT_ENABLE_ALL, as the engine runs it, with each of `threads`)
    against torch; above `tolerance` ParityError is raised and nothing is
    written. The batched run must also match one-crop-at-a-time runs.
    metadata: extra ONNX metadata_props (provenance), stored as strings.
    """
    path = Path(path)
    model = model.eval()
    probes = dict(probes or {})
    probes = {"noise": np.random.default_rng(0).standard_normal((2, 3, INPUT_SIZE, INPUT_SIZE)).astype(np.float32),
              **{k: np.ascontiguousarray(v, dtype=np.float32) for k, v in probes.items()}}
    for name, x in probes.items():
        if x.ndim != 4 or x.shape[1:] != (3, INPUT_SIZE, INPUT_SIZE):
            raise HopenetError(f"probe {name} has shape {x.shape}, expected (n, 3, {INPUT_SIZE}, {INPUT_SIZE})")

    start = time.monotonic()
    onnx_bytes = _export_bytes(model, opset, metadata or {})
    export_s = time.monotonic() - start

    start = time.monotonic()
    per_probe, batch_diff = _verify(model, onnx_bytes, probes, threads)
    verify_s = time.monotonic() - start
    worst = max(per_probe.values())
    if not np.isfinite(worst) or worst > tolerance:
        which = max(per_probe, key=lambda k: per_probe[k])
        floor = _float32_floor(model, probes[which])
        raise ParityError(
            f"ONNX Runtime differs from torch by {worst:.2e} on probe {which} (tolerance {tolerance:g}); "
            f"torch float32 itself differs from a float64 evaluation by {floor:.2e} there"
            + (", so this is float32 rounding in these weights rather than a conversion error "
               "(a larger tolerance accepts it)" if np.isfinite(worst) and floor >= worst / 3 else "")
            + "; nothing was written")
    if not np.isfinite(batch_diff) or batch_diff > tolerance:
        raise ParityError(f"batched ONNX Runtime outputs differ from single-crop runs by {batch_diff:.2e} "
                          f"(tolerance {tolerance:g}); nothing was written")

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HopenetError(f"cannot write to {path.parent}: {exc.strerror or exc}") from None
    try:
        atomic_write(path, onnx_bytes)
    except OSError as exc:
        where = f"to {path.parent}" if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS) else str(path)
        raise HopenetError(f"cannot write {where}: {exc.strerror or exc}") from None
    return ExportResult(path=path, size_bytes=len(onnx_bytes), sha256=hashlib.sha256(onnx_bytes).hexdigest(),
                        max_abs_diff=worst, per_probe=per_probe, batch_diff=batch_diff,
                        export_s=export_s, verify_s=verify_s)


def _export_bytes(model: Hopenet, opset: int, metadata: Mapping[str, str]) -> bytes:
    """The ONNX model as bytes: input (N,3,224,224), outputs yaw/pitch/roll (N,66), N symbolic."""
    import onnx

    buffer = io.BytesIO()
    dummy = torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE)
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript exporter (dynamo=False) needs no onnxscript and gives a
        # plain graph for a static CNN; its deprecation notice is not for users.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (dummy,), buffer, dynamo=False, opset_version=opset,
            input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES),
            dynamic_axes={INPUT_NAME: {0: "N"}, **{name: {0: "N"} for name in OUTPUT_NAMES}},
            do_constant_folding=True,
        )
    proto = onnx.load_from_string(buffer.getvalue())
    props = {"headpose_ros.network": "hopenet",
             "headpose_ros.bins": f"{NUM_BINS} bins of 3 deg from -99 (angle = E[bin] * 3 - 99)",
             "headpose_ros.input": "RGB crop 224x224, (p / 255 - ImageNet mean) / ImageNet std, NCHW",
             "headpose_ros.exporter": f"torch {torch.__version__}, opset {opset}",
             **{str(k): str(v) for k, v in metadata.items()}}
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "headpose_ros export-hopenet"
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def _verify(model: Hopenet, onnx_bytes: bytes, probes: Mapping[str, np.ndarray],
            threads: tuple[int, ...]) -> tuple[dict[str, float], float]:
    """Max |ORT - torch| per probe, and max |batched - single| in ORT, over every thread count."""
    per_probe = dict.fromkeys(probes, 0.0)
    batch_diff = 0.0
    with torch.no_grad():
        refs = {name: [t.numpy().astype(np.float64) for t in model(torch.from_numpy(x))]
                for name, x in probes.items()}
    batch = np.concatenate(list(probes.values()))
    for n in threads:
        # As the engine runs networks, but without spinning threads between runs.
        session = ort_session(onnx_bytes, threads=n, spin_while_running=False)
        _check_io(session)
        for name, x in probes.items():
            got = session.run(list(OUTPUT_NAMES), {INPUT_NAME: x})
            for g, r in zip(got, refs[name]):
                if g.shape != r.shape:
                    raise ParityError(f"ONNX output shape {g.shape} differs from torch's {r.shape}")
                per_probe[name] = max(per_probe[name], float(np.max(np.abs(g - r))))
        together = session.run(list(OUTPUT_NAMES), {INPUT_NAME: batch})
        for i in range(len(batch)):
            alone = session.run(list(OUTPUT_NAMES), {INPUT_NAME: batch[i:i + 1]})
            for b, a in zip(together, alone):
                batch_diff = max(batch_diff, float(np.max(np.abs(b[i:i + 1].astype(np.float64) - a))))
    return per_probe, batch_diff


def _float32_floor(model: Hopenet, x: np.ndarray) -> float:
    """Max |torch float32 - torch float64| logit on `x`: the rounding any float32 runtime has to live with."""
    reference = Hopenet()
    reference.load_state_dict(model.state_dict())
    reference = reference.double().eval()
    with torch.no_grad():
        single = model(torch.from_numpy(x))
        double = reference(torch.from_numpy(x).double())
    return max(float((s.double() - d).abs().max()) for s, d in zip(single, double))


def _check_io(session) -> None:
    """The graph's names and shapes are what core/models.py's HOPENET description expects."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    got_in = [(i.name, list(i.shape)) for i in inputs]
    if got_in != [(INPUT_NAME, ["N", 3, INPUT_SIZE, INPUT_SIZE])] or inputs[0].type != "tensor(float)":
        raise HopenetError(f"exported input is {got_in} {inputs[0].type}, expected "
                           f"{INPUT_NAME} [N, 3, {INPUT_SIZE}, {INPUT_SIZE}] float")
    got_out = [(o.name, list(o.shape)) for o in outputs]
    want_out = [(name, ["N", NUM_BINS]) for name in OUTPUT_NAMES]
    if got_out != want_out:
        raise HopenetError(f"exported outputs are {got_out}, expected {want_out}")
