"""Where the faces are in each image: followed from their own landmarks, or searched for by the detector.

Video (the default): a face that is tracked is followed from the previous
frame's landmarks, MediaPipe's way: the next face-mesh crop is the ROI of its
landmarks (centre, size, eye line; core.landmarks.FaceRois.from_landmarks).
No detection is needed for it. When the mesh's presence score drops below
landmarks.presence_threshold the face is not followed (its track misses this
frame and ends after tracking.max_misses). The detector is a search for new
faces, and skips faces already followed.

Zoomed searches run the full-range detector on a part of the image:

- tiles: detection.tiles x detection.tiles tiles (each 1/tiles of the image
  plus 10% overlap) for small faces: a 24 px face in a 640x480 image is
  about 7 px in the whole-image search's 192x192 input, too small for it,
  and 12 px in one of 2x2 tiles', which it finds (measured on rendered
  faces: 16-20 px faces 9 in 10 and from 20 px all of them; the short-range
  model on 3x3 tiles missed most faces under 28 px). A tile keeps only
  faces smaller than TILE_MAX_FACE of the image's shorter side (larger ones
  are the whole-image search's, and a face cut by a tile's edge must not
  count);
- around a lost face: a square of LOST_REGION_SCALE times its last box,
  where a face that was hidden (or looked away) reappears.

A zoomed search never replaces a face the whole image found: it only adds
faces, and only those the face mesh takes for faces (presence score): at
that zoom the detector also fires on hands and patterns.

Candidates (profiles, still images): the whole-image search also returns the
faces it scores between detection.candidate_threshold and
detection.score_threshold (not in video, where a profile the mesh cannot
follow would come and go with the searches, a new id each time).
BlazeFace scores most faces turned 60-90 deg below 0.5. A candidate is kept
when the face mesh sees a face in it: presence at least CANDIDATE_PRESENCE on
the detector's eye-levelled crop or on an upright one, centred or moved 0.15
box widths to either side (the detector's eye keypoints are often wrong on a
profile, and its box is centred on the head, the face off to one side). Every
other face of the whole-image search must reach DETECTION_PRESENCE: the detector's rare false faces above
0.5 on face-free images (7 in 600 images of clutter and photo patches) had a
presence of at most 0.0005, and 1 of 550 real AFLW2000-3D faces it found was
below 0.002. Measured on renders: 52% of the faces turned 60-90 deg score 0.5
or more, 91-93% 0.2 or more, and with the mesh's check 82% are kept; on 300
face-free images the detector gave 234 candidates from 0.2, whose presence
never exceeded 0.02 on any of these crops (docs/benchmarks.md). A profile's
presence is often below landmarks.presence_threshold, so landmark PnP rejects
it, the network backends estimate it, and video does not follow it from its
landmarks.

When the detector runs (video):

- no face followed: the whole image on every frame, and every tile too when
  the whole image finds nobody (there is nothing else to do, and a face,
  small or not, must be found in its first frame);
- a followed face lost in this frame: the whole image, at once (it may have
  moved fast, or the camera cut to another scene);
- while fewer faces are followed than before a face was lost (for at most
  detection.lost_search_frames frames): the surroundings of each lost face,
  up to LOST_REGIONS_PER_FRAME a frame;
- while fewer than detection.max_faces faces are followed: the whole image
  every detection.search_period frames and one tile every
  detection.tile_period frames, round robin, a tile never in the same
  frame as the whole image (a new face appears within search_period
  frames, a new small one within about tiles^2 x tile_period);
- never while max_faces faces are followed.

Still images (tracking.static_image_mode): every image is searched whole and
in every tile, and nothing is followed. Or the caller gives the faces' boxes
(``given``, e.g. a dataset's labelled boxes): nothing is searched.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .config import EngineConfig
from .detection import FaceDetector, box_containment, box_iou, weighted_nms
from .landmarks import LEFT_EYE_KEYPOINT, RIGHT_EYE_KEYPOINT, FaceMesh, FaceRois, landmark_geometry
from .types import FaceDetections

# Tiles overlap by this fraction of the image, so that a face on a tile's edge is whole in the next one.
TILE_OVERLAP = 0.1
# A tile keeps faces smaller than this fraction of the image's shorter side.
TILE_MAX_FACE = 0.12
# Two followed faces whose boxes overlap more than this (IoU), or one of which lies mostly inside the other
# (DUPLICATE_CONTAINMENT of the smaller box), are one face: one track lets go (FaceFinder._follow).
DUPLICATE_IOU = 0.5
DUPLICATE_CONTAINMENT = 0.7
# A new detection covering this much of a followed face's box (or the other way round) is that face.
FOLLOWED_CONTAINMENT = 0.5
# The face mesh's presence a face of the whole-image search needs: a candidate (scored below score_threshold)
# and any other (module docstring).
CANDIDATE_PRESENCE = 0.05
DETECTION_PRESENCE = 0.002
# The upright crops tried for a whole-image face the eye-levelled crop does not confirm: centre shifts in box
# widths (measured on rendered profiles: 72% confirmed upright and centred, 82% with the shifts).
RETRY_SHIFTS = (0.0, -0.15, 0.15)
# The square searched around a lost face, in sides of its last box; and how many such squares a frame.
LOST_REGION_SCALE = 3.0
LOST_REGIONS_PER_FRAME = 3


@dataclass
class Found:
    """The faces of one image and how they were found.

    faces: followed faces first (with their landmarks), then new detections.
    known: for each face, the track that followed it, or None for a detection.
    searched: what the detector searched this frame, e.g. "image + tile 3 + lost 1"
        ("" when every face was followed), for reports.
    next_rois: each face's crop for the next frame, from its landmarks (None without landmarks).
    """

    faces: FaceDetections
    known: list
    searched: str = ""
    next_rois: FaceRois | None = None


@dataclass
class _LostFace:
    """A face that was followed and is not: where it was, and how many faces were followed with it."""

    box: np.ndarray
    faces_before: int
    frames_left: int


def tile_boxes(width: int, height: int, tiles: int) -> np.ndarray:
    """(tiles * tiles, 4) integer xyxy regions of an image that together cover it, with TILE_OVERLAP."""
    if tiles <= 0:
        return np.zeros((0, 4), int)
    tw = min(width, int(round(width * (1 / tiles + TILE_OVERLAP))))
    th = min(height, int(round(height * (1 / tiles + TILE_OVERLAP))))
    xs = np.linspace(0, width - tw, tiles).round().astype(int) if tiles > 1 else np.array([0])
    ys = np.linspace(0, height - th, tiles).round().astype(int) if tiles > 1 else np.array([0])
    return np.array([[x, y, x + tw, y + th] for y in ys for x in xs])


def region_around(box: np.ndarray, scale: float, width: int, height: int) -> np.ndarray:
    """(4,) integer xyxy square of `scale` times the box's longer side around its centre, clipped to the image."""
    centre = (box[:2] + box[2:]) / 2
    half = scale * float(np.max(box[2:] - box[:2])) / 2
    x0, y0 = np.floor(np.maximum(centre - half, 0)).astype(int)
    x1, y1 = np.ceil(np.minimum(centre + half, [width, height])).astype(int)
    return np.array([x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)])


class FaceFinder:
    """Finds the faces of each image (module docstring): follows tracked ones, searches for new ones.

    detector: the whole-image detector; zoom_detector: the full-range one for
    tiles and the surroundings of lost faces (None: neither); mesh: the face
    mesh (None: no landmarks, no following, no check of zoomed finds);
    landmarks_wanted: every face needs its landmarks (the backend fits them, or
    faces are followed); otherwise the mesh only checks what zoomed searches found.
    """

    def __init__(self, detector: FaceDetector, zoom_detector: FaceDetector | None, mesh: FaceMesh | None,
                 config: EngineConfig, landmarks_wanted: bool = True):
        self.detector = detector
        self.zoom_detector = zoom_detector
        self.mesh = mesh
        self.landmarks_wanted = landmarks_wanted
        self._since_search = 0
        self._since_tile = 0
        self._next_tile = 0
        self._next_lost = 0
        self._lost: list[_LostFace] = []
        self._tiles_if_alone = False  # this frame's tiles run only if the whole image finds nobody
        self.timings: dict[str, float] = {}  # ms of the last find(): "detect" (searches), "landmarks" (the mesh)
        self.apply(config)

    def apply(self, config: EngineConfig) -> None:
        self.config = config
        self.detector.apply(config.detection)
        if self.zoom_detector is not None:
            self.zoom_detector.apply(config.detection)

    @property
    def follows(self) -> bool:
        return self.mesh is not None and not self.config.tracking.static_image_mode

    def reset(self) -> None:
        """Forget the lost faces and the search schedule (with the tracks)."""
        self._lost = []
        self._since_search = self._since_tile = 0

    def find(self, image_rgb: np.ndarray, full_scale: float, tracks: list) -> Found:
        """The faces in this image (its pixels); tracks: the tracker's live tracks (their state says what to follow)."""
        start = time.perf_counter()
        followed, known, follow_rois, lost_now = self._follow(image_rgb, tracks)
        mesh_ms = (time.perf_counter() - start) * 1e3
        whole, tiles, regions = self._plan(image_rgb, len(followed), lost_now)
        parts, searched, detect_ms = [followed], [], 0.0
        if whole or tiles or len(regions):
            start = time.perf_counter()
            # Candidates in still images only: in video a profile the mesh cannot follow would come and go
            # with the searches, a new track (and id) each time.
            candidates = self.mesh is not None and not self.follows
            new = self.detector.detect(image_rgb, full_scale, candidates=candidates) if whole \
                else FaceDetections.empty()
            if self._tiles_if_alone and np.any(new.scores >= self.config.detection.score_threshold):
                tiles = []  # video, nothing followed: the whole image found someone to follow already
            zoomed = [self._detect_tile(image_rgb, full_scale, k) for k in tiles]
            zoomed += [self._detect_in(image_rgb, full_scale, region) for region in regions]
            searched = (["image"] if whole else []) + [f"tile {k}" for k in tiles] + ["lost face"] * len(regions)
            n_whole = min(len(new), self.config.detection.max_faces)
            if zoomed:
                new = self._add_zoomed(new, zoomed)
            from_zoom = np.arange(len(new)) >= n_whole
            weak = ~from_zoom & (new.scores < self.config.detection.score_threshold)
            if len(followed) and len(new):
                apart = (box_iou(new.boxes, followed.boxes).max(axis=1) < self.config.tracking.iou_threshold) & \
                    (box_containment(new.boxes, followed.boxes).max(axis=1) < FOLLOWED_CONTAINMENT)
                new, from_zoom, weak = new.take(apart), from_zoom[apart], weak[apart]
            mid = time.perf_counter()
            detect_ms = (mid - start) * 1e3
            new = self._mesh_new(image_rgb, new, from_zoom, weak)
            mesh_ms += (time.perf_counter() - mid) * 1e3
            parts.append(new)
            known = known + [None] * len(new)
        faces = FaceDetections.concatenate(parts) if len(parts) > 1 else followed
        rois = None
        if self.follows and faces.landmarks is not None and len(faces):
            rois = follow_rois if len(parts) == 1 else landmark_geometry(faces.landmarks, self.mesh.model.roi_scale)[2]
            present = int(np.sum(faces.presence >= self.config.landmarks.presence_threshold))
            # A lost face is no longer missing once as many faces are seen as before it was lost.
            self._lost = [f for f in self._lost if present < f.faces_before]
        self.timings = {"detect": detect_ms, "landmarks": mesh_ms}
        return Found(faces, known, " + ".join(searched), rois)

    def given(self, image_rgb: np.ndarray, boxes: np.ndarray) -> Found:
        """The faces at `boxes` (n, 4) x0, y0, x1, y1 pixels of this image, in the detector's box convention,
        instead of a search: each scores 1 and keeps its box. Without keypoints the face mesh first crops it
        upright, then again from what it found there (MediaPipe's landmarks-to-ROI: centre, size and eye
        line, as when following a face), and the eye keypoints come from those landmarks. With its landmarks
        when they are wanted, whatever their presence score."""
        start = time.perf_counter()
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        keypoints = np.repeat(centres[:, None], 6, axis=1)
        keypoints[:, RIGHT_EYE_KEYPOINT, 0] -= (boxes[:, 2] - boxes[:, 0]) / 4
        keypoints[:, LEFT_EYE_KEYPOINT, 0] += (boxes[:, 2] - boxes[:, 0]) / 4
        faces = FaceDetections(boxes, np.ones(len(boxes), np.float32), keypoints)
        if self.mesh is not None and len(faces):
            first = self.mesh.estimate(image_rgb, faces)
            again = self.mesh.estimate_rois(image_rgb, landmark_geometry(first.points, self.mesh.model.roi_scale)[2])
            use = again.presence >= first.presence
            points = np.where(use[:, None, None], again.points, first.points)
            presence = np.where(use, again.presence, first.presence)
            faces = FaceDetections(boxes, faces.scores,
                                   landmark_geometry(points, self.mesh.model.roi_scale)[0].astype(np.float32))
            if self.landmarks_wanted:
                faces = faces.with_landmarks(points, presence)
        self.timings = {"detect": 0.0, "landmarks": (time.perf_counter() - start) * 1e3}
        return Found(faces, [None] * len(faces))

    def remember(self, tracks: list, found: Found) -> None:
        """After tracking: each track's crop for the next frame (from its landmarks) and its detector score."""
        threshold = self.config.landmarks.presence_threshold
        faces, rois = found.faces, found.next_rois
        for i, track in enumerate(tracks):
            track.state.score = float(faces.scores[i])
            good = rois is not None and faces.presence[i] >= threshold
            track.state.roi = FaceRois(rois.centres[i:i + 1], rois.sides[i:i + 1], rois.angles[i:i + 1]) if good else None
            track.state.followed = track.state.followed or good

    def _mesh_new(self, image_rgb: np.ndarray, new: FaceDetections, from_zoom: np.ndarray,
                  weak: np.ndarray) -> FaceDetections:
        """The new faces with their landmarks (when wanted), those the face mesh takes for faces.

        Faces only a zoomed search found must reach landmarks.presence_threshold (at
        2 or 3 times the zoom, hands and patterns pass for faces); the whole image's
        CANDIDATE_PRESENCE (candidates) or DETECTION_PRESENCE, on the eye-levelled
        crop or else on an upright one (RETRY_SHIFTS; module docstring).
        """
        if self.mesh is None or not len(new):
            return new
        mesh = self.mesh.estimate(image_rgb, new)
        points, presence = mesh.points, mesh.presence
        needed = np.where(from_zoom, self.config.landmarks.presence_threshold,
                          np.where(weak, CANDIDATE_PRESENCE, DETECTION_PRESENCE))
        retry = ~from_zoom & (presence < needed)
        if retry.any():
            # A profile's eye keypoints often tilt the crop: where the mesh sees no face in it, upright crops
            # may, centred on the box and moved a little to either side (a profile's box is centred on the
            # head, its face off to one side), all in one batch; the crop seeing the most face wins.
            rois = FaceRois.from_detections(new.take(retry), self.mesh.model.roi_scale)
            widths = (new.boxes[retry, 2] - new.boxes[retry, 0])[:, None]
            tries = [FaceRois(rois.centres + [dx, 0.0] * widths, rois.sides, np.zeros_like(rois.angles))
                     for dx in RETRY_SHIFTS]
            found = self.mesh.estimate_rois(image_rgb, FaceRois.concatenate(tries))
            m = len(rois)
            tried = found.presence.reshape(len(RETRY_SHIFTS), m)
            best = np.argmax(tried, axis=0)
            better = tried[best, np.arange(m)] > presence[retry]
            idx = np.flatnonzero(retry)[better]
            pick = best[better] * m + np.flatnonzero(better)
            presence[idx] = found.presence[pick]
            points[idx] = found.points[pick]
        if self.landmarks_wanted:
            new = new.with_landmarks(points, presence)
        return new.take(presence >= needed)

    # -- following ------------------------------------------------------------------------------

    def _follow(self, image_rgb: np.ndarray, tracks: list):
        """(faces followed from their tracks' crops, their tracks, their next crops, how many were lost now)."""
        candidates = [t for t in tracks if t.state.roi is not None] if self.follows else []
        if not candidates:
            return FaceDetections.empty(), [], None, 0
        mesh = self.mesh.estimate_rois(image_rgb, FaceRois.concatenate([t.state.roi for t in candidates]))
        keep = mesh.presence >= self.config.landmarks.presence_threshold
        keypoints, boxes, rois = landmark_geometry(mesh.points, self.mesh.model.roi_scale)
        if len(candidates) > 1:
            # Two tracks that drifted onto one face (one face passing in front of another): the track whose
            # last box is most like the face's box now keeps it (the one that was on it), the older on a tie.
            previous = np.array([t.box for t in candidates], dtype=np.float64)
            stayed = np.diag(box_iou(boxes.astype(np.float64), previous))
            order = sorted(range(len(candidates)), key=lambda i: (-round(float(stayed[i]), 2), -candidates[i].hits))
            same = (box_iou(boxes, boxes) > DUPLICATE_IOU) | (box_containment(boxes, boxes) > DUPLICATE_CONTAINMENT)
            for rank, i in enumerate(order):
                if keep[i] and any(keep[j] and same[i, j] for j in order[:rank]):
                    keep[i] = False
        lost = [t for t, ok in zip(candidates, keep) if not ok]
        for track in lost:
            track.state.roi = None
            self._lost.append(_LostFace(track.box.copy(), len(candidates), self.config.detection.lost_search_frames))
        idx = np.flatnonzero(keep)
        scores = np.array([candidates[i].state.score for i in idx], np.float32)
        faces = FaceDetections(boxes[idx], scores, keypoints[idx], mesh.points[idx], mesh.presence[idx])
        next_rois = FaceRois(rois.centres[idx], rois.sides[idx], rois.angles[idx])
        return faces, [candidates[i] for i in idx], next_rois, len(lost)

    # -- searching ------------------------------------------------------------------------------

    def _plan(self, image_rgb: np.ndarray, followed: int, lost_now: int) -> tuple[bool, list[int], list[np.ndarray]]:
        """Whether the whole image is searched this frame, which tiles, and which regions (module docstring)."""
        d = self.config.detection
        n_tiles = d.tiles * d.tiles if self.zoom_detector is not None else 0
        self._tiles_if_alone = self.follows and followed == 0
        if not self.follows or followed == 0:
            self._lost = []
            return True, list(range(n_tiles)), []  # nothing else to do: look everywhere
        self._since_search += 1
        self._since_tile += 1
        for face in self._lost:
            face.frames_left -= 1
        self._lost = [f for f in self._lost if f.frames_left > 0]
        if followed >= d.max_faces:
            return False, [], []
        whole = lost_now > 0 or self._since_search >= d.search_period
        tiles = []
        if n_tiles and self._since_tile >= d.tile_period and not whole:  # one search a frame: a tile waits
            tiles = [self._next_tile % n_tiles]
            self._next_tile += 1
            self._since_tile = 0
        if whole:
            self._since_search = 0
        regions = []
        if self._lost and self.zoom_detector is not None:
            h, w = image_rgb.shape[:2]
            order = [(self._next_lost + k) % len(self._lost) for k in range(min(LOST_REGIONS_PER_FRAME, len(self._lost)))]
            self._next_lost += len(order)
            regions = [region_around(self._lost[k].box, LOST_REGION_SCALE, w, h) for k in order]
        return whole, tiles, regions

    def _detect_tile(self, image_rgb: np.ndarray, full_scale: float, k: int) -> FaceDetections:
        h, w = image_rgb.shape[:2]
        faces = self._detect_in(image_rgb, full_scale, tile_boxes(w, h, self.config.detection.tiles)[k])
        return faces.take(np.min(faces.boxes[:, 2:] - faces.boxes[:, :2], axis=1) < TILE_MAX_FACE * min(w, h))

    def _detect_in(self, image_rgb: np.ndarray, full_scale: float, region: np.ndarray) -> FaceDetections:
        """The zoom detector's faces in one region (4,) xyxy of the image, in image pixels."""
        x0, y0, x1, y1 = region
        faces = self.zoom_detector.detect(image_rgb[y0:y1, x0:x1], full_scale)
        offset = np.array([x0, y0], np.float32)
        return FaceDetections(faces.boxes + np.tile(offset, 2), faces.scores, faces.keypoints + offset)

    def _add_zoomed(self, whole: FaceDetections, zoomed: list[FaceDetections]) -> FaceDetections:
        """The whole image's detections, then the zoomed searches' faces it did not find (overlaps merged).

        A face the whole image found keeps its box exactly: zoomed searches only add faces.
        """
        faces = FaceDetections.concatenate(zoomed)
        if len(faces) > 1:
            boxes, scores, points = weighted_nms(faces.boxes, faces.scores, faces.keypoints,
                                                 self.config.detection.nms_iou_threshold)
            faces = FaceDetections(boxes, scores, points)
        if len(whole) and len(faces):
            faces = faces.take(box_iou(faces.boxes, whole.boxes).max(axis=1) <= self.config.detection.nms_iou_threshold)
        return FaceDetections.concatenate([whole, faces]).take(slice(0, self.config.detection.max_faces))
