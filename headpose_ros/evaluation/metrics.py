"""Scoring estimates against ground truth, the way head-pose papers report it.

Per sample and backend (``score``): the face the engine found for the
labelled one, its rotation compared with the truth (both relative to the
camera, or both relative to the viewing ray; see datasets), as yaw, pitch
and roll errors in the published (300W-LP) convention and as one geodesic
angle, and its position error where the truth has one.

Per backend (``summarise``): mean absolute error of each angle and their
mean, the mean signed error of each angle (bias: estimate - truth, in the
same convention, where yaw > 0 turns the nose to the image's left, pitch > 0
looks up, roll > 0 is clockwise on screen), geodesic median and mean,
translation error, depth error relative to the true depth, detection rate,
and all of that split by |yaw| of the truth as the camera sees it (0-30,
30-60, 60-90 and more degrees). Errors average over the faces with an
estimate.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from ..core.detection import box_iou
from ..core.headpose_net import camera_from_ray
from ..core.models import HOPENET_CONVENTION
from ..core.rotation import angle_between_deg
from .datasets import Sample

YAW_BUCKETS = ((0.0, 30.0), (30.0, 60.0), (60.0, 90.0), (90.0, math.inf))
# A detection must overlap the labelled box at least this much to be that face.
MIN_MATCH_IOU = 0.2

# What each protocol is, in a line for the reports (evaluation.runner's docstring).
PROTOCOLS = {
    "detector": "The package's own detector finds the faces (whole image and tiles); a labelled face is the "
                "found face over its box; errors over the faces it found",
    "box": "No detector: each labelled box is given to the engine as its detector's box (score 1, crop "
           "upright), as the published tables give theirs; errors over the faces with an estimate",
}


@dataclass
class Outcome:
    """One backend on one sample.

    detected: the engine gave a pose for the labelled face (found by its
        detector, or estimated on the given box: see PROTOCOLS).
    view_yaw_deg: |yaw| of the truth relative to the viewing ray (what the
        camera sees), degrees: the bucket key.
    truth_deg, estimate_deg: (yaw, pitch, roll) in the 300W-LP convention of the
        compared rotations (estimate NaN when no face was found).
    geodesic_deg: angle of the rotation between estimate and truth.
    translation_m: |t_estimate - t_truth|, NaN without translation truth.
    depth_rel: |z_estimate - z_truth| / z_truth, NaN without translation truth.
    """

    sample: str
    detected: bool
    view_yaw_deg: float
    truth_deg: tuple[float, float, float]
    estimate_deg: tuple[float, float, float]
    geodesic_deg: float
    translation_m: float = math.nan
    depth_rel: float = math.nan

    @property
    def signed_errors_deg(self) -> np.ndarray:
        """(3,) yaw, pitch, roll of the estimate minus the truth's, wrapped into [-180, 180)."""
        d = np.asarray(self.estimate_deg) - np.asarray(self.truth_deg)
        return (d + 180.0) % 360.0 - 180.0

    @property
    def angle_errors_deg(self) -> np.ndarray:
        """(3,) |yaw|, |pitch|, |roll| errors, in [0, 180]."""
        return np.abs(self.signed_errors_deg)


def pick_head(heads, sample: Sample):
    """The estimated head that is the labelled face, or None.

    By overlap with the labelled box when there is one; else nearest to the
    projected true position; else the largest face (single-face datasets).
    """
    if not heads:
        return None
    boxes = np.array([h.box for h in heads], dtype=np.float64)
    if sample.box is not None:
        iou = box_iou(np.asarray(sample.box, dtype=np.float64)[None], boxes)[0]
        best = int(np.argmax(iou))
        return heads[best] if iou[best] >= MIN_MATCH_IOU else None
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    pixel = truth_pixel(sample)
    if pixel is not None:
        return heads[int(np.argmin(np.hypot(centres[:, 0] - pixel[0], centres[:, 1] - pixel[1])))]
    return heads[int(np.argmax(np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)))]


def truth_pixel(sample: Sample) -> tuple[float, float] | None:
    """Where the true sellion projects (pinhole through K), or None without a position in front of the camera."""
    if sample.t is None or sample.t[2] <= 0:
        return None
    K = sample.camera.K
    return K[0, 0] * sample.t[0] / sample.t[2] + K[0, 2], K[1, 1] * sample.t[1] / sample.t[2] + K[1, 2]


def view_ray_rotation(sample: Sample) -> np.ndarray:
    """(3, 3) rotation taking the optical axis onto the viewing ray through the face.

    Through the true position when known, else the centre of the labelled box, else the image centre.
    """
    pixel = truth_pixel(sample)
    if pixel is None and sample.box is not None:
        pixel = (sample.box[0] + sample.box[2]) / 2, (sample.box[1] + sample.box[3]) / 2
    u, v = pixel if pixel is not None else (sample.camera.cx, sample.camera.cy)
    return camera_from_ray(sample.camera, u, v)


def score(sample: Sample, heads) -> Outcome:
    """Compare the engine's heads for this sample's image with its truth."""
    head = pick_head(heads, sample)
    if sample.reference == "ray":
        truth_view = sample.R
    else:
        truth_view = view_ray_rotation(sample).T @ sample.R
    view_yaw = float(abs(HOPENET_CONVENTION.angles_deg(truth_view)[0]))
    truth_deg = tuple(float(a) for a in HOPENET_CONVENTION.angles_deg(sample.R))
    if head is None:
        return Outcome(sample.name, False, view_yaw, truth_deg, (math.nan,) * 3, math.nan)
    if sample.reference == "ray":
        # The estimate as its own crop would show it: relative to the ray through its box centre.
        u, v = (head.box[0] + head.box[2]) / 2, (head.box[1] + head.box[3]) / 2
        R_est = camera_from_ray(sample.camera, u, v).T @ head.R
    else:
        R_est = head.R
    out = Outcome(sample.name, True, view_yaw, truth_deg,
                  tuple(float(a) for a in HOPENET_CONVENTION.angles_deg(R_est)),
                  angle_between_deg(R_est, sample.R))
    if sample.t is not None:
        out.translation_m = float(np.linalg.norm(head.t - sample.t))
        out.depth_rel = float(abs(head.t[2] - sample.t[2]) / sample.t[2])
    return out


def summarise(outcomes: list[Outcome]) -> dict:
    """The figures of one backend on one dataset (see the module docstring); JSON-ready."""
    summary = _figures(outcomes)
    summary["by_yaw"] = {}
    for lo, hi in YAW_BUCKETS:
        inside = [o for o in outcomes if lo <= o.view_yaw_deg < hi]
        if inside:
            summary["by_yaw"][bucket_name(lo, hi)] = _figures(inside)
    return summary


def bucket_name(lo: float, hi: float) -> str:
    return f"{lo:.0f}+" if math.isinf(hi) else f"{lo:.0f}-{hi:.0f}"


def _figures(outcomes: list[Outcome]) -> dict:
    found = [o for o in outcomes if o.detected]
    out = {"samples": len(outcomes), "detected": len(found),
           "detection_rate": len(found) / len(outcomes) if outcomes else math.nan}
    if found:
        errors = np.array([o.angle_errors_deg for o in found])
        mae = errors.mean(axis=0)
        bias = np.array([o.signed_errors_deg for o in found]).mean(axis=0)
        geodesic = np.array([o.geodesic_deg for o in found])
        out.update(mae_yaw=float(mae[0]), mae_pitch=float(mae[1]), mae_roll=float(mae[2]), mae_mean=float(mae.mean()),
                   bias_yaw=float(bias[0]), bias_pitch=float(bias[1]), bias_roll=float(bias[2]),
                   geodesic_median=float(np.median(geodesic)), geodesic_mean=float(geodesic.mean()))
        translation = np.array([o.translation_m for o in found if not math.isnan(o.translation_m)])
        if translation.size:
            depth = np.array([o.depth_rel for o in found if not math.isnan(o.depth_rel)])
            out.update(translation_median_m=float(np.median(translation)),
                       translation_mean_m=float(translation.mean()),
                       depth_rel_median=float(np.median(depth)), depth_rel_mean=float(depth.mean()))
    return out


def outcome_record(o: Outcome) -> dict:
    """One Outcome as JSON-ready values (NaN as null)."""
    def clean(v):
        if isinstance(v, float):
            return None if math.isnan(v) else round(v, 4)
        if isinstance(v, (tuple, list)):
            return [clean(x) for x in v]
        return v

    return {k: clean(v) for k, v in asdict(o).items()}
