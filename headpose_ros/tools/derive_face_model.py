"""Derive the metric 3D face model (headpose_ros/data/face_model.csv) from the face mesh's own output.

Run ``python -m headpose_ros.tools.derive_face_model [-o PATH]`` after
``make setup``. The method is documented in ``headpose_ros.core.face_model``;
this module is its executable form, kept so that the committed numbers can be
reproduced and checked (test/test_face_model.py re-derives and compares).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ..core import face_model as fm

# Photos with clearly visible faces (see headpose_ros.assets for their sources).
PHOTOS = ("astronaut", "obama", "obama2", "obama3", "biden", "grace_hopper", "t1")
INTERPUPILLARY_MM = 63.0


def collect_meshes(photos=PHOTOS) -> list[tuple[np.ndarray, np.ndarray]]:
    """(original, mirrored) landmark sets (468, 3) in image pixels for every face found.

    The mirrored set is the mesh of the horizontally flipped photo, flipped
    back: the same geometry as the original with left and right labels swapped.
    """
    import cv2

    from .. import assets
    from ..pipeline import face_stages

    detector, mesh = face_stages()
    pairs = []
    for name in photos:
        image = cv2.cvtColor(cv2.imread(str(assets.photo_path(name))), cv2.COLOR_BGR2RGB)
        flipped = np.ascontiguousarray(image[:, ::-1])
        w = image.shape[1]
        orig = mesh.estimate(image, detector.detect(image)).points.astype(np.float64)
        back = mesh.estimate(flipped, detector.detect(flipped)).points.astype(np.float64)
        back[:, :, 0] = w - 1 - back[:, :, 0]
        for o in orig:
            # The flipped photo's face that lies where this one does.
            k = int(np.argmin([np.linalg.norm(b.mean(0) - o.mean(0)) for b in back]))
            pairs.append((o, back[k]))
    return pairs


def mirror_permutation(pairs) -> np.ndarray:
    """The involution i -> mirror(i) that best explains the mirrored meshes.

    Cost of pairing a with b: the mean distance, over faces, between the
    mirrored mesh's point a and the original's point b (and vice versa),
    relative to the eye-corner distance. Pairs are taken greedily by cost.
    """
    cost = np.zeros((468, 468))
    for orig, back in pairs:
        scale = np.linalg.norm(orig[fm.RIGHT_EYE_OUTER, :2] - orig[fm.LEFT_EYE_OUTER, :2])
        cost += np.linalg.norm(back[:, None, :] - orig[None, :, :], axis=2) / scale
    cost = cost + cost.T
    mirror = -np.ones(468, dtype=int)
    for a, b in zip(*np.unravel_index(np.argsort(cost, axis=None), cost.shape)):
        if mirror[a] < 0 and mirror[b] < 0:
            mirror[a], mirror[b] = b, a
            if np.all(mirror >= 0):
                break
    return mirror


def derive(pairs) -> tuple[np.ndarray, np.ndarray]:
    """Face model points (468, 3) in mm in the REP-155 face frame, and the mirror permutation."""
    mirror = mirror_permutation(pairs)
    # Mirrored meshes, relabelled anatomically, are extra samples of real faces.
    shapes = [o for o, _ in pairs] + [b[mirror] for _, b in pairs]
    mean = shapes[0] - shapes[0].mean(0)
    for _ in range(20):  # generalised Procrustes
        aligned = []
        for X in shapes:
            s, R, t = fm.similarity_align(mean, X)
            aligned.append(s * X @ R.T + t)
        mean = np.mean(aligned, axis=0)
        mean -= mean.mean(0)
        mean /= np.sqrt((mean**2).sum() / len(mean))
    # Exact symmetry: average with its own reflection, relabelled.
    reflected = (mean * np.array([-1.0, 1.0, 1.0]))[mirror]
    s, R, t = fm.similarity_align(mean, reflected)
    mean = (mean + s * reflected @ R.T + t) / 2
    right_eye = mean[list(fm.RIGHT_EYE_CONTOUR)].mean(0)
    left_eye = mean[[mirror[i] for i in fm.RIGHT_EYE_CONTOUR]].mean(0)
    y = left_eye - right_eye
    y /= np.linalg.norm(y)
    oval = mean[list(fm.FACE_OVAL)]
    x = np.linalg.svd(oval - oval.mean(0))[2][2]
    # Mesh coordinates are image-like (z away from the camera); the face looks toward the camera.
    if x[2] > 0:
        x = -x
    x -= (x @ y) * y
    x /= np.linalg.norm(x)
    axes = np.stack([x, y, np.cross(x, y)], axis=1)
    scale = INTERPUPILLARY_MM / np.linalg.norm(left_eye - right_eye)
    points = (mean - mean[fm.SELLION]) @ axes * scale
    # Remove the last rounding asymmetry: y is odd, x and z even under the mirror.
    points = (points + points[mirror] * np.array([1.0, -1.0, 1.0])) / 2
    return points, mirror


def write_csv(path: Path, points: np.ndarray, mirror: np.ndarray, num_faces: int) -> None:
    header = (
        "Metric 3D face model for landmark PnP, REP-155 face frame: origin at the sellion\n"
        "(mesh landmark 168), x out of the face, y to the person's left, z up; millimetres.\n"
        f"Derived by `python -m headpose_ros.tools.derive_face_model` from the MediaPipe face mesh's\n"
        f"3D output on {num_faces} faces of the sample photos and their mirror images; eye centres 63 mm apart.\n"
        "Columns: index, x_mm, y_mm, z_mm, mirror_index"
    )
    rows = np.column_stack([np.arange(468), points, mirror])
    tmp = path.with_suffix(".tmp")
    np.savetxt(tmp, rows, delimiter=",", header=header, fmt=["%d", "%.3f", "%.3f", "%.3f", "%d"])
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=fm.DATA_FILE)
    args = parser.parse_args(argv)
    pairs = collect_meshes()
    points, mirror = derive(pairs)
    write_csv(args.output, points, mirror, len(pairs))
    print(f"wrote {args.output} from {len(pairs)} faces")
    return 0


if __name__ == "__main__":
    sys.exit(main())
