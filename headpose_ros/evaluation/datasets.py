"""Head-pose datasets with ground truth, read into one form: a list of Sample.

Readers:

- ``read_aflw2000(folder)``: AFLW2000-3D (``imageNNNNN.jpg`` + ``imageNNNNN.mat``
  with ``Pose_Para`` = pitch, yaw, roll (radians), tx, ty, tz, scale and the
  68 fitted landmarks ``pt3d_68``; ``pt2d`` holds AFLW's 21 hand-marked points,
  -1 where hidden). Standard protocol of the published tables: a face
  with any |angle| > 99 degrees is dropped (31 of the 2000). Box: the face box
  the package's detector would give, made from the 68 landmarks
  (``detector_box_from_68``).
- ``read_biwi(path)``: BIWI Kinect Head Pose, either as the raw database
  (``NN/frame_XXXXX_rgb.png`` + ``frame_XXXXX_pose.txt``, intrinsics from
  ``NN/rgb.cal``) or as the cropped-face file most papers evaluate on
  (FSA-Net's ``BIWI_noTrack.npz``: 64x64 crops with margin, keys ``image`` and
  ``pose`` = yaw, pitch, roll in degrees). Protocol: |angle| > 99 dropped.
- ``read_folder(folder)``: this package's generic format, a folder of images
  with ``labels.json`` or ``labels.csv`` (written by ``headpose-ros synth``;
  see FOLDER_FORMAT below).

Truth is a rotation, with what it is relative to:

- ``reference="camera"``: the face frame (REP-155) in the camera optical
  frame, under perspective (calibrated datasets, renders);
- ``reference="ray"``: the face relative to the viewing ray through it, as a
  weak-perspective (scaled orthographic) fit gives it (AFLW2000) or as a
  centred crop shows it (BIWI crops). The estimate is then made ray-relative
  the same way before comparing (see metrics).

Angles are compared in the convention the published tables use (300W-LP /
AFLW2000, core.models.HOPENET_CONVENTION).

A sample's box, where the dataset labels one, picks the face to score among
those the detector found, and is the face given to the engine in the
labelled-box protocol (see evaluation.runner); ``Dataset.boxes`` says how
the boxes were made.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..core.camera import CameraModel, CameraModelError
from ..core.models import HOPENET_CONVENTION
from ..core.rotation import camera_from_yaw_pitch_roll_deg

# 68-point (iBUG / 300W) landmark indices: the eye contours (person's right eye first) and the
# middle of the upper and lower inner lip.
IBUG_RIGHT_EYE, IBUG_LEFT_EYE = slice(36, 42), slice(42, 48)
IBUG_INNER_LIPS = (62, 66)
# The face-mesh landmark at each of the 68 iBUG positions, in their order: jaw (person's right to
# left), brows, nose, eyes, outer and inner lips; mirror-symmetric (core.face_model's mirror column).
IBUG68_IN_FACE_MESH = (127, 234, 93, 132, 58, 172, 136, 150, 152, 379, 365, 397, 288, 361, 323, 454, 356,
                       70, 63, 105, 66, 107, 336, 296, 334, 293, 300,
                       168, 197, 5, 4, 75, 97, 2, 326, 305,
                       33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
                       61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,
                       78, 82, 13, 312, 308, 317, 14, 87)
# A BlazeFace box from 68 landmarks, built as core.landmarks.box_from_landmarks builds it from the
# face mesh's 468: a square whose side is DETECTOR_BOX_PER_68_HEIGHT times the 68 points' height
# across the eye line (brows to chin), centred DETECTOR_BOX_BELOW_68_EYES_MOUTH sides below the
# centroid of the two eye centres and the mouth centre, along the face's own down axis. Measured on
# the package's sample photos (every face with a face-mesh presence of 0.9 or more, 25 in the photos
# and their mirror images), the 68 points being the face mesh's landmarks at the iBUG positions
# (IBUG68_IN_FACE_MESH), against the full-range detector's boxes of the same faces: side 1.19 (sd
# 4.4%), centre 0.027 sides below (sd 0.036), nothing across the face (mean -0.013, sd 0.034).
# test/test_eval_protocols.py measures it again. Not fitted on any labelled dataset; on AFLW2000-3D
# (measured, 273 faces of aflw2000_dev) these boxes and the detector's overlap by IoU 0.83 on average.
DETECTOR_BOX_PER_68_HEIGHT = 1.19
DETECTOR_BOX_BELOW_68_EYES_MOUTH = 0.027
# The published protocols drop faces whose labels exceed this (degrees, any angle).
PROTOCOL_MAX_ANGLE_DEG = 99.0
# Datasets without intrinsics get an ideal camera whose focal length is the image
# width (a 53 degree horizontal field of view): the choice of the published
# landmarks + PnP baselines. `headpose-ros eval --fov` overrides it.
NOMINAL_FOV_DEG = math.degrees(2 * math.atan(0.5))
REFERENCES = ("camera", "ray")
ANGLE_CONVENTIONS = ("headpose_ros", "300w_lp")

FOLDER_FORMAT = """\
labels.json: {"camera_info": "camera_info.yaml",   optional; camera_calibration YAML for every image
              "angles": "headpose_ros",             convention of yaw/pitch/roll: headpose_ros (msg/HeadPose.msg)
                                                    or 300w_lp (AFLW2000 / 300W-LP); default headpose_ros
              "reference": "camera",                camera (optical frame, perspective) or ray; default camera
              "samples": [{"image": "images/000000.png", "yaw": 0, "pitch": 0, "roll": 0,
                           "R": [[...], [...], [...]],   optional: face frame in the camera frame; wins over angles
                           "t": [x, y, z],               optional: sellion position, metres, camera frame
                           "box": [x0, y0, x1, y1],      optional: the face, pixels (picks the face to score;
                                                         the face given to the engine in eval --protocol box)
                           "camera_info": "cam.yaml"}]}  optional: this image's own calibration
labels.csv:   header image,yaw,pitch,roll and optionally tx,ty,tz (metres), x0,y0,x1,y1 (box),
              fx,fy,cx,cy (pixels); angles in the headpose_ros convention, camera reference;
              camera_info.yaml beside it, when present, is the camera of rows without fx."""


class DatasetError(ValueError):
    """A dataset that cannot be read; the message names the file and what is wrong."""


@dataclass
class Sample:
    """One image and the true pose of one face in it.

    name: the image's path relative to the dataset root (or an index).
    image: the image file, or an (h, w, 3) uint8 RGB array.
    camera: the camera of this image (calibrated, or nominal: see `nominal_camera`).
    R: (3, 3) true orientation of the face frame, relative to `reference`.
    reference: "camera" or "ray" (module docstring).
    t: (3,) true sellion position in the camera optical frame, metres, or None.
    box: (4,) x0, y0, x1, y1 pixels of the face, or None.
    """

    name: str
    image: Path | np.ndarray
    camera: CameraModel
    R: np.ndarray
    reference: str = "camera"
    t: np.ndarray | None = None
    box: np.ndarray | None = None
    nominal_camera: bool = False

    def read(self) -> np.ndarray:
        """(h, w, 3) uint8 RGB."""
        if isinstance(self.image, np.ndarray):
            return self.image
        bgr = cv2.imread(str(self.image), cv2.IMREAD_COLOR)
        if bgr is None:
            raise DatasetError(f"{self.image}: not an image OpenCV can read")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    @property
    def truth_angles_deg(self) -> np.ndarray:
        """(3,) yaw, pitch, roll of R in the published (300W-LP) convention."""
        return HOPENET_CONVENTION.angles_deg(self.R)


@dataclass
class Dataset:
    """Samples and how they were read.

    name: e.g. "AFLW2000-3D".
    protocol: one line on what was kept and how truth is defined.
    dropped: images left out by the protocol, with the reason.
    boxes: how the samples' boxes were made, "" when not every sample has one.
    """

    name: str
    samples: list[Sample]
    protocol: str
    dropped: list[tuple[str, str]] = field(default_factory=list)
    boxes: str = ""


def nominal_camera(width: int, height: int, fov_deg: float = NOMINAL_FOV_DEG) -> CameraModel:
    return CameraModel.from_field_of_view(width, height, fov_deg, "camera_optical_frame")


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image file, read from its pixels."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DatasetError(f"{path}: not an image OpenCV can read")
    return image.shape[1], image.shape[0]


def within_protocol(angles_deg) -> bool:
    return bool(np.all(np.abs(np.asarray(angles_deg)) <= PROTOCOL_MAX_ANGLE_DEG))


# --- AFLW2000-3D -------------------------------------------------------------------------------


def read_aflw2000(folder: str | Path, fov_deg: float = NOMINAL_FOV_DEG, limit: int | None = None) -> Dataset:
    """AFLW2000-3D: every ``*.mat`` with its ``.jpg`` in `folder`.

    Truth: ``Pose_Para`` pitch, yaw, roll (radians) in the 300W-LP convention,
    relative to the viewing ray (the 3DMM fit is weak-perspective). Box: the
    detector's box from ``pt3d_68`` (``detector_box_from_68``; None without
    them). Camera: nominal, `fov_deg`.
    """
    from scipy.io import loadmat

    folder = Path(folder)
    mats = sorted(folder.glob("*.mat"))
    if not mats:
        raise DatasetError(f"{folder}: no .mat files (expected AFLW2000-3D's imageNNNNN.jpg + imageNNNNN.mat)")
    samples, dropped = [], []
    for mat_path in mats[:limit]:
        image = mat_path.with_suffix(".jpg")
        if not image.is_file():
            dropped.append((mat_path.name, "no .jpg beside it"))
            continue
        try:
            mat = loadmat(str(mat_path))
            pitch, yaw, roll = np.degrees(np.asarray(mat["Pose_Para"], dtype=np.float64).reshape(-1)[:3])
        except (KeyError, ValueError, OSError) as exc:
            raise DatasetError(f"{mat_path}: not an AFLW2000-3D .mat with Pose_Para ({exc})") from None
        if not within_protocol([yaw, pitch, roll]):
            dropped.append((image.name, f"|angle| > {PROTOCOL_MAX_ANGLE_DEG:g} deg"))
            continue
        w, h = image_size(image)
        samples.append(Sample(image.name, image, nominal_camera(w, h, fov_deg),
                              HOPENET_CONVENTION.rotation([yaw, pitch, roll]), "ray",
                              box=_aflw_box(mat), nominal_camera=True))
    return Dataset("AFLW2000-3D", samples,
                   f"Pose_Para angles, faces with any |angle| > {PROTOCOL_MAX_ANGLE_DEG:g} deg dropped; "
                   f"weak-perspective truth compared along the viewing ray; nominal camera {fov_deg:.1f} deg",
                   dropped, _all_boxed(samples, "the detector's box made from the 68 fitted landmarks pt3d_68 "
                                                f"(square, {DETECTOR_BOX_PER_68_HEIGHT:g} x their height across the "
                                                "eye line; measured on the package's sample photos)"))


def _aflw_box(mat: dict) -> np.ndarray | None:
    pts = np.asarray(mat.get("pt3d_68", np.zeros((0, 0))), dtype=np.float64)
    return detector_box_from_68(pts[:2].T) if pts.shape[:2] in ((2, 68), (3, 68)) else None


def detector_box_from_68(points: np.ndarray) -> np.ndarray:
    """(4,) x0, y0, x1, y1 pixels: the box the package's detector gives a face with these 68 landmarks.

    points: (68, 2) image pixels in the iBUG / 300W order (see DETECTOR_BOX_PER_68_HEIGHT).
    """
    pts = np.asarray(points, dtype=np.float64)
    right_eye, left_eye = pts[IBUG_RIGHT_EYE].mean(axis=0), pts[IBUG_LEFT_EYE].mean(axis=0)
    eye_line = left_eye - right_eye
    down = np.array([-eye_line[1], eye_line[0]]) / max(np.hypot(*eye_line), 1e-9)  # v grows downwards
    along = pts @ down
    side = DETECTOR_BOX_PER_68_HEIGHT * (along.max() - along.min())
    centre = (right_eye + left_eye + pts[list(IBUG_INNER_LIPS)].mean(axis=0)) / 3 + DETECTOR_BOX_BELOW_68_EYES_MOUTH * side * down
    return np.concatenate([centre - side / 2, centre + side / 2])


def _all_boxed(samples: list[Sample], how: str) -> str:
    """`how` when every sample has a box, else "" (Dataset.boxes)."""
    return how if samples and all(s.box is not None for s in samples) else ""


# --- BIWI -----------------------------------------------------------------------------------------


def read_biwi(path: str | Path, fov_deg: float = NOMINAL_FOV_DEG, limit: int | None = None) -> Dataset:
    """BIWI Kinect Head Pose: the raw database folder, or FSA-Net's cropped-face ``.npz``."""
    path = Path(path)
    if path.suffix == ".npz":
        return _read_biwi_npz(path, fov_deg, limit)
    if path.is_dir():
        return _read_biwi_raw(path, limit)
    raise DatasetError(f"{path}: expected the BIWI database folder (hpdb/) or a cropped-face .npz")


def biwi_angles_deg(R_annotation: np.ndarray) -> np.ndarray:
    """(3,) yaw, pitch, roll (300W-LP convention, degrees) of a BIWI pose file's 3x3 rotation.

    The decomposition every published BIWI evaluation uses (Hopenet's loader):
    with M the transposed annotation, pitch = atan2(M21, M22),
    yaw = -atan2(-M20, hypot(M21, M22)), roll = -atan2(M10, M00).
    """
    M = np.asarray(R_annotation, dtype=np.float64).T
    pitch = math.atan2(M[2, 1], M[2, 2])
    yaw = -math.atan2(-M[2, 0], math.hypot(M[2, 1], M[2, 2]))
    roll = -math.atan2(M[1, 0], M[0, 0])
    return np.degrees([yaw, pitch, roll])


def _read_biwi_raw(root: Path, limit: int | None) -> Dataset:
    """Frames with a pose file; truth relative to the camera axes; K from the sequence's rgb.cal."""
    poses = sorted(root.glob("**/frame_*_pose.txt"))
    if not poses:
        raise DatasetError(f"{root}: no frame_*_pose.txt files (expected BIWI's hpdb/NN/ folders)")
    samples, dropped, cameras = [], [], {}
    for pose_path in poses:
        if limit is not None and len(samples) >= limit:
            break
        image = pose_path.with_name(pose_path.name.replace("_pose.txt", "_rgb.png"))
        if not image.is_file():
            dropped.append((pose_path.name, "no _rgb.png beside it"))
            continue
        rows = _numbers(pose_path)
        if len(rows) < 3 or any(len(r) != 3 for r in rows[:3]):
            raise DatasetError(f"{pose_path}: expected a 3x3 rotation (and a translation) as BIWI writes them")
        angles = biwi_angles_deg(np.array(rows[:3]))
        if not within_protocol(angles):
            dropped.append((str(image.relative_to(root)), f"|angle| > {PROTOCOL_MAX_ANGLE_DEG:g} deg"))
            continue
        seq = pose_path.parent
        if seq not in cameras:
            cameras[seq] = _biwi_camera(seq / "rgb.cal", image)
        samples.append(Sample(str(image.relative_to(root)), image, cameras[seq],
                              HOPENET_CONVENTION.rotation(angles), "camera"))
    return Dataset("BIWI", samples,
                   f"raw database; pose-file rotations decomposed as Hopenet's loader does; any |angle| > "
                   f"{PROTOCOL_MAX_ANGLE_DEG:g} deg dropped; truth relative to the camera axes, K from rgb.cal; "
                   "no translation truth (BIWI gives the head centre, not the sellion)", dropped)


def _biwi_camera(cal: Path, image: Path) -> CameraModel:
    """The RGB camera of a BIWI sequence: rgb.cal starts with K (3 rows), then 4 distortion values."""
    w, h = image_size(image)
    if not cal.is_file():
        raise DatasetError(f"{cal}: missing (BIWI keeps each sequence's RGB intrinsics there)")
    rows = _numbers(cal)
    if len(rows) < 3 or any(len(r) != 3 for r in rows[:3]):
        raise DatasetError(f"{cal}: expected a 3x3 intrinsic matrix first")
    D = np.array(rows[3]) if len(rows) > 3 and len(rows[3]) in (4, 5) else np.zeros(0)
    return CameraModel(np.array(rows[:3]), D, w, h, "camera_optical_frame")


def _numbers(path: Path) -> list[list[float]]:
    """Non-empty lines of a whitespace-separated text file, as float lists."""
    try:
        return [[float(x) for x in line.split()] for line in path.read_text().splitlines() if line.strip()]
    except ValueError as exc:
        raise DatasetError(f"{path}: not a table of numbers ({exc})") from None


# FSA-Net's crops: the MTCNN box widened by 0.6 of its size on each side, then
# resized to 64x64; so the face box is the middle 1/2.2 of the crop.
BIWI_CROP_MARGIN = 0.6
# The crops are scaled up and framed in a larger canvas, so the detector sees
# the face at a size and with surroundings it was trained for.
BIWI_CROP_UPSCALE = 4
BIWI_CANVAS = 384


def _read_biwi_npz(path: Path, fov_deg: float, limit: int | None) -> Dataset:
    """FSA-Net's BIWI file: image (n, 64, 64, 3) BGR (they were read with OpenCV), pose (n, 3) yaw, pitch, roll."""
    try:
        data = np.load(path)
        images, poses = data["image"], np.asarray(data["pose"], dtype=np.float64)
    except (KeyError, ValueError, OSError) as exc:
        raise DatasetError(f"{path}: not a cropped-face .npz with 'image' and 'pose' arrays ({exc})") from None
    if images.ndim != 4 or images.shape[-1] != 3 or poses.shape != (len(images), 3):
        raise DatasetError(f"{path}: expected image (n, h, w, 3) and pose (n, 3), got {images.shape} and {poses.shape}")
    samples, dropped = [], []
    for i, (crop, ypr) in enumerate(zip(images, poses)):
        if limit is not None and len(samples) >= limit:
            break
        if not within_protocol(ypr):
            dropped.append((str(i), f"|angle| > {PROTOCOL_MAX_ANGLE_DEG:g} deg"))
            continue
        canvas, box = _framed_crop(cv2.cvtColor(np.ascontiguousarray(crop, dtype=np.uint8), cv2.COLOR_BGR2RGB))
        samples.append(Sample(str(i), canvas, nominal_camera(BIWI_CANVAS, BIWI_CANVAS, fov_deg),
                              HOPENET_CONVENTION.rotation(ypr), "ray", box=box, nominal_camera=True))
    return Dataset("BIWI (cropped faces)", samples,
                   f"FSA-Net crops ({path.name}), any |angle| > {PROTOCOL_MAX_ANGLE_DEG:g} deg dropped; crops "
                   f"scaled x{BIWI_CROP_UPSCALE} onto a {BIWI_CANVAS} px canvas; compared along the viewing ray",
                   dropped, _all_boxed(samples, "the face box inside each crop (FSA-Net's MTCNN box, "
                                                f"{BIWI_CROP_MARGIN:g} of its size within each side of the crop)"))


def _framed_crop(crop_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A cropped face scaled up and centred on a canvas (edges replicated), and its face box there."""
    h, w = crop_rgb.shape[:2]
    big = cv2.resize(crop_rgb, (w * BIWI_CROP_UPSCALE, h * BIWI_CROP_UPSCALE), interpolation=cv2.INTER_CUBIC)
    top, left = (BIWI_CANVAS - big.shape[0]) // 2, (BIWI_CANVAS - big.shape[1]) // 2
    canvas = cv2.copyMakeBorder(big, max(top, 0), max(BIWI_CANVAS - big.shape[0] - top, 0), max(left, 0),
                                max(BIWI_CANVAS - big.shape[1] - left, 0), cv2.BORDER_REPLICATE)
    inner = BIWI_CROP_MARGIN / (1 + 2 * BIWI_CROP_MARGIN)
    box = np.array([left + inner * big.shape[1], top + inner * big.shape[0],
                    left + (1 - inner) * big.shape[1], top + (1 - inner) * big.shape[0]])
    return canvas, box


# --- the generic folder format ----------------------------------------------------------------------


def read_folder(folder: str | Path, fov_deg: float = NOMINAL_FOV_DEG, limit: int | None = None) -> Dataset:
    """This package's format: images plus labels.json or labels.csv (FOLDER_FORMAT)."""
    folder = Path(folder)
    if (folder / "labels.json").is_file():
        return _read_labels_json(folder, fov_deg, limit)
    if (folder / "labels.csv").is_file():
        return _read_labels_csv(folder, fov_deg, limit)
    raise DatasetError(f"{folder}: no labels.json or labels.csv (the format:\n{FOLDER_FORMAT})")


def _camera_file(folder: Path, name: str) -> CameraModel:
    try:
        return CameraModel.from_yaml(folder / name).validated()
    except CameraModelError as exc:
        raise DatasetError(str(exc)) from None


def _read_labels_json(folder: Path, fov_deg: float, limit: int | None) -> Dataset:
    path = folder / "labels.json"
    try:
        doc = json.loads(path.read_text())
        entries = doc["samples"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DatasetError(f"{path}: not a labels file with a 'samples' list ({exc})") from None
    angles = doc.get("angles", "headpose_ros")
    reference = doc.get("reference", "camera")
    if angles not in ANGLE_CONVENTIONS or reference not in REFERENCES:
        raise DatasetError(f"{path}: 'angles' must be one of {ANGLE_CONVENTIONS} and 'reference' one of {REFERENCES}")
    default_camera = _camera_file(folder, doc["camera_info"]) if doc.get("camera_info") else None
    samples = []
    for i, entry in enumerate(entries[:limit]):
        try:
            image = folder / entry["image"]
            if "R" in entry:
                R = np.array(entry["R"], dtype=np.float64).reshape(3, 3)
            else:
                ypr = [float(entry[k]) for k in ("yaw", "pitch", "roll")]
                R = camera_from_yaw_pitch_roll_deg(*ypr) if angles == "headpose_ros" else HOPENET_CONVENTION.rotation(ypr)
            t = np.array(entry["t"], dtype=np.float64).reshape(3) if entry.get("t") is not None else None
            box = np.array(entry["box"], dtype=np.float64).reshape(4) if entry.get("box") is not None else None
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"{path}: sample {i} is malformed ({type(exc).__name__}: {exc})") from None
        camera = _camera_file(folder, entry["camera_info"]) if entry.get("camera_info") else default_camera
        samples.append(_folder_sample(entry["image"], image, camera, R, reference, t, box, fov_deg))
    return Dataset(doc.get("name", folder.name), samples, doc.get("protocol", "labels.json"),
                   boxes=_all_boxed(samples, "the labelled boxes (labels.json)"))


def _read_labels_csv(folder: Path, fov_deg: float, limit: int | None) -> Dataset:
    path = folder / "labels.csv"
    default_camera = _camera_file(folder, "camera_info.yaml") if (folder / "camera_info.yaml").is_file() else None
    samples = []
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    for i, row in enumerate(rows[:limit]):
        try:
            R = camera_from_yaw_pitch_roll_deg(*(float(row[k]) for k in ("yaw", "pitch", "roll")))
            t = _optional(row, ("tx", "ty", "tz"))
            box = _optional(row, ("x0", "y0", "x1", "y1"))
            intrinsics = _optional(row, ("fx", "fy", "cx", "cy"))
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"{path}: row {i + 2} is malformed ({type(exc).__name__}: {exc})") from None
        image = folder / row["image"]
        camera = default_camera
        if intrinsics is not None:
            fx, fy, cx, cy = intrinsics
            w, h = image_size(image)
            camera = CameraModel([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], [], w, h, "camera_optical_frame")
        samples.append(_folder_sample(row["image"], image, camera, R, "camera", t, box, fov_deg))
    return Dataset(folder.name, samples, "labels.csv", boxes=_all_boxed(samples, "the labelled boxes (labels.csv)"))


def _optional(row: dict, keys: tuple[str, ...]) -> np.ndarray | None:
    """The columns as floats when all are present and filled, None when all are absent or empty."""
    values = [row.get(k) for k in keys]
    if all(v in (None, "") for v in values):
        return None
    return np.array([float(v) for v in values])


def _folder_sample(name, image, camera, R, reference, t, box, fov_deg) -> Sample:
    if camera is None:
        w, h = image_size(image)
        return Sample(name, image, nominal_camera(w, h, fov_deg), R, reference, t, box, nominal_camera=True)
    return Sample(name, image, camera, R, reference, t, box)


READERS = {"aflw2000": read_aflw2000, "biwi": read_biwi, "folder": read_folder}


def detect_format(path: str | Path) -> str:
    """The reader for `path`: folder (labels.json/csv), aflw2000 (*.mat) or biwi (.npz, frame_*_pose.txt)."""
    path = Path(path)
    if path.is_file() and path.suffix == ".npz":
        return "biwi"
    if not path.is_dir():
        raise DatasetError(f"{path}: no such dataset folder")
    if (path / "labels.json").is_file() or (path / "labels.csv").is_file():
        return "folder"
    if next(path.glob("*.mat"), None) is not None:
        return "aflw2000"
    if next(path.glob("**/frame_*_pose.txt"), None) is not None:
        return "biwi"
    raise DatasetError(f"{path}: not a dataset this package reads (AFLW2000-3D, BIWI, or a folder with "
                       "labels.json/labels.csv); give --format to say which")


def read_dataset(path: str | Path, fmt: str = "auto", fov_deg: float = NOMINAL_FOV_DEG,
                 limit: int | None = None) -> Dataset:
    """Read `path` with the reader `fmt` ("auto" guesses it, see detect_format)."""
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt not in READERS:
        raise DatasetError(f"unknown dataset format '{fmt}' (choose auto, {', '.join(READERS)})")
    dataset = READERS[fmt](path, fov_deg=fov_deg, limit=limit)
    if not dataset.samples:
        raise DatasetError(f"{path}: no usable samples ({len(dataset.dropped)} dropped by the protocol)")
    return dataset
