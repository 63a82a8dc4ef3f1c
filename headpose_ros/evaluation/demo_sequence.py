"""The demo's built-in sequence: a real face, fitted in 3D, turning to profile and nodding, with its truth.

The astronaut's face (scikit-image's photo, public domain, NASA) is fitted
and textured the way ``synth`` makes its ground truth (evaluation.synth,
evaluation.render) and drawn about 0.65 m in front of the camera, on a plain
backdrop, along this script (seconds; angles in degrees, msg/HeadPose.msg's:
relative to the line of sight, so 0 is looking into the lens):

    0   - 1.0   facing the camera
    1.0 - 2.2   turning to yaw +85 (near profile)
    2.2 - 3.4   holding the profile
    3.4 - 5.4   turning through to yaw -85
    5.4 - 6.6   holding the other profile
    6.6 - 7.6   back to the camera
    7.6 - 10.2  nodding: pitch +30, then -30, then level

Landmark PnP loses a face turned beyond about 60-70 degrees (the mesh
fits a profile badly, or not at all); the network backends keep it. The
parts are named by the truth: ``profile`` (|yaw| >= PROFILE_YAW_DEG), ``nod``
(|pitch| >= NOD_PITCH_DEG), ``other`` (facing or turning).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..core.camera import CameraModel
from ..core.rotation import camera_from_yaw_pitch_roll_deg

# (time s, yaw deg, pitch deg) the head reaches at that time; eased in between.
KEYFRAMES = ((0.0, 0.0, 0.0), (1.0, 5.0, 0.0), (2.2, 85.0, 0.0), (3.4, 85.0, 5.0), (5.4, -85.0, 0.0),
             (6.6, -85.0, -5.0), (7.6, 0.0, 0.0), (8.4, 0.0, 30.0), (9.4, 0.0, -30.0), (10.2, 0.0, 0.0))
DURATION_S = KEYFRAMES[-1][0]
PROFILE_YAW_DEG = 70.0
NOD_PITCH_DEG = 20.0
SOURCE_PHOTO = "astronaut"
DISTANCE_M = 0.65
# Backdrop: a vertical gradient, RGB top to bottom (a plain wall: the face is what moves).
BACKDROP_TOP = (112, 122, 138)
BACKDROP_BOTTOM = (58, 62, 72)


@dataclass(frozen=True)
class Truth:
    """The rendered head's angles in one frame, degrees (msg/HeadPose.msg's convention), and its part of the script."""

    yaw: float
    pitch: float
    roll: float

    @property
    def part(self) -> str:
        if abs(self.yaw) >= PROFILE_YAW_DEG:
            return "profile"
        if abs(self.pitch) >= NOD_PITCH_DEG:
            return "nod"
        return "other"


def _ease(x: float) -> float:
    x = min(1.0, max(0.0, x))
    return 0.5 - 0.5 * math.cos(math.pi * x)


def truth_at(s: float) -> Truth:
    """The head's angles `s` seconds into the script (module docstring); a small roll wobble throughout."""
    roll = 4.0 * math.sin(2 * math.pi * s / 3.0)
    for (t0, yaw0, pitch0), (t1, yaw1, pitch1) in zip(KEYFRAMES, KEYFRAMES[1:]):
        if s <= t1:
            a = _ease((s - t0) / (t1 - t0))
            return Truth(yaw0 + (yaw1 - yaw0) * a, pitch0 + (pitch1 - pitch0) * a, roll)
    return Truth(KEYFRAMES[-1][1], KEYFRAMES[-1][2], roll)


def script(rate_hz: float) -> list[Truth]:
    """The truth of every frame of the sequence at `rate_hz`."""
    return [truth_at(k / rate_hz) for k in range(int(round(DURATION_S * rate_hz)))]


def backdrop(width: int, height: int) -> np.ndarray:
    """(height, width, 3) uint8 RGB: the vertical gradient BACKDROP_TOP -> BACKDROP_BOTTOM."""
    s = np.linspace(0.0, 1.0, height)[:, None, None]
    column = np.asarray(BACKDROP_TOP, np.float64) * (1 - s) + np.asarray(BACKDROP_BOTTOM, np.float64) * s
    return np.repeat(column, width, axis=1).astype(np.uint8)


def render_sequence(photo: Callable[[str], np.ndarray], camera: CameraModel, rate_hz: float,
                    frames: int | None = None, log: Callable[[str], object] = print
                    ) -> tuple[list[np.ndarray], list[Truth]]:
    """The script's frames at `rate_hz` through `camera` (all, or the first `frames`): (h, w, 3) uint8 RGB
    images and their truth.

    photo: the sample photos by name (assets.read_photo). About 25 ms a frame on one core
    (the 153 frames at 15 Hz: 3.7 s on 2 cores); nothing is written to disk.
    """
    from .synth import source_faces

    start = time.perf_counter()
    _, face = source_faces(photo, (SOURCE_PHOTO,), log)[0]
    wall = backdrop(camera.width, camera.height)
    images, truths = [], script(rate_hz)[:frames]
    for k, truth in enumerate(truths):
        # The sellion sways a little from side to side, as a seated person's does.
        position = np.array([0.03 * math.sin(2 * math.pi * k / rate_hz / 5.0), 0.02, DISTANCE_M])
        R = camera_from_yaw_pitch_roll_deg(truth.yaw, truth.pitch, truth.roll, position=position)
        image, _ = face.render(R, position, camera, wall)
        images.append(image)
    log(f"rendered the built-in sequence: {len(images)} frames of {SOURCE_PHOTO}'s fitted face in "
        f"{time.perf_counter() - start:.1f} s")
    return images, truths
