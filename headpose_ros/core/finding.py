"""Where the faces are in each image: followed from their own landmarks, or searched for by the detector.

Video (the default): a face that is tracked is followed from the previous
frame's landmarks, MediaPipe's way: the next face-mesh crop is the ROI of its
landmarks (centre, size, eye line; core.landmarks.FaceRois.from_landmarks).
No detection is needed for it. When the mesh's presence score drops below
landmarks.presence_threshold the face is not followed (its track misses this
frame and ends after tracking.max_misses). The detector is a search for new
faces, and skips regions already followed. It runs:

- on every frame while no face is followed, or while a tracked face is lost
  (not followed; until its track ends), so that it is found again at once;
- every detection.search_period frames while fewer than detection.max_faces
  faces are followed;
- never while max_faces faces are followed.

Small faces: the image is also searched in detection.tiles x detection.tiles
zoomed tiles (each 1/tiles of the image plus 10% overlap) with the
short-range detector, one tile every detection.tile_period frames, round
robin. A tile keeps only faces smaller than TILE_MAX_FACE of the image's
shorter side (larger ones are the whole-image search's, and a face cut by a
tile's edge must not count).

Still images (tracking.static_image_mode): every image is searched whole and
in every tile, and nothing is followed.
"""

from __future__ import annotations

from dataclasses import dataclass

import time

import numpy as np

from .config import EngineConfig
from .detection import FaceDetector, box_iou, weighted_nms
from .landmarks import FaceMesh, FaceRois, box_from_landmarks, keypoints_from_landmarks
from .types import FaceDetections

# Tiles overlap by this fraction of the image, so that a face on a tile's edge is whole in the next one.
TILE_OVERLAP = 0.1
# A tile keeps faces smaller than this fraction of the image's shorter side.
TILE_MAX_FACE = 0.12
# Two followed faces whose boxes overlap more than this are one face: the younger track lets go.
DUPLICATE_IOU = 0.5


@dataclass
class Found:
    """The faces of one image and how they were found.

    faces: followed faces first (with their landmarks), then new detections.
    known: for each face, the track that followed it, or None for a detection.
    searched: what the detector searched this frame: "" (nothing), "image",
        "tile k" or both, for reports.
    """

    faces: FaceDetections
    known: list
    searched: str = ""


def tile_boxes(width: int, height: int, tiles: int) -> np.ndarray:
    """(tiles * tiles, 4) integer xyxy regions of an image that together cover it, with TILE_OVERLAP."""
    if tiles <= 0:
        return np.zeros((0, 4), int)
    tw = min(width, int(round(width * (1 / tiles + TILE_OVERLAP))))
    th = min(height, int(round(height * (1 / tiles + TILE_OVERLAP))))
    xs = np.linspace(0, width - tw, tiles).round().astype(int) if tiles > 1 else np.array([0])
    ys = np.linspace(0, height - th, tiles).round().astype(int) if tiles > 1 else np.array([0])
    return np.array([[x, y, x + tw, y + th] for y in ys for x in xs])


class FaceFinder:
    """Finds the faces of each image (module docstring): follows tracked ones, searches for new ones.

    detector: the whole-image detector; tile_detector: the one for zoomed
    tiles (None: no tiles); mesh: the face mesh, or None when neither the
    backend nor following needs landmarks.
    """

    def __init__(self, detector: FaceDetector, tile_detector: FaceDetector | None, mesh: FaceMesh | None,
                 config: EngineConfig):
        self.detector = detector
        self.tile_detector = tile_detector
        self.mesh = mesh
        self._since_search = 0
        self._since_tile = 0
        self._next_tile = 0
        self.timings: dict[str, float] = {}  # ms of the last find(): "detect" (searches), "landmarks" (the mesh)
        self.apply(config)

    def apply(self, config: EngineConfig) -> None:
        self.config = config
        self.detector.apply(config.detection)
        if self.tile_detector is not None:
            self.tile_detector.apply(config.detection)

    @property
    def follows(self) -> bool:
        return self.mesh is not None and not self.config.tracking.static_image_mode

    def find(self, image_rgb: np.ndarray, full_scale: float, tracks: list) -> Found:
        """The faces in this image (its pixels); tracks: the tracker's live tracks (their state says what to follow)."""
        start = time.perf_counter()
        followed, known = self._follow(image_rgb, tracks)
        mesh_ms = (time.perf_counter() - start) * 1e3
        lost = any(t.state.roi is None for t in tracks) if self.follows else True
        whole, tiles = self._due(len(followed), lost)
        parts, searched, detect_ms = [followed], [], 0.0
        if whole or tiles:
            start = time.perf_counter()
            found = FaceDetections.empty()
            if whole:
                found = self.detector.detect(image_rgb, full_scale)
                searched.append("image")
            if tiles:
                found = self._add_tiles(found, [self._detect_tile(image_rgb, full_scale, k) for k in tiles])
                searched += [f"tile {k}" for k in tiles]
            new = found
            if len(followed) and len(new):
                overlap = box_iou(new.boxes, followed.boxes).max(axis=1)
                new = new.take(overlap < self.config.tracking.iou_threshold)
            mid = time.perf_counter()
            detect_ms = (mid - start) * 1e3
            if self.mesh is not None and len(new):
                mesh = self.mesh.estimate(image_rgb, new)
                new = new.with_landmarks(mesh.points, mesh.presence)
            mesh_ms += (time.perf_counter() - mid) * 1e3
            parts.append(new)
            known = known + [None] * len(new)
        faces = FaceDetections.concatenate(parts) if len(parts) > 1 else followed
        self.timings = {"detect": detect_ms, "landmarks": mesh_ms}
        return Found(faces, known, " + ".join(searched))

    def remember(self, tracks: list, faces: FaceDetections) -> None:
        """After tracking: each track's crop for the next frame (from its landmarks) and its detector score."""
        threshold = self.config.landmarks.presence_threshold
        follow = self.follows and faces.landmarks is not None
        rois = FaceRois.from_landmarks(faces.landmarks, self.mesh.model.roi_scale) if follow and len(faces) else None
        for i, track in enumerate(tracks):
            track.state.score = float(faces.scores[i])
            good = follow and faces.presence[i] >= threshold
            track.state.roi = FaceRois(rois.centres[i:i + 1], rois.sides[i:i + 1], rois.angles[i:i + 1]) if good else None

    # -- following ------------------------------------------------------------------------------

    def _follow(self, image_rgb: np.ndarray, tracks: list) -> tuple[FaceDetections, list]:
        """The faces followed from their tracks' crops whose mesh still finds them; their tracks."""
        empty = FaceDetections.empty()
        if not self.follows:
            return empty, []
        candidates = [t for t in tracks if t.state.roi is not None]
        if not candidates:
            return empty, []
        mesh = self.mesh.estimate_rois(image_rgb, FaceRois.concatenate([t.state.roi for t in candidates]))
        keep = mesh.presence >= self.config.landmarks.presence_threshold
        points = mesh.points
        boxes = box_from_landmarks(points)
        # Two tracks that drifted onto one face: the older one keeps it.
        order = sorted(range(len(candidates)), key=lambda i: -candidates[i].hits)
        iou = box_iou(boxes, boxes)
        for rank, i in enumerate(order):
            if keep[i] and any(keep[j] and iou[i, j] > DUPLICATE_IOU for j in order[:rank]):
                keep[i] = False
        for track, ok in zip(candidates, keep):
            if not ok:
                track.state.roi = None
        idx = np.flatnonzero(keep)
        scores = np.array([candidates[i].state.score for i in idx], np.float32)
        faces = FaceDetections(boxes[idx], scores, keypoints_from_landmarks(points[idx]), points[idx],
                               mesh.presence[idx])
        return faces, [candidates[i] for i in idx]

    # -- searching ------------------------------------------------------------------------------

    def _due(self, followed: int, lost: bool) -> tuple[bool, list[int]]:
        """Whether the whole image is searched this frame, and which tiles."""
        d = self.config.detection
        n_tiles = d.tiles * d.tiles if self.tile_detector is not None else 0
        if not self.follows:
            return True, list(range(n_tiles))
        self._since_search += 1
        self._since_tile += 1
        if followed >= d.max_faces:
            return False, []
        whole = followed == 0 or lost or self._since_search >= d.search_period
        tiles = []
        if n_tiles and self._since_tile >= d.tile_period:
            tiles = [self._next_tile % n_tiles]
            self._next_tile += 1
            self._since_tile = 0
        if whole:
            self._since_search = 0
        return whole, tiles

    def _detect_tile(self, image_rgb: np.ndarray, full_scale: float, k: int) -> FaceDetections:
        h, w = image_rgb.shape[:2]
        x0, y0, x1, y1 = tile_boxes(w, h, self.config.detection.tiles)[k]
        faces = self.tile_detector.detect(image_rgb[y0:y1, x0:x1], full_scale)
        small = np.min(faces.boxes[:, 2:] - faces.boxes[:, :2], axis=1) < TILE_MAX_FACE * min(w, h)
        faces = faces.take(small)
        offset = np.array([x0, y0], np.float32)
        return FaceDetections(faces.boxes + np.tile(offset, 2), faces.scores, faces.keypoints + offset)

    def _add_tiles(self, whole: FaceDetections, tiles: list[FaceDetections]) -> FaceDetections:
        """The whole image's detections, then the tiles' faces it did not find (overlapping tiles merged).

        A face the whole image found keeps its box exactly: tiles only add faces.
        """
        faces = FaceDetections.concatenate(tiles)
        if len(faces) > 1:
            boxes, scores, points = weighted_nms(faces.boxes, faces.scores, faces.keypoints,
                                                 self.config.detection.nms_iou_threshold)
            faces = FaceDetections(boxes, scores, points)
        if len(whole) and len(faces):
            faces = faces.take(box_iou(faces.boxes, whole.boxes).max(axis=1) <= self.config.detection.nms_iou_threshold)
        return FaceDetections.concatenate([whole, faces]).take(slice(0, self.config.detection.max_faces))
