"""Fusing two estimates of one head's rotation, each weighted by its own uncertainty.

Each estimator's uncertainty is a standard deviation about each of the
face's own axes (roll about x, pitch about y, yaw about z), as a function of
how far the face is turned from the camera (|yaw| along its line of sight, as
the network reads it: full range, it does not collapse at profiles). The
tables below are measured, not guessed: ``python -m
headpose_ros.tools.calibrate_fusion`` renders still sets of its own (seed 7,
400 faces with the default views and 400 with the hard ones;
evaluation.synth), runs both estimators and prints the root-mean-square
error about each axis at each knot, and how well these tables predict the
errors (docs/benchmarks.md, "Fusion").

Rotations are fused as a Gaussian product on the rotation's tangent space:
with covariances Σa, Σb (rad², about the camera axes) and δ the rotation
vector (camera axes) taking Ra to Rb (Rb = exp(δ) Ra), the fused rotation is
exp(Σ Σb⁻¹ δ) Ra with Σ = (Σa⁻¹ + Σb⁻¹)⁻¹, its covariance (re-linearised at
the answer until it no longer moves). Equal covariances give the midpoint; a
much surer estimate wins.
"""

from __future__ import annotations

import cv2
import numpy as np

from .models import WHENET

# |yaw| (degrees) at which the tables are given; linear in between, constant beyond the ends.
YAW_KNOTS_DEG = (0.0, 30.0, 60.0, 90.0)
# Root-mean-square error (degrees) about the face's x (roll), y (pitch) and z (yaw) axes, per knot.
LANDMARK_SIGMA_DEG = (
    (5.8, 8.0, 8.1),
    (9.3, 8.9, 14.1),
    (14.2, 10.4, 27.1),
    (18.2, 10.4, 38.4),
)
# Measured for WHENet (core.models.WHENET); another network's table is this one scaled by the ratio of
# the published mean errors (network_sigma_deg).
NETWORK_SIGMA_DEG = (
    (4.1, 7.7, 10.7),
    (5.3, 8.0, 9.5),
    (7.4, 10.8, 7.1),
    (7.6, 12.9, 6.4),
)


def sigma_at(table, yaw_deg: float) -> np.ndarray:
    """(3,) standard deviations (degrees) about the face's x, y, z axes of a table at |yaw_deg|."""
    t = np.asarray(table, dtype=np.float64)
    y = min(abs(float(yaw_deg)), YAW_KNOTS_DEG[-1]) if np.isfinite(yaw_deg) else YAW_KNOTS_DEG[-1]
    return np.array([np.interp(y, YAW_KNOTS_DEG, t[:, k]) for k in range(3)])


def landmark_sigma_deg(yaw_deg: float) -> np.ndarray:
    """(3,) degrees: landmark PnP's uncertainty at |yaw_deg|, the largest of its three axes' on every axis.

    Landmark PnP fails as a whole: where its yaw collapses toward a profile,
    its pitch and roll swing with it (measured on renders: per-axis errors of
    one face rise together), so no axis of it is trusted more than its worst.
    """
    return np.full(3, sigma_at(LANDMARK_SIGMA_DEG, yaw_deg).max())


def network_sigma_deg(mae_deg: float, yaw_deg: float) -> np.ndarray:
    """(3,) degrees: NETWORK_SIGMA_DEG at |yaw_deg| for a network whose published AFLW2000 mean error is mae_deg."""
    return sigma_at(NETWORK_SIGMA_DEG, yaw_deg) * mae_deg / WHENET.mae_deg


def rotation_covariance(R: np.ndarray, sigma_deg: np.ndarray) -> np.ndarray:
    """(3, 3) rad² about the camera axes, of a face at orientation R (3, 3) with sigma_deg (3,) about its own axes."""
    return R @ np.diag(np.radians(sigma_deg) ** 2) @ R.T


def fuse_rotations(Ra: np.ndarray, cov_a: np.ndarray, Rb: np.ndarray,
                   cov_b: np.ndarray, iterations: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """The fused rotation (3, 3) and its covariance (3, 3) rad² (camera axes) of two estimates (module docstring).

    The weighted mean is taken on the tangent space at the current answer and
    re-taken there (Gauss-Newton on the rotation group), so the result does
    not depend on which estimate comes first: three steps from Ra agree with
    three from Rb to 0.01 deg for estimates 15 deg apart.
    """
    info_a, info_b = np.linalg.inv(cov_a), np.linalg.inv(cov_b)
    cov = np.linalg.inv(info_a + info_b)
    R = np.asarray(Ra, dtype=np.float64)
    for _ in range(iterations):
        to_a, _ = cv2.Rodrigues(np.asarray(Ra @ R.T, dtype=np.float64))
        to_b, _ = cv2.Rodrigues(np.asarray(Rb @ R.T, dtype=np.float64))
        step, _ = cv2.Rodrigues(cov @ (info_a @ to_a + info_b @ to_b))
        R = step @ R
    return R, cov
