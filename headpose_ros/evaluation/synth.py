"""Ground truth made the way 300W-LP was made: real faces, fitted in 3D, re-rendered at known poses.

1. Fit: on a real, near-frontal photo the face mesh gives 468 landmarks in 3D
   (pixels, weak perspective). The metric face model (core.face_model) is
   aligned to them by a similarity transform over its rigid landmarks; the
   landmarks, brought back through that transform, are this person's face in
   metres, in the model's face frame. The origin is then moved to this
   person's sellion (landmark 168).
2. Texture: each vertex keeps its pixel in the photo (evaluation.render).
3. Re-render through a known pinhole camera at a known rotation and
   position, over a varied background, with photometric changes and noise.

The ground-truth face frame is REP-155's: origin at the sellion, x out of the
face, y to the person's left, z up, with the axes of the canonical face model
laid on the fitted face by that least-squares alignment. Poses are drawn
relative to the viewing ray through the sellion (what the camera sees:
yaw up to ±75°, pitch ±35°, roll ±30° by default; each uniform), then turned
into the camera optical frame. The hard set (HARD_VIEWS, ``headpose-ros synth
--hard``) draws yaw up to ±90° and pitch up to ±45°, where real photos
(AFLW2000-3D) show the backends' errors: a third of its faces are profiles
(|yaw| 60-90° in this package's angles, which keep a turned head's yaw
whatever its pitch; in the 300W-LP angles of eval's |yaw| buckets, which
move part of it into pitch, one in seven, and half of the faces beyond ±35°
of pitch). Labels give the camera-frame rotation R, the sellion
position t in metres, the angles in this package's convention (msg/HeadPose.msg),
the face's box and the view angles.

Around the face, two rings of the photo (hair, ears, neck and whatever is
behind them) curve back like the sides of a head (evaluation.render.with_surround):
a bare face mask lacks the outline the face detector keys on. It is still
not a whole head: at large yaw the far side and the back of the head are
missing, and the near side is the photo's side stretched. Source photos are
the public-domain and US-government portraits that ship in registry packages
(see headpose_ros.assets); the output is written where the user asks and is
not part of the package.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from ..core.camera import CameraModel
from ..core.face_model import SELLION, FaceModel, load_face_model, similarity_align
from ..core.headpose_net import camera_from_ray
from ..core.rotation import FACING_CAMERA, angle_between_deg, camera_from_yaw_pitch_roll_deg, yaw_pitch_roll_deg
from ..pipeline import face_stages
from .render import TexturedFace, frontal_triangles, textured_face, with_surround

# Frontal, clearly lit faces in photos that ship in registry packages (public domain / US government).
SOURCE_PHOTOS = ("astronaut", "obama", "obama2", "obama3", "biden", "grace_hopper")
NUM_LANDMARKS = 468
# A source face must face the camera within this angle to give a full texture.
MAX_SOURCE_ANGLE_DEG = 20.0
# The hard set's view ranges (degrees; module docstring): SynthSettings(**HARD_VIEWS).
HARD_VIEWS = {"max_yaw_deg": 90.0, "max_pitch_deg": 45.0}


@dataclass(frozen=True)
class SynthSettings:
    """What to render. Angles in degrees (this package's convention, relative to the viewing ray), metres, pixels."""

    count: int = 300
    width: int = 640
    height: int = 480
    fov_deg: float = 60.0
    max_yaw_deg: float = 75.0
    max_pitch_deg: float = 35.0
    max_roll_deg: float = 30.0
    min_depth_m: float = 0.5
    max_depth_m: float = 2.0
    max_noise: float = 4.0  # standard deviation of the added sensor noise, grey levels
    seed: int = 0

    def camera(self) -> CameraModel:
        return CameraModel.from_field_of_view(self.width, self.height, self.fov_deg, "camera_optical_frame")


def fit_face(mesh_points: np.ndarray, model: FaceModel) -> tuple[FaceModel, float]:
    """This person's metric face from the face mesh's 3D landmarks.

    mesh_points: (468, 3) u, v, depth in pixels (core.landmarks), weak perspective.
    Returns the fitted FaceModel (metres, face frame, origin at this person's
    sellion) and the angle in degrees between the photo's face and a face
    looking straight into the camera.
    """
    obs = np.asarray(mesh_points, dtype=np.float64)
    rigid = model.rigid_indices
    s, R, t = similarity_align(obs[rigid], model.points[rigid])
    points = (obs - t) @ R / s  # R.T @ (obs - t) / s, row-wise
    points -= points[SELLION]
    # Mesh coordinates are u right, v down, depth away from the camera: the optical frame's axes.
    facing = angle_between_deg(R, FACING_CAMERA)
    return FaceModel(points=points, mirror=model.mirror, rigid=model.rigid), facing


def source_faces(photo: Callable[[str], np.ndarray], names=SOURCE_PHOTOS, log=print) -> list[tuple[str, TexturedFace]]:
    """Fitted, textured faces of the near-frontal faces in the named photos."""
    detector, mesh = face_stages()
    model = load_face_model()
    triangles = frontal_triangles(model)
    faces = []
    for name in names:
        image = photo(name)
        found = mesh.estimate(image, detector.detect(image))
        for k, points in enumerate(found.points):
            if found.presence[k] < 0.9:
                continue
            fitted, facing = fit_face(points, model)
            if facing > MAX_SOURCE_ANGLE_DEG:
                log(f"synth: {name} face {k} skipped: turned {facing:.0f} deg from the camera")
                continue
            # The canonical model's triangles: the same topology on every face (a Delaunay
            # triangulation of a fitted face would follow its folds, e.g. at the lips).
            faces.append((f"{name}#{k}", with_surround(textured_face(image, points, fitted, triangles))))
    if not faces:
        raise ValueError(f"no near-frontal face found in {', '.join(names)}")
    return faces


def background(rng: np.random.Generator, width: int, height: int, patches: list[np.ndarray]) -> np.ndarray:
    """(height, width, 3) uint8 RGB: smooth colour noise, clutter, a gradient or a mosaic of photo patches."""
    kind = rng.integers(4 if patches else 3)
    if kind == 0:  # smooth colour noise
        small = rng.integers(0, 256, (rng.integers(3, 12), rng.integers(4, 16), 3)).astype(np.uint8)
        return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    if kind == 1:  # clutter: rectangles, circles and lines
        image = np.full((height, width, 3), rng.integers(0, 256, 3), np.uint8)
        for _ in range(rng.integers(10, 40)):
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            x, y = int(rng.integers(width)), int(rng.integers(height))
            size = int(rng.integers(10, 150))
            shape = rng.integers(3)
            if shape == 0:
                cv2.rectangle(image, (x, y), (x + size, y + int(rng.integers(10, 150))), colour, -1)
            elif shape == 1:
                cv2.circle(image, (x, y), size // 2, colour, -1)
            else:
                cv2.line(image, (x, y), (int(rng.integers(width)), int(rng.integers(height))), colour,
                         int(rng.integers(1, 8)))
        return image
    if kind == 2:  # a linear gradient between two colours
        a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        angle = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:height, 0:width]
        s = (np.cos(angle) * xx / width + np.sin(angle) * yy / height)
        s = (s - s.min()) / max(np.ptp(s), 1e-9)
        return (a + (b - a) * s[..., None]).astype(np.uint8)
    image = np.zeros((height, width, 3), np.uint8)  # a 2x2 mosaic of photo patches without faces
    for r in range(2):
        for c in range(2):
            patch = patches[rng.integers(len(patches))]
            y0, x0 = r * height // 2, c * width // 2
            h, w = (r + 1) * height // 2 - y0, (c + 1) * width // 2 - x0
            image[y0:y0 + h, x0:x0 + w] = cv2.resize(patch, (w, h), interpolation=cv2.INTER_AREA)
    return image


def faceless_patches(photo: Callable[[str], np.ndarray], names=SOURCE_PHOTOS, size: int = 96) -> list[np.ndarray]:
    """Square patches of the photos that hold no face (clear of every detected face box)."""
    detector, _ = face_stages()
    patches = []
    for name in names:
        image = photo(name)
        boxes = detector.detect(image).boxes
        # Face boxes grown to cover hair and neck too.
        grown = np.column_stack([boxes[:, :2] - (boxes[:, 2:] - boxes[:, :2]),
                                 boxes[:, 2:] + (boxes[:, 2:] - boxes[:, :2])])
        H, W = image.shape[:2]
        for y in range(0, H - size + 1, size):
            for x in range(0, W - size + 1, size):
                if not np.any((grown[:, 0] < x + size) & (grown[:, 2] > x) & (grown[:, 1] < y + size) & (grown[:, 3] > y)):
                    patches.append(image[y:y + size, x:x + size])
    return patches


def photometric(image: np.ndarray, rng: np.random.Generator, max_noise: float) -> np.ndarray:
    """Random gain, offset, slight blur and Gaussian sensor noise."""
    out = image.astype(np.float32) * rng.uniform(0.7, 1.3) + rng.uniform(-20, 20)
    if rng.random() < 0.3:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.2))
    out += rng.normal(0.0, rng.uniform(0.0, max_noise), out.shape)
    return np.clip(out, 0, 255).astype(np.uint8)


@dataclass
class Rendered:
    """One synthetic image and its truth (camera optical frame; metres; pixels)."""

    image: np.ndarray
    R: np.ndarray
    t: np.ndarray
    box: np.ndarray
    view_ypr_deg: np.ndarray


def render_sample(face: TexturedFace, settings: SynthSettings, rng: np.random.Generator,
                  patches: list[np.ndarray], tries: int = 20) -> Rendered | None:
    """A random pose of `face` whose mask lies inside the image with a margin; None after `tries`."""
    camera = settings.camera()
    margin = 4
    for _ in range(tries):
        view = np.array([rng.uniform(-settings.max_yaw_deg, settings.max_yaw_deg),
                         rng.uniform(-settings.max_pitch_deg, settings.max_pitch_deg),
                         rng.uniform(-settings.max_roll_deg, settings.max_roll_deg)])
        depth = rng.uniform(settings.min_depth_m, settings.max_depth_m)
        u, v = rng.uniform(0.15, 0.85) * settings.width, rng.uniform(0.2, 0.8) * settings.height
        to_camera = camera_from_ray(camera, u, v)
        ray = to_camera[:, 2]
        t = ray * depth / ray[2]
        R = to_camera @ camera_from_yaw_pitch_roll_deg(*view)
        image, mask = face.render(R, t, camera, background(rng, settings.width, settings.height, patches))
        if not mask.any():
            continue
        # The box of the face itself (the mesh's landmarks), not of its surround.
        px = face.project(R, t, camera)[:NUM_LANDMARKS]
        box = np.concatenate([px.min(axis=0), px.max(axis=0)])
        if box[0] < margin or box[1] < margin or box[2] > settings.width - margin or box[3] > settings.height - margin:
            continue
        return Rendered(photometric(image, rng, settings.max_noise), R, t, box, view)
    return None


def synthesize(out: Path, settings: SynthSettings, photo: Callable[[str], np.ndarray],
               names=SOURCE_PHOTOS, log=print) -> Path:
    """Write `settings.count` images, camera_info.yaml and labels.json (datasets.FOLDER_FORMAT) into `out`."""
    import yaml

    rng = np.random.default_rng(settings.seed)
    faces = source_faces(photo, names, log)
    patches = faceless_patches(photo, names)
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    camera = settings.camera()
    (out / "camera_info.yaml").write_text(yaml.safe_dump(camera.to_yaml_dict("synth"), sort_keys=False))
    samples = []
    for i in range(settings.count):
        source, face = faces[i % len(faces)]
        r = render_sample(face, settings, rng, patches)
        if r is None:
            log(f"synth: sample {i}: no pose of {source} fitted in the image; skipped")
            continue
        name = f"images/{i:06d}.png"
        cv2.imwrite(str(out / name), cv2.cvtColor(r.image, cv2.COLOR_RGB2BGR))
        yaw, pitch, roll = yaw_pitch_roll_deg(r.R)
        samples.append({"image": name, "yaw": round(float(yaw), 4), "pitch": round(float(pitch), 4),
                        "roll": round(float(roll), 4), "R": np.round(r.R, 8).tolist(),
                        "t": np.round(r.t, 6).tolist(), "box": r.box.tolist(),
                        "view_yaw": round(float(r.view_ypr_deg[0]), 4), "view_pitch": round(float(r.view_ypr_deg[1]), 4),
                        "view_roll": round(float(r.view_ypr_deg[2]), 4), "source": source})
    labels = {"name": out.name, "format": "headpose_ros.eval/1", "camera_info": "camera_info.yaml",
              "angles": "headpose_ros", "reference": "camera",
              "protocol": (f"headpose-ros synth: {len(samples)} renders of {len(faces)} fitted faces; "
                           f"view yaw ±{settings.max_yaw_deg:g}, pitch ±{settings.max_pitch_deg:g}, "
                           f"roll ±{settings.max_roll_deg:g} deg; depth {settings.min_depth_m:g}-"
                           f"{settings.max_depth_m:g} m; {settings.width}x{settings.height}, "
                           f"{settings.fov_deg:g} deg pinhole"),
              "settings": asdict(settings), "sources": [s for s, _ in faces], "samples": samples}
    (out / "labels.json").write_text(json.dumps(labels, indent=1))
    return out / "labels.json"
