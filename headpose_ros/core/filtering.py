"""Temporal smoothing of each track's pose: One-Euro filters (Casiez et al., CHI 2012).

The One-Euro filter is a low-pass whose cutoff rises with speed: a still head
is smoothed hard (no jitter), a moving one lightly (little lag).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .rotation import matrix_from_quaternion_xyzw, quaternion_xyzw


@dataclass(frozen=True)
class OneEuroSettings:
    """min_cutoff: cutoff (Hz) at rest; lower is smoother. beta: cutoff gain per unit of speed
    (1/m for positions, 1/rad for rotations); higher follows motion faster.
    d_cutoff: cutoff (Hz) of the speed estimate."""

    min_cutoff: float = 1.0
    beta: float = 0.5
    d_cutoff: float = 1.0


def _alpha(cutoff: float, dt: float) -> float:
    tau = 1.0 / (2 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """One-Euro filter over a vector, driven by timestamps in seconds."""

    def __init__(self, settings: OneEuroSettings):
        self.settings = settings
        self.reset()

    def reset(self) -> None:
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or self._t is None or t <= self._t:
            # First sample, or time did not move forward (a replayed bag, a
            # duplicated stamp): restart rather than divide by dt <= 0.
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return x.copy()
        s = self.settings
        dt = t - self._t
        dx = (x - self._x) / dt
        self._dx = self._dx + _alpha(s.d_cutoff, dt) * (dx - self._dx)
        cutoff = s.min_cutoff + s.beta * float(np.linalg.norm(self._dx))
        self._x = self._x + _alpha(cutoff, dt) * (x - self._x)
        self._t = t
        return self._x.copy()


class PoseFilter:
    """One-Euro smoothing of a pose: the position, and the orientation as a quaternion.

    Quaternions are kept in one hemisphere before filtering (q and -q are the
    same rotation) and renormalised after, which is exact enough for the small
    frame-to-frame steps of a tracked head.
    """

    def __init__(self, position: OneEuroSettings, rotation: OneEuroSettings):
        self._position = OneEuroFilter(position)
        self._rotation = OneEuroFilter(rotation)
        self._last_q: np.ndarray | None = None

    def reset(self) -> None:
        self._position.reset()
        self._rotation.reset()
        self._last_q = None

    def __call__(self, R: np.ndarray, t: np.ndarray, stamp: float) -> tuple[np.ndarray, np.ndarray]:
        q = quaternion_xyzw(R)
        if self._last_q is not None and q @ self._last_q < 0:
            q = -q
        q_f = self._rotation(q, stamp)
        self._last_q = q_f
        return matrix_from_quaternion_xyzw(q_f), self._position(t, stamp)
