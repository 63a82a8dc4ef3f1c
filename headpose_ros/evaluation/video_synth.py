"""Video with exact ground truth: the fitted real faces of `synth` (evaluation.synth), moving at 15 Hz.

Scenarios (each a sequence of frames, every head's truth in every frame):

- turn: one person at 1.1 m turning from 0 to +90 to -90 degrees of yaw and
  back (one cycle in 10 s) while nodding +-20 degrees of pitch;
- walk: one person walking from 4.5 m to 0.8 m and back (12 s), looking
  roughly at the camera: heads from about 20 to 110 px wide;
- three: three people at 1.4, 2.0 and 2.6 m; the nearest walks across in
  front of the one in the middle (who is hidden for about a second), the
  farthest looks around;
- glance: one person at 1.2 m who looks at the camera and away (50 degrees)
  in turn, holding each for 1.5 s;
- still: one person at 1.0 m holding still (10 s); only the sensor noise
  changes, which is what frame-to-frame jitter measures.

Each sequence has one background (a room does not change) and one exposure;
every frame gets its own sensor noise. A head's truth: the face frame in the
camera optical frame (R, t; REP-155, origin at the sellion), its box (the
face's landmarks projected), the angles relative to the viewing ray, and the
fraction of its face that is visible (inside the image, not covered by nearer
heads).

Output: ``frames/<sequence>/NNNNNN.png``, ``camera_info.yaml`` and
``labels.json`` (format headpose_ros.video/1: ``rate_hz`` and ``sequences``,
each with ``frames``, each with ``heads``).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from ..core.camera import CameraModel
from ..core.rotation import camera_from_yaw_pitch_roll_deg, yaw_pitch_roll_deg
from .render import TexturedFace
from .synth import NUM_LANDMARKS, SOURCE_PHOTOS, background, faceless_patches, source_faces

VIDEO_FORMAT = "headpose_ros.video/1"
SCENARIOS = ("turn", "walk", "three", "glance", "still")


@dataclass(frozen=True)
class VideoSettings:
    """What to render: image size and field of view, frame rate, sensor noise (grey levels), seed, and
    at most how many frames of each sequence (0: all; the first ones)."""

    width: int = 640
    height: int = 480
    fov_deg: float = 60.0
    rate_hz: float = 15.0
    noise: float = 2.0
    seed: int = 0
    max_frames: int = 0

    def camera(self) -> CameraModel:
        return CameraModel.from_field_of_view(self.width, self.height, self.fov_deg, "camera_optical_frame")


@dataclass(frozen=True)
class Pose:
    """A person at one instant: sellion position (3,) m in the camera frame, and angles (degrees,
    msg/HeadPose.msg's convention) relative to the line of sight from the camera to the sellion."""

    person: int
    position: tuple[float, float, float]
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0

    def rotation(self) -> np.ndarray:
        """(3, 3) the face frame in the camera optical frame."""
        return camera_from_yaw_pitch_roll_deg(self.yaw, self.pitch, self.roll, position=np.asarray(self.position))


def _wave(s: float, period: float, phase: float = 0.0) -> float:
    return math.sin(2 * math.pi * s / period + phase)


def scenario(name: str, rate_hz: float) -> list[list[Pose]]:
    """The poses of every person in every frame of one scenario (module docstring)."""
    def frames(seconds: float, at: Callable[[float], list[Pose]]) -> list[list[Pose]]:
        return [at(k / rate_hz) for k in range(int(round(seconds * rate_hz)))]

    if name == "turn":
        return frames(10, lambda s: [Pose(0, (0.0, 0.05, 1.1), 90 * _wave(s, 10), 20 * _wave(s, 2.5),
                                          5 * _wave(s, 4))])
    if name == "walk":
        return frames(12, lambda s: [Pose(1, (0.25 * _wave(s, 12), 0.08, 4.5 - 3.7 * math.sin(math.pi * s / 12)),
                                          12 * _wave(s, 4), 6 * _wave(s, 3), 0.0)])
    if name == "three":
        return frames(10, lambda s: [
            Pose(2, (-0.9 + 1.8 * s / 10, 0.02, 1.4), -15 + 30 * s / 10, 0.0, 0.0),   # walks across, in front
            Pose(3, (0.05, 0.0, 2.0), 10 * _wave(s, 5), -5.0, 0.0),                     # stays, is hidden a while
            Pose(4, (0.6, -0.05, 2.6), 40 * _wave(s, 6), 10 * _wave(s, 3), 0.0),       # looks around
        ])
    if name == "glance":
        def glance(s: float) -> float:
            phase = (s % 3.0) / 3.0  # 1.5 s at the camera, 1.5 s away, smooth 0.3 s turns
            x = min(1.0, max(0.0, (phase - 0.4) / 0.1)) - min(1.0, max(0.0, (phase - 0.9) / 0.1))
            return 50.0 * (0.5 - 0.5 * math.cos(math.pi * x))
        return frames(10, lambda s: [Pose(5, (0.1, 0.0, 1.2), glance(s), 0.0, 0.0)])
    if name == "still":
        return frames(10, lambda s: [Pose(0, (0.0, 0.0, 1.0), 10.0, -5.0, 0.0)])
    raise ValueError(f"unknown scenario '{name}' (choose {', '.join(SCENARIOS)})")


def face_region(face: TexturedFace, R: np.ndarray, t: np.ndarray,
                camera: CameraModel) -> tuple[np.ndarray, np.ndarray, float]:
    """The face itself (the hull of its projected landmarks): its mask (h, w) bool within the image,
    its box (4,) px (which may reach outside the image) and its whole area, px²."""
    px = face.project(R, t, camera)[:NUM_LANDMARKS]
    mask = np.zeros((camera.height, camera.width), np.uint8)
    hull = cv2.convexHull(np.round(px).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1)
    return mask.astype(bool), np.concatenate([px.min(axis=0), px.max(axis=0)]), float(cv2.contourArea(hull))


def render_frame(faces: list[TexturedFace], poses: list[Pose], camera: CameraModel, backdrop: np.ndarray,
                 exposure: tuple[float, float], noise: float, rng: np.random.Generator) -> tuple[np.ndarray, list[dict]]:
    """One frame (h, w, 3) uint8 RGB with every pose drawn far to near, and each head's truth."""
    image = backdrop.copy()
    masks = {}
    for k in sorted(range(len(poses)), key=lambda k: -poses[k].position[2]):
        p = poses[k]
        image, masks[k] = faces[p.person % len(faces)].render(p.rotation(), np.asarray(p.position), camera, image)
    gain, offset = exposure
    out = image.astype(np.float32) * gain + offset + rng.normal(0.0, noise, image.shape)
    heads = []
    for k, p in enumerate(poses):
        R, t = p.rotation(), np.asarray(p.position, dtype=np.float64)
        region, box, area = face_region(faces[p.person % len(faces)], R, t, camera)
        nearer = np.zeros_like(region)
        for j, q in enumerate(poses):
            if q.position[2] < p.position[2]:
                nearer |= masks[j]
        # Visible: inside the image and not covered by a nearer head.
        visible = min(1.0, float((region & ~nearer).sum() / area)) if area > 0 else 0.0
        yaw, pitch, roll = yaw_pitch_roll_deg(R)
        heads.append({"person": int(p.person), "R": np.round(R, 8).tolist(), "t": np.round(t, 6).tolist(),
                      "box": np.round(box, 2).tolist(), "visible": round(visible, 4),
                      "yaw": round(float(yaw), 4), "pitch": round(float(pitch), 4), "roll": round(float(roll), 4),
                      "view_yaw": round(p.yaw, 4), "view_pitch": round(p.pitch, 4), "view_roll": round(p.roll, 4)})
    return np.clip(out, 0, 255).astype(np.uint8), heads


def synthesize_video(out: Path, settings: VideoSettings, photo: Callable[[str], np.ndarray],
                     scenarios=SCENARIOS, names=SOURCE_PHOTOS, log=print) -> Path:
    """Render the scenarios into `out` (module docstring); returns labels.json's path."""
    import yaml

    rng = np.random.default_rng(settings.seed)
    faces = [face for _, face in source_faces(photo, names, log)]
    patches = faceless_patches(photo, names)
    camera = settings.camera()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "camera_info.yaml").write_text(yaml.safe_dump(camera.to_yaml_dict("synth_video"), sort_keys=False))
    sequences = []
    for name in scenarios:
        folder = out / "frames" / name
        folder.mkdir(parents=True, exist_ok=True)
        backdrop = background(rng, settings.width, settings.height, patches)
        exposure = (float(rng.uniform(0.85, 1.15)), float(rng.uniform(-10, 10)))
        frames = []
        poses_per_frame = scenario(name, settings.rate_hz)
        for k, poses in enumerate(poses_per_frame[:settings.max_frames or None]):
            image, heads = render_frame(faces, poses, camera, backdrop, exposure, settings.noise, rng)
            path = f"frames/{name}/{k:06d}.png"
            cv2.imwrite(str(out / path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            frames.append({"image": path, "stamp": round(k / settings.rate_hz, 6), "heads": heads})
        log(f"synth --video: {name}: {len(frames)} frames")
        sequences.append({"name": name, "frames": frames})
    labels = {"format": VIDEO_FORMAT, "name": out.name, "camera_info": "camera_info.yaml", "rate_hz": settings.rate_hz,
              "angles": "headpose_ros", "reference": "camera", "settings": asdict(settings),
              "protocol": (f"headpose-ros synth --video: {', '.join(scenarios)} at {settings.rate_hz:g} Hz, "
                           f"{settings.width}x{settings.height}, {settings.fov_deg:g} deg pinhole; exact truth"),
              "sequences": sequences}
    (out / "labels.json").write_text(json.dumps(labels))
    return out / "labels.json"
