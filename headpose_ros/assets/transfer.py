"""Moving prepared assets to a machine that cannot prepare them (a robot without torch or the converters).

``export_assets`` copies the cached, verified files into a plain folder::

    <folder>/<model>.onnx      every model (MODEL_NAMES) ...
    <folder>/<model>.json      ... beside its manifest (size, sha256, pinned source)
    <folder>/photos/<file>     the sample photos (optional; the demo and the tests use them)
    <folder>/README.txt        what the folder is and how to install it

Laid out like this, the folder is also a valid ``model_dir`` as it is (``ModelStore``
checks each model against the manifest beside it). ``import_assets`` checks every file
of such a folder (models against their manifests, photos against the sha256 pinned in
``specs``) before it installs anything into this machine's cache, the model before its
manifest, so that ``model_path`` finds them as if they had been prepared here. Neither
needs pip, a network or a converter: only the standard library.
"""

from __future__ import annotations

from pathlib import Path

from ..core.files import atomic_write, sha256_file
from .specs import MODEL_NAMES, PHOTO_NAMES, PHOTOS
from .store import FIX_HINT, AssetError, Log, cache_dir, check_model, check_photo, writable_dir, write_file

__all__ = ["export_assets", "import_assets"]

#: The explanation written into every export.
README_NAME = "README.txt"
#: What to do about a broken or incomplete export.
REEXPORT_HINT = ("export again on the prepared machine (`headpose-ros prepare --export DIR`) and copy the "
                 "whole folder")


def export_assets(folder: str | Path, *, models: bool = True, photos: bool = True,
                  log: Log = print) -> list[Path]:
    """Copy the cached models (each with its manifest) and/or sample photos into `folder`; return the files written.

    Everything is checked in the cache first (AssetError naming what is not prepared or
    corrupt: nothing is written then), and the copies are checked again as
    ``import_assets`` will check them. Files of the same name in `folder` are replaced.
    """
    folder = Path(folder).expanduser().absolute()
    copies: list[tuple[Path, Path]] = []
    if models:
        for name in MODEL_NAMES:
            onnx, _, problem = check_model(name)
            if problem:
                raise AssetError(f"model {name} {problem} in {onnx.parent}; {FIX_HINT}, then export again")
            copies += [(onnx, folder / onnx.name), (onnx.with_suffix(".json"), folder / f"{name}.json")]
    if photos:
        for name in PHOTO_NAMES:
            path, problem = check_photo(name)
            if problem:
                raise AssetError(f"photo {name} {problem} in {path.parent}; {FIX_HINT}, then export again")
            copies.append((path, folder / "photos" / path.name))
    for source, target in copies:  # in order: a model before its manifest
        _copy(source, target)
    _write(folder / README_NAME, _readme(models, photos).encode())
    problems = _export_problems(folder, models=models, photos=photos)
    if problems:  # the copy itself went wrong (a disk that drops bytes, a concurrent writer)
        raise AssetError(f"the copy in {folder} does not check out: {problems[0]}")
    log(f"exported {_counted(models, photos)} to {folder}")
    return [target for _, target in copies]


def import_assets(folder: str | Path, *, models: bool = True, photos: bool | None = None,
                  log: Log = print) -> list[Path]:
    """Install the models and/or photos of a folder written by ``export_assets`` into the cache; return the
    installed files.

    photos: True requires every sample photo in ``<folder>/photos``; None installs them if
    the export has that folder (one exported with models only has none); False ignores them.
    Every file is checked before anything is installed: AssetError naming the first
    missing, corrupt or foreign file (and how many more there are), with the cache unchanged.
    """
    folder = Path(folder).expanduser().absolute()
    if not folder.is_dir():
        raise AssetError(f"{folder}: no such folder (expected one written by `headpose-ros prepare --export`)")
    if photos is None:
        photos = (folder / "photos").is_dir()
    if models and not any((folder / f"{name}.{ext}").exists() for name in MODEL_NAMES for ext in ("onnx", "json")):
        raise AssetError(f"{folder} holds none of the exported models ({', '.join(MODEL_NAMES)}, each .onnx "
                         "with its .json): is it the folder `headpose-ros prepare --export DIR` wrote?")
    problems = _export_problems(folder, models=models, photos=photos)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise AssetError(f"{problems[0]}{more}; nothing was installed: {REEXPORT_HINT}")
    installed: list[Path] = []
    if models:
        models_dir = writable_dir(cache_dir() / "models")
        for name in MODEL_NAMES:
            for ext in ("onnx", "json"):  # the model before its manifest: no manifest, no model
                installed.append(_install(folder / f"{name}.{ext}", models_dir))
    if photos:
        photos_dir = writable_dir(cache_dir() / "photos")
        installed += [_install(folder / "photos" / PHOTOS[name].filename, photos_dir) for name in PHOTO_NAMES]
    # What model_path and photo_path will see from now on.
    for problem in [_model_problem(name, None) for name in MODEL_NAMES if models] + \
                   [_photo_problem(name, None) for name in PHOTO_NAMES if photos]:
        if problem:
            raise AssetError(f"after installing: {problem}")
    log(f"imported {_counted(models, photos)} into {cache_dir()}")
    return installed


def _export_problems(folder: Path, *, models: bool, photos: bool) -> list[str]:
    """One line per file of an export that is missing, corrupt or for another version, each naming the file."""
    found = [_model_problem(name, folder) for name in MODEL_NAMES] if models else []
    found += [_photo_problem(name, folder / "photos") for name in PHOTO_NAMES] if photos else []
    return [p for p in found if p]


def _model_problem(name: str, folder: Path | None) -> str | None:
    onnx, manifest, problem = check_model(name, folder)
    manifest_path = onnx.with_suffix(".json")
    for path in (onnx, manifest_path):
        if not path.is_file():
            return f"{path}: missing" + (" (the export is incomplete)" if folder is not None else "")
    if problem is None:
        return None
    # The file at fault: the manifest when it is unreadable or the model still matches it (a stale manifest).
    culprit = manifest_path if manifest is None or _matches(onnx, manifest) else onnx
    return f"{culprit}: model {name} {problem}"


def _matches(onnx: Path, manifest: dict) -> bool:
    try:
        return sha256_file(onnx) == manifest["onnx"]["sha256"]
    except (KeyError, TypeError, OSError):
        return False


def _photo_problem(name: str, folder: Path | None) -> str | None:
    path, problem = check_photo(name, folder)
    if problem == "not prepared":
        return f"{path}: missing" + (" (the export is incomplete)" if folder is not None else "")
    return f"{path}: photo {name} {problem}" if problem else None


def _install(source: Path, folder: Path) -> Path:
    target = folder / source.name
    write_file(target, source.read_bytes())
    return target


def _copy(source: Path, target: Path) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AssetError(f"cannot create {target.parent}: {exc.strerror or exc}") from None
    _write(target, source.read_bytes())


def _write(path: Path, data: bytes) -> None:
    try:
        atomic_write(path, data)
    except OSError as exc:
        raise AssetError(f"cannot write {path}: {exc.strerror or exc}") from None


def _counted(models: bool, photos: bool) -> str:
    parts = ([f"{len(MODEL_NAMES)} models with their manifests"] if models else []) + \
            ([f"{len(PHOTO_NAMES)} sample photos"] if photos else [])
    return " and ".join(parts) or "nothing"


def _readme(models: bool, photos: bool) -> str:
    from .. import __version__

    return f"""\
headpose_ros {__version__}: {_counted(models, photos)}, exported by `headpose-ros prepare --export`.

Copy this whole folder to the robot (scp -r, rsync -a). There, with the same headpose_ros
version installed (the converters and torch are not needed):

    headpose-ros prepare --import THIS_FOLDER

checks every file against its manifest (models) or pinned sha256 (photos) and installs
them into the asset cache, where the node and the command-line tools find them.
Or use the folder as it is: the node's parameter model_dir, or `headpose-ros predict
--model-dir THIS_FOLDER`.
"""
