"""Multi-face tracking: stable ids across frames, confirmation and loss.

A track is confirmed (published) after `min_hits` detections and dropped
after more than `max_misses` consecutive frames without one. Each track owns
its temporal filter and its last pose, which seeds the next frame's fit.
"""

from __future__ import annotations

import itertools
import random
import string
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .detection import box_iou
from .filtering import PoseFilter
from .pnp import PoseMeasurement


def random_ids(length: int = 5, seed: int | None = None) -> Callable[[], str]:
    """REP-155 style ids: `length` random lowercase letters."""
    rng = random.Random(seed)
    return lambda: "".join(rng.choice(string.ascii_lowercase) for _ in range(length))


def sequential_ids(prefix: str = "") -> Callable[[], str]:
    """Deterministic ids 1, 2, 3, ... (zero-padded to 4 digits), for tests and reproducible logs."""
    counter = itertools.count(1)
    return lambda: f"{prefix}{next(counter):04d}"


@dataclass(frozen=True)
class TrackerSettings:
    """min_hits: detections before a face is published; max_misses: missed frames before it is dropped;
    iou_threshold: minimum box overlap for a detection to continue a track."""

    min_hits: int = 3
    max_misses: int = 5
    iou_threshold: float = 0.3


@dataclass
class FaceTrack:
    """One tracked face. `box` is xyxy pixels of its latest detection."""

    id: str
    box: np.ndarray
    filter: PoseFilter
    hits: int = 1
    misses: int = 0
    last_pose: PoseMeasurement | None = None

    def confirmed(self, min_hits: int) -> bool:
        return self.hits >= min_hits


class FaceTracker:
    """Associates each frame's detections with tracks by box overlap (greedy, best IoU first)."""

    def __init__(self, settings: TrackerSettings, make_filter: Callable[[], PoseFilter], make_id: Callable[[], str]):
        self.settings = settings
        self.make_filter = make_filter  # for tracks started from now on
        self._make_id = make_id
        self.tracks: list[FaceTrack] = []

    def reset(self) -> None:
        self.tracks = []

    def update(self, boxes: np.ndarray) -> tuple[list[FaceTrack], list[FaceTrack]]:
        """Match this frame's boxes (n, 4) to tracks.

        Returns the track of each box (new tracks are created for unmatched
        boxes) and the tracks dropped in this update.
        """
        n = len(boxes)
        assigned: list[FaceTrack | None] = [None] * n
        matched_tracks: set[int] = set()
        if self.tracks and n:
            iou = box_iou(boxes, np.array([t.box for t in self.tracks]))
            for flat in np.argsort(-iou, axis=None):
                d, k = np.unravel_index(flat, iou.shape)
                if iou[d, k] < self.settings.iou_threshold:
                    break
                if assigned[d] is None and k not in matched_tracks:
                    assigned[d] = self.tracks[k]
                    matched_tracks.add(int(k))
        for k, track in enumerate(self.tracks):
            if k in matched_tracks:
                track.hits += 1
                track.misses = 0
            else:
                track.misses += 1
        for d in range(n):
            if assigned[d] is None:
                track = FaceTrack(id=self._make_id(), box=boxes[d].copy(), filter=self.make_filter(), hits=1)
                self.tracks.append(track)
                assigned[d] = track
            else:
                assigned[d].box = boxes[d].copy()
        dropped = [t for t in self.tracks if t.misses > self.settings.max_misses]
        self.tracks = [t for t in self.tracks if t.misses <= self.settings.max_misses]
        for t in dropped:
            t.filter.reset()
        return assigned, dropped
