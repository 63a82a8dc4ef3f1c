"""The bench's video sequences: the demo's, and 3 or 6 faces that move, 640x480 at 15 Hz."""

from __future__ import annotations

import math

import numpy as np

RATE_HZ = 15.0


def demo_sequence(frames: int = 120):
    """The astronaut panned, rolled and mirrored (the demo's former built-in sequence, kept for comparable bench
    figures) and its ideal 60 degree camera."""
    from ... import assets
    from ...core.camera import CameraModel
    from ..demo import DEMO_FOV_DEG, FRAME_SIZE, OPTICAL_FRAME, builtin_sequence

    photo = assets.read_photo("astronaut")
    camera = CameraModel.from_field_of_view(*FRAME_SIZE, DEMO_FOV_DEG, OPTICAL_FRAME)
    return np.stack(list(builtin_sequence(photo[0:320, 56:456], frames))), camera


def moving_sequence(faces: int, frames: int = 120):
    """`faces` copies of the astronaut's head on a grid, each drifting on its own ellipse (up to 10% of its
    cell) and rolling up to 12 degrees, out of phase: no two frames alike, every face always whole."""
    import cv2

    from ... import assets
    from ...core.camera import CameraModel
    from ..demo import DEMO_FOV_DEG, FRAME_SIZE, OPTICAL_FRAME

    photo = assets.read_photo("astronaut")
    head = photo[40:210, 150:350]  # hair to chin: the face fills most of it
    w, h = FRAME_SIZE
    cols = math.ceil(math.sqrt(faces * w / h))
    rows = math.ceil(faces / cols)
    cw, ch = w // cols, h // rows
    scale = 0.85 * min(cw / head.shape[1], ch / head.shape[0])
    out = np.empty((frames, h, w, 3), np.uint8)
    for i in range(frames):
        frame = np.full((h, w, 3), 40, np.uint8)
        for k in range(faces):
            r, c = divmod(k, cols)
            phase = 2 * math.pi * (i / frames * 2 + k / faces)
            cx = c * cw + cw / 2 + 0.1 * cw * math.cos(phase)
            cy = r * ch + ch / 2 + 0.1 * ch * math.sin(phase)
            M = cv2.getRotationMatrix2D((head.shape[1] / 2, head.shape[0] / 2), 12 * math.sin(phase), scale)
            M[0, 2] += cx - head.shape[1] / 2
            M[1, 2] += cy - head.shape[0] / 2
            warped = cv2.warpAffine(head, M, (w, h), borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
            mask = cv2.warpAffine(np.full(head.shape[:2], 255, np.uint8), M, (w, h)) > 0
            frame[mask] = warped[mask]
        out[i] = frame
    camera = CameraModel.from_field_of_view(w, h, DEMO_FOV_DEG, OPTICAL_FRAME)
    return out, camera
