"""Face detection: a BlazeFace network, anchor decoding and weighted non-maximum suppression."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .inference import Runtime
from .models import DetectorModel, letterbox


@dataclass
class FaceDetections:
    """The faces found in one image, vectorised over n faces, in full-image pixels.

    boxes: (n, 4) float32 x0, y0, x1, y1.
    scores: (n,) float32 in [0, 1].
    keypoints: (n, k, 2) float32 (u, v); for BlazeFace k = 6: the person's
        right eye, left eye, nose tip, mouth centre, right and left ear tragion.
    """

    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.boxes)
        if self.boxes.shape != (n, 4) or self.scores.shape != (n,) or self.keypoints.shape[:1] != (n,):
            raise ValueError(
                f"inconsistent shapes: boxes {self.boxes.shape}, scores {self.scores.shape}, "
                f"keypoints {self.keypoints.shape}"
            )

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def empty(cls, num_keypoints: int = 6) -> "FaceDetections":
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, num_keypoints, 2), np.float32))

    def take(self, index) -> "FaceDetections":
        """The detections at `index` (an index array or boolean mask)."""
        return FaceDetections(self.boxes[index], self.scores[index], self.keypoints[index])


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, m) intersection over union of xyxy boxes a (n, 4) and b (m, 4)."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, points: np.ndarray, iou_threshold: float):
    """MediaPipe-style weighted NMS: each kept face is the score-weighted mean of its cluster.

    Blending the overlapping anchors, instead of keeping only the best one,
    makes boxes and keypoints steadier from frame to frame.
    boxes (n, 4), scores (n,), points (n, k, 2) -> the same, for the kept faces
    in decreasing score order.
    """
    order = np.argsort(-scores)
    boxes, scores, points = boxes[order], scores[order], points[order]
    iou = box_iou(boxes, boxes)
    remaining = np.ones(len(boxes), dtype=bool)
    keep_b, keep_s, keep_p = [], [], []
    for i in range(len(boxes)):
        if not remaining[i]:
            continue
        cluster = remaining & (iou[i] >= iou_threshold)
        cluster[i] = True
        w = scores[cluster]
        w = w / w.sum()
        keep_b.append(w @ boxes[cluster])
        keep_p.append(np.tensordot(w, points[cluster], axes=1))
        keep_s.append(scores[i])
        remaining &= ~cluster
    if not keep_b:
        return boxes[:0], scores[:0], points[:0]
    return np.array(keep_b, np.float32), np.array(keep_s, np.float32), np.array(keep_p, np.float32)


class FaceDetector:
    """Finds faces in an RGB image with a BlazeFace-family model.

    score_threshold: minimum detection score in [0, 1].
    nms_iou_threshold: boxes overlapping more than this are merged.
    max_faces: at most this many faces, the highest scoring, are returned.
    min_face_size_px: faces whose box is smaller (in full-image pixels) are dropped.
    """

    def __init__(
        self,
        model: DetectorModel,
        engine: Runtime,
        *,
        score_threshold: float = 0.5,
        nms_iou_threshold: float = 0.3,
        max_faces: int = 6,
        min_face_size_px: float = 0.0,
    ):
        self.model = model
        self.engine = engine
        self.score_threshold = score_threshold
        self.nms_iou_threshold = nms_iou_threshold
        self.max_faces = max_faces
        self.min_face_size_px = min_face_size_px
        self._anchors = model.anchors.centres(model.input.size)

    def detect(self, image_rgb: np.ndarray, min_face_size_px: float | None = None) -> FaceDetections:
        """(h, w, 3) uint8 RGB image -> the faces in it, best first.

        min_face_size_px: overrides the detector's own, in this image's pixels (for a shrunk image).
        """
        min_size = self.min_face_size_px if min_face_size_px is None else min_face_size_px
        m = self.model
        padded, A = letterbox(image_rgb, m.input.size)
        out = self.engine.run({m.input.name: m.input.to_tensor(padded)})
        raw = out[m.boxes_output].reshape(-1, 2 + m.num_keypoints, 2)
        logits = np.clip(out[m.scores_output].reshape(-1), -m.raw_score_limit, m.raw_score_limit)
        scores = 1.0 / (1.0 + np.exp(-logits))
        keep = scores >= self.score_threshold
        if not np.any(keep):
            return FaceDetections.empty(m.num_keypoints)
        raw, scores, anchors = raw[keep], scores[keep], self._anchors[keep]
        size = np.asarray(m.input.size, dtype=np.float32)
        # Offsets are in input pixels relative to the anchor centre; sizes in input pixels.
        centre = raw[:, 0] + anchors * size
        half = raw[:, 1] / 2
        boxes = np.concatenate([centre - half, centre + half], axis=1)
        points = raw[:, 2:] + (anchors * size)[:, None, :]
        valid = np.all(half > 0, axis=1)
        boxes, scores, points = weighted_nms(boxes[valid], scores[valid], points[valid], self.nms_iou_threshold)
        # Input coordinates are continuous (pixel centres at +0.5); the affine uses
        # integer pixel centres, so shift by half a pixel on the way back.
        Ainv = invert_affine(A)
        boxes = apply_affine(Ainv, boxes.reshape(-1, 2, 2) - 0.5).reshape(-1, 4)
        points = apply_affine(Ainv, points - 0.5)
        h, w = image_rgb.shape[:2]
        sides = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        inside = (boxes[:, 2] > 0) & (boxes[:, 3] > 0) & (boxes[:, 0] < w) & (boxes[:, 1] < h)
        keep = inside & (sides >= min_size)
        dets = FaceDetections(boxes[keep].astype(np.float32), scores[keep], points[keep].astype(np.float32))
        return dets.take(slice(0, self.max_faces))


def invert_affine(A: np.ndarray) -> np.ndarray:
    """The inverse of a (2, 3) affine, as a (2, 3) affine."""
    M = np.vstack([A, [0.0, 0.0, 1.0]])
    return np.linalg.inv(M)[:2]


def apply_affine(A: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine to points (..., 2)."""
    return pts @ A[:, :2].T + A[:, 2]
