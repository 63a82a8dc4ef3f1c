"""The metric 3D face that landmark PnP fits: 468 points in the REP-155 face frame.

Frame: origin at the sellion (mesh landmark 168, between the eyes on the
nose bridge), x out of the face, y to the person's left, z up. Units: metres.

Where the numbers come from (`headpose_ros/data/face_model.csv`, written by
``python -m headpose_ros.tools.derive_face_model``): the MediaPipe face-mesh
model's own 3D output on the sample photos (12 faces from 7 photos, each also
mirrored), aligned by generalised Procrustes, averaged and made exactly
mirror-symmetric. Scale: the distance between the eye centres (the mean of
each eye's 16 contour landmarks) is set to 63 mm, the mean adult
interpupillary distance (Dodgson 2004, "Variation and extrema of human
interpupillary distance").

Axes: y is the normal of the symmetry plane; x is "facing the camera
squarely" as the 300W-LP / AFLW2000-3D labels define it, which every
head-pose network is trained on; z = x × y. The face oval's normal (the
geometric "forward" of the mesh) is 3.0° off that in pitch, so x is the
oval's normal turned about y by the mean rotation between the model fitted to
the mesh (by similarity, over the rigid landmarks) and WHENet's reading, on
the 23 faces of the sample photos and their mirror images (standard deviation
3.6° per face). Both are relative to each face's viewing direction, so no
camera is assumed. ``rigid`` is stored with the points: it was chosen in the
oval's axes ("at or above the nose base"), and the turn must not change it.

Normals (``surface_normals``, computed at load from the points): for each
landmark, the normal of the plane through its 12 nearest landmarks, pointing
away from a point 8 cm behind the sellion. Landmark PnP uses them to drop the
landmarks a turned face hides (core.pnp).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

DATA_FILE = Path(__file__).resolve().parent.parent / "data" / "face_model.csv"

# Named mesh landmarks (MediaPipe face-mesh indices); "right"/"left" are the person's.
SELLION = 168
NOSE_TIP = 1
SUBNASALE = 2
CHIN = 152
FOREHEAD = 10
RIGHT_EYE_OUTER, RIGHT_EYE_INNER = 33, 133
LEFT_EYE_OUTER, LEFT_EYE_INNER = 263, 362
MOUTH_RIGHT, MOUTH_LEFT = 61, 291
# The contour of the person's right eye; the left eye's is its mirror image.
RIGHT_EYE_CONTOUR = (33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173)
# The face oval (outer contour of the mesh), used to define the x axis.
FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)


@dataclass(frozen=True)
class FaceModel:
    """A metric face in the REP-155 face frame.

    points: (468, 3) float64, metres.
    mirror: (468,) int, the index of each landmark's mirror image (itself on the midline).
    rigid: (468,) bool, landmarks that move little with expression (above the
        nose base, eyelids excluded): the ones PnP fits.
    normals: (468, 3) unit outward surface normals (surface_normals), for
        telling which landmarks a turned face hides.
    """

    points: np.ndarray
    mirror: np.ndarray
    rigid: np.ndarray
    normals: np.ndarray | None = None

    @property
    def rigid_indices(self) -> np.ndarray:
        return np.flatnonzero(self.rigid)


# The surface normals point away from this point of the head (metres, face frame: 8 cm behind the sellion,
# 3 cm below it), roughly the head's centre as the face sees it.
HEAD_CENTRE_M = (-0.08, 0.0, -0.03)
NORMAL_NEIGHBOURS = 12


def surface_normals(points: np.ndarray) -> np.ndarray:
    """(n, 3) unit normals of the surface through the points (n, 3): for each, the normal of the plane through
    its NORMAL_NEIGHBOURS nearest points (itself included), turned away from HEAD_CENTRE_M."""
    distances = np.linalg.norm(points[:, None] - points[None], axis=2)
    normals = np.empty_like(points)
    for i, order in enumerate(np.argsort(distances, axis=1)[:, :NORMAL_NEIGHBOURS]):
        near = points[order]
        n = np.linalg.svd(near - near.mean(0))[2][2]
        normals[i] = n if n @ (points[i] - HEAD_CENTRE_M) >= 0 else -n
    return normals


def rigid_mask(points: np.ndarray, mirror: np.ndarray) -> np.ndarray:
    """Landmarks at or above the nose base, without the eyelids (they move when blinking)."""
    keep = points[:, 2] >= points[SUBNASALE, 2] - 1e-9
    corners = {RIGHT_EYE_OUTER, RIGHT_EYE_INNER, LEFT_EYE_OUTER, LEFT_EYE_INNER}
    for i in RIGHT_EYE_CONTOUR:
        for j in (i, int(mirror[i])):
            if j not in corners:
                keep[j] = False
    return keep


def similarity_align(target: np.ndarray, source: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares s, R, t with target ≈ s * R @ source + t (Umeyama), for (n, 3) point sets."""
    mt, ms = target.mean(0), source.mean(0)
    T, S = target - mt, source - ms
    U, sig, Vt = np.linalg.svd(T.T @ S)
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt))])
    R = U @ d @ Vt
    s = float((sig * np.diag(d)).sum() / (S**2).sum())
    return s, R, mt - s * R @ ms


@lru_cache(maxsize=4)
def load_face_model(path: str | None = None) -> FaceModel:
    """Read the face model CSV (index, x_mm, y_mm, z_mm, mirror_index, rigid)."""
    table = np.loadtxt(path or DATA_FILE, delimiter=",", comments="#", ndmin=2)
    if table.shape != (468, 6) or not np.array_equal(table[:, 0], np.arange(468)):
        raise ValueError(f"{path or DATA_FILE}: expected 468 rows of index, x_mm, y_mm, z_mm, mirror_index, rigid")
    points = table[:, 1:4] / 1000.0
    mirror = table[:, 4].astype(int)
    return FaceModel(points=points, mirror=mirror, rigid=table[:, 5] > 0, normals=surface_normals(points))
