"""Run backends over a dataset: each image read once, every backend on it, one Outcome each.

Two protocols say where the faces come from (metrics.PROTOCOLS):

- ``detector``: the package's own, as a user runs it: the detector searches
  each image (whole and in tiles) and the labelled face is the one found
  over its box; errors average over the faces it found (detection-conditional);
- ``box``: the published tables' (Hopenet, WHENet, 6DRepNet, ...): the
  labelled box is given to the engine as its detector's box
  (HeadPoseEngine.process(boxes=...): score 1; without the detector's eye
  keypoints the face mesh crops it upright, then again from its own
  landmarks, core.finding.FaceFinder.given), no detector runs, every
  labelled face is there; errors average over the faces a backend gave an
  estimate for (the landmark backends give none when the face mesh's
  presence score on the box is under landmarks.presence_threshold, or no fit
  holds). The boxes should follow the detector's convention; AFLW2000-3D's
  are made so from its 68 landmarks (datasets.detector_box_from_68).
"""

from __future__ import annotations

from typing import Callable

from ..core.camera import CameraModelError
from ..core.config import EngineConfig, still_image_config, with_values
from ..core.engine import HeadPoseEngine
from ..pipeline import create_engine
from .datasets import Dataset, DatasetError
from .metrics import PROTOCOLS, Outcome, score


def make_engines(backends: list[str], values: dict | None = None,
                 log: Callable[[str], None] = lambda line: None) -> dict[str, HeadPoseEngine]:
    """One still-image engine per backend, with dotted-name setting `values` on top."""
    return {b: create_engine(still_image_config({**(values or {}), "backend": b}), log=log) for b in backends}


def make_video_engines(backends: list[str], values: dict | None = None,
                       log: Callable[[str], None] = lambda line: None) -> dict[str, HeadPoseEngine]:
    """One engine per backend with the node's defaults (video mode: tracking, smoothing), `values` on top."""
    return {b: create_engine(with_values(EngineConfig(), {**(values or {}), "backend": b}), log=log) for b in backends}


def evaluate(dataset: Dataset, engines: dict[str, HeadPoseEngine],
             progress: Callable[[int, int], None] | None = None, protocol: str = "detector") -> dict[str, list[Outcome]]:
    """Outcomes per backend, in dataset order, under `protocol` (PROTOCOLS; "box" needs every sample's box).

    `progress(done, total)` is called after each image.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol '{protocol}' (choose {', '.join(PROTOCOLS)})")
    if protocol == "box" and not dataset.boxes:
        raise DatasetError(f"{dataset.name}: the labelled-box protocol needs a box for every sample")
    outcomes: dict[str, list[Outcome]] = {name: [] for name in engines}
    total = len(dataset.samples)
    for i, sample in enumerate(dataset.samples):
        image = sample.read()
        boxes = sample.box[None] if protocol == "box" else None
        for name, engine in engines.items():
            engine.reset()
            try:
                heads = engine.process(image, sample.camera, 0.0, boxes=boxes).heads
            except CameraModelError as exc:
                raise DatasetError(f"{sample.name}: its camera cannot be used: {exc}") from None
            outcomes[name].append(score(sample, heads))
        if progress:
            progress(i + 1, total)
    return outcomes
