"""Derive the metric 3D face model (headpose_ros/data/face_model.csv) from the face mesh's own output.

Run ``python -m headpose_ros.tools.derive_face_model [-o PATH]`` after
``make setup``. The method is documented in ``headpose_ros.core.face_model``;
this module is its executable form, kept so that the committed numbers can be
reproduced and checked (test/test_face_model.py re-derives and compares).

Two steps: the shape (``derive``: Procrustes mean of the meshes, mirror
symmetry, metric scale, axes from the symmetry plane and the face oval), then
its frontal (``frontal_pitch_deg``): the oval's normal is turned about the
face's y axis until a face the 300W-LP network (WHENet) reads as frontal is
frontal for the model too.
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
    from .. import assets
    from ..pipeline import face_stages

    detector, mesh = face_stages()
    pairs = []
    for name in photos:
        image = assets.read_photo(name)
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


def collect_frontal_views(photos=PHOTOS) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per face of the photos and of their mirror images: its mesh (468, 3) and WHENet's rotation (3, 3).

    Both are relative to the face's viewing direction, so no camera is
    assumed: the mesh is a weak-perspective 3D shape in image axes (u right,
    v down, depth away: the optical frame's axes), and the network's angles
    describe the face as its centred crop shows it (core.headpose_net).
    """
    from .. import assets
    from ..core.headpose_net import HeadPoseNetEstimator, rotation_along_ray
    from ..core.inference import OnnxRuntime
    from ..core.models import WHENET
    from ..pipeline import face_stages

    detector, mesh = face_stages()
    network = HeadPoseNetEstimator(WHENET, OnnxRuntime(assets.ModelStore().onnx(WHENET.asset), threads=2))
    views = []
    for name in photos:
        image = assets.read_photo(name)
        for view in (image, np.ascontiguousarray(image[:, ::-1])):
            found = detector.detect(view)
            points = mesh.estimate(view, found).points.astype(np.float64)
            angles = network.estimate(view, found.boxes).ypr_deg
            views += [(p, rotation_along_ray(WHENET, a)) for p, a in zip(points, angles)]
    return views


def frontal_pitch_deg(points_mm: np.ndarray, rigid: np.ndarray, views) -> tuple[float, float]:
    """The turn (degrees, about the face's y axis) from the model's x axis to the network's frontal.

    For each view, the model is aligned to the mesh over its rigid landmarks
    (similarity, as evaluation.synth fits faces), and the rotation from that
    fitted frame to the network's is taken; its mean (chordal, projected onto
    rotations about y: by the mirror images, the turn about the other axes
    averages out) is the answer. Returns it and the standard deviation of the
    per-view pitch turns, degrees.
    """
    from transforms3d import euler

    turns = []
    for mesh_points, R_net in views:
        _, R_fit, _ = fm.similarity_align(mesh_points[rigid], points_mm[rigid])
        turns.append(R_fit.T @ R_net)
    mean = np.mean(turns, axis=0)
    # Rotation about y closest to the chordal mean: its angle from the xz block.
    pitch = float(np.degrees(np.arctan2(mean[0, 2] - mean[2, 0], mean[0, 0] + mean[2, 2])))
    per_view = [np.degrees(euler.mat2euler(T, "rzyx")[1]) for T in turns]
    return pitch, float(np.std(per_view))


def turned_about_y(points: np.ndarray, pitch_deg: float) -> np.ndarray:
    """The same points (n, 3) expressed in axes turned by pitch_deg about y (x toward -z for > 0)."""
    a = np.radians(pitch_deg)
    Ry = np.array([[np.cos(a), 0.0, np.sin(a)], [0.0, 1.0, 0.0], [-np.sin(a), 0.0, np.cos(a)]])
    return points @ Ry


def write_csv(path: Path, points: np.ndarray, mirror: np.ndarray, rigid: np.ndarray, num_faces: int,
              pitch_deg: float, num_views: int) -> None:
    header = (
        "Metric 3D face model for landmark PnP, REP-155 face frame: origin at the sellion\n"
        "(mesh landmark 168), x out of the face (the 300W-LP frontal), y to the person's left, z up; millimetres.\n"
        f"Derived by `python -m headpose_ros.tools.derive_face_model` from the MediaPipe face mesh's\n"
        f"3D output on {num_faces} faces of the sample photos and their mirror images; eye centres 63 mm apart.\n"
        f"Frontal: the face oval's normal turned by {pitch_deg:+.2f} deg about y, WHENet's mean reading on {num_views} views.\n"
        "Columns: index, x_mm, y_mm, z_mm, mirror_index, rigid (1: fitted by PnP)"
    )
    rows = np.column_stack([np.arange(468), points, mirror, rigid.astype(int)])
    tmp = path.with_suffix(".tmp")
    np.savetxt(tmp, rows, delimiter=",", header=header, fmt=["%d", "%.3f", "%.3f", "%.3f", "%d", "%d"])
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=fm.DATA_FILE)
    args = parser.parse_args(argv)
    pairs = collect_meshes()
    points, mirror = derive(pairs)
    rigid = fm.rigid_mask(points, mirror)
    views = collect_frontal_views()
    pitch, spread = frontal_pitch_deg(points, rigid, views)
    write_csv(args.output, turned_about_y(points, pitch), mirror, rigid, len(pairs), pitch, len(views))
    print(f"wrote {args.output} from {len(pairs)} faces; frontal turned {pitch:+.2f} deg "
          f"(sd {spread:.2f} over {len(views)} views)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
