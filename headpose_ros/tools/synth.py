"""``headpose-ros synth``: a ground-truth head-pose set rendered from real photos (see evaluation.synth).

    headpose-ros synth --out out/synth [--count 300] [--seed 0] [--fov 60] ...
    headpose-ros synth --hard --out out/synth_hard [--count 300] [--seed 0] ...
    headpose-ros synth --video --out out/synth_video [--scenarios turn,walk,...] [--seed 0]

Writes images/, camera_info.yaml and labels.json (the format ``headpose-ros
eval`` reads) into --out. The default set draws each face's yaw within ±75°,
pitch ±35° and roll ±30° of the viewing ray (this package's angles). With
--hard: large pitch and profiles, yaw within ±90° (a third of the faces at
|yaw| 60-90°) and pitch ±45° (evaluation.synth.HARD_VIEWS, which says how
that reads in the 300W-LP angles of eval's tables; it overrides --max-yaw-deg
and --max-pitch-deg). With --video: sequences of frames at 15 Hz with every
head's exact truth in every frame (evaluation.video_synth).
"""

from __future__ import annotations

import time
from dataclasses import fields, replace
from pathlib import Path

from ..cli import CommandError


def add_arguments(parser) -> None:
    from ..evaluation.synth import SynthSettings

    parser.add_argument("--out", type=Path, default=Path("out/synth"), help="output folder (default: out/synth)")
    parser.add_argument("--photos", default="", help="comma-separated source photos (default: the frontal portraits)")
    parser.add_argument("--hard", action="store_true",
                        help="large pitch and profiles: yaw within ±90 deg (a third of the faces at |yaw| 60-90) "
                             "and pitch ±45 deg, in place of --max-yaw-deg and --max-pitch-deg")
    parser.add_argument("--video", action="store_true",
                        help="render video sequences (turn, walk, three, glance, still) instead of single photos")
    parser.add_argument("--scenarios", default="", help="--video: comma-separated sequences (default: all)")
    parser.add_argument("--frames", type=int, default=0, help="--video: at most this many frames a sequence "
                        "(default: all)")
    defaults = SynthSettings()
    for f in fields(SynthSettings):
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=type(getattr(defaults, f.name)),
                            default=getattr(defaults, f.name), help=f"(default: {getattr(defaults, f.name)})")


def run(args) -> int:
    from .. import assets
    from ..evaluation.synth import HARD_VIEWS, SOURCE_PHOTOS, SynthSettings, synthesize

    settings = SynthSettings(**{f.name: getattr(args, f.name) for f in fields(SynthSettings)})
    if args.hard:
        if args.video:
            raise CommandError("--hard is for the still set, not --video")
        settings = replace(settings, **HARD_VIEWS)
    if settings.count < 1 or settings.min_depth_m <= 0 or settings.max_depth_m < settings.min_depth_m:
        raise CommandError("need --count >= 1 and 0 < --min-depth-m <= --max-depth-m")
    names = tuple(n.strip() for n in args.photos.split(",") if n.strip()) or SOURCE_PHOTOS

    start = time.perf_counter()
    try:
        if args.video:
            from ..evaluation.video_synth import SCENARIOS, VideoSettings, synthesize_video

            scenarios = tuple(n.strip() for n in args.scenarios.split(",") if n.strip()) or SCENARIOS
            unknown = [n for n in scenarios if n not in SCENARIOS]
            if unknown:
                raise CommandError(f"unknown scenario(s) {', '.join(unknown)} (choose {', '.join(SCENARIOS)})")
            video = VideoSettings(width=settings.width, height=settings.height, fov_deg=settings.fov_deg,
                                  seed=settings.seed, max_frames=max(0, args.frames))
            labels = synthesize_video(args.out, video, assets.read_photo, scenarios, names)
        else:
            labels = synthesize(args.out, settings, assets.read_photo, names)
    except (assets.AssetError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    print(f"wrote {labels} and its images in {time.perf_counter() - start:.1f} s")
    return 0
