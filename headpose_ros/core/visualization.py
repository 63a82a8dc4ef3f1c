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


def draw_head(image_bgr: np.ndarray, camera: CameraModel, track_id: str, box, R: np.ndarray, t: np.ndarray,
              label_extra: str = "") -> None:
    """Draw one head in place on a BGR image.

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
    yaw, pitch, roll = yaw_pitch_roll_deg(R, t)
    lines = [f"{track_id}  z {t[2]:.2f} m", f"y{yaw:+.0f} p{pitch:+.0f} r{roll:+.0f}"]
    if label_extra:
        lines.append(label_extra)
    # Below the box: the axes are drawn from the sellion, which sits in the box's upper half.
    for i, text in enumerate(lines):
        org = (x0, min(image_bgr.shape[0] - 4, y1 + 16 + 16 * i))
        cv2.putText(image_bgr, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(image_bgr, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)


GAZE_COLOUR = (255, 0, 255)
ATTENDED_COLOUR = (0, 255, 0)


def annotate(image_rgb: np.ndarray, camera: CameraModel, heads, attention=None) -> np.ndarray:
    """A BGR copy of the image with every head drawn, and what each one attends.

    heads: core.engine.HeadPose list; attention: {face id: core.attention.FaceAttention}
    (optional). An attended target in front of the camera gets a ring and a line from the face's
    sellion; the label says the target and for how long.
    """
    canvas = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)
    for h in heads:
        a = (attention or {}).get(h.track_id)
        extra = ""
        if a is not None:
            extra = f"-> {a.target} {a.dwell_s:.1f}s" if a.target else "-> (none)"
            if a.mutual_gaze:
                extra += " mutual"
        draw_head(canvas, camera, h.track_id, h.box, h.R, h.t, extra)
        if a is not None and a.attended is not None:
            _draw_attended(canvas, camera, np.asarray(h.t), a.attended.position)
    return canvas


def _draw_attended(canvas: np.ndarray, camera: CameraModel, start: np.ndarray, end: np.ndarray) -> None:
    pts, _ = cv2.projectPoints(np.array([start, end], dtype=np.float64), np.zeros(3), np.zeros(3),
                               camera.K, camera.opencv_distortion)
    (u0, v0), (u1, v1) = pts.reshape(2, 2)
    if end[2] <= 0.05 or not np.all(np.isfinite(pts)) or np.any(np.abs(pts) > 1e5):
        return  # behind the camera (the robot itself, when it is the camera): the label says it
    cv2.line(canvas, (int(u0), int(v0)), (int(u1), int(v1)), GAZE_COLOUR, 2, cv2.LINE_AA)
    cv2.circle(canvas, (int(u1), int(v1)), 12, ATTENDED_COLOUR, 2, cv2.LINE_AA)
