"""Annotated images: face boxes, the face frame's axes projected through the camera, ids and angles."""

from __future__ import annotations

import cv2
import numpy as np

from .camera import CameraModel
from .rotation import yaw_pitch_roll_deg

AXIS_LENGTH_M = 0.08
# BGR colours of the face frame's x (out of the face), y (person's left), z (up).
AXIS_COLOURS = ((0, 0, 255), (0, 200, 0), (255, 80, 0))
BOX_COLOUR = (0, 220, 255)


# Labels: white text on a dark outline, one line every LABEL_LINE_PX; a line's ink spans
# LABEL_ASCENT_PX above its baseline to LABEL_DESCENT_PX below (measured, outline included).
LABEL_FONT = cv2.FONT_HERSHEY_SIMPLEX
LABEL_SCALE = 0.5
LABEL_OUTLINE = 3
LABEL_LINE_PX = 16
LABEL_ASCENT_PX = 14
LABEL_DESCENT_PX = 4
LABEL_GAP_PX = 2  # between a box and its label, and between two labels


def draw_head(image_bgr: np.ndarray, camera: CameraModel, box, R: np.ndarray, t: np.ndarray) -> None:
    """Draw one head's box and projected face axes in place on a BGR image.

    box: x0, y0, x1, y1 pixels; R (3, 3), t (3,) metres: the face frame in the camera optical frame.
    """
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    cv2.rectangle(image_bgr, (x0, y0), (x1, y1), BOX_COLOUR, 2, cv2.LINE_AA)
    axes = np.vstack([np.zeros(3), np.eye(3) * AXIS_LENGTH_M])
    rvec, _ = cv2.Rodrigues(np.asarray(R, dtype=np.float64))
    pts, _ = cv2.projectPoints(axes, rvec, np.asarray(t, dtype=np.float64), camera.K, camera.opencv_distortion)
    pts = pts.reshape(-1, 2)
    if np.all(np.isfinite(pts)) and np.all(np.abs(pts) < 1e5):
        origin = tuple(int(round(v)) for v in pts[0])
        # Draw z, y, then x, so the "out of the face" axis stays on top.
        for k in (2, 1, 0):
            tip = tuple(int(round(v)) for v in pts[k + 1])
            cv2.arrowedLine(image_bgr, origin, tip, AXIS_COLOURS[k], 2, cv2.LINE_AA, tipLength=0.15)


def label_lines(track_id: str, R: np.ndarray, t: np.ndarray, extra: str = "") -> list[str]:
    """A head's label: its id and distance, its angles (msg/HeadPose.msg's), and `extra` if any."""
    yaw, pitch, roll = yaw_pitch_roll_deg(R, t)
    return [f"{track_id}  z {t[2]:.2f} m", f"y{yaw:+.0f} p{pitch:+.0f} r{roll:+.0f}"] + ([extra] if extra else [])


def label_size(lines: list[str]) -> tuple[int, int]:
    """(width, height) pixels that the label's ink covers."""
    width = max(cv2.getTextSize(text, LABEL_FONT, LABEL_SCALE, LABEL_OUTLINE)[0][0] for text in lines)
    return width, LABEL_ASCENT_PX + LABEL_LINE_PX * (len(lines) - 1) + LABEL_DESCENT_PX


def place_labels(boxes: np.ndarray, sizes: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """Where each head's label goes: (n, 4) int x0, y0, x1, y1 pixels (x1, y1 exclusive).

    boxes: (n, 4) the faces' boxes x0, y0, x1, y1 pixels; sizes: (n, 2) each label's width, height;
    image_size: (width, height). A label goes below its box, left-aligned (above the box when
    there is no room below), moved inside the image. Labels are then placed from the top down, each
    moved off those already placed by as little as it takes, up or down before sideways. They stay
    inside the image (unless one is larger than it) and do not overlap unless the image is full.
    """
    W, H = image_size
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    sizes = np.asarray(sizes, dtype=np.int64).reshape(-1, 2)
    n = len(boxes)

    def inside(x, y, w, h) -> tuple[np.ndarray, np.ndarray]:
        """Top-left corners (arrays) moved so that a w x h label lies inside the image."""
        return (np.clip(np.round(x), 0, np.maximum(0, W - w)).astype(np.int64),
                np.clip(np.round(y), 0, np.maximum(0, H - h)).astype(np.int64))

    # Below the box first: the axes are drawn from the sellion, which sits in the box's upper half.
    below = boxes[:, 3] + LABEL_GAP_PX
    above = boxes[:, 1] - LABEL_GAP_PX - sizes[:, 1]
    wanted = np.column_stack(inside(boxes[:, 0], np.where(below + sizes[:, 1] <= H, below, above),
                                    sizes[:, 0], sizes[:, 1]))
    rects = np.zeros((n, 4), np.int64)
    placed = np.zeros((0, 4), np.int64)
    for i in np.lexsort((wanted[:, 0], wanted[:, 1])):
        (px, py), (w, h) = wanted[i], sizes[i]
        # Candidates: where it wants to be, and flush beside (after a gap) each label already placed.
        xs = np.concatenate([[px], placed[:, 2] + LABEL_GAP_PX, placed[:, 0] - LABEL_GAP_PX - w])
        ys = np.concatenate([[py], placed[:, 3] + LABEL_GAP_PX, placed[:, 1] - LABEL_GAP_PX - h])
        x, y = inside(*(a.ravel() for a in np.meshgrid(xs, ys)), w, h)
        free = ~np.any((x[:, None] < placed[None, :, 2]) & (placed[None, :, 0] < x[:, None] + w)
                       & (y[:, None] < placed[None, :, 3]) & (placed[None, :, 1] < y[:, None] + h), axis=1)
        if free.any():
            cost = np.where(free, np.abs(y - py) + 2 * np.abs(x - px), np.iinfo(np.int64).max)
            px, py = x[np.argmin(cost)], y[np.argmin(cost)]
        rects[i] = (px, py, px + w, py + h)
        placed = np.vstack([placed, rects[i]])
    return rects


def draw_label(image_bgr: np.ndarray, lines: list[str], rect) -> None:
    """Draw a label's lines in place, their ink within rect (x0, y0, x1, y1) as place_labels gave it."""
    for i, text in enumerate(lines):
        org = (int(rect[0]), int(rect[1]) + LABEL_ASCENT_PX + LABEL_LINE_PX * i)
        cv2.putText(image_bgr, text, org, LABEL_FONT, LABEL_SCALE, (0, 0, 0), LABEL_OUTLINE, cv2.LINE_AA)
        cv2.putText(image_bgr, text, org, LABEL_FONT, LABEL_SCALE, (255, 255, 255), 1, cv2.LINE_AA)


GAZE_COLOUR = (255, 0, 255)
ATTENDED_COLOUR = (0, 255, 0)


def annotate(image_rgb: np.ndarray, camera: CameraModel, heads, attention=None) -> np.ndarray:
    """A BGR copy of the image with every head drawn, and what each one attends.

    heads: core.engine.HeadPose list; attention: {face id: core.attention.FaceAttention}
    (optional). An attended target in front of the camera gets a ring and a line from the face's
    sellion; the label says the target and for how long.
    """
    canvas = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)
    labels = []
    for h in heads:
        a = (attention or {}).get(h.track_id)
        extra = ""
        if a is not None:
            extra = f"-> {a.target} {a.dwell_s:.1f}s" if a.target else "-> (none)"
            if a.mutual_gaze:
                extra += " mutual"
        draw_head(canvas, camera, h.box, h.R, h.t)
        if a is not None and a.attended is not None:
            _draw_attended(canvas, camera, np.asarray(h.t), a.attended.position)
        labels.append(label_lines(h.track_id, h.R, h.t, extra))
    # Labels last, placed together, so that no box, axis or other label covers one.
    if labels:
        rects = place_labels(np.array([h.box for h in heads], dtype=np.float64),
                             np.array([label_size(lines) for lines in labels]), (canvas.shape[1], canvas.shape[0]))
        for lines, rect in zip(labels, rects):
            draw_label(canvas, lines, rect)
    return canvas


def _draw_attended(canvas: np.ndarray, camera: CameraModel, start: np.ndarray, end: np.ndarray) -> None:
    pts, _ = cv2.projectPoints(np.array([start, end], dtype=np.float64), np.zeros(3), np.zeros(3),
                               camera.K, camera.opencv_distortion)
    (u0, v0), (u1, v1) = pts.reshape(2, 2)
    if end[2] <= 0.05 or not np.all(np.isfinite(pts)) or np.any(np.abs(pts) > 1e5):
        return  # behind the camera (the robot itself, when it is the camera): the label says it
    cv2.line(canvas, (int(u0), int(v0)), (int(u1), int(v1)), GAZE_COLOUR, 2, cv2.LINE_AA)
    cv2.circle(canvas, (int(u1), int(v1)), 12, ATTENDED_COLOUR, 2, cv2.LINE_AA)
