"""What the engine remembers about each tracked face between frames, made by one factory.

The tracker (core.tracking) carries one TrackState per track without looking
inside; the engine reads and updates it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .config import SmoothingConfig
from .filtering import OneEuroSettings, PoseFilter
from .landmarks import FaceRois
from .types import PoseMeasurement


@dataclass
class NetworkKeyframe:
    """The head-pose network's last answer for a face, to carry forward between network runs.

    R_net: (3, 3) the network's rotation (camera frame) at that frame.
    R_fit: (3, 3) the landmark fit's rotation at the same frame.
    yaw_deg: the network's yaw then, along the viewing ray.
    age: frames since.
    """

    R_net: np.ndarray
    R_fit: np.ndarray
    yaw_deg: float = 0.0
    age: int = 0


@dataclass
class TrackState:
    """One face's memory.

    filter: the One-Euro smoothing of its pose.
    last_pose: its latest measurement: the starting point of the next fit.
    roi: where the face mesh looks for it in the next frame (from its landmarks), or None when it
        is not followed (core.finding).
    score: the detector's score when it was last detected.
    followed: its landmarks were good enough to follow it at least once.
    keyframe: the network's last answer (backends hopenet and fusion, video), or None.
    """

    filter: PoseFilter
    last_pose: PoseMeasurement | None = None
    roi: FaceRois | None = None
    score: float = 0.0
    followed: bool = False
    keyframe: NetworkKeyframe | None = None

    def measured(self, m: PoseMeasurement, stamp: float, smooth: bool) -> tuple[np.ndarray, np.ndarray]:
        """Record this frame's measurement; the pose to publish (R (3, 3), t (3,) m), smoothed if `smooth`."""
        self.last_pose = m
        return self.filter(m.R, m.t, stamp) if smooth else (m.R, m.t)


def track_state_factory(smoothing: SmoothingConfig) -> Callable[[], TrackState]:
    """Makes the state of a new track, with filters set as `smoothing` says."""
    position = OneEuroSettings(smoothing.position_min_cutoff, smoothing.position_beta)
    rotation = OneEuroSettings(smoothing.rotation_min_cutoff, smoothing.rotation_beta)
    return lambda: TrackState(PoseFilter(position, rotation))
