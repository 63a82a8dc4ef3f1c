"""468 facial landmarks on an aligned face crop (MediaPipe face mesh)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .detection import apply_affine, invert_affine
from .face_model import NOSE_TIP, RIGHT_EYE_CONTOUR
from .inference import NetworkStage, run_batched
from .models import LandmarkModel
from .types import FaceDetections

# BlazeFace keypoint indices used to level the crop.
RIGHT_EYE_KEYPOINT, LEFT_EYE_KEYPOINT = 0, 1
# Face-mesh landmarks (the person's right and left).
UPPER_LIP, LOWER_LIP = 13, 14
RIGHT_TRAGION, LEFT_TRAGION = 234, 454
LEFT_EYE_CONTOUR = (263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398)
_EYE_CONTOURS = np.array([RIGHT_EYE_CONTOUR, LEFT_EYE_CONTOUR])
_LIPS = np.array([UPPER_LIP, LOWER_LIP])
_TRAGIONS = np.array([RIGHT_TRAGION, LEFT_TRAGION])
# A BlazeFace box's side per unit of the landmarks' height across the eye line, and how far its
# centre lies below the eyes-and-mouth centroid, in sides (box_from_landmarks).
BOX_PER_LANDMARK_HEIGHT = 0.98
BOX_CENTRE_BELOW_EYES_MOUTH = 0.023


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


@dataclass
class FaceRois:
    """Square, rotated crop regions of n faces, in full-image pixels: where the face mesh looks.

    centres: (n, 2) px; sides: (n,) px; angles: (n,) rad, the counter-clockwise
    rotation of each face in the image as seen on screen (its eye line).
    """

    centres: np.ndarray
    sides: np.ndarray
    angles: np.ndarray

    def __len__(self) -> int:
        return len(self.sides)

    @classmethod
    def from_detections(cls, detections: FaceDetections, scale: float) -> "FaceRois":
        """MediaPipe's detection-to-ROI rule: centred on the box, `scale` times its longer side, eyes level."""
        boxes = detections.boxes
        eyes = detections.keypoints[:, LEFT_EYE_KEYPOINT] - detections.keypoints[:, RIGHT_EYE_KEYPOINT]
        return cls((boxes[:, :2] + boxes[:, 2:]) / 2, np.max(boxes[:, 2:] - boxes[:, :2], axis=1) * scale,
                   eye_line_angle(eyes))

    @classmethod
    def from_landmarks(cls, points: np.ndarray, scale: float) -> "FaceRois":
        """MediaPipe's landmarks-to-ROI rule, for following a face into the next frame.

        points: (n, 468, 2+) image pixels. Centred on the landmarks' bounding box,
        `scale` times its longer side, levelled by the eye centres (as the
        detector's keypoints level a detected face; MediaPipe uses the outer
        corners, which tilt by up to 10 degrees more on turned faces).
        """
        return landmark_geometry(points, scale)[2]

    @classmethod
    def concatenate(cls, parts: list["FaceRois"]) -> "FaceRois":
        return cls(np.concatenate([p.centres for p in parts]).reshape(-1, 2),
                   np.concatenate([p.sides for p in parts]), np.concatenate([p.angles for p in parts]))


def eye_line_angle(right_to_left_eye: np.ndarray) -> np.ndarray:
    """(n,) radians, counter-clockwise on screen, of faces whose eyes are (n, 2) pixels apart (right to left eye)."""
    # Image v points down, so a face rotated counter-clockwise on screen has the
    # person's left eye higher (smaller v) than the right one.
    return np.arctan2(-right_to_left_eye[:, 1], right_to_left_eye[:, 0])


def box_from_landmarks(points: np.ndarray) -> np.ndarray:
    """(n, 4) xyxy boxes, in the detector's own box convention, of faces given by their landmarks (n, 468, 2+).

    BlazeFace boxes are squares. Measured on the 23 faces of the sample photos
    and their mirror images: the side is 0.98 times the landmarks' height
    across the eye line (sd 4.5%), and the centre lies 0.023 sides below the
    centroid of the two eye centres and the mouth centre, along the face's own
    down axis (sd 4% of the side; the landmarks' bounding box is off by up to
    20% on turned faces). A followed face thus reports the box the detector
    would have given it, which the network crop and the box-size distance
    prior rely on.
    """
    return landmark_geometry(points, 1.0)[1]


def keypoints_from_landmarks(points: np.ndarray) -> np.ndarray:
    """(n, 6, 2) BlazeFace-style keypoints of faces given by their landmarks (n, 468, 2+).

    The person's right eye and left eye centres, nose tip, mouth centre, right and left ear tragion.
    """
    pts = np.asarray(points, dtype=np.float64)[:, :, :2]
    eyes = pts[:, _EYE_CONTOURS].mean(axis=2)  # (n, 2 eyes, 2)
    mouth = pts[:, _LIPS].mean(axis=1)
    return np.concatenate([eyes, pts[:, NOSE_TIP, None], mouth[:, None], pts[:, _TRAGIONS]], axis=1).astype(np.float32)


def landmark_geometry(points: np.ndarray, roi_scale: float) -> tuple[np.ndarray, np.ndarray, FaceRois]:
    """What following a face needs of its landmarks (n, 468, 2+), computed once:
    its keypoints (n, 6, 2), its box (n, 4; box_from_landmarks) and its next crop (FaceRois.from_landmarks)."""
    pts = np.asarray(points, dtype=np.float64)[:, :, :2]
    kp = keypoints_from_landmarks(pts)
    angle = eye_line_angle((kp[:, 1] - kp[:, 0]).astype(np.float64))
    down = np.stack([np.sin(angle), np.cos(angle)], axis=1)  # the face's "down" in image pixels
    along = np.einsum("nkd,nd->nk", pts, down)
    side = BOX_PER_LANDMARK_HEIGHT * (along.max(axis=1) - along.min(axis=1))
    centre = (kp[:, 0] + kp[:, 1] + kp[:, 3]) / 3 + BOX_CENTRE_BELOW_EYES_MOUTH * side[:, None] * down
    half = side[:, None] / 2
    boxes = np.concatenate([centre - half, centre + half], axis=1).astype(np.float32)
    lo, hi = pts.min(axis=1), pts.max(axis=1)
    return kp, boxes, FaceRois((lo + hi) / 2, np.max(hi - lo, axis=1) * roi_scale, angle)


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
        """Landmarks of detected faces (crops by MediaPipe's detection-to-ROI rule)."""
        return self.estimate_rois(image_rgb, FaceRois.from_detections(detections, self.model.roi_scale))

    def estimate_rois(self, image_rgb: np.ndarray, rois: FaceRois) -> FaceLandmarks:
        """Landmarks of the faces in these crop regions, all in one batch when the model allows."""
        m = self.model
        n = len(rois)
        size = m.input.size[0]
        if n == 0:
            return FaceLandmarks(np.zeros((0, m.num_landmarks, 3), np.float32), np.zeros(0, np.float32), np.zeros((0, 2, 3)))
        A = crop_affines(rois.centres, rois.sides, rois.angles, size)
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
            points[i, :, 2] = crop_pts[i, :, 2] * (rois.sides[i] / size)
        return FaceLandmarks(points.astype(np.float32), presence, A)
