"""Hopenet-family networks: face crops in, yaw/pitch/roll out, turned into camera-frame rotations.

The network is described by a HeadPoseNetModel (core.models): crop rule,
input normalisation, the bins of each angle and the angle convention. This
module only reads that description.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .camera import CameraModel
from .inference import NetworkStage, run_batched
from .models import HeadPoseNetModel, shrink
from .rotation import line_of_sight


# A face whose eye line is tilted more than this (degrees) is turned upright before the network sees it.
LEVEL_MIN_ROLL_DEG = 15.0


@dataclass
class NetworkAngles:
    """The network's answer for n faces, in its own convention.

    ypr_deg: (n, 3) yaw, pitch, roll, degrees (softmax expectations), of the face in its crop.
    crop_boxes: (n, 4) the crops fed to the network, xyxy pixels (before levelling).
    level_deg: (n,) how far each crop was turned clockwise to level the face's eyes, degrees (0: not turned).
    """

    ypr_deg: np.ndarray
    crop_boxes: np.ndarray
    level_deg: np.ndarray


class HeadPoseNetEstimator(NetworkStage):
    """Runs a Hopenet-family network on every face of a frame in one batched call."""

    model: HeadPoseNetModel

    def crops(self, image_rgb: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The network's input crops (n, h, w, 3) uint8 and their boxes (n, 4) in image pixels.

        Parts of a crop outside the image are black, so the face stays where
        the crop rule puts it (clipping would shift it off-centre).
        """
        w_in, h_in = self.model.input.size
        crop_boxes = self.model.crop.apply(boxes)
        H, W = image_rgb.shape[:2]
        out = np.zeros((len(boxes), h_in, w_in, 3), dtype=np.uint8)
        for i, (x0, y0, x1, y1) in enumerate(np.round(crop_boxes).astype(int)):
            x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)
            region = np.zeros((y1 - y0, x1 - x0, 3), dtype=np.uint8)
            sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
            if sx1 > sx0 and sy1 > sy0:
                region[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = image_rgb[sy0:sy1, sx0:sx1]
            out[i] = shrink(region, w_in, h_in)
        return out, crop_boxes

    def estimate(self, image_rgb: np.ndarray, boxes: np.ndarray, roll_deg: np.ndarray | None = None,
                 mirror: bool = False) -> NetworkAngles:
        """Angles of the faces in `boxes` (n, 4), xyxy pixels.

        roll_deg: (n,) each face's eye line, counter-clockwise on screen (the
        detector's or the landmarks' eyes), or None. A face tilted further than
        LEVEL_MIN_ROLL_DEG is turned upright before the network sees it (these
        networks were trained on faces within a few tens of degrees of upright,
        and WHENet stops following a 30 deg in-plane turn); its angles are then
        those of the levelled crop (NetworkAngles.level_deg says by how much).

        mirror: also read each crop's mirror image, in the same batch, and
        average the two readings (mirror_average): twice the network's time.
        """
        m = self.model
        n = len(boxes)
        if n == 0:
            return NetworkAngles(np.zeros((0, 3)), np.zeros((0, 4)), np.zeros(0))
        level = np.zeros(n) if roll_deg is None else np.where(np.abs(roll_deg) > LEVEL_MIN_ROLL_DEG, roll_deg, 0.0)
        crops, crop_boxes = self._crops_levelled(image_rgb, boxes, level)
        if mirror:
            crops = np.concatenate([crops, crops[:, :, ::-1]])
        out = run_batched(self.runtime, m.input.name, m.input.to_tensor(crops), m.outputs)
        ypr = np.stack([bins.decode(out[bins.output]) for bins in (m.yaw, m.pitch, m.roll)], axis=1)
        if mirror:
            ypr = mirror_average(ypr[:n], ypr[n:])
        return NetworkAngles(ypr, crop_boxes, level)

    def _crops_levelled(self, image_rgb: np.ndarray, boxes: np.ndarray, level_deg: np.ndarray):
        """crops(), with each face whose level_deg is not 0 turned clockwise by it about its crop's centre first."""
        w_in, h_in = self.model.input.size
        crop_boxes = self.model.crop.apply(boxes)
        crops = np.zeros((len(boxes), h_in, w_in, 3), dtype=np.uint8)
        upright = level_deg == 0
        if upright.any():
            crops[upright] = self.crops(image_rgb, boxes[upright])[0]
        for i in np.flatnonzero(~upright):
            x0, y0, x1, y1 = crop_boxes[i]
            centre = ((x0 + x1) / 2, (y0 + y1) / 2)
            # The crop's region after the turn, sampled straight into the network's input size.
            M = cv2.getRotationMatrix2D(centre, -float(level_deg[i]), 1.0)  # clockwise on screen by level_deg
            scale = np.diag([w_in / max(x1 - x0, 1e-6), h_in / max(y1 - y0, 1e-6)])
            A = scale @ np.hstack([M[:, :2], (M[:, 2] - np.array([x0, y0]))[:, None]])
            # Only the part of the image the turned crop can reach, shrunk first (area filter) as crops()
            # shrinks, so that the turn does not alias.
            half = float(np.hypot(x1 - x0, y1 - y0)) / 2
            H, W = image_rgb.shape[:2]
            rx0, ry0 = max(int(centre[0] - half), 0), max(int(centre[1] - half), 0)
            rx1, ry1 = min(int(np.ceil(centre[0] + half)), W), min(int(np.ceil(centre[1] + half)), H)
            if rx1 <= rx0 or ry1 <= ry0:
                level_deg[i] = 0.0  # nothing of it in the image: as crops() would make it, all black
                continue
            source = image_rgb[ry0:ry1, rx0:rx1]
            A = A @ np.array([[1.0, 0.0, rx0], [0.0, 1.0, ry0], [0.0, 0.0, 1.0]])
            k = int(min((x1 - x0) / w_in, (y1 - y0) / h_in))
            if k >= 2:
                source = cv2.resize(source, (max(source.shape[1] // k, 1), max(source.shape[0] // k, 1)),
                                    interpolation=cv2.INTER_AREA)
                A = A @ np.diag([k, k, 1.0])
            crops[i] = cv2.warpAffine(source, A, (w_in, h_in), flags=cv2.INTER_LINEAR, borderValue=0)
        return crops, crop_boxes


def mirror_average(ypr_deg: np.ndarray, mirrored_ypr_deg: np.ndarray) -> np.ndarray:
    """(n, 3) the mean of n faces' readings (yaw, pitch, roll degrees) and their mirror images' readings.

    A face seen in a mirror turns and tilts the other way: its yaw and roll
    change sign, its pitch stays (in any convention whose yaw is about the
    image's vertical axis and roll about the viewing axis, as 300W-LP's).
    What a network reads wrongly because a face turns one way rather than the
    other, and part of its noise, cancels in the mean. Yaw is averaged on the
    circle (a full-range network's 179 and -179 mean 180, not 0).
    """
    a = np.asarray(ypr_deg, dtype=np.float64)
    b = np.asarray(mirrored_ypr_deg, dtype=np.float64) * np.array([-1.0, 1.0, -1.0])
    out = (a + b) / 2
    half_gap = ((b[:, 0] - a[:, 0] + 180.0) % 360.0 - 180.0) / 2
    out[:, 0] = (a[:, 0] + half_gap + 180.0) % 360.0 - 180.0
    return out


def rotation_along_ray(model: HeadPoseNetModel, ypr_deg: np.ndarray) -> np.ndarray:
    """(3, 3) face orientation that the network's angles describe, relative to its viewing ray.

    That is the camera-frame orientation the face would have if the crop's
    centre were on the optical axis.
    """
    return model.convention.rotation(ypr_deg)


def camera_from_ray(camera: CameraModel, u: float, v: float) -> np.ndarray:
    """(3, 3) rotation taking the optical axis onto the viewing ray through pixel (u, v).

    The smallest such rotation: it models the crop as a camera turned toward
    the face without rolling about its own axis.
    """
    return line_of_sight(camera.ray_direction(u, v))


@dataclass(frozen=True)
class BoxDistancePrior:
    """Where a face is, from its detector box alone.

    face_width_m: the physical width a detector box spans at the sellion's depth.
    sellion_offset: the sellion's vertical offset from the box centre, as a
        fraction of the box height (negative is up).
    depth_rel_sigma: relative standard deviation of the resulting depth.
    lateral_sigma_m: standard deviation across the ray.

    Defaults are measured for BlazeFace against landmark PnP on the sample
    photos (23 faces): box width 0.155 m (sd 8%), sellion 0.19 box heights
    above the box centre.
    """

    face_width_m: float = 0.155
    sellion_offset: float = -0.19
    depth_rel_sigma: float = 0.10
    lateral_sigma_m: float = 0.01

    def sellion_pixel(self, box: np.ndarray) -> tuple[float, float]:
        x0, y0, x1, y1 = box
        return (x0 + x1) / 2, (y0 + y1) / 2 + self.sellion_offset * (y1 - y0)

    def depth(self, box: np.ndarray, camera: CameraModel) -> float:
        """The depth (z, metres) at which a face of this box width spans face_width_m."""
        return 0.5 * (camera.fx + camera.fy) * self.face_width_m / max(float(box[2] - box[0]), 1e-6)

    def position(self, box: np.ndarray, camera: CameraModel) -> tuple[np.ndarray, np.ndarray]:
        """Sellion position (3,) metres and its covariance (3, 3), in the camera optical frame."""
        u, v = self.sellion_pixel(box)
        ray = camera.ray_direction(u, v)
        depth = self.depth(box, camera)
        t = ray * depth / ray[2]
        distance = float(np.linalg.norm(t))
        to_camera = line_of_sight(ray)
        cov = to_camera @ np.diag([self.lateral_sigma_m**2, self.lateral_sigma_m**2,
                                   (self.depth_rel_sigma * distance) ** 2]) @ to_camera.T
        return t, cov
