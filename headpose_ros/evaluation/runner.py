"""Run backends over a dataset: each image read once, every backend on it, one Outcome each."""

from __future__ import annotations

from typing import Callable

from ..core.camera import CameraModelError
from ..core.config import EngineConfig, still_image_config, with_values
from ..core.engine import HeadPoseEngine
from ..pipeline import create_engine
from .datasets import Dataset, DatasetError
from .metrics import Outcome, score


def make_engines(backends: list[str], values: dict | None = None,
                 log: Callable[[str], None] = lambda line: None) -> dict[str, HeadPoseEngine]:
    """One still-image engine per backend, with dotted-name setting `values` on top."""
    return {b: create_engine(still_image_config({**(values or {}), "backend": b}), log=log) for b in backends}


def make_video_engines(backends: list[str], values: dict | None = None,
                       log: Callable[[str], None] = lambda line: None) -> dict[str, HeadPoseEngine]:
    """One engine per backend with the node's defaults (video mode: tracking, smoothing), `values` on top."""
    return {b: create_engine(with_values(EngineConfig(), {**(values or {}), "backend": b}), log=log) for b in backends}


def evaluate(dataset: Dataset, engines: dict[str, HeadPoseEngine],
             progress: Callable[[int, int], None] | None = None) -> dict[str, list[Outcome]]:
    """Outcomes per backend, in dataset order. `progress(done, total)` is called after each image."""
    outcomes: dict[str, list[Outcome]] = {name: [] for name in engines}
    total = len(dataset.samples)
    for i, sample in enumerate(dataset.samples):
        image = sample.read()
        for name, engine in engines.items():
            engine.reset()
            try:
                heads = engine.process(image, sample.camera, 0.0).heads
            except CameraModelError as exc:
                raise DatasetError(f"{sample.name}: its camera cannot be used: {exc}") from None
            outcomes[name].append(score(sample, heads))
        if progress:
            progress(i + 1, total)
    return outcomes
