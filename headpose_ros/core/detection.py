"""Face detection: a BlazeFace network, anchor decoding and weighted non-maximum suppression."""

from __future__ import annotations

import numpy as np

from .config import DetectionConfig
from .inference import NetworkStage, Runtime
from .models import DetectorModel, letterbox
from .types import FaceDetections


def _overlaps(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n, m) intersection areas of xyxy boxes a (n, 4) and b (m, 4), and their areas (n,), (m,)."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    return inter, area_a, area_b


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, m) intersection over union of xyxy boxes a (n, 4) and b (m, 4)."""
    inter, area_a, area_b = _overlaps(a, b)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def box_containment(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, m) intersection over the smaller box's area of xyxy boxes a (n, 4) and b (m, 4): 1 when one lies
    inside the other, whatever their sizes (where IoU stays low for a small box inside a large one)."""
    inter, area_a, area_b = _overlaps(a, b)
    smaller = np.minimum(area_a[:, None], area_b[None, :])
    return np.where(smaller > 0, inter / np.maximum(smaller, 1e-12), 0.0)


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


class FaceDetector(NetworkStage):
    """Finds faces in an RGB image with a BlazeFace-family model.

    settings: the detection.* settings (score and NMS thresholds, max_faces,
        min_face_size_px in full-resolution pixels); apply() changes them.
    """

    model: DetectorModel

    def __init__(self, model: DetectorModel, runtime: Runtime, settings: DetectionConfig = DetectionConfig()):
        super().__init__(model, runtime)
        self.settings = settings
        self._anchors = model.anchors.centres(model.input.size)

    def apply(self, settings: DetectionConfig) -> None:
        """Use these settings from the next image on."""
        self.settings = settings

    def detect(self, image_rgb: np.ndarray, full_scale: float = 1.0, candidates: bool = False) -> FaceDetections:
        """(h, w, 3) uint8 RGB image -> the faces in it, best first, in its pixels.

        full_scale: full-resolution pixels per pixel of this image (> 1 for a
        shrunk image), so that min_face_size_px keeps meaning full-resolution pixels.
        candidates: also return the faces scoring between candidate_threshold and
        score_threshold, after the others (each group merged on its own, so the
        faces above score_threshold are exactly those of a search without them).
        """
        s = self.settings
        m = self.model
        padded, A = letterbox(image_rgb, m.input.size)
        out = self.runtime.run({m.input.name: m.input.to_tensor(padded)})
        raw = out[m.boxes_output].reshape(-1, 2 + m.num_keypoints, 2)
        logits = np.clip(out[m.scores_output].reshape(-1), -m.raw_score_limit, m.raw_score_limit)
        scores = 1.0 / (1.0 + np.exp(-logits))
        strong = self._decode(raw, scores, scores >= s.score_threshold, A, image_rgb.shape, full_scale)
        if not candidates or s.candidate_threshold >= s.score_threshold:
            return strong.take(slice(0, s.max_faces))
        weak = self._decode(raw, scores, (scores >= s.candidate_threshold) & (scores < s.score_threshold), A,
                            image_rgb.shape, full_scale)
        if len(strong) and len(weak):
            weak = weak.take(box_iou(weak.boxes, strong.boxes).max(axis=1) <= s.nms_iou_threshold)
        return FaceDetections.concatenate([strong, weak]).take(slice(0, s.max_faces))

    def _decode(self, raw, scores, keep, A, shape, full_scale: float) -> FaceDetections:
        """The anchors in `keep` as faces: boxes and keypoints in image pixels, merged by weighted NMS."""
        s = self.settings
        m = self.model
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
        boxes, scores, points = weighted_nms(boxes[valid], scores[valid], points[valid], s.nms_iou_threshold)
        # Input coordinates are continuous (pixel centres at +0.5); the affine uses
        # integer pixel centres, so shift by half a pixel on the way back.
        Ainv = invert_affine(A)
        boxes = apply_affine(Ainv, boxes.reshape(-1, 2, 2) - 0.5).reshape(-1, 4)
        points = apply_affine(Ainv, points - 0.5)
        h, w = shape[:2]
        sides = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        inside = (boxes[:, 2] > 0) & (boxes[:, 3] > 0) & (boxes[:, 0] < w) & (boxes[:, 1] < h)
        keep = inside & (sides >= s.min_face_size_px / full_scale)
        return FaceDetections(boxes[keep].astype(np.float32), scores[keep], points[keep].astype(np.float32))


def invert_affine(A: np.ndarray) -> np.ndarray:
    """The inverse of a (2, 3) affine, as a (2, 3) affine."""
    M = np.vstack([A, [0.0, 0.0, 1.0]])
    return np.linalg.inv(M)[:2]


def apply_affine(A: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine to points (..., 2)."""
    return pts @ A[:, :2].T + A[:, 2]
