"""The bench's frames: 640x480 with one or more copies of the astronaut's head (also soak's)."""

from __future__ import annotations

import math

import numpy as np


def bench_frame(faces: int = 1):
    """A 640x480 frame with `faces` copies of the astronaut's head, and its ideal 60 degree camera.

    One face: the demo's first frame. More: a grid of the head, cropped tight
    so each face is large enough for the detector (about 90 px wide for 6).
    """
    import cv2

    from ... import assets
    from ...core.camera import CameraModel
    from ..demo import DEMO_FOV_DEG, FRAME_SIZE, OPTICAL_FRAME, builtin_sequence

    photo = assets.read_photo("astronaut")
    head = photo[0:320, 56:456]
    camera = CameraModel.from_field_of_view(*FRAME_SIZE, DEMO_FOV_DEG, OPTICAL_FRAME)
    if faces == 1:
        return next(iter(builtin_sequence(head, 2))), camera
    w, h = FRAME_SIZE
    head = photo[30:230, 130:370]
    cols = math.ceil(math.sqrt(faces * w / h))
    rows = math.ceil(faces / cols)
    cw, ch = w // cols, h // rows
    scale = min(cw / head.shape[1], ch / head.shape[0])
    tile = cv2.resize(head, (int(head.shape[1] * scale), int(head.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    frame = np.full((h, w, 3), 40, np.uint8)
    for k in range(faces):
        r, c = divmod(k, cols)
        y, x = r * ch + (ch - tile.shape[0]) // 2, c * cw + (cw - tile.shape[1]) // 2
        frame[y:y + tile.shape[0], x:x + tile.shape[1]] = tile
    return frame, camera
