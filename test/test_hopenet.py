"""Hopenet: safe checkpoint loading, key checks, ONNX export parity, and `headpose-ros export-hopenet`.

Real torch and real ONNX Runtime, no mocks. The authors' checkpoints cannot be
downloaded here, so checkpoints are written from random weights in the formats
the authors' files use (see test_torch03_gpu_checkpoint_loads). One ResNet-50
export is shared by the parity tests (module-scoped fixture); the CLI test
exports once more, as a user would.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import shutil
import subprocess
import sys
import types
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the Hopenet converter needs torch (pip install '.[convert]' in the clone)")

from headpose_ros import assets  # noqa: E402
from headpose_ros.assets.convert import hopenet  # noqa: E402
from headpose_ros.core.files import sha256_file  # noqa: E402
from headpose_ros.core.inference import ort_session  # noqa: E402
from headpose_ros.core.models import HOPENET  # noqa: E402

CLI = shutil.which("headpose-ros", path=str(Path(sys.executable).parent)) or "headpose-ros"
TOL = hopenet.PARITY_TOLERANCE


def random_hopenet(seed: int = 0) -> hopenet.Hopenet:
    """A Hopenet with random weights conditioned like a trained network.

    Plain random init is numerically ill-conditioned: without trained BatchNorm
    statistics the residual stream grows block after block, and torch float32
    itself then differs from float64 by ~4e-5 on the logits, too close to the
    1e-4 tolerance to test anything. So: BatchNorm statistics are measured on a
    noise batch (as training would set them), the last BatchNorm of each residual
    branch is scaled down (trained ResNets keep those small) and the heads scaled
    up so that the logits span about +-10 like a trained classifier's.
    """
    torch.manual_seed(seed)
    model = hopenet.Hopenet()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative average: the statistics of exactly this batch
    model.train()
    with torch.no_grad():
        model(torch.randn(4, 3, 224, 224))
        for m in model.modules():
            if isinstance(m, hopenet.Bottleneck):
                m.bn3.weight.mul_(0.2)
        for fc in (model.fc_yaw, model.fc_pitch, model.fc_roll):
            fc.weight.mul_(10.0)
    return model.eval()


def torch_logits(model, x: np.ndarray) -> list[np.ndarray]:
    with torch.no_grad():
        return [t.numpy() for t in model(torch.from_numpy(x))]


def face_crop_tensor() -> np.ndarray:
    """(1, 3, 224, 224): the astronaut's face, loosely cropped, resized to 224, ImageNet-normalised."""
    bgr = cv2.imread(str(assets.photo_path("astronaut")), cv2.IMREAD_COLOR)
    # Rows 10-200, columns 140-330 of the 512x512 photo: her face with a Hopenet-like loose margin.
    face = cv2.cvtColor(bgr[10:200, 140:330], cv2.COLOR_BGR2RGB)
    face = cv2.resize(face, HOPENET.input.size, interpolation=cv2.INTER_AREA)
    return HOPENET.input.to_tensor(face)  # the engine's own normalisation


def cli(*args, env=None, timeout=180):
    return subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def assert_one_line_error(out, *fragments):
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("headpose-ros export-hopenet: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.fixture(scope="module")
def model():
    return random_hopenet()


@pytest.fixture(scope="module")
def face():
    assets.prepare_photos(["astronaut"])  # only the photo: no model of the cache is needed here
    x = face_crop_tensor()
    assert x.shape == (1, 3, 224, 224) and x.dtype == np.float32
    return x


@pytest.fixture(scope="module")
def exported(model, face, tmp_path_factory):
    """One export shared by the parity tests: (ExportResult, onnx path)."""
    path = tmp_path_factory.mktemp("hopenet") / "hopenet.onnx"
    result = hopenet.export_onnx(model, path, probes={"astronaut_face": face})
    return result, path


@pytest.fixture(scope="module")
def session(exported):
    return ort_session(exported[1], threads=2, spin_while_running=False)


# --------------------------------------------------------------------------- export


def test_export_parity_on_random_weights(model, exported, session):
    result, path = exported
    assert path.is_file() and result.path == path and result.size_bytes == path.stat().st_size
    assert result.per_probe["noise"] <= TOL
    # Independently of the exporter's own check: a fresh input, compared here.
    x = np.random.default_rng(7).standard_normal((2, 3, 224, 224)).astype(np.float32)
    got = session.run(list(hopenet.OUTPUT_NAMES), {"input": x})
    want = torch_logits(model, x)
    assert max(np.abs(g - w).max() for g, w in zip(got, want)) <= TOL
    # The logits are not degenerate (the conditioning in random_hopenet works).
    assert 1.0 < max(np.abs(w).max() for w in want) < 100.0


def test_export_parity_on_a_real_face(model, face, exported, session):
    result, _ = exported
    assert result.per_probe["astronaut_face"] <= TOL
    got = session.run(list(hopenet.OUTPUT_NAMES), {"input": face})
    want = torch_logits(model, face)
    diff = max(np.abs(g - w).max() for g, w in zip(got, want))
    assert diff <= TOL, diff
    # Decoded as the engine decodes them, the angles agree to far below a degree.
    for bins, g, w in zip((HOPENET.yaw, HOPENET.pitch, HOPENET.roll), got, want):
        assert abs(bins.decode(g)[0] - bins.decode(w)[0]) < 1e-3


def test_onnx_matches_the_runtime_description(session):
    (inp,) = session.get_inputs()
    assert inp.name == HOPENET.input.name and inp.type == "tensor(float)"
    assert inp.shape == ["N", 3, HOPENET.input.size[1], HOPENET.input.size[0]] and HOPENET.input.layout == "NCHW"
    outputs = session.get_outputs()
    assert tuple(o.name for o in outputs) == HOPENET.outputs
    for o, bins in zip(outputs, (HOPENET.yaw, HOPENET.pitch, HOPENET.roll)):
        assert o.shape == ["N", bins.count] and bins.count == hopenet.NUM_BINS
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["headpose_ros.network"] == "hopenet"


def test_dynamic_batch_equals_single_calls(exported, session, face):
    result, _ = exported
    assert result.batch_diff <= 1e-5
    rng = np.random.default_rng(3)
    x = np.concatenate([face, rng.standard_normal((2, 3, 224, 224)).astype(np.float32)])
    together = session.run(None, {"input": x})
    for i in range(3):
        alone = session.run(None, {"input": x[i:i + 1]})
        for t, a in zip(together, alone):
            assert t.shape == (3, 66) and a.shape == (1, 66)
            np.testing.assert_allclose(t[i:i + 1], a, rtol=0, atol=1e-5)


def test_failed_parity_writes_nothing(model, tmp_path):
    target = tmp_path / "never.onnx"
    with pytest.raises(hopenet.ParityError, match=r"differs from torch by .* nothing was written"):
        hopenet.export_onnx(model, target, tolerance=0.0, threads=(2,))
    assert list(tmp_path.iterdir()) == []  # neither the file nor a temporary


# ----------------------------------------------------------------------- checkpoints


def test_zip_and_legacy_checkpoints_load(model, tmp_path):
    state = model.state_dict()
    for name, zip_format in (("zip.pkl", True), ("legacy.pkl", False)):
        path = tmp_path / name
        torch.save(state, path, _use_new_zipfile_serialization=zip_format)
        loaded = hopenet.load_checkpoint(path)
        assert loaded.keys() == state.keys()
        assert all(torch.equal(loaded[k], v) for k, v in state.items())


def _save_like_torch03_on_gpu(state: dict, path: Path) -> None:
    """Write `state` as torch 0.3 wrote a GPU model's state dict (the authors' 2018 files).

    That is the legacy format with protocol 2, tensors rebuilt by
    torch._utils._rebuild_tensor (0.4 introduced _rebuild_tensor_v2), storages of
    type torch.cuda.FloatStorage at location "cuda:0", a plain OrderedDict without
    _metadata and without BatchNorm's num_batches_tracked (0.4.1). The CUDA type
    and location are patched into the bytes: protocol 2 writes a class as
    "c<module>\\n<name>\\n" and a short string as "X" + 4-byte length + text.
    """

    class Torch03Pickler(pickle.Pickler):
        def reducer_override(self, obj):
            if isinstance(obj, torch.Tensor):
                return torch._utils._rebuild_tensor, (obj.storage(), obj.storage_offset(), tuple(obj.size()),
                                                      obj.stride())
            return NotImplemented

    module = types.SimpleNamespace(Pickler=Torch03Pickler, dump=pickle.dump, __name__="torch03_pickle")
    old = collections.OrderedDict((k, v) for k, v in state.items() if not k.endswith("num_batches_tracked"))
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TypedStorage is deprecated; it is what 0.3 pickled
        torch.save(old, buffer, pickle_module=module, pickle_protocol=2, _use_new_zipfile_serialization=False)
    data = buffer.getvalue()
    assert data.count(b"ctorch\nFloatStorage\n") == 1 and b"_rebuild_tensor\n" in data
    data = data.replace(b"ctorch\nFloatStorage\n", b"ctorch.cuda\nFloatStorage\n")
    data = data.replace(b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0")
    path.write_bytes(data)


def test_torch03_gpu_checkpoint_loads(model, tmp_path):
    path = tmp_path / "hopenet_robust_alpha1.pkl"
    _save_like_torch03_on_gpu(model.state_dict(), path)
    loaded = hopenet.load_checkpoint(path)
    assert len(loaded) == 273 and not any(k.endswith("num_batches_tracked") for k in loaded)
    again = hopenet.load_model(path)  # missing num_batches_tracked is filled in
    x = np.random.default_rng(1).standard_normal((1, 3, 224, 224)).astype(np.float32)
    for a, b in zip(torch_logits(again, x), torch_logits(model, x)):
        np.testing.assert_array_equal(a, b)


def test_wrapped_and_prefixed_state_dicts_load(model, tmp_path):
    state = model.state_dict()
    layouts = {"wrapped": {"state_dict": state, "epoch": 25},
               "data_parallel": {f"module.{k}": v for k, v in state.items()},
               "without_fc_finetune": {k: v for k, v in state.items() if not k.startswith("fc_finetune.")}}
    for name, obj in layouts.items():
        path = tmp_path / f"{name}.pkl"
        torch.save(obj, path)
        loaded = hopenet.check_state_dict(hopenet.load_checkpoint(path), source=name)
        assert loaded.keys() == state.keys(), name
        assert torch.equal(loaded["fc_yaw.weight"], state["fc_yaw.weight"])


class _Payload:
    """Unpickling this calls `func(*args)`: what a malicious checkpoint does (here only harmless calls)."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize("how", ["torch zip", "torch legacy", "raw pickle protocol 2", "raw pickle protocol 5"])
def test_malicious_pickle_is_refused_unexecuted(tmp_path, how):
    marker = tmp_path / "pwned"
    # os.system would run a shell command that only creates a marker file; builtins.open
    # creates it without a shell. Either way the marker must not appear.
    payload = (_Payload(os.system, f"touch {marker}") if "torch" in how or "5" in how
               else _Payload(open, str(marker), "w"))
    path = tmp_path / "hopenet_robust_alpha1.pkl"
    obj = {"fc_yaw.weight": torch.zeros(66, 2048), "x": payload}
    if how.startswith("raw"):
        obj = {"x": payload}  # plain pickle cannot hold torch tensors without torch's own format
    if how == "torch zip":
        torch.save(obj, path)
    elif how == "torch legacy":
        torch.save(obj, path, _use_new_zipfile_serialization=False)
    else:
        path.write_bytes(pickle.dumps(obj, protocol=int(how[-1])))
    with pytest.raises(hopenet.UnsafeCheckpointError) as info:
        hopenet.load_checkpoint(path)
    message = str(info.value)
    assert "\n" not in message
    assert "refused to load" in message and "for safety" in message and "nothing in it was executed" in message
    called = f"{payload.func.__module__}.{payload.func.__name__}"  # e.g. posix.system, io.open
    assert f"`{called}`" in message
    assert "plain state dict" in message  # what a legitimate file looks like
    assert not marker.exists()


def _resnet18_state_dict() -> dict:
    """The keys and shapes of torchvision's ResNet-18 (BasicBlock, [2, 2, 2, 2], fc 1000)."""
    state = {"conv1.weight": torch.zeros(64, 3, 7, 7)}

    def bn(prefix, n):
        state.update({f"{prefix}.weight": torch.ones(n), f"{prefix}.bias": torch.zeros(n),
                      f"{prefix}.running_mean": torch.zeros(n), f"{prefix}.running_var": torch.ones(n),
                      f"{prefix}.num_batches_tracked": torch.tensor(0)})

    bn("bn1", 64)
    inplanes = 64
    for layer, planes in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            p = f"layer{layer}.{block}"
            state[f"{p}.conv1.weight"] = torch.zeros(planes, inplanes, 3, 3)
            bn(f"{p}.bn1", planes)
            state[f"{p}.conv2.weight"] = torch.zeros(planes, planes, 3, 3)
            bn(f"{p}.bn2", planes)
            if block == 0 and layer > 1:
                state[f"{p}.downsample.0.weight"] = torch.zeros(planes, inplanes, 1, 1)
                bn(f"{p}.downsample.1", planes)
            inplanes = planes
    state.update({"fc.weight": torch.zeros(1000, 512), "fc.bias": torch.zeros(1000)})
    return state


def test_wrong_state_dicts_get_an_understandable_message(model, tmp_path):
    with pytest.raises(hopenet.CheckpointError) as info:
        hopenet.check_state_dict(_resnet18_state_dict(), source="resnet18.pth")
    message = str(info.value)
    assert message.startswith("resnet18.pth is not a Hopenet state dict") and "\n" not in message
    assert "missing key(s): layer1.0.conv3.weight" in message and "fc_yaw.weight" not in message.split(";")[-1]
    assert "2 unexpected key(s): fc.weight, fc.bias" in message
    assert "shape mismatch(es)" in message and "layer1.0.conv1.weight (64, 64, 3, 3) vs (64, 64, 1, 1)" in message
    assert "more)" in message  # long lists are cut, with the count of the rest

    wrong_bins = dict(model.state_dict())
    wrong_bins["fc_yaw.weight"] = torch.zeros(120, 2048)
    wrong_bins["fc_yaw.bias"] = torch.zeros(120)
    with pytest.raises(hopenet.CheckpointError, match=r"2 shape mismatch\(es\) .*fc_yaw\.weight \(120, 2048\) "
                                                      r"vs \(66, 2048\)"):
        hopenet.check_state_dict(wrong_bins)

    nan = dict(model.state_dict())
    nan["layer2.0.conv2.weight"] = torch.full_like(nan["layer2.0.conv2.weight"], float("nan"))
    with pytest.raises(hopenet.CheckpointError, match="NaN or infinite values in 1 tensor.*layer2.0.conv2.weight"):
        hopenet.check_state_dict(nan)

    path = tmp_path / "training_state.pkl"
    torch.save({"epoch": 3, "lr": 1e-3}, path)
    with pytest.raises(hopenet.CheckpointError, match="not a state dict .*entries that are not tensors: epoch, lr"):
        hopenet.load_checkpoint(path)


# ------------------------------------------------------------------------------ CLI


def test_cli_exports_a_checkpoint(model, tmp_path):
    weights = tmp_path / "hopenet_robust_alpha1.pkl"
    torch.save(model.state_dict(), weights, _use_new_zipfile_serialization=False)
    target = tmp_path / "models" / "hopenet.onnx"
    out = cli("export-hopenet", weights, "-o", target)
    assert out.returncode == 0, out.stderr
    assert target.is_file()
    assert "max |logit difference|" in out.stdout and "tolerance 0.0001" in out.stdout
    assert f"wrote {target}" in out.stdout and f"hopenet.model_file:={target}" in out.stdout
    assert "legacy pre-1.6 torch format" in out.stdout
    session = ort_session(target, threads=2, spin_while_running=False)
    x = np.random.default_rng(5).standard_normal((1, 3, 224, 224)).astype(np.float32)
    got = session.run(list(hopenet.OUTPUT_NAMES), {"input": x})
    assert max(np.abs(g - w).max() for g, w in zip(got, torch_logits(model, x))) <= TOL
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["headpose_ros.source_file"] == weights.name
    assert meta["headpose_ros.source_sha256"] == sha256_file(weights)


def test_cli_failures_are_one_line(tmp_path):
    target = tmp_path / "out.onnx"
    out = cli("export-hopenet", tmp_path / "hopenet_alpha1.pkl", "-o", target)
    assert_one_line_error(out, "hopenet_alpha1.pkl does not exist")

    page = tmp_path / "hopenet_alpha2.pkl"
    page.write_text("<!DOCTYPE html><html><title>Google Drive - Virus scan warning</title></html>")
    assert_one_line_error(cli("export-hopenet", page, "-o", target), "not a PyTorch checkpoint", "HTML page")

    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pkl"
    torch.save({"x": _Payload(os.system, f"touch {marker}")}, evil)
    assert_one_line_error(cli("export-hopenet", evil, "-o", target), "refused to load", "for safety")
    assert not marker.exists()

    wrong = tmp_path / "resnet18.pth"
    torch.save(_resnet18_state_dict(), wrong)
    assert_one_line_error(cli("export-hopenet", wrong, "-o", target), "is not a Hopenet state dict")
    assert not target.exists()


def test_cli_without_torch_gives_the_install_hint(tmp_path):
    # A torch that fails to import, first on the path: as on a machine without torch.
    (tmp_path / "torch.py").write_text("raise ModuleNotFoundError(\"No module named 'torch'\", name='torch')\n")
    out = cli("export-hopenet", tmp_path / "w.pkl", env={"PYTHONPATH": str(tmp_path)})
    assert_one_line_error(out, "needs torch", "pip install")
