"""TensorRT engines cached on disk: one slot per model file, precision and batch, valid while its key holds.

A slot is two files in the cache folder: the serialized engine
(``<model stem>-<path hash>.<precision>.b<max batch>.engine``) and its JSON
sidecar (the key, the key fields, the engine's sha256 and size, the precision
really built). The key is a hash of everything that makes an engine valid:
the ONNX bytes, the TensorRT version, the GPU name and compute capability,
the precision and max_batch. Writes are atomic (core.files.atomic_write),
engine first; a folder that cannot be written is warned about once per
process and the engine then lives in memory only.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, Callable

from ..files import atomic_write

# Bump when the cache layout or the meaning of a key field changes: old entries become stale.
CACHE_FORMAT = 1

# Cache folders already warned about (read-only and the like): warn once per process.
_unwritable_dirs: set[str] = set()


def cache_key_fields(onnx_sha256: str, tensorrt_version: str, gpu_name: str,
                     compute_capability: tuple[int, int], precision: str, max_batch: int) -> dict[str, Any]:
    """Everything a serialized engine depends on; an engine is reusable only while all of it is unchanged.

    TensorRT engines are specific to the TensorRT release and the GPU model
    (its kernels are chosen by timing on that GPU), besides the network itself,
    the precision and the optimisation profile.
    """
    return {
        "format": CACHE_FORMAT,
        "onnx_sha256": onnx_sha256,
        "tensorrt": str(tensorrt_version),
        "gpu": str(gpu_name),
        "compute_capability": f"{int(compute_capability[0])}.{int(compute_capability[1])}",
        "precision": precision,
        "max_batch": int(max_batch),
    }


def cache_key(fields: dict[str, Any]) -> str:
    """sha256 (hex) of the key fields, canonically serialized."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def describe_changes(old: Any, new: dict[str, Any]) -> str:
    """What differs between a cached entry's key fields and the current ones, for a log line."""
    if not isinstance(old, dict):
        return "its key fields are unreadable"
    labels = {"onnx_sha256": "the ONNX file changed", "format": "cache format"}
    parts = []
    for name, value in new.items():
        if old.get(name) == value:
            continue
        if name == "onnx_sha256":
            parts.append(labels[name])
        else:
            parts.append(f"{labels.get(name, name)} {old.get(name)!s} -> {value!s}")
    return ", ".join(parts) or "its key differs"


class EngineCacheSlot:
    """Where one model's engine lives in the cache folder, and reading and writing it.

    model: the ONNX file the engine is built from; key_fields: its
    cache_key_fields(). The slot name carries a hash of the model's absolute
    path, so that two models with the same file name in different folders do
    not evict each other; everything else that matters is in the key, which
    decides whether the slot's content is usable.
    """

    def __init__(self, folder: Path, model: Path, key_fields: dict[str, Any], log: Callable[[str], None]):
        self.folder = Path(folder)
        self.model = Path(model)
        self.key_fields = key_fields
        self.key = cache_key(key_fields)
        self._log = log
        where = hashlib.sha256(str(self.model.resolve()).encode()).hexdigest()[:8]
        self.engine_file = self.folder / (f"{self.model.stem}-{where}.{key_fields['precision']}"
                                          f".b{key_fields['max_batch']}.engine")
        self.meta_file = self.engine_file.with_suffix(".json")

    def read(self) -> tuple[bytes | None, dict, str]:
        """(engine bytes, sidecar, "") for a valid entry, else (None, {}, why the entry cannot be used)."""
        if not self.engine_file.exists() and not self.meta_file.exists():
            return None, {}, "no cached engine yet"
        try:
            meta = json.loads(self.meta_file.read_text(encoding="utf-8"))
            if not isinstance(meta, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError):
            return None, {}, f"the cached engine's metadata {self.meta_file.name} is missing or unreadable"
        if meta.get("key") != self.key:
            return None, {}, f"the cached engine is stale ({describe_changes(meta.get('fields'), self.key_fields)})"
        try:
            plan = self.engine_file.read_bytes()
        except OSError as exc:
            return None, {}, f"the cached engine {self.engine_file.name} cannot be read ({exc.strerror or exc})"
        if hashlib.sha256(plan).hexdigest() != meta.get("engine_sha256"):
            return None, {}, f"the cached engine {self.engine_file.name} is corrupt (its checksum does not match)"
        return plan, meta, ""

    def write(self, plan: bytes, precision: str) -> bool:
        """Store the entry (engine, then sidecar, each atomically); False when the folder cannot be written.

        Engine first: a crash between the two writes leaves a sidecar whose
        checksum does not match the new engine, which reads as corrupt and is
        rebuilt, never trusted.
        """
        meta = {
            "key": self.key,
            "fields": self.key_fields,
            "engine_sha256": hashlib.sha256(plan).hexdigest(),
            "engine_bytes": len(plan),
            "built_precision": precision,
            "model": str(self.model.resolve()),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            atomic_write(self.engine_file, plan)
            atomic_write(self.meta_file, (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode())
        except OSError as exc:
            folder = str(self.folder)
            if folder not in _unwritable_dirs:
                _unwritable_dirs.add(folder)
                self._log(f"tensorrt: cannot write the engine cache in {folder} ({exc.strerror or exc}); "
                          "engines are kept in memory only and rebuilt at every start "
                          "(set a writable engine cache directory to avoid that)")
            return False
        return True
