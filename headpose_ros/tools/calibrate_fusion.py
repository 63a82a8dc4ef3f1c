"""Measure the rotation error of each estimator against the |yaw| it sees: the tables fusion weights by.

Run ``python -m headpose_ros.tools.calibrate_fusion [--count N] [--seed S]``
after ``make setup``. It renders its own still sets (evaluation.synth, seed 7
by default: not the seed-0 sets that ``make eval`` scores; the default views
and the hard ones, HARD_VIEWS, which reach 90 deg of yaw), runs landmark PnP
and the network on every face, and prints, per |yaw| knot of
core.fusion.YAW_KNOTS_DEG, the root-mean-square error of each estimator about
the face's own axes (roll about x, pitch about y, yaw about z), in degrees, in
the form core.fusion holds them; then how well the committed tables predict
these errors (the mean squared error divided by the predicted variance, 1 when
calibrated).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from ..core import fusion
from ..core.headpose_net import camera_from_ray
from ..core.models import HOPENET_CONVENTION
from ..evaluation.datasets import read_folder
from ..evaluation.metrics import pick_head
from ..evaluation.runner import make_engines
from ..evaluation.synth import HARD_VIEWS, SynthSettings, synthesize


def face_axis_errors_deg(R_est: np.ndarray, R_true: np.ndarray) -> np.ndarray:
    """(3,) the rotation from truth to estimate as a rotation vector about the face's x, y, z axes, degrees."""
    import cv2

    rvec, _ = cv2.Rodrigues(R_true.T @ R_est)
    return np.degrees(rvec.ravel())


def measure(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per face found by both: network |yaw| (deg), landmark errors (n, 3) and network errors (n, 3), degrees."""
    dataset = read_folder(folder)
    engines = make_engines(["landmarks", "hopenet"], {"smoothing.enabled": False})
    yaws, lm_err, net_err = [], [], []
    for sample in dataset.samples:
        image = sample.read()
        lm = pick_head(engines["landmarks"].process(image, sample.camera, 0.0).heads, sample)
        net = pick_head(engines["hopenet"].process(image, sample.camera, 0.0).heads, sample)
        if lm is None or net is None:
            continue
        centre = (net.box[:2] + net.box[2:]) / 2
        yaws.append(abs(HOPENET_CONVENTION.angles_deg(camera_from_ray(sample.camera, *centre).T @ net.R)[0]))
        lm_err.append(face_axis_errors_deg(lm.R, sample.R))
        net_err.append(face_axis_errors_deg(net.R, sample.R))
    return np.array(yaws), np.array(lm_err), np.array(net_err)


def rms_at_knots(yaws: np.ndarray, errors: np.ndarray, knots=fusion.YAW_KNOTS_DEG) -> np.ndarray:
    """(len(knots), 3) RMS error per face axis, each knot weighting faces by a triangle over its neighbours."""
    out = []
    for k, knot in enumerate(knots):
        lo = knots[k - 1] if k else knot - (knots[1] - knots[0])
        hi = knots[k + 1] if k + 1 < len(knots) else knot + (knots[-1] - knots[-2])
        w = np.clip(np.minimum((yaws - lo) / (knot - lo), (hi - yaws) / (hi - knot)), 0.0, 1.0)
        if k == 0:
            w = np.where(yaws <= knot, 1.0, w)
        out.append(np.sqrt((w[:, None] * errors**2).sum(0) / max(w.sum(), 1e-9)))
    return np.array(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    from .. import assets

    parts = []
    for views in ({}, HARD_VIEWS):
        with tempfile.TemporaryDirectory() as tmp:
            synthesize(Path(tmp), SynthSettings(count=args.count, seed=args.seed, **views), assets.read_photo, log=lambda line: None)
            parts.append(measure(Path(tmp)))
    yaws, lm_err, net_err = (np.concatenate(arrays) for arrays in zip(*parts))
    print(f"{len(yaws)} faces found by both estimators; |yaw| knots {fusion.YAW_KNOTS_DEG}")
    for name, errors in (("LANDMARK_SIGMA_DEG", lm_err), ("NETWORK_SIGMA_DEG", net_err)):
        table = rms_at_knots(yaws, errors)
        print(f"{name} = (  # roll (x), pitch (y), yaw (z) per knot")
        for row in table:
            print(f"    ({row[0]:.1f}, {row[1]:.1f}, {row[2]:.1f}),")
        print(")")
    for name, errors, sigma in (("landmarks", lm_err, fusion.LANDMARK_SIGMA_DEG),
                                ("network", net_err, fusion.NETWORK_SIGMA_DEG)):
        predicted = np.array([fusion.sigma_at(sigma, y) for y in yaws])
        ratio = (errors**2 / predicted**2).mean(0)
        print(f"{name}: mean squared error / predicted variance (x, y, z) = {np.round(ratio, 2)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
