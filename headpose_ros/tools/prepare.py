"""``headpose-ros prepare``: fetch, convert and verify the models and sample photos.

Everything goes to the cache (``$HEADPOSE_ROS_CACHE``, else
``$XDG_CACHE_HOME/headpose_ros``, else ``~/.cache/headpose_ros``); see
``headpose_ros.assets``. Running it again is cheap: valid cached files are
kept and nothing is downloaded.

A robot without torch or the converters gets the files prepared elsewhere:
``--export DIR`` on the prepared machine, a copy of DIR, ``--import DIR`` on
the robot (``headpose_ros.assets.transfer``). The examples are the epilog of
``headpose-ros prepare --help``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from headpose_ros.cli import CommandError

EXAMPLES = """\
examples:
  headpose-ros prepare                    models and photos
  headpose-ros prepare --models           only the ONNX models
  headpose-ros prepare --force            convert and verify again
  headpose-ros prepare --list             show the cache; exit 1 if anything is missing

robot route (the robot needs neither torch nor the converters nor a network):
  headpose-ros prepare --export hp_models             on a prepared machine
  rsync -a hp_models robot:                           (or scp -r)
  headpose-ros prepare --import hp_models             on the robot: check, install
The exported folder also serves as it is as the node's model_dir parameter
(or predict --model-dir): each model beside its manifest.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EXAMPLES
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    what = parser.add_argument_group("what (default: both)")
    what.add_argument("--models", action="store_true",
                      help="the ONNX models (converted from MediaPipe tflite, verified against LiteRT)")
    what.add_argument("--photos", action="store_true",
                      help="the sample photos used by tests and the demo")
    parser.add_argument("--force", action="store_true",
                        help="extract, convert and verify again even if the cache is valid "
                             "(downloads already in the cache are reused)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--list", action="store_true",
                      help="print each asset's path and status and change nothing; "
                           "exit status 1 if any is missing or invalid")
    mode.add_argument("--export", type=Path, metavar="DIR",
                      help="prepare as usual, then copy the verified models (each .onnx with its .json "
                           "manifest) and photos into DIR, a plain folder to copy to another machine")
    mode.add_argument("--import", dest="import_dir", type=Path, metavar="DIR",
                      help="install the files of a folder written by --export into this machine's cache, "
                           "each checked against its manifest or pinned sha256 first (nothing is installed "
                           "if one fails); needs no converter, torch or network. Photos are installed if "
                           "the export has them (--photos: required)")


def run(args: argparse.Namespace) -> int:
    # Imported here so that `headpose-ros --help` never pays for it.
    from headpose_ros import assets

    # Neither flag means both.
    models = args.models or not args.photos
    photos = args.photos or not args.models
    if args.list:
        return _list(assets, models=models, photos=photos)
    if args.import_dir is not None:
        if args.force:
            raise CommandError("--force does not apply to --import (every imported file is checked and installed)")
        # --photos requires them, --models ignores them, neither installs them if exported.
        return _import(assets, args.import_dir, models=models,
                       photos=True if args.photos else False if args.models else None)
    start = time.monotonic()
    try:
        # Photos first: the model verification uses the astronaut photo.
        if photos:
            assets.prepare_photos(force=args.force)
        if models:
            assets.prepare_models(force=args.force)
        print(f"ready in {time.monotonic() - start:.1f} s: {assets.cache_dir()}")
        if args.export is not None:
            assets.export_assets(args.export, models=models, photos=photos)
            print(f"next: copy {args.export} to the robot (rsync -a, scp -r), there run "
                  f"`headpose-ros prepare --import {args.export.name}`")
    except assets.AssetError as exc:
        raise CommandError(str(exc)) from exc
    return 0


def _import(assets, folder: Path, *, models: bool, photos: bool | None) -> int:
    try:
        assets.import_assets(folder, models=models, photos=photos)
    except assets.AssetError as exc:
        raise CommandError(str(exc)) from exc
    print("check with `headpose-ros prepare --list`")
    return 0


def _list(assets, *, models: bool, photos: bool) -> int:
    kinds = {"model"} if not photos else {"photo"} if not models else {"model", "photo"}
    rows = [row for row in assets.cache_status() if row[0] in kinds]
    print(f"cache: {assets.cache_dir()}")
    width = max(len(name) for _, name, _, _ in rows)
    for kind, name, path, status in rows:
        print(f"{kind} {name:<{width}}  {path}  {status}")
    bad = [name for _, name, _, status in rows if not status.startswith("ok")]
    if bad:
        print(f"{len(bad)} missing or invalid; run `headpose-ros prepare` (or `make setup`), or "
              "`headpose-ros prepare --import DIR` with a folder exported from a prepared machine")
        return 1
    return 0
