"""Consistency on real photos: exact relations between poses, no ground truth needed.

Through an ideal camera whose principal point is the image centre:

- flip: mirroring the image about its vertical centre line mirrors the pose,
  so yaw and roll change sign and pitch stays (this package's angles, camera
  frame). Error: |yaw + yaw'|, |pitch - pitch'|, |roll + roll'|.
- in-plane rotation: rotating the image by θ about the principal point is
  the camera rolling about its optical axis, so the face's camera-frame
  rotation turns by exactly θ about that axis, wherever the face is and
  however it is turned. Errors: the roll shift, |twist - θ| where twist is
  the part about the optical axis of the change between the two estimates
  (for a face looking along the axis it is the change of the message's
  roll); the tilt, the rest of that change (should be 0: yaw and pitch
  stay); and the geodesic angle between the estimate and the base estimate
  turned by θ (both errors together).
- jitter: the same image with independent Gaussian sensor noise, 30 times;
  the standard deviation of each angle and of the position, per face, with
  smoothing off (the estimator's own noise).

Faces are matched between the original and the changed image by mapping the
original box centres through the change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import cv2
import numpy as np
from transforms3d import quaternions

from ..core.camera import CameraModel
from ..core.engine import HeadPoseEngine
from ..core.rotation import angle_between_deg

# Public-domain and US-government portraits (one face each) and the group photo (six faces).
CONSISTENCY_PHOTOS = ("astronaut", "obama", "obama2", "obama3", "biden", "grace_hopper", "t1")
ROTATIONS_DEG = (-30, -20, -10, 10, 20, 30)
JITTER_FRAMES = 30
JITTER_NOISE = 3.0  # grey levels, standard deviation: a well-lit consumer camera
# The ideal camera's horizontal field of view (degrees) for the photos, which carry no intrinsics.
CONSISTENCY_FOV_DEG = 60.0
# The field of view assumed when comparing backends on the photos: a portrait lens (about 100 mm on full frame).
AGREEMENT_FOV_DEG = 20.0
# A changed image's face must lie this close to where the original face maps to (box widths).
MATCH_RADIUS = 0.3


@dataclass
class Consistency:
    """Per-face errors of one backend over the photos (degrees, metres)."""

    flip: list[np.ndarray] = field(default_factory=list)  # (3,) |Δyaw|, |Δpitch|, |Δroll| per face
    roll_shift: dict[int, list[float]] = field(default_factory=dict)  # θ -> |twist - θ| per face
    tilt: list[float] = field(default_factory=list)  # the change's part off the optical axis, per face and θ
    rotation_geodesic: dict[int, list[float]] = field(default_factory=dict)  # θ -> geodesic per face
    jitter_deg: list[np.ndarray] = field(default_factory=list)  # (3,) sd of yaw, pitch, roll per face
    jitter_m: list[float] = field(default_factory=list)  # sd of the position (norm of the per-axis sds)
    faces: int = 0
    missed: int = 0  # faces whose changed image gave no matching estimate
    # Every face of the photos and of their mirror images: (photo, mirrored, box centre px, box width px,
    # yaw/pitch/roll deg), for comparing backends (frontal_agreement).
    readings: list[tuple[str, bool, np.ndarray, float, np.ndarray]] = field(default_factory=list)

    def summary(self) -> dict:
        """Means (and maxima) over faces, JSON-ready."""
        def mean(values):
            return float(np.mean(values)) if len(values) else None

        flip = np.array(self.flip).reshape(-1, 3)
        shift_all = [e for errors in self.roll_shift.values() for e in errors]
        geo_all = [e for errors in self.rotation_geodesic.values() for e in errors]
        jitter = np.array(self.jitter_deg).reshape(-1, 3)
        return {
            "faces": self.faces, "missed": self.missed,
            "flip_yaw": mean(flip[:, 0]), "flip_pitch": mean(flip[:, 1]), "flip_roll": mean(flip[:, 2]),
            "flip_max": float(flip.max()) if flip.size else None,
            "roll_shift": mean(shift_all), "roll_shift_median": float(np.median(shift_all)) if shift_all else None,
            "roll_shift_max": float(max(shift_all)) if shift_all else None,
            "roll_shift_by_angle": {str(k): mean(v) for k, v in sorted(self.roll_shift.items())},
            "tilt": mean(self.tilt), "rotation_geodesic": mean(geo_all),
            "jitter_yaw": mean(jitter[:, 0]), "jitter_pitch": mean(jitter[:, 1]), "jitter_roll": mean(jitter[:, 2]),
            "jitter_position_mm": None if not self.jitter_m else 1000 * float(np.mean(self.jitter_m)),
        }


def frontal_agreement(a: Consistency, b: Consistency) -> dict:
    """How two backends agree on the faces of the photos and their mirror images: pitch of a minus b.

    Faces are paired by photo, mirroring and box centre (within MATCH_RADIUS box
    widths). Returns the number of pairs and the mean signed and mean absolute
    pitch difference, degrees (None without pairs): one frontal for both
    backends means a mean signed difference near 0. Landmark PnP's reading
    depends on the camera assumed (the photos' own is unknown): a wide one
    puts these faces too near, and PnP then reads them pitched up by a few
    degrees; portraits are taken with long lenses (AGREEMENT_FOV_DEG).
    """
    diffs = []
    for name, mirror, centre, width, angles in a.readings:
        for other_name, other_mirror, other_centre, _, other_angles in b.readings:
            if (name, mirror) == (other_name, other_mirror) and \
                    np.hypot(*(centre - other_centre)) <= MATCH_RADIUS * width:
                diffs.append(angles[1] - other_angles[1])
                break
    return {"faces": len(diffs), "pitch_difference": float(np.mean(diffs)) if diffs else None,
            "pitch_difference_abs": float(np.mean(np.abs(diffs))) if diffs else None}


def centred_camera(image: np.ndarray, fov_deg: float = CONSISTENCY_FOV_DEG) -> CameraModel:
    """An ideal camera for a photo: principal point at the image centre, so mirroring and rotating are exact."""
    return CameraModel.from_field_of_view(image.shape[1], image.shape[0], fov_deg, "camera_optical_frame")


def estimate(engine: HeadPoseEngine, image: np.ndarray, camera: CameraModel):
    engine.reset()
    return engine.process(image, camera, 0.0).heads


def match(heads, centre: np.ndarray, width: float):
    """The head whose box centre lies within MATCH_RADIUS box widths of `centre` (pixels), or None."""
    best, best_d = None, MATCH_RADIUS * width
    for h in heads:
        d = float(np.hypot(*((h.box[:2] + h.box[2:]) / 2 - centre)))
        if d <= best_d:
            best, best_d = h, d
    return best


def twist_and_tilt_deg(change: np.ndarray) -> tuple[float, float]:
    """A camera-frame rotation (3, 3) split into a turn about the optical axis and the rest.

    Returns (twist, tilt) in degrees: twist counter-clockwise on screen (the
    sense of an image rotated by cv2.getRotationMatrix2D with a positive
    angle), tilt the angle of the remaining rotation (swing-twist split).
    """
    w, x, y, z = quaternions.mat2quat(change)
    twist_about_z = 2.0 * np.arctan2(z, w)  # radians, right-handed about +z (clockwise on screen)
    c, s = np.cos(twist_about_z / 2), np.sin(twist_about_z / 2)
    swing = quaternions.qmult([w, x, y, z], [c, 0.0, 0.0, -s])
    tilt = 2.0 * np.degrees(np.arccos(np.clip(abs(swing[0]), 0.0, 1.0)))
    return float((-np.degrees(twist_about_z) + 180.0) % 360.0 - 180.0), float(tilt)


def rotation_about_axis(theta_deg: float) -> np.ndarray:
    """(3, 3) camera-frame rotation equal to turning the image counter-clockwise by θ on screen."""
    c, s = np.cos(np.radians(theta_deg)), np.sin(np.radians(theta_deg))
    # Counter-clockwise on screen (v down) is a negative turn about the optical axis z.
    return np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])


def measure(engine: HeadPoseEngine, photos: dict[str, np.ndarray], rotations=ROTATIONS_DEG,
            jitter_frames: int = JITTER_FRAMES, seed: int = 0,
            progress: Callable[[str], None] | None = None, fov_deg: float = CONSISTENCY_FOV_DEG) -> Consistency:
    """Flip, rotation and jitter errors of one engine over the photos, through a centred camera of fov_deg."""
    rng = np.random.default_rng(seed)
    out = Consistency()
    for name, image in photos.items():
        camera = centred_camera(image, fov_deg)
        base = estimate(engine, image, camera)
        out.faces += len(base)
        H, W = image.shape[:2]
        cx, cy = camera.cx, camera.cy
        mirrored = np.ascontiguousarray(image[:, ::-1])
        flipped = estimate(engine, mirrored, camera)
        for mirror, heads in ((False, base), (True, flipped)):
            out.readings += [(name, mirror, (h.box[:2] + h.box[2:]) / 2, float(h.box[2] - h.box[0]),
                              h.yaw_pitch_roll_deg) for h in heads]
        for head in base:
            centre = (head.box[:2] + head.box[2:]) / 2
            width = float(head.box[2] - head.box[0])
            a = head.yaw_pitch_roll_deg
            other = match(flipped, np.array([W - 1 - centre[0], centre[1]]), width)
            if other is None:
                out.missed += 1
            else:
                b = other.yaw_pitch_roll_deg
                out.flip.append(np.abs([a[0] + b[0], a[1] - b[1], a[2] + b[2]]))
        for theta in rotations:
            M = cv2.getRotationMatrix2D((cx, cy), theta, 1.0)
            rotated = estimate(engine, cv2.warpAffine(image, M, (W, H), flags=cv2.INTER_LINEAR), camera)
            for head in base:
                centre = (head.box[:2] + head.box[2:]) / 2
                moved = M @ np.array([centre[0], centre[1], 1.0])
                other = match(rotated, moved, float(head.box[2] - head.box[0]))
                if other is None:
                    out.missed += 1
                    continue
                twist, tilt = twist_and_tilt_deg(other.R @ head.R.T)
                out.roll_shift.setdefault(theta, []).append(abs((twist - theta + 180.0) % 360.0 - 180.0))
                out.tilt.append(tilt)
                expected = rotation_about_axis(theta) @ head.R
                out.rotation_geodesic.setdefault(theta, []).append(angle_between_deg(other.R, expected))
        if jitter_frames > 1:
            runs: dict[int, list] = {k: [] for k in range(len(base))}
            for _ in range(jitter_frames):
                noisy = np.clip(image + rng.normal(0, JITTER_NOISE, image.shape), 0, 255).astype(np.uint8)
                heads = estimate(engine, noisy, camera)
                for k, head in enumerate(base):
                    other = match(heads, (head.box[:2] + head.box[2:]) / 2, float(head.box[2] - head.box[0]))
                    if other is not None:
                        runs[k].append((other.yaw_pitch_roll_deg, other.t))
            for k, seen in runs.items():
                if len(seen) >= 2:
                    angles = np.array([s[0] for s in seen])
                    positions = np.array([s[1] for s in seen])
                    out.jitter_deg.append(angles.std(axis=0))
                    out.jitter_m.append(float(np.linalg.norm(positions.std(axis=0))))
        if progress:
            progress(name)
    return out
