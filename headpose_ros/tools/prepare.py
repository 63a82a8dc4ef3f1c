"""``headpose-ros prepare``: fetch, convert and verify the models and sample photos.

Everything goes to the cache (``$HEADPOSE_ROS_CACHE``, else
``$XDG_CACHE_HOME/headpose_ros``, else ``~/.cache/headpose_ros``); see
``headpose_ros.assets``. Running it again is cheap: valid cached files are
kept and nothing is downloaded.

Examples::

    headpose-ros prepare              # models and photos
    headpose-ros prepare --models     # only the ONNX models
    headpose-ros prepare --force      # convert and verify again
    headpose-ros prepare --list       # show the cache; exit 1 if anything is missing
"""

from __future__ import annotations

import argparse
import time

from headpose_ros.cli import CommandError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_argument_group("what (default: both)")
    what.add_argument("--models", action="store_true",
                      help="the ONNX models (converted from MediaPipe tflite, verified against LiteRT)")
    what.add_argument("--photos", action="store_true",
                      help="the sample photos used by tests and the demo")
    parser.add_argument("--force", action="store_true",
                        help="extract, convert and verify again even if the cache is valid "
                             "(downloads already in the cache are reused)")
    parser.add_argument("--list", action="store_true",
                        help="print each asset's path and status and change nothing; "
                             "exit status 1 if any is missing or invalid")


def run(args: argparse.Namespace) -> int:
    # Imported here so that `headpose-ros --help` never pays for it.
    from headpose_ros import assets

    # Neither flag means both.
    models = args.models or not args.photos
    photos = args.photos or not args.models
    if args.list:
        return _list(assets, models=models, photos=photos)
    start = time.monotonic()
    try:
        # Photos first: the model verification uses the astronaut photo.
        if photos:
            assets.prepare_photos(force=args.force)
        if models:
            assets.prepare_models(force=args.force)
    except assets.AssetError as exc:
        raise CommandError(str(exc)) from exc
    print(f"ready in {time.monotonic() - start:.1f} s: {assets.cache_dir()}")
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
        print(f"{len(bad)} missing or invalid; run `headpose-ros prepare` (or `make setup`)")
        return 1
    return 0
