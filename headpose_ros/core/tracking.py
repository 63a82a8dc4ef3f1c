"""Multi-face tracking: stable ids across frames, confirmation and loss.

The tracker alone decides: a track is confirmed (published) after
`min_hits` detections and ended after more than `max_misses` consecutive
frames without one. For `reacquire_frames` after it ended, a new face near
its last box (centres within 1.5 box sides, sizes within a factor of 2)
takes its id back, confirmed at once: a face that turned to a full profile, where
neither the detector nor the mesh sees it, or that was hidden behind another
for a moment, is the same person when it comes back. Each track carries the estimator's own per-track state
(core.track_state.TrackState: last pose, smoothing filter), made by the
factory the tracker is given; the tracker never looks inside it.
"""

from __future__ import annotations

import itertools
import random
import string
from dataclasses import dataclass, field
from typing import Callable, Generic, Sequence, TypeVar

import numpy as np

from .config import TrackingConfig
from .detection import box_iou

State = TypeVar("State")

# A face reappears within this many box sides of where its track ended: the square the finder searches
# around a lost face (core.finding.LOST_REGION_SCALE, 3 sides across) has it in.
REACQUIRE_SIDES = 1.5


def random_ids(length: int = 5, seed: int | None = None) -> Callable[[], str]:
    """REP-155 style ids: `length` random lowercase letters."""
    rng = random.Random(seed)
    return lambda: "".join(rng.choice(string.ascii_lowercase) for _ in range(length))


def sequential_ids(prefix: str = "") -> Callable[[], str]:
    """Deterministic ids 1, 2, 3, ... (zero-padded to 4 digits), for tests and reproducible logs."""
    counter = itertools.count(1)
    return lambda: f"{prefix}{next(counter):04d}"


def ids_of_style(style: str, prefix: str = "") -> Callable[[], str]:
    """The id maker of a tracking.id_style (random or sequential), each id after `prefix`."""
    if style == "random":
        make = random_ids()
        return lambda: prefix + make()
    return sequential_ids(prefix)


@dataclass
class FaceTrack(Generic[State]):
    """One tracked face.

    box: (4,) xyxy pixels of its latest detection.
    hits: detections so far; misses: consecutive frames without one.
    confirmed: hits have reached min_hits (set by the tracker at each update).
    state: what the estimator keeps for this face (from the tracker's factory).
    """

    id: str
    box: np.ndarray
    state: State
    hits: int = 1
    misses: int = 0
    confirmed: bool = False


@dataclass
class TrackUpdate(Generic[State]):
    """What one frame did to the tracks.

    tracks: the track of each detection, in the order of the boxes given.
    ended: tracks that ended in this update (missed more than max_misses frames).
    """

    tracks: list[FaceTrack[State]] = field(default_factory=list)
    ended: list[FaceTrack[State]] = field(default_factory=list)

    @property
    def confirmed(self) -> list[FaceTrack[State]]:
        return [t for t in self.tracks if t.confirmed]

    @property
    def tentative(self) -> list[FaceTrack[State]]:
        return [t for t in self.tracks if not t.confirmed]


class FaceTracker(Generic[State]):
    """Associates each frame's detections with tracks by box overlap (greedy, best IoU first), then a
    face that overlaps none with the nearest free track (centres within one box side, sizes within 2x).

    settings: min_hits, max_misses and iou_threshold of tracking.* (checked
        here: a tracker refuses settings it cannot work with).
    make_state: the per-track state of a new track.
    make_id: the id of a new track.
    """

    def __init__(self, settings: TrackingConfig, make_state: Callable[[], State], make_id: Callable[[], str]):
        self.apply(settings)
        self.make_state = make_state  # for tracks started from now on
        self._make_id = make_id
        self.tracks: list[FaceTrack[State]] = []
        self._ended: list[tuple[FaceTrack[State], int]] = []  # ended tracks that may come back, frames left

    def apply(self, settings: TrackingConfig) -> None:
        """Use these settings from the next update on (for every track, existing ones included)."""
        problems = settings.problems("tracking.")
        if problems:
            raise ValueError("; ".join(problems))
        self.settings = settings

    def reset(self) -> list[FaceTrack[State]]:
        """End every track (none will be reacquired); returns them."""
        ended, self.tracks, self._ended = self.tracks, [], []
        return ended

    def update(self, boxes: np.ndarray, known: Sequence[FaceTrack[State] | None] | None = None) -> TrackUpdate[State]:
        """This frame's faces (n, 4) boxes: continue tracks, start tracks for new faces, end the lost ones.

        known: for each box, the track it already belongs to (a face followed
        from its own landmarks), or None; only the others are associated, by
        box overlap, with the tracks that no known face continues.
        """
        s = self.settings
        n = len(boxes)
        assigned: list[FaceTrack[State] | None] = list(known) if known is not None else [None] * n
        continued = {id(t) for t in assigned if t is not None}
        free = [t for t in self.tracks if id(t) not in continued]
        open_faces = [d for d in range(n) if assigned[d] is None]
        if free and open_faces:
            iou = box_iou(boxes[open_faces], np.array([t.box for t in free]))
            matched: set[int] = set()
            for flat in np.argsort(-iou, axis=None):
                d, k = np.unravel_index(flat, iou.shape)
                if iou[d, k] < s.iou_threshold:
                    break
                if assigned[open_faces[d]] is None and k not in matched:
                    assigned[open_faces[d]] = free[k]
                    matched.add(int(k))
        # A face that overlaps no free track but lies near one (a profile's box jumps) continues it.
        for d in open_faces:
            if assigned[d] is None:
                taken = {id(t) for t in assigned if t is not None}
                near = _nearest(boxes[d], [t for t in free if id(t) not in taken])
                if near is not None:
                    assigned[d] = near
        seen = {id(t) for t in assigned if t is not None}
        for track in self.tracks:
            if id(track) in seen:
                track.hits += 1
                track.misses = 0
            else:
                track.misses += 1
        self._ended = [(t, left - 1) for t, left in self._ended if left > 1]
        for d in range(n):
            if assigned[d] is None:
                back = self._reacquire(boxes[d])
                track = FaceTrack(id=back.id if back else self._make_id(), box=boxes[d].copy(),
                                  state=self.make_state(), hits=max(1, back.hits if back else 1))
                self.tracks.append(track)
                assigned[d] = track
            else:
                assigned[d].box = boxes[d].copy()
        for track in self.tracks:
            track.confirmed = track.hits >= s.min_hits
        ended = [t for t in self.tracks if t.misses > s.max_misses]
        self.tracks = [t for t in self.tracks if t.misses <= s.max_misses]
        if s.reacquire_frames > 0:
            self._ended += [(t, s.reacquire_frames) for t in ended if t.confirmed]
        return TrackUpdate(assigned, ended)

    def _reacquire(self, box: np.ndarray) -> FaceTrack[State] | None:
        """The recently ended track nearest this new face's box, if near enough (module docstring); taken off the list."""
        track = _nearest(box, [t for t, _ in self._ended], REACQUIRE_SIDES)
        if track is not None:
            self._ended = [(t, left) for t, left in self._ended if t is not track]
        return track


def _nearest(box: np.ndarray, tracks: list[FaceTrack], sides: float = 1.0) -> FaceTrack | None:
    """The track whose last box is nearest `box` (4,): centres within `sides` times the larger of the two
    boxes' sides, sizes within a factor of 2."""
    best, best_distance = None, np.inf
    centre, side = (box[:2] + box[2:]) / 2, float(np.max(box[2:] - box[:2]))
    for track in tracks:
        old_side = float(np.max(track.box[2:] - track.box[:2]))
        distance = float(np.linalg.norm((track.box[:2] + track.box[2:]) / 2 - centre))
        if distance <= sides * max(old_side, side) and 0.5 <= side / max(old_side, 1e-6) <= 2.0 and distance < best_distance:
            best, best_distance = track, distance
    return best
