"""468 facial landmarks on an aligned face crop (MediaPipe face mesh)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .detection import apply_affine, invert_affine
from .inference import NetworkStage, run_batched
from .models import LandmarkModel
from .types import FaceDetections

# BlazeFace keypoint indices used to level the crop.
RIGHT_EYE_KEYPOINT, LEFT_EYE_KEYPOINT = 0, 1


@dataclass
class FaceLandmarks:
    """Landmarks of n faces in full-image pixels.

    points: (n, 468, 3) float32: u, v in pixels, and depth in pixels at the
        face's scale (relative to the face, smaller is nearer the camera).
    presence: (n,) float32 in [0, 1], the model's belief that the crop holds a face.
    crop_from_image: (n, 2, 3) affines from image pixels to crop pixels (for diagnostics).
    """

    points: np.ndarray
    presence: np.ndarray
    crop_from_image: np.ndarray


def face_roi(detections: FaceDetections, scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Square, rotated crop regions around detected faces (MediaPipe's detection-to-ROI rule).

    The crop is centred on the box, its side is `scale` times the box's longer
    side, and it is rotated so that the eyes lie level.
    Returns centres (n, 2) px, sides (n,) px and angles (n,) rad (counter-clockwise
    rotation of the face in the image, as seen on screen).
    """
    boxes = detections.boxes
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    sides = np.max(boxes[:, 2:] - boxes[:, :2], axis=1) * scale
    eyes = detections.keypoints[:, LEFT_EYE_KEYPOINT] - detections.keypoints[:, RIGHT_EYE_KEYPOINT]
    # Image v points down, so a face rotated counter-clockwise on screen has the
    # person's left eye higher (smaller v) than the right one.
    angles = np.arctan2(-eyes[:, 1], eyes[:, 0])
    return centres, sides, angles


def crop_affines(centres: np.ndarray, sides: np.ndarray, angles: np.ndarray, size: int) -> np.ndarray:
    """(n, 2, 3) affines from image pixels to `size` x `size` crops that undo each face's rotation."""
    n = len(centres)
    s = size / sides
    c, si = np.cos(angles) * s, np.sin(angles) * s
    # Rotate by +angle about the centre in screen terms (v down), then scale and
    # move the centre to the crop's centre (pixel-centre convention).
    A = np.zeros((n, 2, 3))
    A[:, 0, 0], A[:, 0, 1] = c, -si
    A[:, 1, 0], A[:, 1, 1] = si, c
    half = (size - 1) / 2
    A[:, 0, 2] = half - (A[:, 0, 0] * centres[:, 0] + A[:, 0, 1] * centres[:, 1])
    A[:, 1, 2] = half - (A[:, 1, 0] * centres[:, 0] + A[:, 1, 1] * centres[:, 1])
    return A


class FaceMesh(NetworkStage):
    """Runs the face mesh on each detected face, all faces batched when the model allows."""

    model: LandmarkModel

    def estimate(self, image_rgb: np.ndarray, detections: FaceDetections) -> FaceLandmarks:
        m = self.model
        n = len(detections)
        size = m.input.size[0]
        if n == 0:
            return FaceLandmarks(np.zeros((0, m.num_landmarks, 3), np.float32), np.zeros(0, np.float32), np.zeros((0, 2, 3)))
        centres, sides, angles = face_roi(detections, m.roi_scale)
        A = crop_affines(centres, sides, angles, size)
        crops = np.stack([
            cv2.warpAffine(image_rgb, A[i], (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
            for i in range(n)
        ])
        out = run_batched(self.runtime, m.input.name, m.input.to_tensor(crops), (m.landmarks_output, m.presence_output))
        raw, logit = out[m.landmarks_output], out[m.presence_output]
        crop_pts = raw.reshape(n, m.num_landmarks, 3).astype(np.float64)
        presence = (1.0 / (1.0 + np.exp(-np.clip(logit.reshape(n), -80, 80)))).astype(np.float32)
        # Back to image pixels: invert each crop affine; depth scales like x.
        points = np.empty_like(crop_pts)
        for i in range(n):
            points[i, :, :2] = apply_affine(invert_affine(A[i]), crop_pts[i, :, :2])
            points[i, :, 2] = crop_pts[i, :, 2] * (sides[i] / size)
        return FaceLandmarks(points.astype(np.float32), presence, A)
